"""Which pixels a `default` answer's colours describe: the subject's, when a leaf is confident, else the frame's.

With a confident subject (a leaf >= SUBJECT_MIN_SCORE), pixels of the view where it scores best are
weighted by where that leaf's evidence lies (its class activation map) and a colour's share is what the
subject adds over the rest of the square, its achromatic colours counting half; without one, the whole
frame's pixel shares, less a plain background. Shares become confidences in `colors.color_entries`.
"""

from __future__ import annotations

import numpy as np

from .colors import COLOR_NAMES, COLOR_THUMBNAIL_EDGE_PX, ColorSample, color_entries
from .hierarchy import IMAGENET_CLASS_COUNT
from .maps import cell_logits, minmax, upsample

SUBJECT_MIN_SCORE = 0.5  # a leaf this confident is a subject: its colours are named, not the frame's
MAX_SUBJECTS = 3  # subject colours follow the evidence of at most this many top leaves
MIN_SUBJECT_CONTRAST = 0.1  # below this colour difference from the rest of the frame, the subject's own shares are used
ACHROMATIC_SUBJECT_WEIGHT = 0.5  # a subject's black, grey and white pixels (tyres, shadows, metal) count half
ACHROMATIC_COLORS = frozenset({"black color", "charcoal color", "gray color", "silver color", "white color"})
PLAIN_BACKGROUND_SHARE = 0.6  # a frame border this much one colour is a plain background: without a confident leaf,
#                               the colours named are the rest of the frame's (a blue gift box on white is blue)
PLAIN_BACKGROUND_CONTRAST = 0.25  # ... and the frame's centre half is this much less of it (grass is not a background)
MIN_FIGURE_SHARE = 0.05  # ... and at least this much of the frame is not the background colour

_ACHROMATIC = np.array([name in ACHROMATIC_COLORS for name in COLOR_NAMES])


def subject_leaves(leaf_scores: np.ndarray) -> list[int]:
    """The confident leaves whose evidence marks the subject: >= SUBJECT_MIN_SCORE, best first, at most MAX_SUBJECTS."""
    confident = np.flatnonzero(leaf_scores >= SUBJECT_MIN_SCORE)  # a few leaves: sorting all 1,000 cost 80 us
    return confident[np.argsort(-leaf_scores[confident], kind="stable")][:MAX_SUBJECTS].tolist()


def subject_weights(features: np.ndarray, weights: np.ndarray, bias: np.ndarray, leaves: list[int]) -> np.ndarray:
    """Per feature cell, 0..1: how strongly any subject leaf's class activation map points there."""
    maps = cell_logits(features, weights[leaves], bias[leaves])
    return np.max([minmax(m) for m in maps], axis=0)


def color_shares(sample: ColorSample, cell_weights: np.ndarray | None = None, view: int = 0) -> np.ndarray:
    """Each palette colour's share (0..1, sum 1): of the subject where `cell_weights` mark one, else of the frame.

    For a subject, pixels of that view's square count by the upsampled weights; a colour's share is what the
    subject holds beyond the rest of the square (the pavement around six dogs is in both), unless the
    two differ by less than MIN_SUBJECT_CONTRAST, when the subject's own shares are used. Its achromatic
    colours then count ACHROMATIC_SUBJECT_WEIGHT: a red motorcycle's tyres and engine outnumber its red paint.
    Without a subject: the frame's shares, less a plain background (`PLAIN_BACKGROUND_SHARE`).
    """
    count = len(COLOR_NAMES)
    if cell_weights is None:
        return _frame_shares(sample.frame)
    edge = COLOR_THUMBNAIL_EDGE_PX
    crop = sample.crops[view]
    weight = upsample(cell_weights, edge, edge).reshape(-1).astype(np.float64)
    subject = np.bincount(crop, weights=weight, minlength=count) / max(weight.sum(), 1e-12)
    rest = np.bincount(crop, weights=1.0 - weight, minlength=count) / max((1.0 - weight).sum(), 1e-12)
    excess = np.maximum(subject - rest, 0.0)
    shares = excess / excess.sum() if excess.sum() >= MIN_SUBJECT_CONTRAST else subject
    toned = shares * np.where(_ACHROMATIC, ACHROMATIC_SUBJECT_WEIGHT, 1.0)
    return toned / toned.sum() if toned.sum() > 0 else shares


def _frame_shares(frame: np.ndarray) -> np.ndarray:
    """The frame's colour shares; on a plain background (its border mostly one colour), those of the rest."""
    count, edge = len(COLOR_NAMES), COLOR_THUMBNAIL_EDGE_PX
    grid = frame.reshape(edge, edge)
    border = np.r_[grid[0], grid[-1], grid[1:-1, 0], grid[1:-1, -1]]
    background = int(np.bincount(border, minlength=count).argmax())
    border_share = float((border == background).mean())
    centre = grid[edge // 4 : -(edge // 4), edge // 4 : -(edge // 4)]
    figure = frame[frame != background]
    if (
        border_share >= PLAIN_BACKGROUND_SHARE
        and (centre == background).mean() <= border_share - PLAIN_BACKGROUND_CONTRAST
        and len(figure) >= MIN_FIGURE_SHARE * len(frame)
    ):
        frame = figure
    counts = np.bincount(frame, minlength=count)
    return counts / counts.sum()


def subject_view(view_probabilities: np.ndarray, leaves: list[int]) -> int:
    """The view (`spec.view_boxes`) where the first subject leaf scores best: its colours are read there."""
    return int(np.asarray(view_probabilities).reshape(-1, IMAGENET_CLASS_COUNT)[:, leaves[0]].argmax()) if leaves else 0


def subject_color_classes(
    sample: ColorSample,
    leaf_scores: np.ndarray,
    view_probabilities: np.ndarray,
    features: np.ndarray,
    fc: tuple[np.ndarray, np.ndarray],
    threshold: float,
) -> list[dict]:
    """Colour classes of one image: the subject's colours when a leaf is confident, else the whole frame's.

    `view_probabilities` and `features` hold every view's (views x 1000, views x channels x h x w).
    """
    leaves = subject_leaves(leaf_scores)
    if not leaves:
        return color_entries(color_shares(sample), threshold)
    view = subject_view(view_probabilities, leaves)
    weights = subject_weights(features[view], *fc, leaves)
    return color_entries(color_shares(sample, weights, view), threshold)
