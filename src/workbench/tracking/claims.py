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


@contextmanager
def logging_claim(store: Store, classifier_id: str, wait_s: float = CLAIM_WAIT_S) -> Iterator[None]:
    """Held while this process mirrors one classifier into MLflow: no other process (or Tracker) does it meanwhile.

    Raises LoggedElsewhere when another holder keeps it past `wait_s`; the next sync looks again.
    """
    if store.postgres is None:
        with _file_claim(store.home, classifier_id, wait_s):
            yield
        return
    with store.postgres.try_lock(f"tracking:{classifier_id}", wait_s, CLAIM_POLL_S) as taken:
        if not taken:
            raise _elsewhere(classifier_id, "the PostgreSQL store", wait_s)
        yield


@contextmanager
def _file_claim(home: Path, classifier_id: str, wait_s: float) -> Iterator[None]:
    """The claim on one host: an flock on `<home>/tracking-claims/<id>.lock`.

    The flock is the lease: the kernel drops it when its holder dies, so a crash never leaves the
    classifier stuck.
    """
    folder = home / CLAIMS_DIR
    path = folder / _claim_name(classifier_id)
    try:
        folder.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only home: a claim file the writers made can still be locked
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise TrackingError(f"cannot take the MLflow logging claim of {classifier_id} in {folder}: {exc}") from exc
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _elsewhere(classifier_id, folder, wait_s) from None
                time.sleep(CLAIM_POLL_S)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the flock
