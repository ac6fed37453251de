"""A process SIGKILLed while it logs to MLflow: the next Workbench on the same home repairs MLflow by itself.

The store is the source of truth. The killed process leaves a half-logged run RUNNING (its owner now a
zombie of this test process, never reaped until the end) and a version, or a whole classifier, never
logged. A fresh Workbench with tracking on must, without being asked: end the orphaned run FAILED with
the reason, log every version, and point the `serving` alias at the store's serving version.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import TUTORIAL
from workbench import Workbench
from workbench.store.database import Store
from workbench.tracking.recovery import out_of_sync, running_runs
from workbench.tracking.tags import SERVING_ALIAS, TAG_KIND, TAG_VERSION
from workbench.tracking.target import tracking_target

CONVERGE_SECONDS = 120  # the fresh process's first sweep logs three versions on a busy 2-core box
TRAIN_SECONDS = 300
POLL_SECONDS = 0.1
TAG_ABANDONED = "workbench.abandoned"

TRAIN_AND_WAIT_TO_BE_KILLED = """
import sys, threading
from pathlib import Path
from workbench import Workbench

home, mlruns, cache, sets = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
wb = Workbench(home, tracking_uri=mlruns, embedding_cache=cache)
kept = wb.create_classifier("kept", {"beagle": sets / "beagle", "husky": sets / "husky"})["classifier_id"]
assert wb.wait(kept, timeout=300)["status"] == "ready"
assert wb.tracker.flush(timeout=300)  # v1 fully logged, alias serving -> v1
print("logged", flush=True)  # the MLflow store exists and is migrated: the test may open it too
wb.update_classifier(kept, negative_examples=sets / "cats")  # v2: logged after its training...
late = wb.create_classifier("late", {"dalmatian": sets / "dalmatian", "goldenretriever": sets / "goldenretriever"})
for cid in (kept, late["classifier_id"]):
    wb.wait(cid, timeout=300)
threading.Event().wait()  # ...by the tracker thread, until the test SIGKILLs this process
"""


def small_sets(folder: Path, classes: tuple[str, ...], images: int = 10) -> Path:
    """Folders of the first `images` tutorial images of each class (copied unaltered)."""
    for name in classes:
        (folder / name).mkdir(parents=True)
        for path in sorted((TUTORIAL / name).iterdir())[:images]:
            shutil.copyfile(path, folder / name / path.name)
    return folder


def mlflow_client(mlruns: Path) -> MlflowClient:
    uri = tracking_target(mlruns).uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def both_trained(store: Store) -> bool:
    records = {r.name: r for r in store.classifiers()}
    return (
        {"kept", "late"} <= set(records)
        and records["kept"].status == "ready"
        and records["kept"].serving_version == 2
        and records["late"].status == "ready"
        and records["late"].serving_version == 1
    )


@pytest.fixture(scope="module")
def after_crash(tmp_path_factory: pytest.TempPathFactory, embedding_cache: Path):
    """Kill a tracked process mid-logging, then open a fresh Workbench on its home and let it converge."""
    folder = tmp_path_factory.mktemp("crash")
    home, mlruns = folder / "home", folder / "mlruns"
    sets = small_sets(folder / "sets", ("beagle", "husky", "cats", "dalmatian", "goldenretriever"))
    child = subprocess.Popen(
        [sys.executable, "-c", TRAIN_AND_WAIT_TO_BE_KILLED, str(home), str(mlruns), str(embedding_cache), str(sets)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "logged", f"the first training failed: {child.stderr.read()[-3000:]}"
    store, client = Store(home), mlflow_client(mlruns)
    deadline = time.monotonic() + TRAIN_SECONDS
    while (
        time.monotonic() < deadline and child.poll() is None
    ):  # kill once both versions are saved and a run is half-logged
        if both_trained(store) and running_runs(client):
            break
        time.sleep(POLL_SECONDS)
    assert child.poll() is None, f"the training process ended early: {child.stderr.read()[-3000:]}"
    os.kill(child.pid, signal.SIGKILL)  # not reaped until teardown: its pid stays a zombie
    orphans = [r.info.run_id for r in running_runs(client)]
    assert orphans, "the test never saw a half-logged run before the kill"

    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_TRACKING_SYNC_SECONDS", "2")
        wb = Workbench(home, tracking_uri=mlruns, embedding_cache=embedding_cache)
        wb.list_classifiers()  # first use: nothing else asks the tracker to do anything
        deadline = time.monotonic() + CONVERGE_SECONDS
        while (missing := out_of_sync(client, wb.store)) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS * 5)
        ids = {r.name: r.classifier_id for r in wb.store.classifiers()}
        yield {"wb": wb, "client": client, "ids": ids, "orphans": orphans, "missing": missing, "pid": child.pid}
        if wb.tracker is not None and hasattr(wb.tracker, "close"):
            wb.tracker.close()
    child.stdout.close()
    child.stderr.close()
    child.wait()


@pytest.mark.slow
def test_half_logged_run_of_a_killed_process_is_ended_and_every_version_is_logged(after_crash):
    client, wb, cid = after_crash["client"], after_crash["wb"], after_crash["ids"]["kept"]
    assert after_crash["missing"] == []
    for run_id in after_crash["orphans"]:
        run = client.get_run(run_id)
        assert run.info.status == "FAILED"
        reason = run.data.tags[TAG_ABANDONED]
        assert f":{after_crash['pid']}:" in reason and "zombie" in reason
    assert client.get_model_version_by_alias(cid, SERVING_ALIAS).tags[TAG_VERSION] == "2"
    assert wb.tracker.flush(timeout=TRAIN_SECONDS)  # no "being logged by another process" for a dead process
    assert "warnings" not in wb.get_classifier(cid)


def test_classifier_trained_just_before_the_kill_is_logged_by_the_next_process(after_crash):
    client, cid = after_crash["client"], after_crash["ids"]["late"]
    assert not [m for m in after_crash["missing"] if cid in m]
    runs = client.search_runs(
        [client.get_experiment_by_name(cid).experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'version'"
    )
    assert [r.info.status for r in runs] == ["FINISHED"]
    assert client.get_model_version_by_alias(cid, SERVING_ALIAS).tags[TAG_VERSION] == "1"


def test_version_stored_by_another_workbench_is_logged_by_the_periodic_sweep(make_workbench, tmp_path, monkeypatch):
    """A long-lived tracked Workbench (a server) logs versions it heard no event of, within its sync interval."""
    monkeypatch.setenv("WORKBENCH_TRACKING_SYNC_SECONDS", "1")
    mlruns = tmp_path / "mlruns"
    server = make_workbench(tracking_uri=mlruns)
    server.list_classifiers()  # first use: its tracker starts (and finds nothing to log)
    other = make_workbench()  # same home, tracking off: e.g. a CLI run with WORKBENCH_TRACKING_URI=none
    sets = small_sets(tmp_path / "sets", ("beagle", "husky"))
    cid = other.create_classifier("elsewhere", {"beagle": sets / "beagle", "husky": sets / "husky"})["classifier_id"]
    assert other.wait(cid, timeout=TRAIN_SECONDS)["status"] == "ready"
    client = mlflow_client(mlruns)
    deadline = time.monotonic() + CONVERGE_SECONDS
    while (missing := out_of_sync(client, server.store)) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS * 5)
    assert missing == []
    server.tracker.close()
