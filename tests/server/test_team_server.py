"""A team tracking server: `mlflow server` on PostgreSQL with proxied artifacts, two workbench processes
training into it at once, and `mlflow models serve` answering for a registered `serving` version.

PostgreSQL 15 runs from a temporary data directory as an unprivileged user (it refuses root), on a free
port of 127.0.0.1, with its socket in that directory.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import DOGS_JPG, TUTORIAL
from support.postgres import running_postgres
from support.servers import free_port, stop_process_group, wait_until_up
from workbench import Workbench
from workbench.tracking.tags import SERVING_ALIAS, TAG_KIND, TAG_LOGGED, TAG_VERSION

pytestmark = pytest.mark.slow
TRAIN_SECONDS = 300
# two different classifiers, trained at the same time by two processes (each with its own home)
CLASSIFIERS = {
    "dogs": ["-p", f"beagle={TUTORIAL / 'beagle'}", "-p", f"husky={TUTORIAL / 'husky'}", "-n", str(TUTORIAL / "cats")],
    "spots": [
        "-p",
        f"dalmatian={TUTORIAL / 'dalmatian'}",
        "-p",
        f"goldenretriever={TUTORIAL / 'goldenretriever'}",
        "-n",
        str(TUTORIAL / "more-cats"),
    ],
}


def colleague_address() -> str:
    """This machine's first non-loopback IP address (`hostname -I`): how a colleague's machine reaches the server."""
    done = subprocess.run(["hostname", "-I"], capture_output=True, text=True)
    addresses = [a for a in done.stdout.split() if ":" not in a and not a.startswith("127.")]
    if not addresses:
        pytest.skip("this machine has no non-loopback IPv4 address to reach the team server from")
    return addresses[0]


def allowed_hosts(*names: str) -> str:
    """The README's `--allowed-hosts` value: each name the team uses for the server, with any port."""
    return ",".join(f"{name}:*" for name in (*names, "localhost", "127.0.0.1"))


@pytest.fixture(scope="module")
def postgres_uri():
    """A real PostgreSQL 15 in a temporary data directory with an `mlflow` database; its SQLAlchemy URI."""
    with running_postgres() as server:
        yield server.database("mlflow").replace("postgresql://", "postgresql+psycopg2://")  # not psycopg 3


@pytest.fixture(scope="module")
def team_server(postgres_uri, tmp_path_factory):
    """`mlflow server` as the README prints it: on PostgreSQL, proxied artifacts, every interface, and
    `--allowed-hosts` naming the machine's host name and its non-loopback address (MLflow answers any
    other Host header with 403 "Invalid Host header"). Its URLs: loopback and the two colleagues'."""
    folder = tmp_path_factory.mktemp("team-server")
    port = free_port()
    address, name = colleague_address(), socket.gethostname()
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        postgres_uri,
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--allowed-hosts",
        allowed_hosts(name, address),
        "--workers",
        "2",
    ]
    log = folder / "server.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(log, "wb") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/health", server, log, "mlflow server")
    yield {
        "url": url,
        "artifacts": folder / "artifacts",
        "port": port,
        "colleagues": {"dogs": f"http://{address}:{port}", "spots": f"http://{name}:{port}"},
    }
    stop_process_group(server)


@pytest.fixture(scope="module")
def trained(team_server, tmp_path_factory) -> dict[str, dict]:
    """Two `workbench create` processes, started together, each training its classifier into the team server
    as a colleague addresses it: `dogs` by the machine's non-loopback IP, `spots` by its host name."""
    started = time.monotonic()
    processes = {}
    for name, sets in CLASSIFIERS.items():
        env = {**os.environ, "WORKBENCH_TRACKING_URI": team_server["colleagues"][name]}
        home = tmp_path_factory.mktemp(f"home-{name}")
        command = [sys.executable, "-m", "workbench", "--home", str(home), "create", name, *sets]
        processes[name] = (
            home,
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        )
    answers = {}
    for name, (home, process) in processes.items():
        env = {**os.environ, "WORKBENCH_TRACKING_URI": team_server["colleagues"][name]}
        out, err = process.communicate(timeout=TRAIN_SECONDS)
        assert process.returncode == 0, err[-3000:]
        cid = json.loads(out)["classifier_id"]  # create answers once stored; `wait` waits for the MLflow logging
        waited = subprocess.run(
            [sys.executable, "-m", "workbench", "--home", str(home), "wait", cid],
            env=env,
            capture_output=True,
            text=True,
            timeout=TRAIN_SECONDS,
        )
        assert waited.returncode == 0, waited.stderr[-3000:]
        answers[name] = {"home": home, "record": json.loads(waited.stdout), "stderr": err + waited.stderr}
    print(f"two-process training into PostgreSQL-backed MLflow: {time.monotonic() - started:.1f} s")
    return answers


