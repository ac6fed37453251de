"""Many servers on one home, tracking on: each stored version is one MLflow run and one registered version.

Two `workbench serve` processes (and one `workbench serve --workers 2`) share a home and a local
MLflow store (SQLite). Creates, updates and a delete go to them alternately while each tracker sweeps
all the time; and both start at once on versions stored while tracking was off, so each first sweep
finds the same versions missing. Before the logging claim (`tracking.claims.logging_claim`) the second
test failed on the old code with versions 2 and 3 logged twice (runs and registered versions).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from conftest import TUTORIAL
from support.servers import spawn_server, stop_process_group, wait_until_up
from workbench.cli import zip_folder
from workbench.cli.parser import build_parser
from workbench.server.serve_workers import worker_command
from workbench.store.database import Store
from workbench.tracking.recovery import out_of_sync, running_runs
from workbench.tracking.tags import SERVING_ALIAS, TAG_KIND, TAG_VERSION
from workbench.tracking.target import Connection, tracking_target

pytestmark = pytest.mark.slow  # `make test-slow`: several `workbench serve` processes and MLflow (about 2.5 min)

VERSION = {"version": "2018-03-19"}
IMAGES_PER_CLASS = 10
TRAIN_SECONDS = 600
CONVERGE_SECONDS = 600
SWEEP_SECONDS = "0.05"  # every process looks for missing versions all the time: the race, as often as it can be


def spawn(home: Path, log: Path, tracking: str, workers: int = 1) -> tuple[subprocess.Popen, str]:
    """A `workbench serve --no-auth` on 127.0.0.1 over `home`, tracked into `tracking` (not waited for)."""
    env = {"WORKBENCH_TRACKING_URI": tracking, "WORKBENCH_TRACKING_SYNC_SECONDS": SWEEP_SECONDS}
    return spawn_server(home, log, *(["--workers", str(workers)] if workers > 1 else []), env=env)


@contextmanager
def serving(layout: str, home: Path, tracking: str, log: Path) -> Iterator[list[str]]:
    """Two URLs onto one home, started at once: two processes, or one server with two workers (its URL twice)."""
    if layout == "two-servers":
        started = [spawn(home, log, tracking), spawn(home, log, tracking)]
    else:
        started = [spawn(home, log, tracking, workers=2)]
    try:
        for process, url in started:
            wait_until_up(f"{url}/openapi.json", process, log, "workbench serve")
        if layout == "workers-2":
            parent = started[0][0].pid
            assert len(Path(f"/proc/{parent}/task/{parent}/children").read_text().split()) == 2
        urls = [url for _, url in started]
        yield urls if len(urls) == 2 else urls * 2
    finally:
        for process, _ in started:
            stop_process_group(process)


LAYOUTS = ["two-servers", "workers-2"]


def zips(folder: Path) -> dict[str, Path]:
    """Zips of the first IMAGES_PER_CLASS tutorial images of five classes."""
    made = {}
    for name in ("beagle", "husky", "goldenretriever", "dalmatian", "cats"):
        images = folder / name
        images.mkdir(parents=True)
        for path in sorted((TUTORIAL / name).iterdir())[:IMAGES_PER_CLASS]:
            (images / path.name).write_bytes(path.read_bytes())
        made[name] = zip_folder(images, folder / f"{name}.zip")
    return made


def train(
    client: httpx.Client,
    path: str,
    sets: dict[str, Path],
    classes: list[str],
    negatives: bool = False,
    name: str | None = None,
) -> str:
    """POSTs a create (with `name`) or an update; returns the classifier id once its training is ready."""
    files = {f"{c}_positive_examples": (f"{c}.zip", sets[c].read_bytes()) for c in classes}
    if negatives:
        files["negative_examples"] = ("cats.zip", sets["cats"].read_bytes())
    answer = client.post(path, params=VERSION, data={"name": name} if name else {}, files=files)
    assert answer.status_code == 200, answer.text
    cid = answer.json()["classifier_id"]
    deadline = time.monotonic() + TRAIN_SECONDS
    while time.monotonic() < deadline:
        status = client.get(f"/v3/classifiers/{cid}", params=VERSION).json()["status"]
        if status == "ready":
            return cid
        assert status in ("training", "retraining"), status
        time.sleep(0.5)
    raise AssertionError(f"{cid} not ready in {TRAIN_SECONDS} s")


def version_runs(client: MlflowClient, classifier_id: str) -> Counter:
    """How many version runs each version has in a classifier's experiment, deleted ones included."""
    experiment = client.get_experiment_by_name(classifier_id)
    if experiment is None:
        return Counter()
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{TAG_KIND}` = 'version'",
        run_view_type=ViewType.ALL,
        max_results=5000,
    )
    return Counter(int(run.data.tags[TAG_VERSION]) for run in runs)


def registered(client: MlflowClient, classifier_id: str) -> Counter:
    """How many registered versions each version of a classifier has."""
    return Counter(int(v.tags[TAG_VERSION]) for v in client.search_model_versions(f"name='{classifier_id}'"))


def logged(client: MlflowClient, classifiers: list[str]) -> dict[str, dict[int, int]]:
    """Version runs (deleted ones included) and registered versions of each classifier, counted by version."""
    counts = {}
    for cid in classifiers:
        counts[f"{cid} runs"] = dict(version_runs(client, cid))
        counts[f"{cid} registered"] = dict(registered(client, cid))
    return counts


def wait_until_logged(client: MlflowClient, expected: dict[str, dict[int, int]]) -> dict[str, dict[int, int]]:
    """The counts once every expected version has at least one run and registered version and no run is RUNNING."""
    deadline = time.monotonic() + CONVERGE_SECONDS
    classifiers = sorted({key.split()[0] for key in expected})
    while True:
        counts = logged(client, classifiers)
        if all(set(counts[k]) == set(v) for k, v in expected.items()) and not running_runs(client):
            return counts
        if time.monotonic() > deadline:
            return counts
        time.sleep(1)


def serving_version(client: MlflowClient, classifier_id: str, want: str) -> str:
    """The version `serving` points at, once it is `want` (or CONVERGE_SECONDS pass).

    A tracker points the alias after the version's run finishes and its registered version exists, so
    the counts can converge a moment before the alias moves (seen at load 28).
    """
    deadline = time.monotonic() + CONVERGE_SECONDS
    while True:
        seen = client.get_model_version_by_alias(classifier_id, SERVING_ALIAS).tags[TAG_VERSION]
        if seen == want or time.monotonic() > deadline:
            return seen
        time.sleep(1)


def mlflow_client(mlruns: Path) -> MlflowClient:
    """A client on the servers' store, opened under the same schema lock they take.

    Opened bare while a server created the tables, MLflow's migrations met "table ... already exists"
    (seen once at load 13).
    """
    target = tracking_target(mlruns)
    assert target is not None
    return Connection(target).client()


ONCE_3 = {1: 1, 2: 1, 3: 1}
ONCE_2 = {1: 1, 2: 1}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_creates_updates_and_a_delete_across_servers_log_each_version_once(layout, tmp_path):
    home, mlruns, log = tmp_path / "home", tmp_path / "mlruns", tmp_path / "servers.log"
    sets = zips(tmp_path / "sets")
    with serving(layout, home, str(mlruns), log) as urls:
        a, b = (httpx.Client(base_url=url, timeout=TRAIN_SECONDS) for url in urls)
        first = train(a, "/v3/classifiers", sets, ["beagle", "husky"], name="first")
        second = train(b, "/v3/classifiers", sets, ["goldenretriever", "dalmatian"], name="second")
        train(b, f"/v3/classifiers/{first}", sets, [], negatives=True)
        train(a, f"/v3/classifiers/{second}", sets, ["beagle"])
        train(a, f"/v3/classifiers/{first}", sets, ["goldenretriever"])
        assert b.delete(f"/v3/classifiers/{second}", params=VERSION).status_code == 200
        client = mlflow_client(mlruns)
        expected = {
            f"{first} runs": ONCE_3,
            f"{first} registered": ONCE_3,
            f"{second} runs": ONCE_2,
            f"{second} registered": {},
        }  # the deleted one: its runs stay as history, its registered model goes
        assert wait_until_logged(client, expected) == expected
        assert serving_version(client, first, "3") == "3"
        assert client.get_experiment_by_name(second).lifecycle_stage == "deleted"
        assert out_of_sync(client, Store(home)) == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_servers_starting_at_once_log_a_backlog_of_versions_once(layout, tmp_path):
    """Versions stored while tracking was off: every server's first sweep finds all of them missing at once."""
    home, mlruns, log = tmp_path / "home", tmp_path / "mlruns", tmp_path / "servers.log"
    sets = zips(tmp_path / "sets")
    with serving("two-servers", home, "none", log) as urls:
        a, b = (httpx.Client(base_url=url, timeout=TRAIN_SECONDS) for url in urls)
        first = train(a, "/v3/classifiers", sets, ["beagle", "husky"], name="first")
        train(b, f"/v3/classifiers/{first}", sets, [], negatives=True)
        train(a, f"/v3/classifiers/{first}", sets, ["goldenretriever"])
        second = train(b, "/v3/classifiers", sets, ["goldenretriever", "dalmatian"], name="second")
        train(a, f"/v3/classifiers/{second}", sets, ["beagle"])
    with serving(layout, home, str(mlruns), log):
        client = mlflow_client(mlruns)
        expected = {
            f"{first} runs": ONCE_3,
            f"{first} registered": ONCE_3,
            f"{second} runs": ONCE_2,
            f"{second} registered": ONCE_2,
        }
        assert wait_until_logged(client, expected) == expected
        assert out_of_sync(client, Store(home)) == []


def test_a_worker_runs_the_parents_command_without_workers_on_the_inherited_socket():
    argv = ["--home", "/h", "serve", "--port", "8080", "--workers", "3", "--no-auth", "--workers=2"]
    assert worker_command(argv, 7)[1:] == [
        "-m",
        "workbench.cli",
        "--home",
        "/h",
        "serve",
        "--port",
        "8080",
        "--no-auth",
        "--listen-fd",
        "7",
    ]


def test_zero_workers_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--workers", "0"])
    assert "at least 1" in capsys.readouterr().err
