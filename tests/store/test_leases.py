"""Fast unit tests of store.leases and store.owners: who may take over a training, on real SQLite.

The rule under test (issue 20's lease defect): on this host only the process table decides, so a
live trainer whose renewals starved is never adopted; a holder on another host is gone once its
lease lapses.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from workbench.store import leases, owners

LEASE_S = 30.0
OTHER_HOST = "build-agent-7:4242:99:abcd1234"


@pytest.fixture
def db() -> sqlite3.Connection:
    """The columns leases reads and writes, in a real SQLite database."""
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute(
        "CREATE TABLE classifiers (classifier_id TEXT PRIMARY KEY, status TEXT, created TEXT,"
        " job_owner TEXT, lease_expires REAL)"
    )
    return connection


def add(db: sqlite3.Connection, cid: str, status: str, owner: str | None, expires: float | None) -> None:
    db.execute("INSERT INTO classifiers VALUES (?, ?, ?, ?, ?)", (cid, status, cid, owner, expires))


def dead_pid_token() -> str:
    """The token of a process of this host that has exited and been reaped."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return f"{owners.HOST}:{child.stdout.strip()}:{owners.NO_START}:deadbeef"


def test_a_live_runner_of_this_process_is_never_claimable_even_with_a_lapsed_lease() -> None:
    holder = leases.new_token()
    leases.mark_alive(holder)
    try:
        assert not leases.claimable(holder, time.time() - 3600, "someone-else", time.time())
    finally:
        leases.mark_gone(holder)
    assert leases.claimable(holder, time.time() + 3600, "someone-else", time.time())  # gone: take it at once


def test_a_dead_process_of_this_host_is_claimable_before_its_lease_lapses() -> None:
    token = dead_pid_token()
    assert owners.why_dead(token) is not None
    assert leases.claimable(token, time.time() + 3600, "me", time.time())


def test_a_live_process_of_this_host_is_not_claimable() -> None:
    parent = f"{owners.HOST}:{os.getppid()}:{owners.process_start(os.getppid())}"
    assert owners.why_dead(parent) is None
    assert not leases.claimable(parent, time.time() - 3600, "me", time.time())


def test_another_host_is_claimable_only_once_its_lease_lapsed() -> None:
    now = time.time()
    assert not leases.claimable(OTHER_HOST, now + 10, "me", now)
    assert leases.claimable(OTHER_HOST, now - 10, "me", now)
    assert not leases.claimable(OTHER_HOST, None, "me", now)
    assert owners.why_dead(OTHER_HOST) is None  # cannot be judged from here


def test_no_holder_or_the_same_token_is_claimable() -> None:
    assert leases.claimable(None, None, "me", time.time())
    assert leases.claimable("me", time.time() - 1, "me", time.time())


def test_claim_takes_an_orphan_once_and_never_a_settled_classifier(db: sqlite3.Connection) -> None:
    add(db, "orphan", "training", dead_pid_token(), time.time() + 3600)
    add(db, "done", "ready", dead_pid_token(), None)
    add(db, "remote", "retraining", OTHER_HOST, time.time() + 3600)
    assert leases.orphans(db, "me") == ["orphan"]
    assert leases.claim(db, "orphan", "me", LEASE_S)
    assert not leases.claim(db, "orphan", "another", LEASE_S)  # "me" (no host of ours) holds it until its lease lapses
    assert not leases.claim(db, "done", "me", LEASE_S)
    assert not leases.claim(db, "remote", "me", LEASE_S)
    assert not leases.claim(db, "missing", "me", LEASE_S)
    owner, expires = db.execute(
        "SELECT job_owner, lease_expires FROM classifiers WHERE classifier_id='orphan'"
    ).fetchone()
    assert owner == "me" and expires == pytest.approx(time.time() + LEASE_S, abs=5)


def test_renew_extends_only_the_holders_leases(db: sqlite3.Connection) -> None:
    add(db, "a", "training", "me", 1.0)
    add(db, "b", "retraining", "me", 1.0)
    add(db, "c", "training", OTHER_HOST, 1.0)
    assert leases.renew(db, "me", LEASE_S) == 2
    rows = dict(db.execute("SELECT classifier_id, lease_expires FROM classifiers").fetchall())
    assert rows["a"] > time.time() and rows["b"] > time.time() and rows["c"] == 1.0


def test_a_reused_pid_counts_as_dead() -> None:
    pid = os.getpid()
    token = f"{owners.HOST}:{pid}:1:runner"  # this pid, but a process that started at tick 1
    if owners.process_start(pid) in (owners.NO_START, "1"):
        pytest.skip("no /proc start times here")
    assert "started later" in (owners.why_dead(token) or "")


def test_abandoned_by_heartbeat_only_past_the_timeout() -> None:
    now_ms = int(time.time() * 1000)
    assert owners.why_abandoned(OTHER_HOST, now_ms - 5_000, timeout_s=60) is None
    assert "no heartbeat" in (owners.why_abandoned(OTHER_HOST, now_ms - 120_000, timeout_s=60) or "")
    assert owners.why_abandoned(None, None, timeout_s=60) is None
