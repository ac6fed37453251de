"""What `workbench doctor` reports: the kinds of finding, what repair did about each, and the report itself.

`DoctorRun` is the state one run gathers as it goes (findings, files due for removal, broken
classifiers); the checks (`checks`) fill it, the repairs (`repairs`) act on it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .database import Store

# kinds of finding
ORPHAN_BLOB = "orphan_blob"  # a blob no example uses
TEMP_FILE = "temp_file"  # a `.tmp-*` file a killed writer left
STRAY_FILE = "stray_file"  # a file in blobs/ or heads/ that nothing owns
MISSING_BLOB = "missing_blob"  # an example whose image is not stored
CORRUPT_BLOB = "corrupt_blob"  # a blob whose content does not match its sha256 name
BAD_STATUS = "bad_status"
BAD_SERVING_VERSION = "bad_serving_version"
BROKEN_HEAD = "broken_head"  # a version's heads file missing or unloadable
BROKEN_OUT_OF_FOLD = "broken_out_of_fold"  # a version's out-of-fold scores missing or unloadable
BAD_EMBEDDING = "bad_embedding"
BROKEN_CLASSIFIER = "broken_classifier"  # the summary per classifier whose data is broken
PENDING_REMOVAL = "pending_removal"  # a file a committed delete has still to remove (the delete was interrupted)
STORE_UNAVAILABLE = (
    "store_unavailable"  # the check could not finish: the disk refused a write (full) or the store stayed locked
)

# what repair did
REMOVED = "removed"
QUARANTINED = "quarantined"
MARKED_FAILED = "marked failed"
KEPT_RECENT = "kept: younger than the grace period"
KEPT_BUSY = "kept: a training is under way"
KEPT_IN_USE = "kept: in use by now (a create committed since the check)"
FINISHED_KEPT = "finished: kept, an example uses it again"  # an interrupted delete's blob that a create took up
REPAIRED = frozenset({REMOVED, QUARANTINED, MARKED_FAILED, FINISHED_KEPT})


@dataclass(frozen=True)
class Finding:
    """One problem: its kind, its subject (path under home, classifier id, cache row), details, and what repair did."""

    kind: str
    subject: str
    detail: str
    action: str = ""  # "" when only reported

    @property
    def repaired(self) -> bool:
        return self.action in REPAIRED


@dataclass(frozen=True)
class DoctorReport:
    """What one doctor run checked and found."""

    home: str
    full: bool
    repair: bool
    checked: dict[str, int]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """True when nothing is left broken: no findings, or every one repaired."""
        return all(finding.repaired for finding in self.findings)

    def of_kind(self, kind: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.kind == kind]

    def to_dict(self) -> dict:
        return {
            "home": self.home,
            "full": self.full,
            "repair": self.repair,
            "ok": self.ok,
            "checked": self.checked,
            "findings": [asdict(finding) for finding in self.findings],
        }

    def advice(self) -> str:
        """One line saying what to do about what this run left (empty when nothing is left)."""
        left = [f for f in self.findings if not f.repaired]
        if not left:
            return ""
        if any(f.kind == STORE_UNAVAILABLE for f in left):
            advice = "free disk space (or wait for the process holding the store's lock), then run it again"
        elif not self.repair:
            advice = "run `workbench doctor --repair`"
        elif all(f.action == KEPT_RECENT for f in left):
            advice = (
                "some files are too recent to remove safely: run it again later "
                "(or with --grace-seconds 0 when no other workbench process runs)"
            )
        else:
            advice = "what is left needs you: re-send missing images with an update, or delete the classifier"
        return f"doctor found {len(left)} problem(s) left; {advice}"


@dataclass
class DoctorRun:
    """The state of one doctor run."""

    store: Store
    repair: bool
    grace_s: float
    findings: list[Finding] = field(default_factory=list)
    removals: list[tuple[str, Path, str, str]] = field(default_factory=list)  # (kind, path, detail, sha or "")
    broken: dict[str, list[str]] = field(default_factory=dict)  # classifier id -> what is broken
    checked: dict[str, int] = field(default_factory=dict)
    now: float = field(default_factory=time.time)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.store.files).as_posix()

    @staticmethod
    def size(path: Path) -> int:
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return 0

    def age_s(self, path: Path) -> float:
        try:
            return self.now - path.stat().st_mtime
        except FileNotFoundError:
            return 0.0
