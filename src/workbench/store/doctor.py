"""`workbench doctor`: checks the store against itself, reports what is broken, repairs what is safe to.

The full check looks at:

* classifier records: a known status, a serving version that exists and whose heads file loads;
* versions: heads file and out-of-fold file present and loadable; heads files and folders nothing owns;
* blobs: every example's image present with content matching its sha256 name; blobs no example uses;
* temporary files (`.tmp-*`) that a writer killed mid-write left behind;
* removals a delete committed but did not finish (the process died between its commit and its unlinks);
* the embedding cache: vectors that are not whole float32s, have the wrong size, or are not finite.

Repair finishes interrupted deletes (each blob checked again: one an example uses is kept),
removes orphan blobs, temporary and stray heads files, and bad embedding rows (a cache,
recomputed on demand); it moves corrupt blobs to `quarantine/` (so re-sending the image stores it
again) and marks classifiers whose data is broken `failed` with an explanation. It never deletes
a user's examples. The cheap form (run at start-up) only finishes interrupted deletes and looks
for orphan blobs and temporary files, without hashing anything.

Time of check against time of use: a create in another process may be storing blobs right now.
Blob and heads files are written only inside the store's write transaction, so removals happen
inside one too, and each candidate is checked again there (still unused, still older than the grace
period). The grace period also protects writers that break that rule (older code).
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..analysis.training import Heads, OutOfFold
from ..core.atomic import TEMP_PREFIX, disk_refuses_growth, open_for_reading
from ..core.limits import DOCTOR_GRACE_S
from ..core.records import ClassifierRecord, VersionRecord
from ..core.vocabulary import BUSY_STATUSES, STATUSES
from .connection import READ_PROBE
from .database import REMOVE_BLOB, PendingRemoval, Store
from .faults import unavailable

log = logging.getLogger(__name__)

STARTUP_GRACE_S = 600.0  # the start-up sweep leaves anything younger than 10 minutes alone
QUARANTINE_DIR = "quarantine"
SHA256_NAME = re.compile(r"[0-9a-f]{64}")
HEAD_NAME = re.compile(r"v(\d+)(\.oof)?\.npz")
HASH_CHUNK_BYTES = 1 << 20

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
class _Run:
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
        return path.relative_to(self.store.home).as_posix()

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


def run_doctor(
    store: Store,
    embeddings: Path | None = None,
    embedding_sizes: dict[str, int] | None = None,
    *,
    repair: bool = False,
    full: bool = True,
    grace_s: float = DOCTOR_GRACE_S,
) -> DoctorReport:
    """Checks the store (and the embedding cache at `embeddings`, full form only); repairs with `repair`.

    `embedding_sizes` maps backbone ids to their vector length (other backbones' rows are only
    checked for whole, finite float32s).
    """
    run = _Run(store, repair, grace_s)
    refused = disk_refuses_growth(store.home) if full else None
    if refused is not None:  # everything is still read and checked; nothing can be repaired
        run.findings.append(
            Finding(
                STORE_UNAVAILABLE,
                ".",
                (
                    f"The store's disk is full ({refused.strerror or refused}): "
                    "reads and classify answer, writes are refused" + ("; nothing was repaired" if repair else "")
                ),
            )
        )
        run.repair = False
    pending = _pending_removals(run)  # first: with repair, what is left of them is not an orphan
    blobs, temps, strays = _blob_files(store)
    with store.transaction(write=False) as db:
        examples = store.all_examples(db) if full else []
        referenced = (
            {row.sha256 for _, row in examples}
            if full
            else {sha for (sha,) in db.execute("SELECT DISTINCT sha256 FROM examples")}
        )
        records = store.classifiers()
        versions = store.all_versions(db) if full else []
    run.checked.update(blobs=len(blobs), referenced_blobs=len(referenced))
    temps += _heads_temp_files(store)
    for path in temps:
        run.removals.append(
            (TEMP_FILE, path, f"temporary file of a write that never finished ({run.size(path)} bytes)", "")
        )
    marked = {p.name for p in pending if p.kind == REMOVE_BLOB}
    for sha in sorted(set(blobs) - referenced - marked):
        run.removals.append((ORPHAN_BLOB, blobs[sha], f"image no example uses ({run.size(blobs[sha])} bytes)", sha))
    if full:
        run.checked.update(classifiers=len(records), versions=len(versions), examples=len(examples))
        for path in strays:
            run.findings.append(Finding(STRAY_FILE, run.relative(path), "not a blob name (left alone)"))
        _check_blobs(run, blobs, examples)
        _check_heads(run, records, versions, {p.name for p in pending if p.kind != REMOVE_BLOB})
        if embeddings is not None and embeddings.exists():
            _check_embeddings(run, embeddings, embedding_sizes or {})
    _remove(run)
    _mark_broken(run, {r.classifier_id: r for r in records}, versions)
    return DoctorReport(str(store.home), full, repair, dict(run.checked), tuple(run.findings))


def unavailable_report(home: Path, exc: BaseException, *, repair: bool, full: bool) -> DoctorReport | None:
    """The report of a check the store stopped (a full disk, a lock held past the busy timeout); None for other errors.

    Repairs committed before the stop stand; running the check again after freeing space finishes it.
    """
    mapped = unavailable(exc, home)
    if mapped is None:
        return None
    log.warning("doctor stopped: %s (%s)", mapped.message, exc)
    detail = f"{mapped.message.split(';')[0]}; the check stopped there (repairs committed before it stand)"
    return DoctorReport(str(home), full, repair, {}, (Finding(STORE_UNAVAILABLE, ".", detail),))


# ---------------------------------------------------------------- listing


def _blob_files(store: Store) -> tuple[dict[str, Path], list[Path], list[Path]]:
    """Files under blobs/: blobs by sha256, temporary files, and anything else."""
    blobs: dict[str, Path] = {}
    temps: list[Path] = []
    strays: list[Path] = []
    if not store.blob_dir.is_dir():
        return blobs, temps, strays
    for folder in sorted(store.blob_dir.iterdir()):
        if not folder.is_dir():
            strays.append(folder)
            continue
        for path in sorted(folder.iterdir()):
            if path.name.startswith(TEMP_PREFIX):
                temps.append(path)
            elif SHA256_NAME.fullmatch(path.name) and folder.name == path.name[:2]:
                blobs[path.name] = path
            else:
                strays.append(path)
    return blobs, temps, strays


def _heads_temp_files(store: Store) -> list[Path]:
    if not store.head_dir.is_dir():
        return []
    return sorted(path for path in store.head_dir.glob(f"*/{TEMP_PREFIX}*") if path.is_file())


def _removal_subject(run: _Run, removal: PendingRemoval) -> str:
    if removal.kind == REMOVE_BLOB:
        return run.relative(run.store.blob_path(removal.name))
    return run.relative(run.store.head_dir / removal.name) + "/"


def _pending_removals(run: _Run) -> list[PendingRemoval]:
    """Reports the removals interrupted deletes left; with repair, finishes them (no grace: the commit decided).

    Returns those still pending (none after a repair).
    """
    if run.repair:
        outcomes = run.store.finish_removals()
        for outcome in outcomes:
            detail = "marked for removal by a delete a crash interrupted"
            action = REMOVED if outcome.removed else FINISHED_KEPT
            run.findings.append(Finding(PENDING_REMOVAL, _removal_subject(run, outcome.removal), detail, action))
        run.checked["pending_removals"] = len(outcomes)
    pending = run.store.pending_removals()
    for removal in pending:
        path = run.store.blob_path(removal.name) if removal.kind == REMOVE_BLOB else run.store.head_dir / removal.name
        still = "still on disk" if path.exists() else "already gone from disk"
        detail = f"marked for removal by a delete that did not finish (a crash interrupted it); {still}"
        run.findings.append(Finding(PENDING_REMOVAL, _removal_subject(run, removal), detail))
    run.checked.setdefault("pending_removals", len(pending))
    return pending


# ---------------------------------------------------------------- full checks


def _sha256_of(path: Path) -> str | None:
    """The file's sha256, or None when it vanished meanwhile (a delete)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def _check_blobs(run: _Run, blobs: dict[str, Path], examples: list) -> None:
    """Every example's image is stored, and every used blob's content matches its name."""
    users: dict[str, list[tuple[str, str]]] = {}
    for classifier_id, row in examples:
        users.setdefault(row.sha256, []).append((classifier_id, row.source))
    missing = _confirmed_missing(run.store, [sha for sha in users if sha not in blobs or not blobs[sha].exists()])
    for sha, uses in sorted(users.items()):
        path = blobs.get(sha)
        if sha in missing:
            kind, what = MISSING_BLOB, "is missing"
        elif path is None or _sha256_of(path) in (sha, None):
            continue
        else:
            kind, what = CORRUPT_BLOB, "is corrupt (its content does not match its sha256)"
        sources = sorted({source for _, source in uses})
        finding = Finding(kind, f"blobs/{sha[:2]}/{sha}", f"image {', '.join(sources)} {what}")
        if kind == CORRUPT_BLOB and path is not None:
            run.removals.append((CORRUPT_BLOB, path, finding.detail, sha))
        else:
            run.findings.append(finding)
        for classifier_id, source in uses:
            run.broken.setdefault(classifier_id, []).append(f"image {source} {what}")


