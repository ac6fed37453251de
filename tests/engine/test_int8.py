"""The INT8 backbone keeps the answers: the issue's agreement criteria, measured on the tutorial images.

The quantized model is built once per machine (tens of seconds on 2 shared cores, calibrating on the
photos shipped in the package, none of them a tutorial image) and cached beside the FP32 export;
later sessions load it in well under a second. The tutorial images are all held out from it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import DOGS_JPG, TUTORIAL
from workbench import Workbench
from workbench.analysis.training import Heads
from workbench.core.limits import Limits
from workbench.engine import quantize
from workbench.engine.backbone import Backbone
from workbench.engine.onnx_engine import CACHE_DIR_ENV, export_lock
from workbench.engine.quantize import id_suffix
from workbench.images.decode import backbone_input
from workbench.pyfunc import ClassifierModel
from workbench.store.embeddings import EmbeddingCache
from workbench.tracking.run_record import version_params

EVAL_FOLDERS = ("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats", "test")  # 250 + test/
MIN_TOP1_AGREEMENT = 0.97
MIN_MEDIAN_COSINE, MIN_COSINE = 0.98, 0.93
SAME_SCORE = 1e-5  # the same FP32 model on the same pixels; batches of other sizes round differently


def _images() -> list[Path]:
    return [
        p
        for folder in EVAL_FOLDERS
        for p in sorted((TUTORIAL / folder).iterdir())
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    ]


@pytest.fixture(scope="module")
def passes() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(embeddings, probabilities) of every evaluation image from each precision."""
    fp32, int8 = Backbone(engine="onnxruntime", precision="fp32"), Backbone(precision="int8")
    spec = fp32.spec
    tensors = [backbone_input(path.read_bytes(), spec, Limits(), path.name)[0] for path in _images()]
    return {"fp32": fp32.run(tensors), "int8": int8.run(tensors)}


def test_int8_agrees_with_fp32_on_imagenet_top1_and_embeddings(passes: dict) -> None:
    (fp32_emb, fp32_prob), (int8_emb, int8_prob) = passes["fp32"], passes["int8"]
    assert len(fp32_emb) >= 257
    agreement = float((fp32_prob.argmax(1) == int8_prob.argmax(1)).mean())
    cosine = (fp32_emb * int8_emb).sum(1) / np.linalg.norm(fp32_emb, axis=1) / np.linalg.norm(int8_emb, axis=1)
    print(
        f"INT8 vs FP32 on {len(cosine)} images: top-1 agreement {agreement:.3f}, "
        f"cosine median {np.median(cosine):.4f} min {cosine.min():.4f}"
    )
    assert agreement >= MIN_TOP1_AGREEMENT
    assert np.median(cosine) >= MIN_MEDIAN_COSINE and cosine.min() >= MIN_COSINE


def test_an_int8_process_keeps_the_scores_of_a_version_trained_in_fp32(
    dogs: tuple[Workbench, str], embedding_cache: Path
) -> None:
    """The tutorial classifier was trained in FP32: an INT8 process scores it on FP32 embeddings (the backbone id
    its version recorded), so its answers do not move until a retraining re-embeds it in INT8."""
    wb, cid = dogs
    int8 = Workbench(
        wb.home, embedding_cache=embedding_cache, tracking_uri=False, train=False, resume=False, precision="int8"
    )
    folders = [TUTORIAL / folder for folder in EVAL_FOLDERS]

    def scores(bench: Workbench) -> np.ndarray:
        answer = bench.classify(folders, classifier_ids=[cid], threshold=0.0)
        return np.array(
            [
                [c["score"] for c in sorted(image["classifiers"][0]["classes"], key=lambda c: c["class"])]
                for image in answer["images"]
            ]
        )

    int8.backbone.prepare(wait=True)
    assert int8.backbone.serving_precision == "int8"
    fp32_scores, int8_scores = scores(wb), scores(int8)
    worst = float(np.abs(fp32_scores - int8_scores).max())
    print(f"FP32 version's scores, INT8 process vs FP32: largest difference {worst:.2g} over {fp32_scores.size}")
    assert worst <= SAME_SCORE
    tops = [
        bench.classify(DOGS_JPG, classifier_ids=[cid])["images"][0]["classifiers"][0]["classes"][0]
        for bench in (wb, int8)
    ]
    assert tops[0]["class"] == tops[1]["class"] and min(top["score"] for top in tops) >= 0.5, tops
    assert int8.backbone.backbone_id == wb.backbone.backbone_id + id_suffix("int8")


def test_int8_has_its_own_id_and_refuses_torch() -> None:
    int8 = Backbone(precision="int8")
    int8.prepare(wait=True)
    assert int8.backbone_id == Backbone(precision="fp32").backbone_id + id_suffix("int8") == int8.id_for("int8")
    with pytest.raises(ValueError, match="int8"):
        Backbone(precision="int8", engine="torch")
    with pytest.raises(ValueError, match="precision"):
        Backbone(precision="int4")


