"""DELETE returns at once while the MLflow tracker is stuck on a slow target (35 s was seen).

The target is a real TCP listener that accepts connections and never answers, so the tracker's
thread sits in MLflow's HTTP timeout. The deleted classifier's history is still logged later: a
fresh Workbench on the same home, with a tracking store that answers, logs its version and tags it deleted.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from workbench.core.errors import ClassifierNotFound
from workbench.tracking.tags import TAG_DELETED, TAG_KIND, TAG_VERSION
from workbench.tracking.target import tracking_target

TRAIN_SECONDS = 300
BLOCKED_SECONDS = 120
DELETE_SECONDS = 1.0
CONVERGE_SECONDS = 120


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts connections and never sends a byte."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.accepted = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)
            self.accepted.set()

    def close(self) -> None:
        """Resets every held connection and stops listening: the tracker's requests fail at once."""
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def black_hole():
    hole = BlackHole()
    yield hole
    hole.close()


@pytest.mark.slow
def test_delete_returns_at_once_while_the_tracker_is_stuck(make_workbench, tutorial_zips, black_hole, tmp_path):
    wb = make_workbench(tracking_uri=black_hole.url)
    cid = wb.create_classifier("doomed", {"beagle": tutorial_zips["beagle"], "husky": tutorial_zips["husky"]})[
        "classifier_id"
    ]
    assert wb.wait(cid, timeout=TRAIN_SECONDS)["status"] == "ready"
    assert black_hole.accepted.wait(BLOCKED_SECONDS), "the tracker never tried to log the version"

    started = time.perf_counter()
    wb.delete_classifier(cid)
    elapsed = time.perf_counter() - started

    assert elapsed < DELETE_SECONDS, f"delete took {elapsed:.1f} s behind the tracking backlog"
    with pytest.raises(ClassifierNotFound):
        wb.get_classifier(cid)
    black_hole.close()
    if hasattr(wb.tracker, "close"):
        wb.tracker.close()

    # the history converges: a Workbench whose tracking store answers logs the deleted classifier's run
    mlruns = tmp_path / "mlruns"
    later = make_workbench(tracking_uri=mlruns)
    later.list_classifiers()  # first use starts the tracker's sweep
    uri = tracking_target(mlruns).uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    deadline, runs = time.monotonic() + CONVERGE_SECONDS, []
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name(cid)
        if experiment is not None and experiment.tags.get(TAG_DELETED) == "true":
            runs = client.search_runs(
                [experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'version'", run_view_type=ViewType.ALL
            )  # the experiment is soft-deleted, runs with it
            break
        time.sleep(0.5)
    later.tracker.close()
    assert [(r.data.tags[TAG_VERSION], r.info.status, r.data.tags[TAG_DELETED]) for r in runs] == [
        ("1", "FINISHED", "true")
    ]
    with pytest.raises(MlflowException):
        client.get_registered_model(cid)
    assert not list(Path(wb.home).glob("mlflow-pending/deleted/*"))
