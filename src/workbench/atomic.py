"""Atomic, durable file writes: readers see the old file or the whole new one, never a part, whatever crashes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"  # atomic_write_bytes' temporary files; one left behind means its writer died


def fsync_dir(folder: Path) -> None:
    """Flushes a folder's entries (a rename into it, a new sub-folder) so they survive a power cut, not only a kill."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_durable_dirs(folder: Path) -> None:
    """Creates a folder and its missing parents, syncing each parent that gained an entry."""
    if folder.is_dir():
        return
    make_durable_dirs(folder.parent)
    try:
        folder.mkdir()
    except FileExistsError:
        return  # another writer made it (and syncs its parent)
    fsync_dir(folder.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes a file so readers see either the old content or the whole new one, and syncs it and its folder.

    Durable on return: a commit that refers to the file may follow (the store's rule: files first, then the row).
    """
    make_durable_dirs(path.parent)
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
