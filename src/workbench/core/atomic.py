"""Atomic, durable file writes: readers see the old file or the whole new one, never a part, whatever crashes."""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"  # atomic_write_bytes' temporary files; one left behind means its writer died
PRIVATE_DIR_MODE = 0o700  # the home's folders: only its owner lists or enters them
PRIVATE_FILE_MODE = 0o600  # the home's files (databases, blobs, heads): only its owner reads them
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")  # made by SQLite with the database file's mode
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})  # EFBIG: a file size limit (RLIMIT_FSIZE) reached
GROWTH_PROBE_BYTES = 64 * 1024  # what `disk_refuses_growth` tries to write


def fsync_dir(folder: Path) -> None:
    """Flushes a folder's entries (a rename into it, a new sub-folder) so they survive a power cut, not only a kill."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_durable_dirs(folder: Path, private: bool = False) -> None:
    """Creates a folder and its missing parents, syncing each parent that gained an entry.

    `private`: the folders it creates are 0700 whatever the umask (the store's home and its folders).
    """
    if folder.is_dir():
        return
    make_durable_dirs(folder.parent, private)
    try:
        folder.mkdir()
    except FileExistsError:
        return  # another writer made it (and syncs its parent)
    if private:
        os.chmod(folder, PRIVATE_DIR_MODE)  # mkdir's mode is cut by the umask; chmod is not
    fsync_dir(folder.parent)


def private_file(path: Path) -> None:
    """Creates `path` empty with mode 0600 if missing; an existing one of ours loses group and other access.

    For files another library creates (SQLite databases): made first, they get no umask-given mode.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except PermissionError:
        if path.exists():
            return  # not ours to change (a read-only home): SQLite opens it as it can
        raise
    try:
        info = os.fstat(fd)
        if info.st_uid == os.geteuid() and info.st_mode & 0o077:
            os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, private: bool = False) -> None:
    """Writes a file so readers see either the old content or the whole new one, and syncs it and its folder.

    Durable on return: a commit that refers to the file may follow (the store's rule: files first, then the row).
    The file is 0600 (mkstemp's mode); `private` makes the folders it creates 0700 too.
    """
    make_durable_dirs(path.parent, private)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def private_database(path: Path) -> None:
    """Makes an SQLite database file (and any side files it has) 0600 before SQLite opens it.

    SQLite gives its -wal, -shm and -journal files the database file's mode, whatever the umask.
    """
    make_durable_dirs(path.parent, private=True)
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            try:
                private_file(side)
            except OSError:  # gone meanwhile (the last connection closed), or not ours
                pass


def disk_refuses_growth(folder: Path) -> OSError | None:
    """The error a new file in `folder` meets when it grows (ENOSPC, EDQUOT, or EFBIG at a file size limit), else None.

    Tells a full disk apart from other I/O errors where SQLite reports only "disk I/O error": it writes
    GROWTH_PROBE_BYTES to a temporary file (TEMP_PREFIX, so a sweep removes one a kill leaves) and removes it.
    """
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX)
    except OSError as exc:
        return exc if exc.errno in FULL_ERRNOS else None
    try:
        written = os.write(fd, bytes(GROWTH_PROBE_BYTES))
        if written < GROWTH_PROBE_BYTES:  # a short write: the space ran out part-way
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError as exc:
        return exc if exc.errno in FULL_ERRNOS else None
    finally:
        os.close(fd)
        Path(name).unlink(missing_ok=True)
    return None


def open_for_reading(path: Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection to an SQLite WAL database that needs no free disk space.

    A normal connection creates and grows the `-shm` file (the WAL index), which a full disk refuses
    ("disk I/O error") once the last connection has closed and removed it. This one opens `-shm`
    read-only (SQLite's `readonly_shm`) and, when no writer keeps that index, builds it in its own
    memory from the `-wal` file: it sees every committed write. The empty `-shm` it needs takes no space.
    """
    private_file(path.with_name(path.name + "-shm"))
    uri = f"{path.absolute().as_uri()}?mode=ro&readonly_shm=1"
    return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
