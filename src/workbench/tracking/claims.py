"""The logging claim: one process at a time mirrors a classifier into MLflow (an flock per classifier).

Without it two servers on one home both read MLflow, both found a new version missing and both
logged it (a race left 25 runs and 25 registered versions for 15 versions). An flock holds only
on one host: with the store on PostgreSQL (servers on many hosts) the claim is a PostgreSQL
advisory lock instead (`store.postgres.Postgres.try_lock`), which the server also drops when its
holder dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import TrackingError
from ..store.database import Store

CLAIMS_DIR = "tracking-claims"  # in the home: one lock file per classifier, held while a process mirrors it
CLAIM_WAIT_S = 60.0  # how long a sync waits for another process's claim before leaving the classifier to it
CLAIM_POLL_S = 0.1  # how often a waiting sync tries the claim again


class LoggedElsewhere(TrackingError):
    """Another live process is logging some of a classifier's versions; this one leaves them to it."""


def _claim_name(classifier_id: str) -> str:
    """The claim file's name: the id itself when it is a plain file name, else its hash (never a path)."""
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}", classifier_id):
        return f"{classifier_id}.lock"
    return f"{hashlib.sha256(classifier_id.encode()).hexdigest()}.lock"


def _elsewhere(classifier_id: str, where: object, wait_s: float) -> LoggedElsewhere:
    return LoggedElsewhere(
        f"{classifier_id} is being logged to MLflow by another process "
        f"(its claim in {where} was held over {wait_s:g} s)"
    )


class Claim:
    """A held logging claim; `remove` removes its file (the classifier is gone). A PostgreSQL claim has no file."""

    def __init__(self, path: Path | None, fd: int | None) -> None:
        self.path = path
        self.fd = fd
        self.removed = False

    def remove(self) -> None:
        """Unlinks the claim file now, while this process holds its flock (never raises).

        Safe against other processes: one that opened the file before the unlink and locks it
        after sees that the path no longer names its file (`_still_named`) and opens the path afresh.
        """
        if self.removed or self.path is None:
            return
        try:
            os.unlink(self.path)
        except OSError:  # already gone, or a read-only home: a leftover file costs nothing but a name
            return
        self.removed = True


def _open(folder: Path, path: Path, classifier_id: str) -> int:
    try:
        folder.mkdir(exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only home: a claim file the writers made can still be locked
        try:
            return os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise TrackingError(f"cannot take the MLflow logging claim of {classifier_id} in {folder}: {exc}") from exc


def _still_named(path: Path, fd: int) -> bool:
    """Whether `path` still names the file open as `fd` (a holder may have removed it before we got its lock)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _lock(fd: int, classifier_id: str, folder: Path, deadline: float, wait_s: float) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise _elsewhere(classifier_id, folder, wait_s) from None
            time.sleep(CLAIM_POLL_S)


@contextmanager
def logging_claim(store: Store, classifier_id: str, wait_s: float = CLAIM_WAIT_S) -> Iterator[Claim]:
    """Held while this process mirrors one classifier into MLflow: no other process (or Tracker) does it meanwhile.

    Raises LoggedElsewhere when another holder keeps it past `wait_s`; the next sync looks again.
    """
    if store.postgres is None:
        with file_claim(store.home, classifier_id, wait_s) as claim:
            yield claim
        return
    with store.postgres.try_lock(f"tracking:{classifier_id}", wait_s, CLAIM_POLL_S) as taken:
        if not taken:
            raise _elsewhere(classifier_id, "the PostgreSQL store", wait_s)
        yield Claim(None, None)


@contextmanager
def file_claim(home: Path, classifier_id: str, wait_s: float = CLAIM_WAIT_S) -> Iterator[Claim]:
    """The claim on one host: an flock on `<home>/tracking-claims/<id>.lock`.

    The flock is the lease: the kernel drops it when its holder dies, so a crash never leaves the
    classifier stuck. Raises LoggedElsewhere when another holder keeps it past `wait_s`; the next
    sync looks again. The holder of a deleted classifier whose history is logged removes the file
    (`Claim.remove`, under the lock); so a lock is taken on the file the path names when it is
    granted, or the path is opened again.
    """
    folder = home / CLAIMS_DIR
    path = folder / _claim_name(classifier_id)
    deadline = time.monotonic() + wait_s
    while True:
        fd = _open(folder, path, classifier_id)
        try:
            _lock(fd, classifier_id, folder, deadline, wait_s)
            if _still_named(path, fd):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # locked a removed file: its holder finished with the classifier; the path is taken afresh
    try:
        yield Claim(path, fd)
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


def remove_leftovers(home: Path, classifier_ids: set[str]) -> list[str]:
    """Removes claim files of classifiers not in `classifier_ids` (left by deletes before claims were removed).

    Each is unlinked only under its flock, taken without waiting (one held is in use: kept), so a
    process that opened it sees the removal (`_still_named`) and opens the path afresh. Returns the
    names removed; never raises (a read-only home keeps its files).
    """
    folder = home / CLAIMS_DIR
    keep = {_claim_name(classifier_id) for classifier_id in classifier_ids}
    removed: list[str] = []
    try:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.name.endswith(".lock"))
    except OSError:
        return removed
    for name in names:
        if name in keep:
            continue
        try:
            fd = os.open(folder / name, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _still_named(folder / name, fd):
                os.unlink(folder / name)
                removed.append(name)
        except OSError:  # held by a live process (BlockingIOError), or not ours to remove
            pass
        finally:
            os.close(fd)
    return removed
