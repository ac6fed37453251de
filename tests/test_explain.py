"""Where scores looked (`wb.explain`), and the `default` model's answer on busy photos, on real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import DOGS_JPG, TUTORIAL
from workbench import plots, widgets
from workbench.errors import InvalidRequest
from workbench.decode import decode_image
from workbench.maps import cell_logits, custom_head_cells
from workbench.spec import preprocess
from workbench.run_record import write_overlay_gallery
from workbench.tracked_files import ClassifierFiles
from workbench.training import normalise

BROWN_FAMILY = {"light brown color", "tan color", "brown color", "beige color", "orange color", "yellow color"}


def default_answer(wb, image: Path, threshold: float = 0.5) -> dict[str, dict]:
    [result] = wb.classify(image, threshold=threshold)["images"][0]["classifiers"]
    return {c["class"]: c for c in result["classes"]}


def test_dogs_photo_answers_like_watson(dogs) -> None:
    wb, _ = dogs
    answer = default_answer(wb, DOGS_JPG)
    assert answer["dog"]["score"] >= 0.9
    breeds = [c for c in answer.values() if "/dog/" in c.get("type_hierarchy", "")]
    assert breeds and answer["golden retriever"]["type_hierarchy"].endswith("/retriever/golden retriever")
    brown = max(answer[c]["score"] for c in BROWN_FAMILY if c in answer)
    assert brown >= 0.5
    assert answer.get("gray color", {"score": 0.0})["score"] < brown
    assert all("type_hierarchy" not in c for c in answer.values() if c["class"] in {"dog", "animal"})


def test_custom_head_cell_map_averages_exactly_to_the_heads_logit(dogs) -> None:
    wb, cid = dogs
    heads = wb._serving(wb._record(cid)).heads
    paths = [sorted((TUTORIAL / folder).iterdir())[0] for folder in ("beagle", "husky", "cats")]
    tensors = [preprocess(decode_image(p.read_bytes(), draft_size=224), wb.backbone.spec) for p in paths]
    dense = wb.backbone.run_dense(tensors)
    logits = normalise(dense.embeddings) @ heads.weights.T + heads.bias
    for row in range(len(paths)):
        cells = custom_head_cells(dense.features[row], heads.weights, heads.bias)
        np.testing.assert_allclose(cells.mean(axis=(1, 2)), logits[row], rtol=1e-4, atol=1e-4)


def test_imagenet_cell_map_averages_to_the_image_logit(dogs) -> None:
    wb, _ = dogs
    weights, bias = wb.backbone.classifier_weights()
    tensor = preprocess(decode_image(DOGS_JPG.read_bytes(), draft_size=224), wb.backbone.spec)
    dense = wb.backbone.run_dense([tensor])
    cells = cell_logits(dense.features[0], weights, bias)
    expected = np.log(dense.probabilities[0]) - np.log(dense.probabilities[0]).mean()
    got = cells.mean(axis=(1, 2))
    np.testing.assert_allclose(got - got.mean(), expected, atol=2e-3)  # softmax fixes logits up to a constant


def test_explain_custom_class_matches_classify_and_looks_at_the_dog(dogs) -> None:
    wb, cid = dogs
    image = TUTORIAL / "test" / "5.jpg"  # a golden retriever
    [result] = wb.classify(image, classifier_ids=[cid], threshold=0.0)["images"][0]["classifiers"]
    scores = {c["class"]: c["score"] for c in result["classes"]}
    [golden] = wb.explain(image, cid, class_name="goldenretriever")
    assert golden.score == pytest.approx(scores["goldenretriever"], abs=1e-6)
    assert golden.heatmap.shape == golden.image.size[::-1]
    assert 0.0 <= golden.heatmap.min() and golden.heatmap.max() <= 1.0
    top = wb.explain(image, cid, top=2)
    assert [e.class_name for e in top] == sorted(scores, key=scores.get, reverse=True)[:2]


def test_explain_default_top_leaf_ancestor_and_colour(dogs) -> None:
    wb, _ = dogs
    answer = default_answer(wb, DOGS_JPG, threshold=0.0)
    top = wb.explain(DOGS_JPG, "default")
    assert top[0].class_name == "golden retriever" and top[0].score == pytest.approx(answer["golden retriever"]["score"])
    [dog] = wb.explain(DOGS_JPG, "default", class_name="dog")
    assert dog.score == pytest.approx(answer["dog"]["score"])
    left, top_px, right, bottom = (int(v) for v in dog.box)
    inside = dog.heatmap[top_px:bottom, left:right]
    assert inside.max() > 0.9 and dog.heatmap[:, : max(left - 1, 0)].max(initial=0.0) == 0.0  # the crop only
    [tan] = wb.explain(DOGS_JPG, "default", class_name="tan color")
    assert tan.score == pytest.approx(answer["tan color"]["score"], abs=1e-6)


def test_explain_refuses_unknown_classes_and_many_images(dogs) -> None:
    wb, cid = dogs
    with pytest.raises(InvalidRequest, match="no class"):
        wb.explain(DOGS_JPG, cid, class_name="poodle")
    with pytest.raises(InvalidRequest, match="no class"):
        wb.explain(DOGS_JPG, "default", class_name="unicorn")
    with pytest.raises(InvalidRequest, match="exactly one image"):
        wb.explain(TUTORIAL / "test", cid)


def test_overlays_render(dogs, tmp_path: Path) -> None:
    wb, cid = dogs
    found = wb.explain(DOGS_JPG, "default") + wb.explain(DOGS_JPG, cid, top=1)
    figure = plots.overlays(found)
    assert len([ax for ax in figure.axes if ax.get_visible()]) == len(found)
    figure.savefig(tmp_path / "o.png")
    blended = plots.overlay_image(found[0].image, found[0].heatmap)
    assert blended.size == found[0].image.size
    assert np.asarray(blended).std() > 0


def test_version_overlay_gallery_is_a_png_with_every_class(dogs, tmp_path: Path) -> None:
    wb, cid = dogs
    files = ClassifierFiles.from_store(wb.store, cid)
    version = files.versions[-1]
    rows = files.examples(up_to=version.last_example_id)
    path = write_overlay_gallery(tmp_path, files, wb.store, wb.backbone, version, rows)
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > 400


def test_notebook_widgets_show_overlays(dogs) -> None:
    wb, cid = dogs
    view = widgets.ExplainView(wb, DOGS_JPG, [cid, "default"])
    assert [e.class_name for e in view.explanations["default"]][0] == "golden retriever"
    gallery = widgets.OverlayGallery(wb, cid, max_images=3)
    assert len(gallery.children[1].children) == len(gallery.items) <= 3