def test_two_processes_train_into_one_postgresql_server_and_both_land_intact(trained, team_server):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=team_server["url"], registry_uri=team_server["url"])
    assert {answer["record"]["name"] for answer in trained.values()} == set(CLASSIFIERS)
    for answer in trained.values():
        record = answer["record"]
        cid = record["classifier_id"]
        assert record["status"] == "ready" and "workbench: logged to MLflow" in answer["stderr"], answer["stderr"][
            -2000:
        ]
        experiment = client.get_experiment_by_name(cid)
        [run] = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'version'")
        assert run.info.status == "FINISHED" and run.data.tags[TAG_LOGGED] == "true"
        assert run.data.tags[TAG_VERSION] == "1" and 0.0 < run.data.metrics["accuracy"] <= 1.0
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied: the server keeps the files
        [registered] = client.search_model_versions(f"name='{cid}'")
        assert registered.tags[TAG_VERSION] == "1"
        assert client.get_model_version_by_alias(cid, SERVING_ALIAS).version == registered.version
        assert client.get_experiment_by_name(cid).experiment_id == experiment.experiment_id
    stored = [p for p in team_server["artifacts"].rglob("*") if p.is_file()]
    assert any(p.name == "heads.npz" for p in stored)  # both models' files landed in the artifacts destination
    assert len({p for p in stored if p.name == "heads.npz"}) == 2


@pytest.fixture(scope="module")
def model_server(trained, team_server, tmp_path_factory):
    """`mlflow models serve` of the `dogs` classifier's `serving` alias, from the team server's registry."""
    cid = trained["dogs"]["record"]["classifier_id"]
    folder = tmp_path_factory.mktemp("model-server")
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{cid}@{SERVING_ALIAS}",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    bin_folder = str(
        Path(sys.executable).parent
    )  # `mlflow models serve` runs `uvicorn` from PATH, as an activated venv has it
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": team_server["url"],
        "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}",
    }
    log = folder / "serve.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            command, env=env, cwd=folder, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/ping", server, log, "mlflow models serve")
    yield url
    stop_process_group(server)


def invoke(url: str, body: dict) -> list[dict]:
    request = urllib.request.Request(
        f"{url}/invocations", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=TRAIN_SECONDS) as answer:
        return json.loads(answer.read())["predictions"]


def test_mlflow_models_serve_scores_like_classify(model_server, trained):
    home, cid = trained["dogs"]["home"], trained["dogs"]["record"]["classifier_id"]
    encoded = base64.b64encode(DOGS_JPG.read_bytes()).decode()
    split = invoke(
        model_server, {"dataframe_split": {"columns": ["image"], "data": [[encoded]]}, "params": {"watson": True}}
    )
    records = invoke(model_server, {"dataframe_records": [{"image": encoded}]})
    wb = Workbench(home, tracking_uri=False, train=False, resume=False)
    expected = wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.0)["images"][0]["classifiers"][0]["classes"]
    for [row] in (split, records):
        assert {name for name in row if name not in ("watson", "error", "engine")} == {c["class"] for c in expected}
        assert row["error"] == ""
        assert row["engine"] == "onnxruntime"  # which engine ran, as on Spark way 1's rows
        for entry in expected:
            assert row[entry["class"]] == pytest.approx(entry["score"], abs=1e-5)
    watson = json.loads(split[0]["watson"])
    assert watson["classifier_id"] == cid
    assert [c["class"] for c in watson["classes"]] == [c["class"] for c in expected if c["score"] >= 0.5]
    assert records[0].get("watson") is None


def test_a_host_name_the_server_does_not_allow_is_a_visible_not_logged_with_the_reason(trained, team_server):
    """127.0.0.2 reaches the server (it listens on every interface) but is not in its --allowed-hosts: MLflow
    answers 403, and the classifier record says it is not logged, why, and which flag fixes it."""
    home, cid = trained["dogs"]["home"], trained["dogs"]["record"]["classifier_id"]
    refused = f"http://127.0.0.2:{team_server['port']}"
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(f"{refused}/api/2.0/mlflow/experiments/search?max_results=1", timeout=30)
    assert answer.value.code == 403 and b"Invalid Host header" in answer.value.read()
    wb = Workbench(home, tracking_uri=refused, train=False, resume=False)
    assert wb.tracker.sync(cid) is False  # the classifier is trained and serves; only the logging failed
    [warning] = wb.get_classifier(cid)["warnings"]
    assert "Invalid Host header" in warning["description"] and "--allowed-hosts" in warning["description"]
    assert "'127.0.0.2:*'" in warning["description"] and "Not logged yet" in warning["description"]


def test_mlflow_models_serve_answers_a_corrupt_image_with_an_error_row(model_server):
    """Issue 24 item 3: one bad image in a request is its own row with `error`, not a failed request."""
    good = base64.b64encode(DOGS_JPG.read_bytes()).decode()
    corrupt = base64.b64encode(DOGS_JPG.read_bytes()[:2048]).decode()
    rows = invoke(model_server, {"dataframe_split": {"columns": ["image"], "data": [[good], [corrupt], [good]]}})
    assert [bool(row["error"]) for row in rows] == [False, True, False]
    assert "row 1" in rows[1]["error"] and "not a readable" in rows[1]["error"]
