"""A classifier deleted while the MLflow server is down: once it is back, no run is left RUNNING anywhere.

A real `mlflow server` on 127.0.0.1 stops while the tracker is logging a version (held at its
artifacts by wrapping `run_record.write_artifacts`, so the moment is exact), the classifier is deleted
during the outage, and the server starts again on the same database. Before the fix, the sweep logged
the deleted classifier's history, deleted its own half-logged run without ending it, and deleted the
experiment: the run stayed RUNNING in a deleted experiment for good, where neither the UI nor
`out_of_sync` looked. A second test builds that left-over state directly, as an older workbench left it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from support.servers import free_port, start_mlflow_server, stop_process_group
from support.sets import small_sets
from workbench import Workbench
from workbench.store import owners
from workbench.tracking import run_record
from workbench.tracking.recovery import out_of_sync
from workbench.tracking.tags import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, TAG_ABANDONED, TAG_DELETED, TAG_KIND

pytestmark = pytest.mark.slow  # `make test-slow`: a real MLflow server stopped and started again

TRAIN_SECONDS = 300
HELD_SECONDS = 300


def every_run(client: MlflowClient, experiment_id: str) -> list:
    return client.search_runs([experiment_id], run_view_type=ViewType.ALL)


@pytest.fixture
def no_periodic_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_TRACKING_SYNC_SECONDS", "3600")  # only the sweeps the test runs itself


def test_a_delete_during_an_outage_leaves_no_run_running_once_mlflow_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_periodic_sweep: None
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(tmp_path / "mlflow", port)
    reached, go_on = threading.Event(), threading.Event()
    write_artifacts = run_record.write_artifacts

    def held(*args, **kwargs):
        reached.set()
        assert go_on.wait(HELD_SECONDS), "the test never let the logging go on"
        return write_artifacts(*args, **kwargs)

    monkeypatch.setattr(run_record, "write_artifacts", held)
    wb = Workbench(tmp_path / "home", tracking_uri=url, embedding_cache=tmp_path / "embeddings.db")
    try:
        cid = wb.create_classifier("doomed", small_sets(tmp_path / "sets", ("beagle", "husky")))["classifier_id"]
        assert wb.wait(cid, timeout=TRAIN_SECONDS)["status"] == "ready"
        assert reached.wait(HELD_SECONDS), "the tracker never started logging v1"
        stop_process_group(server)  # MLflow goes down with v1's run half-logged
        monkeypatch.setattr(run_record, "write_artifacts", write_artifacts)
        go_on.set()
        assert not wb.tracker.flush(timeout=TRAIN_SECONDS)  # the run could not be finished
        wb.delete_classifier(cid)
        assert not wb.tracker.flush(timeout=TRAIN_SECONDS)  # nor its history logged
        server = start_mlflow_server(tmp_path / "mlflow", port)  # back, on the same database
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        [half_logged] = [run.info.run_id for run in every_run(client, client.get_experiment_by_name(cid).experiment_id)]
        pending = out_of_sync(client, wb.store)
        assert f"run {half_logged} still RUNNING" in pending, pending
        assert any(line.startswith(f"{cid}: deleted") for line in pending), pending
        assert wb.tracker.sweep()
        missing = out_of_sync(client, wb.store)
        experiment = client.get_experiment_by_name(cid)
        runs = {run.info.run_id: run for run in every_run(client, experiment.experiment_id)}
    finally:
        wb.tracker.close()
        stop_process_group(server)
    assert missing == []
    assert experiment.lifecycle_stage == "deleted"
    assert {run_id: run.info.status for run_id, run in runs.items() if run.info.status == "RUNNING"} == {}
    ended = runs[half_logged]
    assert ended.info.status == "KILLED" and ended.data.tags[TAG_DELETED] == "true"
    assert "classifier was deleted" in ended.data.tags[TAG_ABANDONED]
    logged = [run for run in runs.values() if run.data.tags.get(TAG_KIND) == "version"]
    assert [(run.info.status, run.data.tags[TAG_DELETED]) for run in logged] == [("FINISHED", "true")]  # its history
    assert not list((tmp_path / "home" / "mlflow-pending" / "deleted").iterdir())


def test_a_run_an_older_tracker_left_running_in_a_deleted_experiment_is_ended_by_the_sweep(
    tmp_path: Path, no_periodic_sweep: None
) -> None:
    """The state older code left behind: a deleted RUNNING run of a dead process in a deleted experiment."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(tmp_path / "mlflow", port)
    wb = Workbench(tmp_path / "home", tracking_uri=url, embedding_cache=tmp_path / "embeddings.db")
    try:
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        experiment_id = client.create_experiment("gone_1234567890", tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        run_id = client.create_run(
            experiment_id,
            tags={
                TAG_KIND: "abandoned_logging",
                TAG_DELETED: "true",
                "workbench.logging_owner": f"{owners.HOST}:{dead.pid}:0",
            },
        ).info.run_id
        client.delete_run(run_id)
        client.set_experiment_tag(experiment_id, TAG_DELETED, "true")
        client.delete_experiment(experiment_id)
        before = out_of_sync(client, wb.store)
        assert wb.tracker.sweep()
        after = out_of_sync(client, wb.store)
        run = client.get_run(run_id)
    finally:
        wb.tracker.close()
        stop_process_group(server)
    assert before == [f"run {run_id} still RUNNING (deleted)"]
    assert after == []
    assert run.info.status == "KILLED" and run.info.lifecycle_stage == "deleted"
    assert (
        f"process {dead.pid}" in run.data.tags[TAG_ABANDONED]
        and "classifier was deleted" in run.data.tags[TAG_ABANDONED]
    )