def test_each_version_records_the_backbone_and_precision_that_embedded_it(
    dogs: tuple[Workbench, str], tutorial_zips: dict[str, Path], tmp_path: Path
) -> None:
    wb, fp32_cid = dogs
    # a cache of this test's own: a delete elsewhere forgets its images' embeddings in the shared one
    embedding_cache = tmp_path / "embeddings.db"
    int8 = Workbench(tmp_path / "int8-home", embedding_cache=embedding_cache, tracking_uri=False, precision="int8")
    int8.backbone.prepare(wait=True)  # INT8 built: versions trained before it would be FP32 ones
    fp32 = Workbench(tmp_path / "fp32-home", embedding_cache=embedding_cache, tracking_uri=False)
    sets = {"beagle": tutorial_zips["beagle"], "husky": tutorial_zips["husky"]}
    cid = int8.create_classifier("int8 dogs", sets, negative_examples=tutorial_zips["cats"])["classifier_id"]
    assert int8.wait(cid, timeout=300)["status"] == "ready"
    small_fp32 = fp32.create_classifier("fp32 dogs", sets, negative_examples=tutorial_zips["cats"])["classifier_id"]
    assert fp32.wait(small_fp32, timeout=300)["status"] == "ready"
    fp32_metrics, int8_metrics = wb.versions(fp32_cid)[-1]["metrics"], int8.versions(cid)[-1]["metrics"]
    assert (fp32_metrics["backbone_id"], fp32_metrics["precision"]) == (wb.backbone.backbone_id, "fp32")
    assert (int8_metrics["backbone_id"], int8_metrics["precision"]) == (int8.backbone.backbone_id, "int8")
    assert int8_metrics["backbone_id"] == fp32_metrics["backbone_id"] + id_suffix("int8")

    # the cache keeps one embedding per image and backbone: the same beagle, embedded by each precision
    sha = next(r.sha256 for r in int8.store.examples(cid) if r.class_name == "beagle")
    cache = EmbeddingCache(embedding_cache)
    [fp32_vector] = cache.get_many([sha], wb.backbone.backbone_id).values()
    [int8_vector] = cache.get_many([sha], int8.backbone.backbone_id).values()
    assert fp32_vector.shape == int8_vector.shape and not np.array_equal(fp32_vector, int8_vector)

    # MLflow's params and the logged pyfunc name the version's backbone, whatever the logging process runs
    version = int8.store.version(cid, 1)
    params = version_params(version, wb.backbone)
    assert (params["backbone_id"], params["precision"]) == (int8_metrics["backbone_id"], "int8")
    heads = Heads.from_bytes(int8.store.head_path(cid, 1).read_bytes())
    model = ClassifierModel(heads, {"backbone_id": params["backbone_id"], "precision": "int8"})
    assert model.backbone.backbone_id == int8.backbone.backbone_id


@pytest.mark.slow
def test_int8_calibrates_in_the_background_while_fp32_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedding_cache: Path
) -> None:
    """A fresh cache: classify answers at once in FP32 while the INT8 model is calibrated in the background (held
    here on the export lock another process would hold), then in INT8 once the caller waits for it explicitly."""
    shared = Backbone(engine="onnxruntime", precision="fp32")
    shared.prepare(wait=True)
    cache = tmp_path / "model-cache"
    (cache / "onnx").mkdir(parents=True)
    shutil.copyfile(shared.fp32_path, cache / "onnx" / shared.fp32_path.name)  # the FP32 export, not the INT8 model
    monkeypatch.setenv(CACHE_DIR_ENV, str(cache))
    wb = Workbench(tmp_path / "home", embedding_cache=embedding_cache, tracking_uri=False, precision="int8")
    int8_path = quantize.int8_path(cache / "onnx" / shared.fp32_path.name)
    assert wb.backbone.onnx_path == int8_path and not int8_path.exists()

    def top(answer: dict) -> dict:
        return answer["images"][0]["classifiers"][0]["classes"][0]

    with export_lock(int8_path):  # the calibration thread waits here
        before = wb.classify(DOGS_JPG)
        assert wb.backbone.serving_precision == "fp32" and wb.backbone.engine == "onnxruntime"
        assert wb.backbone.backbone_id == shared.backbone_id and not int8_path.exists()
    assert wb.backbone.prepare(wait=True) == "onnxruntime"  # the caller waits explicitly
    assert int8_path.exists() and not list(int8_path.parent.glob("*.tmp-*"))  # renamed into place
    assert wb.backbone.serving_precision == "int8" and wb.backbone.backbone_id == shared.backbone_id + id_suffix("int8")
    after = wb.classify(DOGS_JPG)
    assert before["images"][0]["classifiers"][0]["classifier_id"] == "default"
    assert top(before)["class"] == top(after)["class"]

    def scores(answer: dict) -> list[float]:
        return [c["score"] for c in answer["images"][0]["classifiers"][0]["classes"]]

    assert scores(before) != scores(after)  # another model answered
    again = Backbone(precision="int8")  # a later process on this machine: the cached INT8 model loads at once
    assert again.serving_precision == "int8" and again.backbone_id == wb.backbone.backbone_id
