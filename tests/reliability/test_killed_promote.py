"""A promote killed at any moment leaves either the previous version serving or the new one, never a broken state.

A real `workbench promote` process is SIGKILLed as SQL statements of its promote start, in turn
(`kill_at_statement.py`, deterministic), both ways: pinning v1 while v2 serves, and lifting that pin.
The kill points are the first statement (a read), every statement of the one write transaction from
its BEGIN IMMEDIATE to its COMMIT, and the statement after it. After each kill a fresh process finds
the old state up to that COMMIT and the new one from then on; `doctor` finds nothing wrong, and
classify answers with the version the store says serves.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support import promote as promote_fixtures
from support.promote import held_out_scores, same_scores
from workbench import Workbench
from workbench.store.database import Store

from .kill_at_statement import KILL_AT_STATEMENT_ENV, STATEMENT_LINE

HELPER = Path(__file__).with_name("kill_at_statement.py")
template = promote_fixtures.template  # the module-scoped two-version `pets` (a fixture)
UNPINNED, PINNED = (2, None), (1, 1)  # (serving_version, pinned_version)


def promote_killed_at(
    home: Path, classifier_id: str, version: str, statement: int | None
) -> subprocess.CompletedProcess:
    """`workbench promote` in its own process, SIGKILLed as its `statement`th SQL statement starts (None: no kill)."""
    env = {**os.environ, KILL_AT_STATEMENT_ENV: str(statement or ""), "WORKBENCH_TRACKING_URI": "none"}
    return subprocess.run(
        [sys.executable, str(HELPER), "--home", str(home), "promote", classifier_id, version],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def state(home: Path, classifier_id: str) -> tuple[int | None, int | None]:
    record = Store(home).classifier(classifier_id)
    return record.serving_version, record.pinned_version


def statements(done: subprocess.CompletedProcess) -> list[str]:
    return [line.split(": ", 1)[1] for line in done.stderr.splitlines() if line.startswith(STATEMENT_LINE)]


@pytest.mark.parametrize(
    "version, before, after", [("1", UNPINNED, PINNED), ("latest", PINNED, UNPINNED)], ids=["pin v1", "lift the pin"]
)
def test_a_promote_killed_at_any_statement_leaves_the_old_or_the_new_version_serving(
    template, tmp_path, embedding_cache, version, before, after
) -> None:
    cid = template.classifier_id
    start = template.copy(tmp_path / "start")
    if before == PINNED:
        Workbench(start, tracking_uri=False, resume=False).promote(cid, 1)
    assert state(start, cid) == before

    whole = promote_killed_at(Path(shutil.copytree(start, tmp_path / "whole")), cid, version, None)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert (json.loads(whole.stdout)["serving_version"], json.loads(whole.stdout).get("pinned_version")) == after
    ran = statements(whole)
    assert sum(s.startswith("UPDATE classifiers") for s in ran) == 1, ran  # one write ...
    update = next(i for i, s in enumerate(ran) if s.startswith("UPDATE classifiers"))
    commit = ran.index("COMMIT", update) + 1  # ... and its COMMIT (statements are numbered from 1)
    begin = max(i for i, s in enumerate(ran[:update], start=1) if s == "BEGIN IMMEDIATE")
    assert commit < len(ran), "a statement runs after the write (the answer's read): the first kill after it"

    seen = []
    for kill_at in [1, *range(begin, commit + 2)]:
        home = Path(shutil.copytree(start, tmp_path / f"killed-{kill_at}"))
        done = promote_killed_at(home, cid, version, kill_at)
        assert done.returncode == -signal.SIGKILL, f"not killed at statement {kill_at}: {done.stderr[-2000:]}"
        seen.append(state(home, cid))
        assert seen[-1] == (before if kill_at <= commit else after), (kill_at, ran[kill_at - 1], seen[-1])
        if kill_at in (commit, commit + 1):  # the last kill that leaves the old state, the first that leaves the new
            wb = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False, resume=False)
            serving = wb.get_classifier(cid)["serving_version"]
            assert serving == seen[-1][0]
            assert same_scores(held_out_scores(wb, cid), template.answers[serving])
            assert wb.doctor().ok, wb.doctor().to_dict()
    assert before in seen and after in seen
