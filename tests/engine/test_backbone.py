"""The backbone: ImageNet answers on real images, ONNX Runtime matching torch, fallback, thread safety, cache."""

from __future__ import annotations

import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.core.spec import preprocess
from workbench.engine.backbone import Backbone
from workbench.engine.batching import BatchingRunner
from workbench.images.decode import decode_image

TUTORIAL = Path(__file__).resolve().parents[2] / "data" / "tutorial"
CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
DOG_CLASSES = range(151, 269)


def _images(folder: str, count: int) -> list[Image.Image]:
    paths = sorted((TUTORIAL / folder).iterdir())[:count]
    return [decode_image(p.read_bytes(), draft_size=224) for p in paths]


@pytest.fixture(scope="module")
def onnx_backbone() -> Backbone:
    """The ONNX Runtime backbone from the shared per-user cache (exported on the first run on a machine)."""
    backbone = Backbone(engine="onnxruntime")
    assert backbone.prepare() == "onnxruntime"
    return backbone


@pytest.fixture(scope="module")
def torch_backbone() -> Backbone:
    return Backbone(engine="torch")


def test_preprocess_centre_crops_to_the_input_size() -> None:
    spec = Backbone().spec
    wide = Image.new("RGB", (600, 300), (0, 0, 0))
    wide.paste((255, 255, 255), (250, 0, 350, 300))  # a white stripe in the middle
    tensor = preprocess(wide, spec)
    assert tensor.shape == (3, 224, 224) and tensor.dtype == np.float32
    assert tensor[:, :, 112].min() == pytest.approx((255 - spec.mean) / spec.std)
    assert tensor[:, :, 0].max() == pytest.approx((0 - spec.mean) / spec.std)


def test_onnx_runtime_matches_torch_on_tutorial_images(onnx_backbone: Backbone, torch_backbone: Backbone) -> None:
    images = _images("cats", 3) + _images("husky", 3)
    onnx_emb, onnx_prob = onnx_backbone.embed_images(images)
    torch_emb, torch_prob = torch_backbone.embed_images(images)
    assert onnx_emb.shape == (6, 1280) and onnx_prob.shape == (6, 1000)
    assert np.abs(onnx_emb - torch_emb).max() <= 1e-4
    assert np.abs(onnx_prob - torch_prob).max() <= 1e-4
    np.testing.assert_allclose(onnx_prob.sum(axis=1), 1.0, atol=1e-5)


def test_tutorial_images_get_their_imagenet_kind(onnx_backbone: Backbone) -> None:
    cats = onnx_backbone.embed_images(_images("cats", 5))[1]
    dogs = onnx_backbone.embed_images(_images("beagle", 5))[1]
    assert sum(int(top) in CAT_CLASSES for top in cats.argmax(axis=1)) >= 3
    assert all(int(top) in DOG_CLASSES for top in dogs.argmax(axis=1))


def test_run_with_no_images_gives_empty_arrays(onnx_backbone: Backbone) -> None:
    embeddings, probabilities = onnx_backbone.run([])
    assert embeddings.shape == (0, 1280) and probabilities.shape == (0, 1000)


def test_failed_export_leaves_torch_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setattr(tempfile, "tempdir", str(blocked))  # and no scratch folder to export to instead
    backbone = Backbone(cache_dir=blocked)
    tensors = [preprocess(image, backbone.spec) for image in _images("cats", 2)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backbone.prepare(wait=True)
    assert backbone.engine == "torch" and backbone.export_error is not None
    assert any("stays on torch" in str(w.message) for w in caught)
    embeddings, probabilities = backbone.run(tensors)
    assert embeddings.shape == (2, 1280) and int(probabilities[0].argmax()) in CAT_CLASSES


def test_first_run_with_an_empty_cache_is_served_by_onnx_runtime(tmp_path: Path) -> None:
    """The export (built from the weights, about 1.5 s) comes first: torch never competes with it for the cores."""
    backbone = Backbone(cache_dir=tmp_path)
    tensors = [preprocess(image, backbone.spec) for image in _images("cats", 2)]
    embeddings, probabilities = backbone.run(tensors)
    assert backbone.engine == "onnxruntime" and backbone._torch is None and backbone.onnx_path.exists()
    assert embeddings.shape == (2, 1280) and int(probabilities[0].argmax()) in CAT_CLASSES


def test_onnxruntime_engine_raises_when_it_cannot_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(blocked))  # and no scratch folder to export to instead
    with pytest.raises(OSError):
        Backbone(cache_dir=blocked, engine="onnxruntime").prepare()


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="engine"):
        Backbone(engine="tensorflow")


def embeddings_from_threads(runner, tensors: list[np.ndarray]) -> list[np.ndarray]:
    """Each tensor's embedding, every one asked for by a thread of its own, all at once."""
    got: dict[int, np.ndarray] = {}

    def one(i: int) -> None:
        got[i] = runner.run([tensors[i]])[0][0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(tensors))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [got[i] for i in range(len(tensors))]


def test_concurrent_runs_give_the_same_answers_as_one_at_a_time(onnx_backbone: Backbone) -> None:
    tensors = [preprocess(image, onnx_backbone.spec) for image in _images("dalmatian", 6)]
    expected = [onnx_backbone.run([t])[0][0] for t in tensors]
    for got, vector in zip(embeddings_from_threads(onnx_backbone, tensors), expected, strict=True):
        np.testing.assert_allclose(got, vector, atol=1e-5)