def _confirmed_missing(store: Store, candidates: list[str]) -> set[str]:
    """The candidates still used by an example and still absent, checked under the write lock (a create
    may have committed, or a delete removed them, since the listing)."""
    if not candidates:
        return set()
    with store.transaction() as db:
        return {sha for sha in candidates if store.blob_referenced(db, sha) and not store.blob_path(sha).exists()}


def _heads_problem(path: Path, version: VersionRecord) -> str | None:
    """Why a heads file is unusable, or None."""
    if not path.is_file():
        return "is missing"
    try:
        heads = Heads.from_bytes(path.read_bytes())
    except Exception as exc:
        return f"does not load ({type(exc).__name__}: {exc})"
    if (
        list(heads.classes) != version.classes
        or heads.weights.shape[0] != len(heads.classes)
        or heads.bias.shape != (len(heads.classes),)
    ):
        return "does not match the version's classes"
    return None


def _out_of_fold_problem(path: Path) -> str | None:
    if not path.is_file():
        return "is missing"
    try:
        OutOfFold.from_bytes(path.read_bytes())
    except Exception as exc:
        return f"does not load ({type(exc).__name__}: {exc})"
    return None


def _check_heads(run: _Run, records: list[ClassifierRecord], versions: list[VersionRecord], marked: set[str]) -> None:
    """Statuses, serving versions, heads and out-of-fold files, and heads files nothing owns (but a delete's marks)."""
    store = run.store
    by_classifier: dict[str, dict[int, VersionRecord]] = {}
    for version in versions:
        by_classifier.setdefault(version.classifier_id, {})[version.version] = version
    for record in records:
        cid = record.classifier_id
        mine = by_classifier.get(cid, {})
        unusable = set()
        for number, version in sorted(mine.items()):
            head = store.head_path(cid, number)
            problem = _heads_problem(head, version)
            if problem:
                unusable.add(number)
                run.findings.append(
                    Finding(BROKEN_HEAD, run.relative(head), f"heads file of {cid} v{number} {problem}")
                )
            oof = store.out_of_fold_path(cid, number)
            problem = _out_of_fold_problem(oof)
            if problem:
                run.findings.append(
                    Finding(
                        BROKEN_OUT_OF_FOLD,
                        run.relative(oof),
                        f"out-of-fold scores of {cid} v{number} {problem} (plots and MLflow lack them)",
                    )
                )
        if record.status not in STATUSES:
            run.findings.append(Finding(BAD_STATUS, cid, f"unknown status {record.status!r}"))
            run.broken.setdefault(cid, []).append(f"its status {record.status!r} is unknown")
        serving = record.serving_version
        if serving is None and record.status == "ready":
            run.findings.append(Finding(BAD_SERVING_VERSION, cid, "status ready but no serving version"))
            run.broken.setdefault(cid, []).append("it is ready but has no serving version")
        elif serving is not None and serving not in mine:
            run.findings.append(Finding(BAD_SERVING_VERSION, cid, f"serving version v{serving} does not exist"))
            run.broken.setdefault(cid, []).append(f"its serving version v{serving} does not exist")
        elif serving is not None and serving in unusable:
            run.broken.setdefault(cid, []).append(
                f"the heads file of its serving version v{serving} is missing or broken"
            )
        if record.pinned_version is not None and record.pinned_version != serving:  # promote writes both at once
            run.findings.append(
                Finding(BAD_SERVING_VERSION, cid, f"pinned v{record.pinned_version} but serving v{serving}")
            )
            run.broken.setdefault(cid, []).append(f"its pin (v{record.pinned_version}) is not the version serving")
    run.checked["heads_files"] = _check_stray_heads(run, {r.classifier_id for r in records}, by_classifier, marked)


