"""The repairs of `workbench doctor`: remove what nothing uses, quarantine corrupt blobs, fail broken classifiers.

Each candidate is checked again under the write lock (a create in another process may have taken
it up since the check), and files younger than the grace period are only reported.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from ..core.records import ClassifierRecord, VersionRecord
from ..core.vocabulary import BUSY_STATUSES
from .checks import HEAD_NAME, heads_problem
from .database import Store
from .findings import (
    BROKEN_CLASSIFIER,
    CORRUPT_BLOB,
    KEPT_BUSY,
    KEPT_IN_USE,
    KEPT_RECENT,
    MARKED_FAILED,
    ORPHAN_BLOB,
    QUARANTINED,
    REMOVED,
    STRAY_FILE,
    DoctorRun,
    Finding,
)

QUARANTINE_DIR = "quarantine"


def _still_removable(run: DoctorRun, db: sqlite3.Connection, kind: str, path: Path, sha: str) -> bool:
    """The check again, under the write transaction: still unused."""
    if kind == ORPHAN_BLOB:
        return not run.store.blob_referenced(db, sha)
    if kind == STRAY_FILE:
        match, owner = HEAD_NAME.fullmatch(path.name), path.parent.name
        return not (match and run.store.version_exists(db, owner, int(match.group(1))))
    return True


def _quarantine(run: DoctorRun, path: Path) -> None:
    """Moves a corrupt blob aside (never deleted), so re-sending the image stores it afresh."""
    target = run.store.files / QUARANTINE_DIR / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = 1
    while target.exists():
        target, suffix = target.with_name(f"{path.name}.{suffix}"), suffix + 1
    shutil.move(path, target)


def remove_due(run: DoctorRun) -> None:
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


def _newest_usable(run: DoctorRun, record: ClassifierRecord, versions: list[VersionRecord]) -> int | None:
    mine = [v for v in versions if v.classifier_id == record.classifier_id]
    usable = [v.version for v in mine if heads_problem(run.store.head_path(v.classifier_id, v.version), v) is None]
    if record.serving_version in usable:
        return record.serving_version
    return max(usable, default=None)


def mark_broken(run: DoctorRun, records: dict[str, ClassifierRecord], versions: list[VersionRecord]) -> None:
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
