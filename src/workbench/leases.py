"""Who trains a classifier: a lease (owner token + expiry) in the store, renewed while the owner lives.

A training is claimed by writing `job_owner` and `lease_expires` in one write transaction, only if
the current holder is gone: no holder, its lease expired, or (fast path, same host) its process is
dead or a zombie. SQLite's write lock makes the check and the write one compare-and-set, so two
surviving processes never both adopt the same orphan.
"""

from __future__ import annotations

import sqlite3
import time
import uuid

from . import owners
from .vocabulary import BUSY_STATUSES



def new_token() -> str:
    """An owner token unique to one runner: `host:pid:start:random` (`owners` can judge it)."""
    return f"{owners.this_process()}:{uuid.uuid4().hex[:8]}"


def owner_gone(job_owner: str) -> bool:
    """Whether the owner is a process of this host that is dead (another host's owner is never judged here)."""
    return not job_owner.startswith(owners.this_process() + ":") and owners.why_dead(job_owner) is not None


def claimable(job_owner: str | None, lease_expires: float | None, token: str, now: float) -> bool:
    """Whether `token` may take over a training held by `job_owner` until `lease_expires`."""
    if job_owner is None or job_owner == token:
        return True
    if lease_expires is not None and lease_expires < now:
        return True
    return owner_gone(job_owner)


def claim(db: sqlite3.Connection, classifier_id: str, token: str, lease_s: float) -> bool:
    """Takes the lease inside the caller's write transaction if the holder is gone; whether it did."""
    row = db.execute(
        "SELECT job_owner, lease_expires FROM classifiers WHERE classifier_id = ?", (classifier_id,)
    ).fetchone()
    now = time.time()
    if row is None or not claimable(row[0], row[1], token, now):
        return False
    db.execute(
        "UPDATE classifiers SET job_owner = ?, lease_expires = ? WHERE classifier_id = ?",
        (token, now + lease_s, classifier_id),
    )
    return True


def renew(db: sqlite3.Connection, token: str, lease_s: float) -> int:
    """Extends every lease `token` holds; how many."""
    cursor = db.execute(
        "UPDATE classifiers SET lease_expires = ? WHERE job_owner = ?", (time.time() + lease_s, token)
    )
    return cursor.rowcount


def holds(db: sqlite3.Connection, classifier_id: str, token: str) -> bool:
    """Whether `token` still holds the classifier's lease (another process may have adopted it)."""
    row = db.execute("SELECT job_owner FROM classifiers WHERE classifier_id = ?", (classifier_id,)).fetchone()
    return row is not None and row[0] == token


def orphans(db: sqlite3.Connection, token: str) -> list[str]:
    """Classifiers training with no live holder, oldest first."""
    rows = db.execute(
        "SELECT classifier_id, job_owner, lease_expires FROM classifiers"
        " WHERE status IN (?, ?) ORDER BY created, classifier_id",
        BUSY_STATUSES,
    ).fetchall()
    now = time.time()
    return [cid for cid, owner, expires in rows if claimable(owner, expires, token, now)]
