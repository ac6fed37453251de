"""What a classifier's MLflow runs are logged from: its record, versions, examples and head files.

Normally read from the store. When a classifier is deleted, the tracker may not have logged all its
versions yet, and must not hold the delete up until it has: `stage` copies what logging needs
(a few small files and one JSON) into `<home>/mlflow-pending/deleted/<id>/` at once, and the tracker
logs from that copy in the background, then removes it. A copy left by a crash is picked up by the
next process.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.records import ClassifierRecord, ExampleRow, VersionRecord
from ..store.database import Store

PENDING_DIR = "mlflow-pending"
DELETED_DIR = "deleted"
SNAPSHOT_FILE = "classifier.json"
HEADS_DIR = "heads"


@dataclass(frozen=True)
class ClassifierFiles:
    """A classifier as the tracker logs it: record, versions (oldest first), every example, and its heads folder."""

    record: ClassifierRecord
    versions: list[VersionRecord]
    rows: list[ExampleRow]
    head_dir: Path

    @classmethod
    def from_store(cls, store: Store, classifier_id: str) -> ClassifierFiles:
        """The live classifier (raises ClassifierNotFound). Examples are read last, so they cover every version read."""
        record = store.classifier(classifier_id)
        versions = store.versions(classifier_id)
        rows = store.examples(classifier_id)
        return cls(record, versions, rows, store.head_dir / classifier_id)

    @property
    def classifier_id(self) -> str:
        return self.record.classifier_id

    def examples(self, up_to: int | None = None) -> list[ExampleRow]:
        return [r for r in self.rows if up_to is None or r.example_id <= up_to]

    def head_path(self, version: VersionRecord) -> Path:
        return self.head_dir / version.head_file

    def out_of_fold_path(self, store: Store, version: VersionRecord) -> Path:
        """The version's out-of-fold scores, named as the store names them, in this heads folder."""
        return self.head_dir / store.out_of_fold_path(self.classifier_id, version.version).name


def deleted_root(store: Store) -> Path:
    return store.home / PENDING_DIR / DELETED_DIR


def stage(store: Store, classifier_id: str) -> Path:
    """Copies what logging a (soon deleted) classifier needs out of the store; returns the staged folder."""
    files = ClassifierFiles.from_store(store, classifier_id)
    root = deleted_root(store)
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=root, prefix=f".{classifier_id}-"))
    try:
        if files.head_dir.exists():
            shutil.copytree(files.head_dir, building / HEADS_DIR)
        snapshot = {
            "record": asdict(files.record),
            "versions": [asdict(v) for v in files.versions],
            "rows": [asdict(r) for r in files.rows],
        }
        (building / SNAPSHOT_FILE).write_text(json.dumps(snapshot))
    except BaseException:  # a full disk, say: no half copy is left behind
        shutil.rmtree(building, ignore_errors=True)
        raise
    final = root / classifier_id
    if final.exists():
        shutil.rmtree(final)  # an earlier copy (a delete that crashed before the store delete) is stale
    building.rename(final)
    return final


def staged(store: Store, classifier_id: str) -> ClassifierFiles | None:
    """The staged copy of a deleted classifier, or None."""
    folder = deleted_root(store) / classifier_id
    if not (folder / SNAPSHOT_FILE).exists():
        return None
    snapshot = json.loads((folder / SNAPSHOT_FILE).read_text())
    return ClassifierFiles(
        ClassifierRecord(**snapshot["record"]),
        [VersionRecord(**v) for v in snapshot["versions"]],
        [ExampleRow(**r) for r in snapshot["rows"]],
        folder / HEADS_DIR,
    )


def staged_ids(store: Store) -> list[str]:
    """Deleted classifiers whose history is still to be logged."""
    root = deleted_root(store)
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and (p / SNAPSHOT_FILE).exists())


def unstage(store: Store, classifier_id: str) -> None:
    """Removes a staged copy once its history is logged."""
    shutil.rmtree(deleted_root(store) / classifier_id, ignore_errors=True)