def _check_stray_heads(
    run: _Run, classifier_ids: set[str], by_classifier: dict[str, dict[int, VersionRecord]], marked: set[str]
) -> int:
    """Heads files of versions that do not exist (a training killed before its commit) or of deleted classifiers.

    Folders an interrupted delete marked are reported as pending removals instead.
    """
    store, seen = run.store, 0
    if not store.head_dir.is_dir():
        return 0
    for folder in sorted(store.head_dir.iterdir()):
        if folder.name in marked:
            continue
        for path in sorted(folder.iterdir()) if folder.is_dir() else [folder]:
            seen += 1
            if path.name.startswith(TEMP_PREFIX):
                continue  # listed with the temporary files
            match = HEAD_NAME.fullmatch(path.name)
            owner = folder.name if folder.is_dir() else None
            if owner in classifier_ids and match and int(match.group(1)) in by_classifier.get(owner, {}):
                continue
            why = "its classifier does not exist" if owner not in classifier_ids else "no version owns it"
            run.removals.append((STRAY_FILE, path, f"heads file nothing uses: {why}", ""))
    return seen


def _check_embeddings(run: _Run, path: Path, sizes: dict[str, int]) -> None:
    """Cache rows whose vector is not whole float32s, has the wrong size, or holds NaN or infinity."""
    db = sqlite3.connect(path, timeout=30)
    try:
        db.execute(READ_PROBE).fetchall()
    except sqlite3.OperationalError:  # a disk too full for its WAL index: read without one (no repair then)
        db.close()
        db = open_for_reading(path, 30)
    try:
        bad, rows = [], 0
        for sha, backbone_id, vector in db.execute("SELECT sha256, backbone_id, vector FROM embeddings"):
            rows += 1
            problem = _vector_problem(vector, sizes.get(backbone_id))
            if problem:
                bad.append((sha, backbone_id, problem))
        run.checked["embeddings"] = rows
        for sha, backbone_id, problem in bad:
            action = ""
            if run.repair:
                with db:
                    db.execute("DELETE FROM embeddings WHERE sha256 = ? AND backbone_id = ?", (sha, backbone_id))
                action = REMOVED
            run.findings.append(
                Finding(
                    BAD_EMBEDDING,
                    f"{path.name}: {sha} {backbone_id}",
                    f"cached embedding {problem} (recomputed when needed once removed)",
                    action,
                )
            )
    finally:
        db.close()


