"""The `default` general classifier: packaged hierarchy, ancestor scores, colour words (real data, no mocks)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from workbench.analysis.colors import color_classes, color_confidence
from workbench.analysis.general import default_classes, general_scores
from workbench.analysis.hierarchy import IMAGENET_CLASS_COUNT, load_hierarchy
from workbench.core.vocabulary import GENERAL_CLASSIFIER_ID

DOGS_JPG = Path("/work/shared/reference/images/dogs.jpg")
GOLDEN_RETRIEVER, LABRADOR, BEAGLE, SIBERIAN_HUSKY, TIGER_CAT, BANANA = 207, 208, 162, 250, 282, 954


def packaged_classes() -> list[dict]:
    text = resources.files("workbench").joinpath("data", "imagenet_hierarchy.json").read_text(encoding="utf-8")
    return json.loads(text)["classes"]


def one_hot_mix(weights: dict[int, float]) -> np.ndarray:
    """A (1000,) probability vector: the given weights, the rest spread evenly."""
    probabilities = np.zeros(IMAGENET_CLASS_COUNT)
    for index, weight in weights.items():
        probabilities[index] = weight
    rest = 1.0 - sum(weights.values())
    others = [i for i in range(IMAGENET_CLASS_COUNT) if i not in weights]
    probabilities[others] = rest / len(others)
    return probabilities


def by_name(entries: list[dict]) -> dict[str, dict]:
    return {entry["class"]: entry for entry in entries}


def test_classifier_id_is_watsons() -> None:
    assert GENERAL_CLASSIFIER_ID == "default"


def test_packaged_data_has_1000_unique_names_and_small_file() -> None:
    classes = packaged_classes()
    names = [c["name"] for c in classes]
    assert len(classes) == 1000
    assert len(set(names)) == 1000
    assert all(c["path"][-1] == c["name"] for c in classes)
    assert all(c["wnid"].startswith("n") and len(c["wnid"]) == 9 for c in classes)
    assert {"crane (bird)", "crane (machine)"} <= set(names)
    size = len(resources.files("workbench").joinpath("data", "imagenet_hierarchy.json").read_bytes())
    assert size < 400_000


def test_chosen_paths_form_a_tree_with_readable_names() -> None:
    parent_of: dict[str, str | None] = {}
    for cls in packaged_classes():
        path = cls["path"]
        assert 1 <= len(path) <= 7
        assert len(set(path)) == len(path)
        for parent, node in zip([None, *path], path, strict=False):
            assert "/" not in node
            assert parent_of.setdefault(node, parent) == parent, f"{node} has two parents"


def test_golden_retriever_hierarchy() -> None:
    hierarchy = load_hierarchy()
    assert hierarchy.leaf_names[GOLDEN_RETRIEVER] == "golden retriever"
    assert hierarchy.wnids[GOLDEN_RETRIEVER] == "n02099601"
    path = hierarchy.type_hierarchies[GOLDEN_RETRIEVER]
    assert "/dog/" in path
    assert "/domestic animal/" in path
    assert path.startswith("/animal/")
    assert path.endswith("/golden retriever")
    assert hierarchy.type_hierarchies[BANANA].endswith("/banana")
    assert "/domestic cat/" in hierarchy.type_hierarchies[TIGER_CAT]


def test_descendant_leaves_of_dog() -> None:
    leaves_under = load_hierarchy().leaves_under
    dogs = leaves_under["dog"]
    assert {GOLDEN_RETRIEVER, LABRADOR, BEAGLE, SIBERIAN_HUSKY} <= dogs
    assert TIGER_CAT not in dogs
    assert dogs <= leaves_under["domestic animal"] <= leaves_under["animal"]


def test_ancestors_add_up_dog_breeds() -> None:
    probabilities = one_hot_mix({GOLDEN_RETRIEVER: 0.3, LABRADOR: 0.3, BEAGLE: 0.2})
    entries = default_classes(probabilities, 0.5)
    found = by_name(entries)
    # no single breed passes 0.5, but their ancestors do
    assert not any("type_hierarchy" in e for e in entries)
    assert found["dog"]["score"] >= 0.8
    assert found["hunting dog"]["score"] >= 0.8
    assert found["retriever"]["score"] >= 0.6 - 1e-6
    assert "hound" not in found  # 0.2 alone stays below the threshold


def test_leaves_come_with_ancestors_and_scores_never_fall_below_children() -> None:
    probabilities = one_hot_mix({GOLDEN_RETRIEVER: 0.3, LABRADOR: 0.3, BEAGLE: 0.2})
    entries = default_classes(probabilities, 0.1)
    found = by_name(entries)
    leaves = [e for e in entries if "type_hierarchy" in e]
    assert {e["class"] for e in leaves} == {"golden retriever", "Labrador retriever", "beagle"}
    for leaf in leaves:
        path = leaf["type_hierarchy"].strip("/").split("/")
        assert path[-1] == leaf["class"]
        for ancestor in path[:-1]:
            assert ancestor in found and "type_hierarchy" not in found[ancestor]
        scores = [found[node]["score"] for node in path]
        assert scores == sorted(scores, reverse=True), path
    assert found["golden retriever"]["score"] == pytest.approx(0.3)


def test_entries_are_sorted_and_plain_floats() -> None:
    entries = default_classes(one_hot_mix({BANANA: 0.9}), 0.05)
    assert [e["score"] for e in entries] == sorted((e["score"] for e in entries), reverse=True)
    assert all(type(e["score"]) is float and e["score"] == round(e["score"], 6) for e in entries)
    assert by_name(entries)["banana"]["type_hierarchy"].endswith("/edible fruit/banana")


def test_leaf_sorts_before_ancestors_it_ties_with() -> None:
    probabilities = np.zeros(IMAGENET_CLASS_COUNT)
    probabilities[BANANA] = 1.0
    entries = default_classes(probabilities, 0.5)
    assert entries[0] == {"class": "banana", "score": 1.0, "type_hierarchy": "/food/produce/edible fruit/banana"}
    assert [e["class"] for e in entries[1:]] == ["edible fruit", "food", "produce"]


def test_threshold_zero_returns_all_leaves_and_ancestors() -> None:
    probabilities = np.random.default_rng(0).dirichlet(np.ones(IMAGENET_CLASS_COUNT))
    entries = default_classes(probabilities, 0.0)
    leaves = [e for e in entries if "type_hierarchy" in e]
    assert len(leaves) == 1000
    assert len(entries) == 1000 + len(load_hierarchy().ancestor_names)
    assert not any(e["type_hierarchy"].startswith("/entity") for e in leaves)
    assert all(e["score"] <= 1.0 for e in entries)
    animals = sorted(load_hierarchy().leaves_under["animal"])
    assert by_name(entries)["animal"]["score"] == pytest.approx(probabilities[animals].sum(), abs=1e-6)


def test_default_classes_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError):
        default_classes(np.ones(10) / 10, 0.5)


def test_solid_red_is_red() -> None:
    scores = by_name(color_classes(Image.new("RGB", (300, 200), (255, 0, 0)), 0.5))
    assert list(scores) == ["red color"]
    assert scores["red color"]["score"] == pytest.approx(1.0)


def test_half_black_half_white() -> None:
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    image.paste((255, 255, 255), (100, 0, 200, 100))
    scores = by_name(color_classes(image, 0.0))
    assert set(scores) == {"black color", "white color"}
    half = float(color_confidence(0.5))
    assert scores["black color"]["score"] == pytest.approx(half, abs=0.02)
    assert scores["white color"]["score"] == pytest.approx(half, abs=0.02)


def test_colour_confidence_reads_a_quarter_as_even_odds_and_is_monotone() -> None:
    shares = np.linspace(0.0, 1.0, 101)
    confidence = color_confidence(shares)
    assert confidence[0] == 0.0 and confidence[-1] == pytest.approx(1.0)
    assert float(color_confidence(0.25)) == pytest.approx(0.5, abs=0.005)
    assert np.all(np.diff(confidence) > 0)


def test_whole_frame_colours_of_the_dogs_photo_are_sorted_confidences() -> None:
    with Image.open(DOGS_JPG) as photo:
        photo.load()
        every = color_classes(photo, 0.0)
        passing = color_classes(photo, 0.5)
    assert every and all(e["class"].endswith(" color") for e in every)
    assert [e["score"] for e in every] == sorted((e["score"] for e in every), reverse=True)
    assert all(e["score"] >= 0.5 for e in passing) and len(passing) <= 3  # three quarters at most reach 0.5
    assert passing[0]["class"] == "gray color"  # the frame alone is mostly pavement: why subjects matter


def test_grayscale_and_transparent_images_are_named() -> None:
    assert [e["class"] for e in color_classes(Image.new("L", (64, 64), 0), 0.5)] == ["black color"]
    assert [e["class"] for e in color_classes(Image.new("RGBA", (64, 64), (30, 80, 230, 128)), 0.5)] == ["blue color"]


# multi-label scores from windows -------------------------------------------------------------------
def windows_of(*mixes: dict[int, float]) -> np.ndarray:
    return np.stack([one_hot_mix(m) for m in mixes])


def test_a_thing_seen_in_one_window_scores_on_its_own() -> None:
    whole = one_hot_mix({TIGER_CAT: 0.6, BANANA: 0.2})
    leaves, _ = general_scores(whole, windows_of({TIGER_CAT: 0.9}, {BANANA: 0.95}))
    assert leaves[TIGER_CAT] == pytest.approx(0.9)
    assert 0.6 < leaves[BANANA] < leaves[TIGER_CAT]  # lifted, yet never above the whole image's top leaf


def test_a_window_never_renames_the_subject_to_a_close_relative() -> None:
    whole = one_hot_mix({BEAGLE: 0.3, GOLDEN_RETRIEVER: 0.2})  # both dogs: /animal/domestic animal/dog/...
    leaves, ancestors = general_scores(whole, windows_of({GOLDEN_RETRIEVER: 0.9}, {BEAGLE: 0.5}))
    assert leaves[GOLDEN_RETRIEVER] == pytest.approx(0.2)  # a relative keeps its whole-image score
    assert leaves[BEAGLE] == pytest.approx(0.5)  # the top leaf takes its best window
    hierarchy = load_hierarchy()
    assert ancestors[hierarchy.ancestor_names.index("dog")] >= 0.9  # the kind is seen in the window


def test_without_windows_the_scores_are_the_whole_image_ones() -> None:
    whole = one_hot_mix({GOLDEN_RETRIEVER: 0.5, LABRADOR: 0.3})
    leaves, ancestors = general_scores(whole)
    np.testing.assert_allclose(leaves, whole)
    assert ancestors[load_hierarchy().ancestor_names.index("retriever")] == pytest.approx(0.8, abs=0.01)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 16))
def test_windowed_scores_stay_probabilities_and_ancestors_never_fall_below_children(seed: int, count: int) -> None:
    rng = np.random.default_rng(seed)
    views = rng.dirichlet(np.full(IMAGENET_CLASS_COUNT, 0.02), size=count + 1)
    leaves, ancestors = general_scores(views[0], views[1:])
    assert leaves.min() >= 0.0 and leaves.max() <= 1.0 and ancestors.max() <= 1.0
    assert int(leaves.argmax()) == int(views[0].argmax())  # the whole image's top leaf stays on top
    hierarchy = load_hierarchy()
    best_child = (hierarchy.leaf_in_ancestor * leaves[:, None]).max(axis=0)
    assert np.all(ancestors >= best_child - 1e-9)


def test_default_classes_with_windows_keep_watsons_shape() -> None:
    whole = one_hot_mix({GOLDEN_RETRIEVER: 0.1, TIGER_CAT: 0.15})
    entries = default_classes(whole, 0.5, windows_of({GOLDEN_RETRIEVER: 0.8}, {TIGER_CAT: 0.9}))
    names = by_name(entries)
    assert names["tiger cat"]["type_hierarchy"].endswith("/tiger cat")
    assert "type_hierarchy" not in names["dog"] and names["dog"]["score"] >= names["golden retriever"]["score"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.3, 0.5, 0.5, 0.7, 0.9, 1.0]), min_size=1, max_size=IMAGENET_CLASS_COUNT))
def test_subject_leaves_are_the_best_confident_leaves_ties_in_class_order(values: list[float]) -> None:
    """The leaves whose colours an answer names: the first MAX_SUBJECTS of a stable sort by score, >= 0.5."""
    from workbench.analysis.subject_colors import MAX_SUBJECTS, SUBJECT_MIN_SCORE, subject_leaves

    scores = np.zeros(IMAGENET_CLASS_COUNT)
    scores[: len(values)] = values
    ranked = sorted(range(IMAGENET_CLASS_COUNT), key=lambda i: -scores[i])  # Python's sort is stable
    assert subject_leaves(scores) == [i for i in ranked[:MAX_SUBJECTS] if scores[i] >= SUBJECT_MIN_SCORE]
