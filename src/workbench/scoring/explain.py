"""Where each score looked: per-class maps over the image, for `default` and custom classifiers alike.

Each map is first a grid over the last feature map's cells (7 x 7 over each square the backbone saw:
the centre square, and more along the long side of a wide image, `spec.view_boxes`), then upsampled
onto the image as a 0..1 heatmap, each pixel from its best view: what that spot alone would score.
- custom class: the head applied to each cell (`maps.custom_head_cells`); the cells' mean is the
  head's logit exactly, and the heatmap is the sigmoid of each cell's logit.
- `default` leaf or ancestor: the ImageNet softmax of each cell, summed over the leaves beneath.
- `default` colour: where that colour's pixels are, weighted by the subject map when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..analysis import colors, general, subject_colors
from ..analysis.hierarchy import load_hierarchy
from ..analysis.maps import cell_logits, custom_head_cells, place_in_image, upsample
from ..analysis.training import Heads
from ..core.errors import InvalidRequest, echo
from ..core.vocabulary import GENERAL_CLASSIFIER_ID, SCORE_DECIMALS
from ..engine.backbone import DensePass, softmax

DEFAULT_TOP = 3  # classes explained when none is named
Box = tuple[float, float, float, float]  # (left, top, right, bottom) in the image's pixels


@dataclass(frozen=True)
class Explanation:
    """One class's map for one image."""

    classifier_id: str
    class_name: str
    score: float  # the score classify gives this class for this image
    cells: (
        np.ndarray
    )  # the best view's map over its feature cells (custom: cell logits averaging to its logit; default: 0..1)
    heatmap: np.ndarray  # (height, width) of `image`, 0..1: each pixel's best view; 0 where no view looked
    box: Box  # the part of `image` the backbone saw, every view together (left, top, right, bottom)
    image: Image.Image  # the image as decoded for the backbone (large JPEGs at reduced size)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def custom_explanations(
    classifier_id: str,
    heads: Heads,
    dense: DensePass,
    image: Image.Image,
    boxes: list[Box],
    class_name: str | None,
    top: int,
) -> list[Explanation]:
    """Maps of a custom classifier's classes on one image (`dense` holds its views, `boxes` where they lie)."""
    view_scores = heads.scores(dense.embeddings)
    scores = view_scores.max(axis=0)  # as classify scores it: the best view
    chosen = _chosen(list(heads.classes), scores, class_name, classifier_id, top)
    out = []
    for i in chosen:
        grids = [custom_head_cells(features, heads.weights[[i]], heads.bias[[i]])[0] for features in dense.features]
        best = int(view_scores[:, i].argmax())
        out.append(
            _explanation(
                classifier_id, heads.classes[i], scores[i], grids[best], [_sigmoid(g) for g in grids], image, boxes
            )
        )
    return out


def general_explanations(
    dense: DensePass,
    fc: tuple[np.ndarray, np.ndarray],
    sample: colors.ColorSample,
    image: Image.Image,
    boxes: list[Box],
    class_name: str | None,
    top: int,
) -> list[Explanation]:
    """Maps of `default` classes on one image: its top leaves, or the named leaf, ancestor or colour."""
    hierarchy = load_hierarchy()
    leaves, ancestors = general.image_scores(dense.probabilities, dense.window_probabilities, sample.spread)
    cell_probabilities = [
        softmax(cell_logits(features, *fc).reshape(len(leaves), -1).T).T for features in dense.features
    ]
    grid_shape = dense.features.shape[2:]
    if class_name is None:
        chosen = [int(i) for i in np.argsort(-leaves, kind="stable")[:top]]
        names = [hierarchy.leaf_names[i] for i in chosen]
    else:
        names = [class_name]
    out = []
    for name in names:
        if name in hierarchy.leaves_under:
            beneath = sorted(hierarchy.leaves_under[name])
            grids = [cells[beneath].sum(axis=0).reshape(grid_shape) for cells in cell_probabilities]
            best = int(dense.probabilities[:, beneath].sum(axis=1).argmax())
            score = (
                leaves[beneath[0]] if name in hierarchy.leaf_names else ancestors[hierarchy.ancestor_names.index(name)]
            )
            out.append(_explanation(GENERAL_CLASSIFIER_ID, name, score, grids[best], grids, image, boxes))
        elif name in colors.COLOR_ANCHORS_RGB:
            out.append(_color_explanation(name, leaves, dense, fc, sample, image, boxes))
        else:
            raise InvalidRequest(f"The default classifier has no class {echo(name)}")
    return out


