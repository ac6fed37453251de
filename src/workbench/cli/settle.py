"""After a change that trains: wait for the training here, or hand it (or its MLflow logging) to `workbench wait`.

`create`, `update` and `examples remove|relabel` answer through `settle`; `wait` logs through `flush_tracking`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..service.workbench import Workbench

TRACKING_FLUSH_SECONDS = 60.0  # how long `wait` waits for MLflow to log the new version
TRACKING_ENV = "WORKBENCH_TRACKING_URI"  # hands the resolved tracking URI to a detached `workbench wait`


def settle(wb: Workbench, record: dict, wait: bool, home: Path, log_to: str | None = None) -> dict:
    """Waits for training here, or hands it to a detached `workbench wait` process.

    With `log_to` (a tracked create or update that waits), the answer comes once the version is
    stored: MLflow logging, seconds of work, goes on in a detached `workbench wait` process.
    """
    cid = record["classifier_id"]
    if wait:
        settled = wb.wait(cid, timeout=None)
        if log_to is None:  # untracked, or a tracking server: logged here
            return flush_tracking(wb, cid)
        pid = detached_wait(wb, cid, home, {TRACKING_ENV: log_to})
        print(
            f"workbench: {cid} is stored; logging to MLflow at {log_to} goes on in the background "
            f"(pid {pid}); `workbench wait {cid}` waits for it",
            file=sys.stderr,
            flush=True,
        )
        return settled
    detached_wait(wb, cid, home, {})
    return record


def detached_wait(wb: Workbench, classifier_id: str, home: Path, env: dict[str, str]) -> int:
    """Starts `workbench wait` in its own session (it outlives this process): it trains or logs what is left."""
    child = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "--home", str(home), "--owner", wb.owner, "wait", classifier_id],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **store_env(wb), **env},
    )
    return child.pid


def store_env(wb: Workbench) -> dict[str, str]:
    """The environment that points a child process at this Workbench's PostgreSQL store and blob folder."""
    settings = wb.settings
    if settings.store is None or settings.blobs is None:
        return {}
    return {"WORKBENCH_STORE": settings.store, "WORKBENCH_BLOBS": str(settings.blobs)}


def flush_tracking(wb: Workbench, classifier_id: str) -> dict:
    """Logs the settled training to MLflow now, saying so on stderr (it takes seconds); the fresh record.

    "logged" is said only once MLflow is asked and holds the run of the classifier's newest version;
    otherwise "NOT logged" and why (the record's tracking warning, or what MLflow answered). Without
    it the process would sit silent at exit while the tracker flushes.
    """
    tracker = wb.tracker
    if tracker is not None:
        print(f"workbench: logging to MLflow at {tracker.uri} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        tracker.flush(timeout=TRACKING_FLUSH_SECONDS)
        # this classifier now, even if this process trained nothing; a create's background logger is waited for
        synced = tracker.sync(classifier_id, wait_for_others_s=started + TRACKING_FLUSH_SECONDS - time.monotonic())
        versions = wb.versions(classifier_id)
        if versions:
            why = tracker.why_not_logged(classifier_id, versions[-1]["version"])
        else:  # no trained version (its first training failed): only the failed run is logged
            why = None if synced else tracker.warnings.get(classifier_id, "another process is still logging it")
        outcome = "logged to MLflow" if why is None else "NOT logged to MLflow"
        print(f"workbench: {outcome} in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        if why is not None:  # the reason, not only a pointer to it: the record's `warnings` carries it too
            print(f"workbench: not logged: {why}", file=sys.stderr, flush=True)
    return wb.get_classifier(classifier_id)