def _vector_problem(vector: object, size: int | None) -> str | None:
    if not isinstance(vector, bytes) or len(vector) == 0 or len(vector) % 4:
        return "is not a whole number of float32 values"
    values = np.frombuffer(vector, dtype=np.float32)
    if size is not None and values.size != size:
        return f"has {values.size} values; its backbone makes {size}"
    if not np.isfinite(values).all():
        return "holds NaN or infinity"
    return None


# ---------------------------------------------------------------- repair


def _still_removable(run: _Run, db: sqlite3.Connection, kind: str, path: Path, sha: str) -> bool:
    """The check again, under the write transaction: still unused."""
    if kind == ORPHAN_BLOB:
        return not run.store.blob_referenced(db, sha)
    if kind == STRAY_FILE:
        match, owner = HEAD_NAME.fullmatch(path.name), path.parent.name
        return not (match and run.store.version_exists(db, owner, int(match.group(1))))
    return True


def _quarantine(run: _Run, path: Path) -> None:
    """Moves a corrupt blob aside (never deleted), so re-sending the image stores it afresh."""
    target = run.store.home / QUARANTINE_DIR / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = 1
    while target.exists():
        target, suffix = target.with_name(f"{path.name}.{suffix}"), suffix + 1
    shutil.move(path, target)


