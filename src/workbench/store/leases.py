"""Who trains a classifier: a lease (owner token + expiry) in the store, renewed while the owner lives.

A training is claimed by writing `job_owner` and `lease_expires` in one write transaction, only if
it is still training and its holder is gone. On this host the process table decides: the holder's
process is dead, a zombie or a reused pid, or (in this process) no runner holds its token any more.
An expired lease alone never counts here: a renewer starved by a busy process must not let a second
runner train the same request. Only a holder on another host, which cannot be judged, is gone once its
lease expires. SQLite's write lock makes the check and the write one compare-and-set, so two surviving
processes never both adopt the same orphan.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid

from ..core.vocabulary import BUSY_STATUSES
from . import owners

_LIVE: set[str] = set()  # tokens of the runners alive in this process
_LIVE_LOCK = threading.Lock()


def new_token() -> str:
    """An owner token unique to one runner: `host:pid:start:random` (`owners` can judge it)."""
    return f"{owners.this_process()}:{uuid.uuid4().hex[:8]}"


def mark_alive(token: str) -> None:
    """Marks a runner of this process alive: its trainings are never adopted while it is."""
    with _LIVE_LOCK:
        _LIVE.add(token)


def mark_gone(token: str) -> None:
    """Marks a runner of this process gone (it was garbage-collected)."""
    with _LIVE_LOCK:
        _LIVE.discard(token)


def owner_gone(job_owner: str) -> bool:
    """Whether the owner is dead: a process of this host that is gone, or a runner of this process that is."""
    if job_owner.startswith(owners.this_process() + ":"):
        with _LIVE_LOCK:
            return job_owner not in _LIVE
    return owners.why_dead(job_owner) is not None


def claimable(job_owner: str | None, lease_expires: float | None, token: str, now: float) -> bool:
    """Whether `token` may take over a training held by `job_owner` until `lease_expires`."""
    if job_owner is None or job_owner == token:
        return True
    if owners.on_this_host(job_owner):  # the process table knows; a late renewal proves nothing
        return owner_gone(job_owner)
    return lease_expires is not None and lease_expires < now


def claim(db: sqlite3.Connection, classifier_id: str, token: str, lease_s: float) -> bool:
    """Takes the lease inside the caller's write transaction if the holder is gone; whether it did."""
    row = db.execute(
        "SELECT status, job_owner, lease_expires FROM classifiers WHERE classifier_id = ?", (classifier_id,)
    ).fetchone()
    now = time.time()  # a settled classifier is never claimed: a sweep's list of orphans may be stale
    if row is None or row[0] not in BUSY_STATUSES or not claimable(row[1], row[2], token, now):
        return False
    db.execute(
        "UPDATE classifiers SET job_owner = ?, lease_expires = ? WHERE classifier_id = ?",
        (token, now + lease_s, classifier_id),
    )
    return True


def renew(db: sqlite3.Connection, token: str, lease_s: float) -> int:
    """Extends every lease `token` holds; how many."""
    cursor = db.execute("UPDATE classifiers SET lease_expires = ? WHERE job_owner = ?", (time.time() + lease_s, token))
    return cursor.rowcount


def orphans(db: sqlite3.Connection, token: str) -> list[str]:
    """Classifiers training with no live holder, oldest first."""
    rows = db.execute(
        "SELECT classifier_id, job_owner, lease_expires FROM classifiers"
        " WHERE status IN (?, ?) ORDER BY created, classifier_id",
        BUSY_STATUSES,
    ).fetchall()
    now = time.time()
    return [cid for cid, owner, expires in rows if claimable(owner, expires, token, now)]
