"""Connections to `workbench.db`: opening (schema, migration), transactions, and reads that go on on a full disk.

`Database` is the part of `Store` that knows SQLite's locking and WAL, not the tables' meaning: a
write waits for the lock up to the busy timeout, a read never waits for a writer, and what SQLite or
the disk refuses becomes `StoreUnavailable` (`faults`), with nothing changed. With a `postgresql://`
URI the same transactions go to PostgreSQL (`postgres`), for servers on many hosts.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from ..core.atomic import make_durable_dirs, open_for_reading, private_database
from ..core.errors import StoreUnavailable
from .faults import busy_timeout_s, unavailable
from .postgres import Postgres
from .schema import SCHEMA, TABLES, migrate, missing_columns

log = logging.getLogger(__name__)
READ_PROBE = (
    "SELECT 1 FROM sqlite_master LIMIT 1"  # a read transaction's first read: where a full disk stops a normal one
)


class Database:
    """`workbench.db` in a home: made private and current on open, then used one transaction at a time."""

    def __init__(
        self,
        home: Path,
        busy_timeout: float | None = None,
        read_only: bool = False,
        folders: Iterable[Path] = (),
        uri: str | None = None,
    ) -> None:
        """Opens the home's database (or the PostgreSQL one at `uri`), first making it and `folders`
        (private, durable) unless `read_only`."""
        self.home = home
        self.busy_timeout = busy_timeout_s() if busy_timeout is None else busy_timeout
        self.read_only = read_only  # reads only, writing nothing in the home (Spark executors on a read-only home)
        self.postgres = Postgres(uri, self.busy_timeout) if uri is not None else None
        if read_only:
            return
        if self.postgres is not None:
            for folder in (home, *folders):
                make_durable_dirs(folder, private=True)
            self.postgres.create_schema()
            return
        private_database(home / "workbench.db")  # the home too: 0700, whatever the umask
        for folder in folders:
            make_durable_dirs(folder, private=True)
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            migrate(db)
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
                return TABLES <= tables and not missing_columns(db)
        except (StoreUnavailable, sqlite3.Error):
            return False

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: commits on success, rolls back on any error.

        Reads (`write=False`) see one consistent snapshot and never wait for a writer (WAL); on a full
        disk they go on through a connection that needs no space (`open_for_reading`). A write that
        cannot take the lock within `busy_timeout` seconds, or that the disk refuses, raises
        StoreUnavailable (503) with nothing changed.
        """
        if self.postgres is not None:
            with self.postgres.transaction(write) as pg:
                yield cast(sqlite3.Connection, pg)  # answers as one for the store's SQL (postgres.PgConnection)
            return
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
