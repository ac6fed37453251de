"""Durable state: classifier records, versions, the examples manifest and image blobs (SQLite, atomic)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import (  # noqa: F401 (TEMP_PREFIX, atomic_write_bytes re-exported)
    FULL_ERRNOS,
    TEMP_PREFIX,
    atomic_write_bytes,
    disk_refuses_growth,
    make_durable_dirs,
    open_for_reading,
    private_database,
)
from ..core.errors import ClassifierNotFound, StoreUnavailable
from ..core.records import ClassifierRecord, ExampleRow, VersionRecord

log = logging.getLogger(__name__)
BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's lock before StoreUnavailable (503)
BUSY_TIMEOUT_ENV = "WORKBENCH_STORE_BUSY_TIMEOUT_S"
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_FULL_CODES = {sqlite3.SQLITE_FULL}
_DISK_CODES = {
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CANTOPEN,
}  # a side file that cannot be made or grown: often a full disk
READ_PROBE = (
    "SELECT 1 FROM sqlite_master LIMIT 1"  # a read transaction's first read: where a full disk stops a normal one
)
TABLES = frozenset({"classifiers", "examples", "versions", "customer_data", "pending_removals"})


def busy_timeout_s() -> float:
    """WORKBENCH_STORE_BUSY_TIMEOUT_S, else BUSY_TIMEOUT_S."""
    raw = os.environ.get(BUSY_TIMEOUT_ENV)
    if not raw:
        return BUSY_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{BUSY_TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{BUSY_TIMEOUT_ENV} must be at least 0, got {raw!r}")
    return value


def _full(reason: str) -> StoreUnavailable:
    return StoreUnavailable(f"The store's disk is full ({reason}); nothing was changed, free space and try again")


def full_disk(home: Path) -> StoreUnavailable | None:
    """StoreUnavailable naming the cause when no file in `home` can grow (a full disk), else None."""
    refused = disk_refuses_growth(home)
    return None if refused is None else _full(refused.strerror or str(refused))


def unavailable(exc: BaseException, home: Path | None = None) -> StoreUnavailable | None:
    """The StoreUnavailable an SQLite or OS error stands for (locked past the timeout, disk full), else None.

    SQLite says only "disk I/O error" when a side file (`-shm`, `-wal`) cannot grow; with `home`, a
    small write there tells whether the disk is full (ENOSPC, EDQUOT, EFBIG) or failing otherwise.
    """
    if isinstance(exc, StoreUnavailable):
        return exc
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            code &= 0xFF  # the primary code of an extended one
        if code in _BUSY_CODES or "database is locked" in str(exc):
            return StoreUnavailable("The store is locked by another process; nothing was changed, try again later")
        if code in _FULL_CODES or "disk is full" in str(exc):
            return _full("SQLite: database or disk is full")
        if code in _DISK_CODES or "disk I/O error" in str(exc):
            refused = disk_refuses_growth(home) if home is not None else None
            if refused is not None:
                return _full(f"{refused.strerror or refused}; SQLite: {exc}")
            if code == sqlite3.SQLITE_IOERR:
                return StoreUnavailable(
                    f"The store's disk refused a write ({exc}): full or failing; nothing was changed"
                )
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return _full(os.strerror(exc.errno))
    return None


SCHEMA = """
CREATE TABLE IF NOT EXISTS classifiers (
    classifier_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    retrained TEXT,
    explanation TEXT,
    serving_version INTEGER,
    job_owner TEXT,               -- the runner training it (leases.py): host:pid:random
    lease_expires REAL,           -- epoch seconds; past it, a watching process may adopt the training
    pinned_version INTEGER        -- promote's pin (promotion.py): NULL, or equal to serving_version
);
CREATE TABLE IF NOT EXISTS examples (
    example_id INTEGER PRIMARY KEY AUTOINCREMENT,
    classifier_id TEXT NOT NULL REFERENCES classifiers(classifier_id) ON DELETE CASCADE,
    class_name TEXT,              -- NULL for negative examples
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,         -- e.g. "beagle.zip/foo.jpg"
    removed_by INTEGER,           -- the curation that removed (or relabelled) it; NULL while it trains (curation.py)
    replaces INTEGER              -- the example it relabels (same image, new label); NULL for an added one
);
CREATE INDEX IF NOT EXISTS examples_by_classifier ON examples(classifier_id, example_id);
CREATE INDEX IF NOT EXISTS examples_by_sha256 ON examples(sha256);  -- "does any example still use this blob?"
CREATE TABLE IF NOT EXISTS versions (
    classifier_id TEXT NOT NULL REFERENCES classifiers(classifier_id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    created TEXT NOT NULL,
    classes TEXT NOT NULL,        -- JSON list of class names, in head order
    last_example_id INTEGER NOT NULL,
    metrics TEXT NOT NULL,        -- JSON of cross-validated metrics
    head_file TEXT NOT NULL,
    last_curation_id INTEGER NOT NULL DEFAULT 0,  -- with last_example_id: the examples it trained on (curation.py)
    PRIMARY KEY (classifier_id, version)
);
CREATE TABLE IF NOT EXISTS curations (  -- each removal or relabelling of examples, one commit each (curation.py)
    curation_id INTEGER PRIMARY KEY AUTOINCREMENT,
    classifier_id TEXT NOT NULL REFERENCES classifiers(classifier_id) ON DELETE CASCADE,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS customer_data (  -- X-Watson-Metadata: customer_id labels, for DELETE /v3/user_data
    customer_id TEXT NOT NULL,
    classifier_id TEXT NOT NULL REFERENCES classifiers(classifier_id) ON DELETE CASCADE,
    PRIMARY KEY (customer_id, classifier_id)
);
CREATE TABLE IF NOT EXISTS pending_removals (  -- files a committed delete has still to remove (a crash may stop it)
    kind TEXT NOT NULL,           -- "blob": name is a sha256, removed only while no example uses it;
                                  -- "heads": name is a classifier id
    name TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
"""
REMOVE_BLOB = "blob"  # pending_removals.kind: an image blob, by sha256
REMOVE_HEADS = (
    "heads"  # pending_removals.kind: a deleted classifier's heads folder (heads, out-of-fold scores, exports)
)
ADDED_COLUMNS = {  # columns newer than some existing homes: (table, column) -> declaration
    ("classifiers", "lease_expires"): "REAL",
    ("examples", "removed_by"): "INTEGER",
    ("examples", "replaces"): "INTEGER",
    ("versions", "last_curation_id"): "INTEGER NOT NULL DEFAULT 0",
    ("classifiers", "pinned_version"): "INTEGER",
}
EXAMPLE_COLUMNS = "example_id, class_name, sha256, source, removed_by, replaces"
VERSION_COLUMNS = "classifier_id, version, created, classes, last_example_id, metrics, head_file, last_curation_id"


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


class Store:
    """The home directory: `workbench.db`, `blobs/` (images by sha256) and `heads/`.

    Blob and heads files are written (and synced) only inside a write `transaction()`, before the
    commit that refers to them: `doctor` relies on it to tell files a crashed writer left from files a
    live one is writing. Files are removed only after the commit that stops referring to them
    (`pending_removals`), so a crash at any point loses no image a classifier still uses.
    """

    def __init__(self, home: Path, busy_timeout: float | None = None, read_only: bool = False) -> None:
        self.home = home
        self.blob_dir = home / "blobs"
        self.head_dir = home / "heads"
        self.busy_timeout = busy_timeout_s() if busy_timeout is None else busy_timeout
        self.read_only = read_only  # reads only, writing nothing in the home (Spark executors on a read-only home)
        if read_only:
            return
        private_database(home / "workbench.db")  # the home too: 0700, whatever the umask
        for folder in (self.blob_dir, self.head_dir):
            make_durable_dirs(folder, private=True)
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            self._migrate(db)
        except sqlite3.OperationalError as exc:  # a full disk (or a lock) at open: a current store still reads
            mapped = unavailable(exc, home)
            if mapped is None:
                raise
            if not self._current():
                raise mapped from exc
            log.warning("opened %s for reading; writes wait: %s", home, mapped.message)
        finally:
            db.close()

    def _current(self) -> bool:
        """Whether the store has every table and column (read without a lock, and without disk space)."""
        try:
            with self.transaction(write=False) as db:
                tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                return TABLES <= tables and not self._missing_columns(db)
        except (StoreUnavailable, sqlite3.Error):
            return False

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Adds the columns a home made by an older version lacks.

        Read first, without a lock, so opening a current home never waits behind another process's
        write; only a missing column takes the write lock (and is checked again under it).
        """
        if not Store._missing_columns(db):
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            for table, column, declaration in Store._missing_columns(db):
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @staticmethod
    def _missing_columns(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
        missing = []
        for (table, column), declaration in ADDED_COLUMNS.items():
            if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
                missing.append((table, column, declaration))
        return missing

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: commits on success, rolls back on any error.

        Reads (`write=False`) see one consistent snapshot and never wait for a writer (WAL); on a full
        disk they go on through a connection that needs no space (`open_for_reading`). A write that
        cannot take the lock within `busy_timeout` seconds, or that the disk refuses, raises
        StoreUnavailable (503) with nothing changed.
        """
        try:
            db = self._begin() if write else self._begin_read()
        except sqlite3.OperationalError as exc:  # the write lock not taken in time, or a disk SQLite cannot use
            mapped = unavailable(exc, self.home)
            if mapped is None:
                raise
            raise mapped from exc
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback failed; SQLite rolls back when the connection closes")
            mapped = unavailable(exc, self.home)
            if mapped is not None and mapped is not exc:
                raise mapped from exc
            raise
        finally:
            db.close()

    def _begin(self, write: bool = True) -> sqlite3.Connection:
        """A connection inside `BEGIN IMMEDIATE` (the write lock, within the busy timeout) or `BEGIN` (a snapshot)."""
        db = self._connect()
        try:
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            if not write:
                db.execute(READ_PROBE).fetchall()  # takes the snapshot now: a failure shows here, not in the caller
            return db
        except BaseException:
            db.close()  # a BEGIN that timed out left no transaction; a failed read holds nothing
            raise

    def _begin_read(self) -> sqlite3.Connection:
        """A read transaction; on a disk too full for SQLite's side files, one needing no space (`open_for_reading`)."""
        try:
            return self._begin(write=False)
        except sqlite3.OperationalError as exc:
            try:
                db = open_for_reading(self.home / "workbench.db", self.busy_timeout)
            except (OSError, sqlite3.Error):
                raise exc from None
            try:
                db.execute("BEGIN")
                db.execute(READ_PROBE).fetchall()
            except sqlite3.Error:
                db.close()
                raise exc from None
            return db

    def _connect(self) -> sqlite3.Connection:
        path = self.home / "workbench.db"
        if not self.read_only:
            return sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None)
        # read-only: a live writer's WAL is read through its index without writing it; with no WAL (every
        # writer closed) the file is read as it stands, creating no side file in the home
        wal = path.with_name(path.name + "-wal").exists()
        uri = f"{path.absolute().as_uri()}?{'mode=ro&readonly_shm=1' if wal else 'mode=ro&immutable=1'}"
        return sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, isolation_level=None)

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
        return [self._version(row) for row in rows]

    def version(self, classifier_id: str, version: int, db: sqlite3.Connection | None = None) -> VersionRecord:
        if db is None:
            with self.transaction(write=False) as db:
                return self.version(classifier_id, version, db)
        row = db.execute(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE classifier_id = ? AND version = ?", (classifier_id, version)
        ).fetchone()
        if row is None:
            raise ClassifierNotFound(f"Version {version} of classifier {classifier_id!r} not found")
        return self._version(row)

    @staticmethod
    def _version(row: tuple) -> VersionRecord:
        cid, version, created, classes, last_id, metrics, head_file, last_curation_id = row
        return VersionRecord(
            cid, version, created, json.loads(classes), last_id, json.loads(metrics), head_file, last_curation_id
        )

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
        return [self._version(row) for row in rows]

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