def test_lane_passes_side_by_side_match_the_shared_pass_bit_for_bit(onnx_backbone: Backbone) -> None:
    tensors = [preprocess(image, onnx_backbone.spec) for image in _images("beagle", 10)]  # two batches
    shared = onnx_backbone.run_dense(tensors)
    got: dict[int, object] = {}

    def lane(k: int) -> None:
        got[k] = onnx_backbone.run_dense(tensors, lane=True)

    threads = [threading.Thread(target=lane, args=(k,)) for k in range(2)]  # the single-threaded session, twice at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert onnx_backbone.lanes >= 1
    for dense in got.values():
        for name in ("embeddings", "probabilities", "window_probabilities", "features"):
            np.testing.assert_array_equal(getattr(dense, name), getattr(shared, name))
    np.testing.assert_array_equal(onnx_backbone.run(tensors, lane=True)[1], onnx_backbone.run(tensors)[1])


@pytest.mark.parametrize("count", [9, 17, 250, 1001])
def test_lane_batches_cover_the_call_in_order_and_shrink_at_its_end(onnx_backbone: Backbone, count: int) -> None:
    batches = onnx_backbone.lane_batches(count)
    assert [i for batch in batches for i in batch] == list(range(count))
    shares = 2 * onnx_backbone.lanes
    for batch in batches:
        left = count - batch.start
        assert 1 <= len(batch) <= min(onnx_backbone.batch_size, max(1, -(-left // shares)))
    if count > shares * onnx_backbone.batch_size:
        assert len(batches[0]) == onnx_backbone.batch_size  # full batches while many images are left
    assert all(len(batch) <= 2 for batch in batches[-shares:])  # each lane's last passes: an image or two


def test_batching_runner_answers_each_caller_with_its_own_image(onnx_backbone: Backbone) -> None:
    runner = BatchingRunner(onnx_backbone._forward, max_images=4, wait_seconds=0.01)
    tensors = [preprocess(image, onnx_backbone.spec) for image in _images("goldenretriever", 6)]
    expected = onnx_backbone.run(tensors)[0]
    for got, vector in zip(embeddings_from_threads(runner, tensors), expected, strict=True):
        np.testing.assert_allclose(got, vector, atol=1e-5)


def test_batching_runner_passes_errors_to_the_caller(onnx_backbone: Backbone) -> None:
    runner = BatchingRunner(onnx_backbone._forward, max_images=8)
    with pytest.raises(Exception, match="invalid dimensions"):
        runner.run([np.zeros((3, 10, 10), np.float32)])  # wrong input size: the engine refuses it
    assert runner.run([np.zeros((3, 224, 224), np.float32)])[0].shape == (1, 1280)


def test_concurrent_single_image_calls_share_passes(onnx_backbone: Backbone) -> None:
    """8 threads asking for one image each while a pass runs: the waiting 7 go through together."""
    tensors = [preprocess(image, onnx_backbone.spec) for image in _images("husky", 8)]
    passes: list[int] = []
    running, queued = threading.Event(), threading.Event()

    def forward(batch: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        if not passes:
            running.set()
            queued.wait(30)  # hold the first pass until the other callers are queued behind it
        passes.append(len(batch))
        return onnx_backbone._forward(batch)

    runner = BatchingRunner(forward, max_images=8)
    results: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        results[i] = runner.run([tensors[i]])[0][0]

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert running.wait(30)
    others = [threading.Thread(target=call, args=(i,)) for i in range(1, 8)]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 30
    while runner._queue.qsize() < 7 and time.monotonic() < deadline:
        time.sleep(0.001)
    queued.set()
    for thread in [first, *others]:
        thread.join(30)
    assert passes == [1, 7]
    expected = onnx_backbone.run(tensors)[0]
    for i in range(8):
        np.testing.assert_allclose(results[i], expected[i], atol=1e-5)


def test_dense_pass_keeps_the_embedding_and_pools_windows_of_the_feature_map(
    onnx_backbone: Backbone, torch_backbone: Backbone
) -> None:
    images = _images("husky", 3)
    tensors = [preprocess(image, onnx_backbone.spec) for image in images]
    embeddings, _ = onnx_backbone.run(tensors)
    dense = onnx_backbone.run_dense(tensors)
    np.testing.assert_array_equal(dense.embeddings, embeddings)  # the embedding cache stays valid
    np.testing.assert_allclose(dense.features.mean(axis=(2, 3)), embeddings, atol=1e-5)
    weights, bias = onnx_backbone.classifier_weights()
    window = dense.features[:, :, 1:5, 2:6].mean(axis=(2, 3))  # row 1, column 2 of the 4 x 4 windows
    logits = window @ weights.T + bias
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        dense.window_probabilities[:, 1 * 4 + 2], expected / expected.sum(axis=1, keepdims=True), atol=1e-5
    )
    torch_dense = torch_backbone.run_dense(tensors)
    np.testing.assert_allclose(torch_dense.window_probabilities, dense.window_probabilities, atol=1e-4)
    np.testing.assert_allclose(torch_dense.features, dense.features, atol=1e-4)
    np.testing.assert_allclose(torch_backbone.classifier_weights()[0], weights)
