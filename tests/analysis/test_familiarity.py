"""Scores in the open world: images unlike every class score low, on images the heads never saw."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from conftest import TUTORIAL
from workbench.analysis.familiarity import fit_familiarity
from workbench.analysis.training import NEGATIVE_LABEL, Heads, normalise, train
from workbench.core.vocabulary import THRESHOLD

BREEDS = ("beagle", "husky", "goldenretriever")
TRAIN_PER_BREED = 30  # the other 20 of each breed are held out
SAMPLE_DATA = Path(matplotlib.get_data_path()) / "sample_data"


def _images(folder: Path) -> list[Image.Image]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [Image.open(p).convert("RGB") for p in paths]


def _photos() -> list[Image.Image]:
    """Real photos of nothing the classifier knows: scikit-image's and matplotlib's sample images."""
    import skimage  # the test extra installs it: its data folder ships these images (no download)

    folder = Path(skimage.__file__).parent / "data"
    names = (
        "astronaut.png",
        "rocket.jpg",
        "coffee.png",
        "horse.png",
        "moon.png",
        "coins.png",
        "text.png",
        "page.png",
        "camera.png",
        "brick.png",
        "grass.png",
        "gravel.png",
        "hubble_deep_field.jpg",
        "motorcycle_left.png",
        "retina.jpg",
    )
    photos = [Image.open(folder / name).convert("RGB") for name in names]
    return photos + [
        Image.open(SAMPLE_DATA / name).convert("RGB") for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")
    ]


def _blank_and_noise() -> list[Image.Image]:
    """Colours and noise from a seed of this test's own (not the unknown-images set's)."""
    rng = np.random.default_rng(7)
    solid = [Image.new("RGB", (300, 200), tuple(int(v) for v in rng.integers(0, 256, 3))) for _ in range(24)]
    noise = [Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)) for _ in range(8)]
    return solid + noise


@pytest.fixture(scope="module")
def embedded(dogs) -> dict[str, np.ndarray]:
    """Embeddings of the tutorial folders, real photos, and blank and noise images, by group."""
    wb, _ = dogs
    groups = {name: _images(TUTORIAL / name) for name in (*BREEDS, "dalmatian", "cats", "more-cats")}
    groups["photos"], groups["blank_and_noise"] = _photos(), _blank_and_noise()
    return {name: wb.backbone.embed_images(images)[0] for name, images in groups.items()}


def _three_breeds(embedded: dict[str, np.ndarray], negatives: bool = True) -> tuple[Heads, np.ndarray, list[str]]:
    """Heads on 30 of each breed (and the cats as negatives); the 20 held-out images of each breed."""
    x = [embedded[b][:TRAIN_PER_BREED] for b in BREEDS]
    labels = [b for b in BREEDS for _ in range(TRAIN_PER_BREED)]
    if negatives:
        x.append(embedded["cats"])
        labels += [NEGATIVE_LABEL] * len(embedded["cats"])
    heads = train(np.concatenate(x), labels, list(BREEDS)).heads
    held_out = np.concatenate([embedded[b][TRAIN_PER_BREED:] for b in BREEDS])
    return heads, held_out, [b for b in BREEDS for _ in range(len(embedded[b]) - TRAIN_PER_BREED)]


def test_held_out_images_of_each_class_still_score_high(embedded) -> None:
    heads, held_out, truth = _three_breeds(embedded)
    scores = heads.scores(held_out)
    recall = np.mean([scores[i, BREEDS.index(t)] >= THRESHOLD for i, t in enumerate(truth)])
    assert recall >= 0.95


@pytest.mark.parametrize("group", ["dalmatian", "more-cats", "photos", "blank_and_noise"])
def test_images_of_no_trained_class_get_no_class(embedded, group) -> None:
    heads, _, _ = _three_breeds(embedded)
    scores = heads.scores(embedded[group])
    called = scores.max(axis=1) >= THRESHOLD
    assert called.mean() <= (0.0 if group == "blank_and_noise" else 0.04), scores.max(axis=1).round(2)


def test_without_negatives_unrelated_photos_still_get_no_class(embedded) -> None:
    heads, held_out, truth = _three_breeds(embedded, negatives=False)
    assert (heads.scores(embedded["photos"]).max(axis=1) < THRESHOLD).all()
    assert (heads.scores(embedded["blank_and_noise"]).max(axis=1) < THRESHOLD).all()
    scores = heads.scores(held_out)
    assert np.mean([scores[i, BREEDS.index(t)] >= THRESHOLD for i, t in enumerate(truth)]) >= 0.95


def test_the_stream_precision_at_the_threshold_holds(embedded) -> None:
    """Held-out breeds, an untrained breed, unseen cats, photos, blank and noise: what a user would send."""
    heads, held_out, truth = _three_breeds(embedded)
    unknown = [embedded[g] for g in ("dalmatian", "more-cats", "photos", "blank_and_noise")]
    scores = heads.scores(np.concatenate([held_out, *unknown]))
    truth = truth + [NEGATIVE_LABEL] * sum(len(u) for u in unknown)
    called = [(row, BREEDS[c]) for row, c in zip(*np.nonzero(scores >= THRESHOLD), strict=True)]
    precision = np.mean([truth[row] == name for row, name in called])
    assert precision >= 0.95


def test_the_gate_passes_the_class_images_and_stops_far_ones(embedded) -> None:
    units = normalise(embedded["beagle"][:TRAIN_PER_BREED])
    gate = fit_familiarity(units, ["beagle"] * len(units), ["beagle"])
    assert np.median(gate.gate(normalise(embedded["beagle"][TRAIN_PER_BREED:]))) > 0.9
    assert gate.gate(normalise(embedded["blank_and_noise"])).max() < 0.05


def test_heads_saved_before_the_gate_load_and_score_as_before(embedded) -> None:
    """A version trained by an earlier release (weights and bias only) still serves, ungated."""
    heads, held_out, _ = _three_breeds(embedded)
    buffer = io.BytesIO()
    np.savez(buffer, classes=np.array(heads.classes, dtype=str), weights=heads.weights, bias=heads.bias)
    old = Heads.from_bytes(buffer.getvalue())
    assert old.familiarity is None
    expected = 1.0 / (1.0 + np.exp(-(normalise(held_out) @ heads.weights.T + heads.bias)))
    np.testing.assert_allclose(old.scores(held_out), expected, rtol=1e-5, atol=1e-7)
