"""Export (export.py, Workbench.export): ONNX and Core ML files of a classifier version, from Python, CLI, HTTP, MLflow.

The session's `dogs` classifier is exported once per format for the whole module; the tests that
need a classifier to delete, hold or track train a small one of their own (embeddings cached).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import DOGS_JPG, TUTORIAL, Gate
from support.coreml_reference import evaluate
from workbench import ClassifierNotFound, InvalidRequest, Workbench
from workbench.core.spec import crop_pixels, lite0_spec, view_pixels
from workbench.images.decode import decode_image
from workbench.scoring.export import (
    COREML_EMBEDDING,
    COREML_INPUT,
    COREML_LABEL,
    COREML_PROBABILITIES,
    ONNX_INPUT,
    ONNX_OUTPUTS,
)
from workbench.server.app import create_app
from workbench.server.keys import KeyRing
from workbench.server.runner import ServerThread

pytestmark = pytest.mark.slow  # `make test-slow`: ONNX and Core ML exports checked against classify (6 min)

TUTORIAL_SETS = ("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats")
SCORE_TOLERANCE = 1e-4
VERSION = {"version": "2018-03-19"}
KEYS = {"me": "me-key-41f2", "other": "other-key-7c0a"}
SPEC = lite0_spec()


def tutorial_images() -> list[Path]:
    """The tutorial's 250 training images and dogs.jpg."""
    paths = [p for name in TUTORIAL_SETS for p in sorted((TUTORIAL / name).iterdir())]
    assert len(paths) == 250
    return [*paths, DOGS_JPG]


def model_pixels(path: Path) -> np.ndarray:
    """uint8 224 x 224 x 3 as the model wants it, decoded and cropped exactly as wb.classify does."""
    return crop_pixels(decode_image(path.read_bytes(), draft_size=SPEC.input_size_px), SPEC)


@pytest.fixture(scope="module")
def exported(dogs, tmp_path_factory) -> dict:
    """The dogs classifier exported in both formats (each built once), with its build times."""
    wb, cid = dogs
    folder = tmp_path_factory.mktemp("exports")
    files, seconds = {}, {}
    for format in ("onnx", "coreml"):
        started = time.perf_counter()
        files[format] = wb.export(cid, format=format, path=folder)
        seconds[format] = time.perf_counter() - started
    print(f"\nexport seconds {seconds}; bytes { {f: p.stat().st_size for f, p in files.items()} }")
    return {"wb": wb, "cid": cid, "files": files, "seconds": seconds}


def small_classifier(wb: Workbench, tutorial_zips: dict[str, Path]) -> str:
    """beagle vs husky with cats as negatives, ready (its embeddings come from the session cache)."""
    cid = wb.create_classifier(
        "pair",
        {"beagle": tutorial_zips["beagle"], "husky": tutorial_zips["husky"]},
        negative_examples=tutorial_zips["cats"],
    )["classifier_id"]
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    return cid


# ------------------------------------------------------------------ ONNX


def test_onnx_reproduces_classify_scores_on_the_tutorial_images(exported) -> None:
    wb, cid = exported["wb"], exported["cid"]
    paths = tutorial_images()
    answer = wb.classify(paths, classifier_ids=[cid], threshold=0.0)
    classes = [c["class"] for c in wb.get_classifier(cid)["classes"]]
    expected = np.array(
        [
            [{c["class"]: c["score"] for c in image["classifiers"][0]["classes"]}[name] for name in classes]
            for image in answer["images"]
        ]
    )
    session = ort.InferenceSession(str(exported["files"]["onnx"]), providers=["CPUExecutionProvider"])
    scores = []
    for path in paths:  # classify scores a wide image's best view (dogs.jpg has 3): the export scores each view
        views = view_pixels(decode_image(path.read_bytes(), draft_size=SPEC.input_size_px), SPEC)
        scores.append(session.run(["scores"], {ONNX_INPUT: np.stack(views)})[0].max(axis=0, keepdims=True))
    worst = float(np.abs(np.concatenate(scores) - expected).max())
    print(f"\nlargest |ONNX - wb.classify| score difference over {len(paths)} images: {worst:.2e}")
    assert worst <= SCORE_TOLERANCE
    assert expected.shape == (251, 4)  # every class scored for every image (threshold 0)


