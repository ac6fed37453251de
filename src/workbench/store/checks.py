"""The full checks of `workbench doctor`: blob contents, heads and out-of-fold files, stray heads, the embedding cache.

Each adds its findings to the run; what a repair may remove or quarantine goes to `run.removals`,
for `repairs` to act on under the write lock.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import numpy as np

from ..analysis.training import Heads, OutOfFold
from ..core.atomic import TEMP_PREFIX, open_for_reading
from ..core.records import ClassifierRecord, VersionRecord
from ..core.vocabulary import STATUSES
from .connection import READ_PROBE
from .database import Store
from .findings import (
    BAD_EMBEDDING,
    BAD_SERVING_VERSION,
    BAD_STATUS,
    BROKEN_HEAD,
    BROKEN_OUT_OF_FOLD,
    CORRUPT_BLOB,
    MISSING_BLOB,
    REMOVED,
    STRAY_FILE,
    DoctorRun,
    Finding,
)

HEAD_NAME = re.compile(r"v(\d+)(\.oof)?\.npz")
HASH_CHUNK_BYTES = 1 << 20


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


def check_blobs(run: DoctorRun, blobs: dict[str, Path], examples: list) -> None:
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


def heads_problem(path: Path, version: VersionRecord) -> str | None:
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


def check_heads(
    run: DoctorRun, records: list[ClassifierRecord], versions: list[VersionRecord], marked: set[str]
) -> None:
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
            problem = heads_problem(head, version)
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
    run: DoctorRun, classifier_ids: set[str], by_classifier: dict[str, dict[int, VersionRecord]], marked: set[str]
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


def check_embeddings(run: DoctorRun, path: Path, sizes: dict[str, int]) -> None:
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
