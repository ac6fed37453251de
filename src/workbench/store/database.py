"""Durable state: classifier records, versions, the examples manifest and image blobs (SQLite, atomic)."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import atomic_write_bytes
from ..core.errors import ClassifierNotFound, StoreUnavailable
from ..core.records import ClassifierRecord, ExampleRow, VersionRecord
from .connection import Database
from .schema import EXAMPLE_COLUMNS, VERSION_COLUMNS, version_record

log = logging.getLogger(__name__)
REMOVE_BLOB = "blob"  # pending_removals.kind: an image blob, by sha256
REMOVE_HEADS = (
    "heads"  # pending_removals.kind: a deleted classifier's heads folder (heads, out-of-fold scores, exports)
)


@dataclass(frozen=True)
class PendingRemoval:
    """A file (or heads folder) a committed delete marked for removal and has not removed yet."""

    kind: str  # REMOVE_BLOB or REMOVE_HEADS
    name: str  # a sha256 or a classifier id


@dataclass(frozen=True)
class RemovalOutcome:
    """What finishing one pending removal did: removed the file(s), or kept them because they are in use again."""

    removal: PendingRemoval
    removed: bool


class Store(Database):
    """The home directory: `workbench.db`, `blobs/` (images by sha256) and `heads/`.

    On many hosts (`uri` a `postgresql://` URI): the rows in PostgreSQL, `blobs/` and `heads/` under
    `files`, a folder every host mounts; the home keeps only this host's own files.

    Blob and heads files are written (and synced) only inside a write `transaction()`, before the
    commit that refers to them: `doctor` relies on it to tell files a crashed writer left from files a
    live one is writing. Files are removed only after the commit that stops referring to them
    (`pending_removals`), so a crash at any point loses no image a classifier still uses.
    """

    def __init__(
        self,
        home: Path,
        busy_timeout: float | None = None,
        read_only: bool = False,
        uri: str | None = None,
        files: Path | None = None,
    ) -> None:
        self.files = files if files is not None else home  # where blobs/ and heads/ are: shared by every host
        self.blob_dir = self.files / "blobs"
        self.head_dir = self.files / "heads"
        super().__init__(home, busy_timeout, read_only, folders=(self.blob_dir, self.head_dir), uri=uri)

    # blobs -----------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        return self.blob_dir / sha256[:2] / sha256

    def put_blob(self, sha256: str, data: bytes) -> None:
        """Stores image bytes once per sha256."""
        path = self.blob_path(sha256)
        if not path.exists():
            atomic_write_bytes(path, data, private=True)

    def read_blob(self, sha256: str) -> bytes:
        return self.blob_path(sha256).read_bytes()

    # classifiers -----------------------------------------------------------
    def insert_classifier(self, db: sqlite3.Connection, record: ClassifierRecord) -> None:
        db.execute(
            "INSERT INTO classifiers VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                record.classifier_id,
                record.name,
                record.owner,
                record.status,
                record.created,
                record.updated,
                record.retrained,
                record.explanation,
                record.serving_version,
                record.job_owner,
                record.lease_expires,
                record.pinned_version,
            ),
        )

    def update_classifier(self, db: sqlite3.Connection, classifier_id: str, **fields: object) -> None:
        """Sets the given columns of one classifier."""
        columns = ", ".join(f"{name} = ?" for name in fields)
        db.execute(f"UPDATE classifiers SET {columns} WHERE classifier_id = ?", [*fields.values(), classifier_id])

    def classifier(self, classifier_id: str, db: sqlite3.Connection | None = None) -> ClassifierRecord:
        """The stored record, or ClassifierNotFound."""
        query = "SELECT * FROM classifiers WHERE classifier_id = ?"
        if db is None:
            with self.transaction(write=False) as db:
                row = db.execute(query, (classifier_id,)).fetchone()
        else:
            row = db.execute(query, (classifier_id,)).fetchone()
        if row is None:
            raise ClassifierNotFound(f"Classifier {classifier_id!r} not found")
        return ClassifierRecord(*row)

    def classifiers(self, owner: str | None = None) -> list[ClassifierRecord]:
        """All records (of one owner when given), oldest first."""
        with self.transaction(write=False) as db:
            if owner is None:
                rows = db.execute("SELECT * FROM classifiers ORDER BY created, classifier_id").fetchall()
            else:
                rows = db.execute(
                    "SELECT * FROM classifiers WHERE owner = ? ORDER BY created, classifier_id", (owner,)
                ).fetchall()
        return [ClassifierRecord(*row) for row in rows]

    def classifier_ids(self) -> set[str]:
        with self.transaction(write=False) as db:
            return {row[0] for row in db.execute("SELECT classifier_id FROM classifiers")}

    # examples --------------------------------------------------------------
    def add_examples(
        self, db: sqlite3.Connection, classifier_id: str, rows: Sequence[tuple[str | None, str, str]]
    ) -> None:
        """Adds (class_name or None, sha256, source) rows to a classifier's manifest."""
        db.executemany(
            "INSERT INTO examples (classifier_id, class_name, sha256, source) VALUES (?,?,?,?)",
            [(classifier_id, c, sha, src) for c, sha, src in rows],
        )

    def examples(self, classifier_id: str, up_to: int | None = None) -> list[ExampleRow]:
        """The manifest, in the order it was added (up to an example id when given), curated-out rows included."""
        with self.transaction(write=False) as db:
            rows = db.execute(
                f"SELECT {EXAMPLE_COLUMNS} FROM examples"
                " WHERE classifier_id = ? AND example_id <= ? ORDER BY example_id",
                (classifier_id, up_to if up_to is not None else 2**62),
            ).fetchall()
        return [ExampleRow(*row) for row in rows]

    def last_example_id(self, classifier_id: str, db: sqlite3.Connection | None = None) -> int:
        query = "SELECT COALESCE(MAX(example_id), 0) FROM examples WHERE classifier_id = ?"
        if db is not None:
            return db.execute(query, (classifier_id,)).fetchone()[0]
        with self.transaction(write=False) as db:
            return db.execute(query, (classifier_id,)).fetchone()[0]

    def class_names(self, classifier_id: str, db: sqlite3.Connection | None = None) -> list[str]:
        """Classes of a classifier in the order they were first added (of the examples it trains on now)."""
        query = (
            "SELECT class_name FROM examples WHERE classifier_id = ? AND class_name IS NOT NULL AND removed_by IS NULL"
            " GROUP BY class_name ORDER BY MIN(example_id)"
        )
        if db is not None:
            return [row[0] for row in db.execute(query, (classifier_id,))]
        with self.transaction(write=False) as db:
            return [row[0] for row in db.execute(query, (classifier_id,))]

    # versions --------------------------------------------------------------
    def insert_version(self, db: sqlite3.Connection, version: VersionRecord) -> None:
        db.execute(
            f"INSERT INTO versions ({VERSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
            (
                version.classifier_id,
                version.version,
                version.created,
                json.dumps(version.classes),
                version.last_example_id,
                json.dumps(version.metrics),
                version.head_file,
                version.last_curation_id,
            ),
        )

    def next_version(self, classifier_id: str, db: sqlite3.Connection) -> int:
        """The number the classifier's next trained version gets (inside the transaction that inserts it)."""
        query = "SELECT COALESCE(MAX(version), 0) FROM versions WHERE classifier_id = ?"
        return 1 + db.execute(query, (classifier_id,)).fetchone()[0]

    def versions(self, classifier_id: str) -> list[VersionRecord]:
        with self.transaction(write=False) as db:
            rows = db.execute(
                f"SELECT {VERSION_COLUMNS} FROM versions WHERE classifier_id = ? ORDER BY version", (classifier_id,)
            ).fetchall()
        return [version_record(row) for row in rows]

    def version(self, classifier_id: str, version: int, db: sqlite3.Connection | None = None) -> VersionRecord:
        if db is None:
            with self.transaction(write=False) as db:
                return self.version(classifier_id, version, db)
        row = db.execute(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE classifier_id = ? AND version = ?", (classifier_id, version)
        ).fetchone()
        if row is None:
            raise ClassifierNotFound(f"Version {version} of classifier {classifier_id!r} not found")
        return version_record(row)

    def head_path(self, classifier_id: str, version: int) -> Path:
        return self.head_dir / classifier_id / f"v{version}.npz"

    def out_of_fold_path(self, classifier_id: str, version: int) -> Path:
        """Where a version's out-of-fold scores (`training.OutOfFold`) are stored."""
        return self.head_dir / classifier_id / f"v{version}.oof.npz"

    # whole-store reads (doctor) -------------------------------------------
    def all_examples(self, db: sqlite3.Connection) -> list[tuple[str, ExampleRow]]:
        """Every example of every classifier as (classifier_id, row)."""
        rows = db.execute(f"SELECT classifier_id, {EXAMPLE_COLUMNS} FROM examples ORDER BY example_id")
        return [(row[0], ExampleRow(*row[1:])) for row in rows]

    def all_versions(self, db: sqlite3.Connection) -> list[VersionRecord]:
        """Every version of every classifier, by classifier and version."""
        rows = db.execute(f"SELECT {VERSION_COLUMNS} FROM versions ORDER BY classifier_id, version").fetchall()
        return [version_record(row) for row in rows]

    def blob_referenced(self, db: sqlite3.Connection, sha256: str) -> bool:
        """Whether any example (of any classifier) uses this image."""
        return db.execute("SELECT 1 FROM examples WHERE sha256 = ? LIMIT 1", (sha256,)).fetchone() is not None

    def version_exists(self, db: sqlite3.Connection, classifier_id: str, version: int) -> bool:
        query = "SELECT 1 FROM versions WHERE classifier_id = ? AND version = ?"
        return db.execute(query, (classifier_id, version)).fetchone() is not None

    # customer labels -------------------------------------------------------
    def label_customer(self, customer_id: str, classifier_id: str) -> None:
        """Records that a classifier holds data sent for `customer_id`."""
        with self.transaction() as db:
            self.classifier(classifier_id, db)
            db.execute("INSERT OR IGNORE INTO customer_data VALUES (?, ?)", (customer_id, classifier_id))

    def customer_classifiers(self, customer_id: str) -> list[str]:
        """The classifiers holding data labelled with `customer_id`."""
        with self.transaction(write=False) as db:
            rows = db.execute(
                "SELECT classifier_id FROM customer_data WHERE customer_id = ? ORDER BY classifier_id", (customer_id,)
            ).fetchall()
        return [row[0] for row in rows]

    # deletion --------------------------------------------------------------
    def delete_classifier(self, classifier_id: str) -> list[str]:
        """Deletes a classifier's rows and marks its files in one commit, then removes the files; returns removed shas.

        The commit decides: a crash before it leaves the classifier whole, a crash after it leaves marks
        that `finish_removals` (the start-up sweep, `doctor --repair`) completes.
        """
        with self.transaction() as db:
            self.classifier(classifier_id, db)
            shas = [
                row[0]
                for row in db.execute(
                    "SELECT DISTINCT sha256 FROM examples WHERE classifier_id = ? ORDER BY sha256", (classifier_id,)
                )
            ]
            db.execute("DELETE FROM classifiers WHERE classifier_id = ?", (classifier_id,))
            orphans = [sha for sha in shas if not self.blob_referenced(db, sha)]  # another classifier's stay unmarked
            marks = [(REMOVE_BLOB, sha) for sha in orphans] + [(REMOVE_HEADS, classifier_id)]
            db.executemany("INSERT OR IGNORE INTO pending_removals (kind, name) VALUES (?, ?)", marks)
        try:
            outcomes = self.finish_removals()
        except (
            StoreUnavailable,
            sqlite3.OperationalError,
        ):  # locked or full: the delete stands, the next sweep removes the files
            log.exception("deleted %s; its files are left for the next sweep", classifier_id)
            return []
        return [o.removal.name for o in outcomes if o.removed and o.removal.kind == REMOVE_BLOB]

    def pending_removals(self, db: sqlite3.Connection | None = None) -> list[PendingRemoval]:
        """The removals committed deletes have not finished (a crash interrupted them, or one is under way)."""
        if db is None:
            with self.transaction(write=False) as db:
                return self.pending_removals(db)
        rows = db.execute("SELECT kind, name FROM pending_removals ORDER BY kind, name").fetchall()
        return [PendingRemoval(kind, name) for kind, name in rows]

    def finish_removals(self) -> list[RemovalOutcome]:
        """Removes every marked file that nothing uses, checked again under the write lock, then clears the marks.

        Under the lock a create storing the same image waits, and one that committed since the mark keeps
        its blob. A crash here rolls the clearing back, so the next sweep repeats it (a missing file is done).
        """
        outcomes: list[RemovalOutcome] = []
        if not self.pending_removals():
            return outcomes  # read without the write lock: a start-up never waits behind a create for nothing
        with self.transaction() as db:
            for removal in self.pending_removals(db):
                removed = self._finish_removal(db, removal)
                if removed is not None:
                    outcomes.append(RemovalOutcome(removal, removed))
                    db.execute("DELETE FROM pending_removals WHERE kind = ? AND name = ?", (removal.kind, removal.name))
        return outcomes

    def _finish_removal(self, db: sqlite3.Connection, removal: PendingRemoval) -> bool | None:
        """Removes one marked blob or heads folder unless used again (False); None if the disk refused (kept marked)."""
        try:
            if removal.kind == REMOVE_BLOB:
                if self.blob_referenced(db, removal.name):
                    return False
                self.blob_path(removal.name).unlink(missing_ok=True)
                return True
            if db.execute("SELECT 1 FROM classifiers WHERE classifier_id = ?", (removal.name,)).fetchone():
                return False  # the id is in use again: its folder is that classifier's now
            self._remove_heads_folder(removal.name)
            return True
        except OSError:
            log.exception("could not remove %s %s; the next sweep tries again", removal.kind, removal.name)
            return None

    def _remove_heads_folder(self, classifier_id: str) -> None:
        """Removes a deleted classifier's heads folder: heads, out-of-fold scores, cached exports, temporary files."""
        folder = self.head_dir / classifier_id
        if not folder.is_dir():
            return
        for path in sorted(folder.iterdir()):
            path.unlink(missing_ok=True)
        folder.rmdir()