def test_onnx_file_is_self_contained_with_uint8_input_and_metadata(exported) -> None:
    wb, cid = exported["wb"], exported["cid"]
    model = onnx.load_model_from_string(exported["files"]["onnx"].read_bytes())
    onnx.checker.check_model(model)
    assert not [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    (given,) = model.graph.input
    dims = [d.dim_value or d.dim_param for d in given.type.tensor_type.shape.dim]
    assert given.name == ONNX_INPUT and given.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert isinstance(dims[0], str) and dims[1:] == [224, 224, 3]
    assert [o.name for o in model.graph.output] == list(ONNX_OUTPUTS)
    meta = {p.key: p.value for p in model.metadata_props}
    classes = [c["class"] for c in wb.get_classifier(cid)["classes"]]
    assert meta["classifier_id"] == cid and meta["name"] == "dogs" and meta["version"] == "2"
    assert json.loads(meta["classes"]) == classes and meta["input_size"] == "224"
    assert "bicubic" in meta["preprocessing"] and "centre crop" in meta["preprocessing"]
    assert meta["workbench_version"]
    session = ort.InferenceSession(str(exported["files"]["onnx"]), providers=["CPUExecutionProvider"])
    scores, embedding = session.run(None, {ONNX_INPUT: model_pixels(DOGS_JPG)[None]})
    assert scores.shape == (1, 4) and embedding.shape == (1, 1280)
    assert np.all((scores >= 0) & (scores <= 1))


# ------------------------------------------------------------------ Core ML


def test_coreml_spec_input_outputs_labels_metadata(exported) -> None:
    import coremltools as ct

    wb, cid = exported["wb"], exported["cid"]
    spec = ct.utils.load_spec(str(exported["files"]["coreml"]))
    assert spec.WhichOneof("Type") == "neuralNetworkClassifier" and spec.specificationVersion <= 4  # iOS 13+
    (image,) = spec.description.input
    assert image.name == COREML_INPUT and image.type.WhichOneof("Type") == "imageType"
    assert (image.type.imageType.width, image.type.imageType.height) == (224, 224)
    assert image.type.imageType.colorSpace == ct.proto.FeatureTypes_pb2.ImageFeatureType.RGB
    (pre,) = spec.neuralNetworkClassifier.preprocessing
    assert pre.scaler.channelScale == pytest.approx(1 / 128)
    assert [pre.scaler.redBias, pre.scaler.greenBias, pre.scaler.blueBias] == pytest.approx([-127 / 128] * 3)
    outputs = {o.name: o.type.WhichOneof("Type") for o in spec.description.output}
    assert outputs == {
        COREML_PROBABILITIES: "dictionaryType",
        COREML_LABEL: "stringType",
        COREML_EMBEDDING: "multiArrayType",
    }
    assert spec.description.predictedFeatureName == COREML_LABEL
    assert spec.description.predictedProbabilitiesName == COREML_PROBABILITIES
    classes = [c["class"] for c in wb.get_classifier(cid)["classes"]]
    assert list(spec.neuralNetworkClassifier.stringClassLabels.vector) == classes
    meta = dict(spec.description.metadata.userDefined)
    assert meta["classifier_id"] == cid and meta["version"] == "2" and json.loads(meta["classes"]) == classes
    layers = spec.neuralNetworkClassifier.layers
    assert not any(layer.WhichOneof("layer") == "softmax" for layer in layers)  # independent per-class scores
    sigmoids = [
        layer.name
        for layer in layers[-6:]
        if layer.WhichOneof("layer") == "activation" and layer.activation.WhichOneof("NonlinearityType") == "sigmoid"
    ]
    assert layers[-1].WhichOneof("layer") == "multiply" and sigmoids  # head sigmoid x familiarity gate


def test_coreml_layers_reproduce_classify_scores_without_a_core_ml_runtime(exported) -> None:
    """What Linux can check: the file's own layers and weights, evaluated by tests/coreml_reference.py.

    Not checked here (needs macOS or iOS): Core ML's own prediction (`MLModel.predict` needs
    Apple's framework; coremltools on Linux reads and writes specs only), float16 compute on the
    GPU or Neural Engine, and Vision's resizing of frames that are not already 224x224.
    """
    import coremltools as ct

    wb, cid = exported["wb"], exported["cid"]
    spec = ct.utils.load_spec(str(exported["files"]["coreml"]))
    paths = [DOGS_JPG, *tutorial_images()[::10]]
    answer = wb.classify(paths, classifier_ids=[cid], threshold=0.0)
    classes = list(spec.neuralNetworkClassifier.stringClassLabels.vector)
    expected = np.array(
        [
            [{c["class"]: c["score"] for c in image["classifiers"][0]["classes"]}[name] for name in classes]
            for image in answer["images"]
        ]
    )
    views = [view_pixels(decode_image(p.read_bytes(), draft_size=SPEC.input_size_px), SPEC) for p in paths]
    got = evaluate(spec, np.stack([pixels for image in views for pixels in image]))
    starts = np.cumsum([0, *[len(image) for image in views][:-1]])
    best_view = np.maximum.reduceat(
        got[COREML_PROBABILITIES], starts, axis=0
    )  # classify scores a wide image's best view
    worst = float(np.abs(best_view - expected).max())
    print(f"\nlargest |Core ML layers - wb.classify| score difference over {len(paths)} images: {worst:.2e}")
    assert worst <= SCORE_TOLERANCE
    assert got[COREML_EMBEDDING].shape == (sum(len(image) for image in views), 1280)


# ------------------------------------------------------------------ Python and CLI fronts


def test_core_ml_enabled_once_a_version_serves(exported) -> None:
    wb, cid = exported["wb"], exported["cid"]
    assert wb.get_classifier(cid)["core_ml_enabled"] is True
    assert [c["core_ml_enabled"] for c in wb.list_classifiers(verbose=True)["classifiers"]] == [True]


def test_export_refuses_unknown_formats_versions_and_owners(exported, tmp_path) -> None:
    wb, cid = exported["wb"], exported["cid"]
    with pytest.raises(InvalidRequest, match="format must be one of 'onnx', 'coreml'"):
        wb.export(cid, format="tflite", path=tmp_path)
    with pytest.raises(ClassifierNotFound, match="Version 9"):
        wb.export(cid, format="onnx", version=9, path=tmp_path)
    with pytest.raises(ClassifierNotFound):
        wb.as_owner("someone-else").export(cid, format="onnx", path=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_earlier_version_exports_with_its_own_classes(exported, tmp_path) -> None:
    wb, cid = exported["wb"], exported["cid"]
    path = wb.export(cid, format="onnx", version=1, path=tmp_path / "v1.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["version"] == "1" and json.loads(meta["classes"]) == ["beagle", "husky", "goldenretriever"]


def test_cli_export_writes_the_same_bytes(exported, tmp_path) -> None:
    wb, cid = exported["wb"], exported["cid"]
    target = tmp_path / "dogs.mlmodel"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench",
            "--home",
            str(wb.home),
            "export",
            cid,
            "--format",
            "coreml",
            "-o",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    told = json.loads(done.stdout)
    assert told == {
        "classifier_id": cid,
        "version": 2,
        "format": "coreml",
        "path": str(target),
        "bytes": target.stat().st_size,
    }
    assert target.read_bytes() == exported["files"]["coreml"].read_bytes()
    unknown = subprocess.run(
        [sys.executable, "-m", "workbench", "--home", str(wb.home), "export", "nothing_1", "--format", "onnx"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert unknown.returncode == 1 and "nothing_1" in unknown.stderr and list(tmp_path.iterdir()) == [target]


# ------------------------------------------------------------------ HTTP


def test_http_core_ml_model_is_the_exported_file_and_owner_isolated(exported) -> None:
    wb, cid = exported["wb"], exported["cid"]
    keys = KeyRing(wb.home, env_value=",".join(f"{o}:{k}" for o, k in KEYS.items()))
    with ServerThread(create_app(wb, keys=keys)) as url:
        mine = httpx.get(
            f"{url}/v3/classifiers/{cid}/core_ml_model", params=VERSION, auth=("apikey", KEYS["me"]), timeout=120
        )
        theirs = httpx.get(f"{url}/v3/classifiers/{cid}/core_ml_model", params=VERSION, auth=("apikey", KEYS["other"]))
        record = httpx.get(f"{url}/v3/classifiers/{cid}", params=VERSION, auth=("apikey", KEYS["me"]))
    assert mine.status_code == 200 and mine.content == exported["files"]["coreml"].read_bytes()
    assert mine.headers["content-type"] == "application/octet-stream"
    assert mine.headers["content-disposition"] == f'attachment; filename="{cid}.mlmodel"'
    assert theirs.status_code == 404 and theirs.json()["code"] == 404
    assert record.json()["core_ml_enabled"] is True


def test_one_build_while_other_requests_answer_then_gone_with_the_classifier(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    cid = small_classifier(wb, tutorial_zips)
    gate, builds = Gate(stage="building"), []
    wb.exports.listeners += [builds.append, gate]
    keys = KeyRing(wb.home, env_value=f"me:{KEYS['me']}")
    auth, route = ("apikey", KEYS["me"]), f"/v3/classifiers/{cid}/core_ml_model"
    with ServerThread(create_app(wb, keys=keys)) as url:
        downloads: list[httpx.Response] = []

        def download() -> None:
            downloads.append(httpx.get(url + route, params=VERSION, auth=auth, timeout=300))

        first, second = threading.Thread(target=download), threading.Thread(target=download)
        first.start()
        assert gate.reached.wait(120), "the build never started"
        second.start()
        listing = httpx.get(f"{url}/v3/classifiers", params=VERSION, auth=auth, timeout=10)
        assert listing.status_code == 200 and not downloads  # answered while the build is held
        gate.opened.set()
        first.join(300), second.join(300)
        assert [d.status_code for d in downloads] == [200, 200] and downloads[0].content == downloads[1].content
        assert [e.stage for e in builds] == ["building", "built"]  # one build for both requests
        cached = wb.exports.path(cid, 1, "coreml")
        assert cached.read_bytes() == downloads[0].content
        assert httpx.delete(f"{url}/v3/classifiers/{cid}", params=VERSION, auth=auth).status_code == 200
        gone = httpx.get(url + route, params=VERSION, auth=auth)
    assert gone.status_code == 404 and not cached.exists()
    with pytest.raises(ClassifierNotFound):
        wb.export(cid, format="coreml")


def test_a_classifier_still_training_has_no_export(make_workbench, tutorial_zips) -> None:
    wb = make_workbench(train=False)  # stored, not trained: stays `training`
    cid = wb.create_classifier("pair", {"beagle": tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"])[
        "classifier_id"
    ]
    assert wb.get_classifier(cid)["core_ml_enabled"] is False
    with pytest.raises(InvalidRequest, match="no trained version to export"):
        wb.core_ml_model(cid)


# ------------------------------------------------------------------ MLflow, prebuilt after training


def test_prebuilt_after_training_and_logged_as_an_mlflow_artifact(make_workbench, tutorial_zips, tmp_path) -> None:
    from mlflow import MlflowClient

    wb = make_workbench(tracking_uri=tmp_path / "mlruns", prebuild_exports=("coreml",))
    done = threading.Event()
    wb.exports.listeners.append(lambda event: event.stage in ("built", "failed") and done.set())
    cid = small_classifier(wb, tutorial_zips)
    assert done.wait(120), "no Core ML build started after the training"  # started by the `ready` event
    built = wb.exports.path(cid, 1, "coreml")
    assert built.exists()
    wb.exports.join(timeout=120)  # the MLflow hook, started before `built` is told
    assert wb.tracker.warnings == {}
    client = MlflowClient(tracking_uri=wb.tracker.uri)
    experiment = client.get_experiment_by_name(cid)
    (run,) = client.search_runs([experiment.experiment_id], filter_string="tags.`workbench.version` = '1'")
    assert [a.path for a in client.list_artifacts(run.info.run_id, "export")] == [f"export/{cid}-v1.mlmodel"]
    local = client.download_artifacts(run.info.run_id, f"export/{cid}-v1.mlmodel", str(tmp_path))
    assert Path(local).read_bytes() == built.read_bytes()


def test_the_readme_example_runs_the_onnx_file_with_plain_onnxruntime_and_pil(exported) -> None:
    wb, cid = exported["wb"], exported["cid"]
    paths = [DOGS_JPG, *tutorial_images()[::50]]
    example = Path(__file__).resolve().parents[2] / "examples" / "onnx_classify.py"
    done = subprocess.run(
        [sys.executable, str(example), str(exported["files"]["onnx"]), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    answer = wb.classify(paths, classifier_ids=[cid], threshold=0.0)
    for line, image in zip(printed, answer["images"], strict=True):
        expected = {c["class"]: c["score"] for c in image["classifiers"][0]["classes"]}
        assert line["scores"].keys() == expected.keys()
        assert max(abs(line["scores"][k] - expected[k]) for k in expected) <= SCORE_TOLERANCE


def test_cli_onnx_export_stderr_has_no_torchvision_notices(make_workbench, tutorial_zips, tmp_path) -> None:
    """torch's exporter logs "torchvision is not installed. Skipping torchvision::nms" (and 3 more) on every build;
    workbench never uses those ops, so a fresh build in a fresh process says nothing of them."""
    wb = make_workbench()
    cid = small_classifier(wb, tutorial_zips)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench",
            "--home",
            str(wb.home),
            "export",
            cid,
            "--format",
            "onnx",
            "-o",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["format"] == "onnx"
    assert "torchvision" not in done.stderr, done.stderr