def _remove(run: _Run) -> None:
    """Removes (or quarantines) the candidates older than the grace period, each rechecked under the write lock.

    Younger ones are reported without taking the lock, so a create storing blobs in another process
    is neither waited for nor harmed.
    """
    if not run.repair:
        run.findings.extend(Finding(kind, run.relative(path), detail) for kind, path, detail, _ in run.removals)
        return
    due = []
    for kind, path, detail, sha in run.removals:
        age = run.age_s(path)
        if kind != CORRUPT_BLOB and age < run.grace_s:
            run.findings.append(Finding(kind, run.relative(path), f"{detail}; modified {age:.0f} s ago", KEPT_RECENT))
        else:
            due.append((kind, path, detail, sha))
    if not due:
        return
    with run.store.transaction() as db:
        for kind, path, detail, sha in due:
            subject = run.relative(path)
            if not path.exists():
                continue  # gone by now (a delete): nothing to report
            if not _still_removable(run, db, kind, path, sha):
                run.findings.append(Finding(kind, subject, detail, KEPT_IN_USE))
                continue
            if kind == CORRUPT_BLOB:
                _quarantine(run, path)
                run.findings.append(Finding(kind, subject, f"{detail}; moved to {QUARANTINE_DIR}/", QUARANTINED))
            else:
                path.unlink(missing_ok=True)
                run.findings.append(Finding(kind, subject, detail, REMOVED))
        _remove_empty_folders(run.store)  # under the lock too: a writer makes its folder, then its file


def _remove_empty_folders(store: Store) -> None:
    for parent in (store.blob_dir, store.head_dir):
        if parent.is_dir():
            for folder in parent.iterdir():
                if folder.is_dir() and not any(folder.iterdir()):
                    try:
                        folder.rmdir()
                    except OSError:
                        pass  # a writer just put a file there


def _explanation(problems: list[str], serving: int | None) -> str:
    shown = problems[:5] + ([f"and {len(problems) - 5} more"] if len(problems) > 5 else [])
    still = f"Classify still uses v{serving}. " if serving is not None else ""
    return (
        f"The store check (workbench doctor) found broken data: {'; '.join(shown)}. {still}"
        "Re-send missing or corrupt images with an update to retrain, or delete the classifier."
    )


def _newest_usable(run: _Run, record: ClassifierRecord, versions: list[VersionRecord]) -> int | None:
    mine = [v for v in versions if v.classifier_id == record.classifier_id]
    usable = [v.version for v in mine if _heads_problem(run.store.head_path(v.classifier_id, v.version), v) is None]
    if record.serving_version in usable:
        return record.serving_version
    return max(usable, default=None)


def _mark_broken(run: _Run, records: dict[str, ClassifierRecord], versions: list[VersionRecord]) -> None:
    """One finding per broken classifier; with repair, marks it failed (serving its newest usable version)."""
    for cid, problems in sorted(run.broken.items()):
        record = records.get(cid)
        if record is None:
            continue
        problems = list(dict.fromkeys(problems))
        serving = _newest_usable(run, record, versions)
        explanation = _explanation(problems, serving)
        action = ""
        if run.repair and record.status in BUSY_STATUSES:
            action = KEPT_BUSY
        elif run.repair:
            with run.store.transaction() as db:
                now = db.execute(
                    "SELECT status, serving_version, pinned_version FROM classifiers WHERE classifier_id = ?", (cid,)
                ).fetchone()
                if now == (record.status, record.serving_version, record.pinned_version):  # unchanged, not deleted
                    pin = (
                        record.pinned_version if record.pinned_version == serving else None
                    )  # a pin only on what serves
                    run.store.update_classifier(
                        db, cid, status="failed", explanation=explanation, serving_version=serving, pinned_version=pin
                    )
                    action = MARKED_FAILED
        run.findings.append(Finding(BROKEN_CLASSIFIER, cid, explanation, action))


def startup_sweep(store: Store) -> DoctorReport | None:
    """The cheap start-up check: finishes interrupted deletes, removes orphan blobs and temp files past STARTUP_GRACE_S.

    Never raises: a store it cannot check is left as it is (and logged).
    """
    try:
        report = run_doctor(store, repair=True, full=False, grace_s=STARTUP_GRACE_S)
    except Exception:
        log.exception("the start-up store check failed; run `workbench doctor`")
        return None
    removed = [finding for finding in report.findings if finding.repaired]
    if removed:
        log.warning(
            "start-up store check removed %d orphan or temporary files (or finished interrupted deletes) from %s",
            len(removed),
            store.home,
        )
    return report
