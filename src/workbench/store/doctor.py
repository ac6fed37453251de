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

This module runs the check and lists the files; `checks` holds the full checks, `repairs` the
repairs, `findings` the kinds of finding and the report.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..core.atomic import TEMP_PREFIX, disk_refuses_growth
from ..core.limits import DOCTOR_GRACE_S
from .checks import check_blobs, check_embeddings, check_heads
from .database import REMOVE_BLOB, PendingRemoval, Store
from .faults import unavailable
from .findings import (
    FINISHED_KEPT,
    ORPHAN_BLOB,
    PENDING_REMOVAL,
    REMOVED,
    STORE_UNAVAILABLE,
    STRAY_FILE,
    TEMP_FILE,
    DoctorReport,
    DoctorRun,
    Finding,
)
from .repairs import mark_broken, remove_due

log = logging.getLogger(__name__)

STARTUP_GRACE_S = 600.0  # the start-up sweep leaves anything younger than 10 minutes alone
SHA256_NAME = re.compile(r"[0-9a-f]{64}")


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
    run = DoctorRun(store, repair, grace_s)
    refused = disk_refuses_growth(store.files) if full else None
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
        check_blobs(run, blobs, examples)
        check_heads(run, records, versions, {p.name for p in pending if p.kind != REMOVE_BLOB})
        if embeddings is not None and embeddings.exists():
            check_embeddings(run, embeddings, embedding_sizes or {})
    remove_due(run)
    mark_broken(run, {r.classifier_id: r for r in records}, versions)
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


def _removal_subject(run: DoctorRun, removal: PendingRemoval) -> str:
    if removal.kind == REMOVE_BLOB:
        return run.relative(run.store.blob_path(removal.name))
    return run.relative(run.store.head_dir / removal.name) + "/"


def _pending_removals(run: DoctorRun) -> list[PendingRemoval]:
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