def _color_explanation(
    name: str,
    leaves: np.ndarray,
    dense: DensePass,
    fc: tuple[np.ndarray, np.ndarray],
    sample: colors.ColorSample,
    image: Image.Image,
    boxes: list[Box],
) -> Explanation:
    """Where a colour's pixels are: in the subject's view, weighted by its map, if there is one; else every view."""
    edge = colors.COLOR_THUMBNAIL_EDGE_PX
    index = list(colors.COLOR_ANCHORS_RGB).index(name)
    masks = [(crop == index).reshape(edge, edge).astype(np.float32) for crop in sample.crops]
    subjects = subject_colors.subject_leaves(leaves)
    if subjects:
        view = subject_colors.subject_view(dense.probabilities, subjects)
        weights = subject_colors.subject_weights(dense.features[view], *fc, subjects)
        shares = subject_colors.color_shares(sample, weights, view)
        masks = [masks[view] * upsample(weights, edge, edge)]
        boxes = [boxes[view]]
    else:
        shares = subject_colors.color_shares(sample)
    score = float(colors.color_confidence(shares[index]))
    return _explanation(GENERAL_CLASSIFIER_ID, name, score, masks[0], masks, image, boxes)


def _chosen(classes: list[str], scores: np.ndarray, class_name: str | None, classifier_id: str, top: int) -> list[int]:
    if class_name is None:
        return [int(i) for i in np.argsort(-scores, kind="stable")[:top]]
    if class_name not in classes:
        raise InvalidRequest(f"Classifier {echo(classifier_id)} has no class {echo(class_name)}")
    return [classes.index(class_name)]


def _explanation(
    classifier_id: str,
    name: str,
    score: float,
    cells: np.ndarray,
    unit_grids: list[np.ndarray],
    image: Image.Image,
    boxes: list[Box],
) -> Explanation:
    """An Explanation whose heatmap is, per pixel, the highest of the 0..1 grids placed on their views' boxes."""
    heatmap = np.max(
        [
            place_in_image(np.clip(grid, 0.0, 1.0), box, *image.size)
            for grid, box in zip(unit_grids, boxes, strict=True)
        ],
        axis=0,
    )
    covered: Box = (
        float(min(b[0] for b in boxes)),
        float(min(b[1] for b in boxes)),
        float(max(b[2] for b in boxes)),
        float(max(b[3] for b in boxes)),
    )
    return Explanation(
        classifier_id,
        name,
        round(float(score), SCORE_DECIMALS),
        np.asarray(cells, np.float32),
        heatmap,
        covered,
        image,
    )


GALLERY_IMAGES_PER_CLASS = 3  # training images per class in a version's overlay gallery


def class_gallery_tiles(
    heads: Heads, images: dict[str, list[tuple[str, Image.Image]]], backbone, spec
) -> list[tuple[Image.Image, np.ndarray, str]]:
    """(image, heatmap of its own class, caption) for a few training images per class, one backbone pass for all."""
    from ..core.spec import crop_box, preprocess

    order = [(name, caption, image) for name, shown in images.items() for caption, image in shown]
    if not order:
        return []
    dense = backbone.run_dense([preprocess(image, spec) for _, _, image in order])
    scores = heads.scores(dense.embeddings)
    tiles = []
    for row, (name, caption, image) in enumerate(order):
        i = heads.classes.index(name)
        grid = custom_head_cells(dense.features[row], heads.weights[[i]], heads.bias[[i]])[0]
        heat = place_in_image(_sigmoid(grid), crop_box(*image.size, spec), *image.size)  # training's view: the centre
        tiles.append((image, heat, f"{caption}\n{name} {scores[row, i]:.2f}"))
    return tiles
