"""A store that switches precision: versions trained in FP32 keep serving on FP32 embeddings while a background
training re-embeds, in INT8, only the examples the cache lacks, and saves INT8 versions.

The training is held at a stage by the Gate listener (no sleeps); real tutorial images, a real store.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import DOGS_JPG, TUTORIAL, Gate
from support.sets import TRAIN_S, create_small
from workbench import Workbench
from workbench.core.limits import Limits
from workbench.engine import quantize
from workbench.engine.onnx_engine import CACHE_DIR_ENV, export_lock
from workbench.images.decode import backbone_input
from workbench.store.embeddings import EmbeddingCache

SAME_SCORE = 1e-5  # the same FP32 model on the same pixels
IMAGES = [DOGS_JPG, *(TUTORIAL / "test" / f"{n}.jpg" for n in range(7))]  # none of them trained it


def _scores(wb: Workbench, cid: str) -> np.ndarray:
    answer = wb.classify(IMAGES, classifier_ids=cid, threshold=0.0)
    return np.array(
        [
            [c["score"] for c in sorted(image["classifiers"][0]["classes"], key=lambda c: c["class"])]
            for image in answer["images"]
        ]
    )


def test_switching_to_int8_retrains_in_the_background_while_fp32_heads_serve(tmp_path: Path) -> None:
    cache_path = tmp_path / "embeddings.db"  # this test's own: it counts what each training embedded
    home = tmp_path / "home"
    fp32 = Workbench(home, embedding_cache=cache_path, tracking_uri=False, precision="fp32")
    cid = create_small(fp32, tmp_path / "zips")
    fp32_id = fp32.backbone.backbone_id
    assert fp32.versions(cid)[-1]["metrics"]["backbone_id"] == fp32_id
    before = _scores(fp32, cid)

    # the same home, opened with precision int8 (resume off: this test starts the switch itself)
    int8 = Workbench(home, embedding_cache=cache_path, tracking_uri=False, precision="int8", resume=False)
    int8.backbone.prepare(wait=True)
    int8_id = int8.backbone.backbone_id
    assert int8_id != fp32_id and int8.backbone.serving_precision == "int8"

    # the beagles already have INT8 embeddings (an earlier INT8 process embedded them): they are not redone
    beagles = sorted({r.sha256 for r in int8.store.examples(cid) if r.class_name == "beagle"})
    spec, cache = int8.backbone.spec, EmbeddingCache(cache_path)
    tensors = [backbone_input(int8.store.read_blob(sha), spec, Limits())[0] for sha in beagles]
    cache.put_many(dict(zip(beagles, int8.backbone.run(tensors, int8_id)[0], strict=True)), int8_id)
    everyone = {r.sha256 for r in int8.store.examples(cid)}

    gate = Gate("fitting")
    int8.subscribe(gate)
    assert int8.engine.switch_precision() == [cid]
    assert gate.reached.wait(TRAIN_S), "the re-embedding training never reached fitting"
    assert int8.get_classifier(cid)["status"] == "retraining"
    assert len(cache.get_many(sorted(everyone), int8_id)) == len(everyone)  # re-embedded, beside the FP32 ones
    assert len(cache.get_many(sorted(everyone), fp32_id)) == len(everyone)
    during = _scores(int8, cid)  # the FP32 version keeps answering, on FP32 embeddings
    assert float(np.abs(during - before).max()) <= SAME_SCORE
    gate.opened.set()

    record = int8.wait(cid, timeout=TRAIN_S)
    assert record["status"] == "ready", record
    newest = int8.versions(cid)[-1]
    metrics = newest["metrics"]
    assert (metrics["backbone_id"], metrics["precision"]) == (int8_id, "int8")
    assert (metrics["images_cached"], metrics["images_embedded"]) == (len(beagles), len(everyone) - len(beagles))
    assert int8.store.classifier(cid).serving_version == 2
    after = _scores(int8, cid)  # now the INT8 heads on INT8 embeddings: close to FP32's, not the same
    assert after.shape == before.shape and not np.array_equal(after, before)
    assert int8.engine.switch_precision() == []  # nothing left to switch


@pytest.mark.slow
def test_an_int8_process_switches_the_store_once_its_background_calibration_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`workbench serve --precision int8` on an FP32 store, on a machine without the INT8 model: FP32 answers
    while INT8 calibrates (held here on the export lock), then the process retrains the store by itself."""
    cache_path = tmp_path / "embeddings.db"
    home = tmp_path / "home"
    fp32 = Workbench(home, embedding_cache=cache_path, tracking_uri=False, precision="fp32")
    cid = create_small(fp32, tmp_path / "zips")
    before = _scores(fp32, cid)
    model_cache = tmp_path / "model-cache"
    (model_cache / "onnx").mkdir(parents=True)
    shutil.copyfile(fp32.backbone.fp32_path, model_cache / "onnx" / fp32.backbone.fp32_path.name)
    monkeypatch.setenv(CACHE_DIR_ENV, str(model_cache))
    int8_path = quantize.int8_path(model_cache / "onnx" / fp32.backbone.fp32_path.name)

    gate = Gate("fitting")
    with export_lock(int8_path):  # the calibration waits here
        int8 = Workbench(home, embedding_cache=cache_path, tracking_uri=False, precision="int8")  # resume, train
        int8.subscribe(gate)  # opens it: the INT8 calibration starts in the background
        assert float(np.abs(_scores(int8, cid) - before).max()) <= SAME_SCORE  # FP32 serves meanwhile
        assert int8.backbone.serving_precision == "fp32" and int8.get_classifier(cid)["status"] == "ready"
    int8.backbone.prepare(wait=True)  # calibrated; its listener has queued the retraining
    assert int8.backbone.serving_precision == "int8" and int8_path.exists()
    assert gate.reached.wait(TRAIN_S), "the switch never started a training"
    assert int8.get_classifier(cid)["status"] == "retraining"
    assert float(np.abs(_scores(int8, cid) - before).max()) <= SAME_SCORE  # the FP32 version serves on
    gate.opened.set()
    assert int8.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    metrics = int8.versions(cid)[-1]["metrics"]
    assert (metrics["backbone_id"], metrics["precision"]) == (int8.backbone.backbone_id, "int8")
    assert int8.store.classifier(cid).serving_version == 2
