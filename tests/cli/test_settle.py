"""`workbench wait`'s word on MLflow: "logged" only when MLflow, asked, holds the run of the newest version."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mlflow import MlflowClient

from support.servers import free_port, workbench_command
from support.sets import create_small
from workbench import tracking_uri
from workbench.tracking.tags import TAG_KIND, TAG_LOGGED, TAG_VERSION


def wait(home: Path, classifier_id: str, tracking: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        workbench_command(home, "wait", classifier_id),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "WORKBENCH_TRACKING_URI": tracking},
    )


def test_wait_on_a_trained_classifier_says_logged_only_for_a_run_mlflow_holds(make_workbench, tmp_path) -> None:
    """Before, a `wait` that trained nothing said "logged to MLflow" even when MLflow refused every request."""
    wb = make_workbench()  # trained with tracking off: this `wait` process has nothing of its own to log
    cid = create_small(wb, tmp_path / "sets")

    port = free_port()  # nothing listens there: every MLflow request is refused
    refused = wait(wb.home, cid, f"http://127.0.0.1:{port}")
    assert refused.returncode == 0, refused.stderr[-3000:]
    assert "workbench: logged to MLflow" not in refused.stderr, refused.stderr[-3000:]
    assert "workbench: NOT logged to MLflow in" in refused.stderr
    [reason] = [line for line in refused.stderr.splitlines() if line.startswith("workbench: not logged: ")]
    assert f"127.0.0.1:{port}" in reason and "Not logged yet: runs and registered versions for versions 1" in reason

    store = tmp_path / "mlruns"
    tracked = wait(wb.home, cid, str(store))
    assert tracked.returncode == 0 and "workbench: logged to MLflow in" in tracked.stderr, tracked.stderr[-3000:]
    assert "not logged" not in tracked.stderr
    uri = tracking_uri(store)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(cid).experiment_id])
    assert [(r.data.tags[TAG_KIND], r.data.tags[TAG_VERSION], r.data.tags[TAG_LOGGED]) for r in runs] == [
        ("version", "1", "true")
    ]
