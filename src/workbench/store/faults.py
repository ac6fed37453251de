"""Which SQLite and OS errors mean the store is unavailable (locked past the busy timeout, disk full): 503, not 500.

A write that waits too long for another process's lock, or that a full disk refuses, becomes
`StoreUnavailable` with nothing changed; the busy timeout is how long a write waits for the lock.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..core.atomic import FULL_ERRNOS, disk_refuses_growth
from ..core.errors import StoreUnavailable

BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's lock before StoreUnavailable (503)
BUSY_TIMEOUT_ENV = "WORKBENCH_STORE_BUSY_TIMEOUT_S"
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_FULL_CODES = {sqlite3.SQLITE_FULL}
_DISK_CODES = {
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CANTOPEN,
}  # a side file that cannot be made or grown: often a full disk


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
