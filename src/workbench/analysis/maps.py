"""Class activation maps: where on the last feature map a linear head finds its evidence (numpy only).

Every head here is linear on the pooled embedding, and the embedding is the mean of the feature
map's cells, so applying a head to each cell on its own gives maps that are exact, not estimates:
for the ImageNet head the cell logits average to the image's logit; for a custom head (linear on the
L2-normalised embedding) the cell logits, divided by the embedding's norm, average to its logit.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def cell_logits(features: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """One image's (channels, h, w) feature map through linear heads (k, channels) -> (k, h, w) logits.

    The mean over cells of each map is the head's logit on the pooled embedding.
    """
    channels, height, width = features.shape
    cells = (features.reshape(channels, -1).T @ np.asarray(weights).T).T  # einsum's own product, without its 35 us
    return cells.reshape(-1, height, width) + np.asarray(bias)[:, None, None]


def custom_head_cells(features: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Per-cell logits of custom heads (`training.Heads`: sigmoid(w . e / |e| + b), e the cell mean).

    w . e / |e| = mean over cells of (w . f_cell) / |e|: the same division for every cell, so the
    map is linear and its mean over cells is exactly the head's logit on the image.
    """
    norm = max(float(np.linalg.norm(features.mean(axis=(1, 2)))), 1e-12)
    return cell_logits(features, np.asarray(weights) / norm, bias)


def minmax(grid: np.ndarray) -> np.ndarray:
    """A map rescaled to 0..1 (its lowest cell 0, its highest 1; a flat map is all 0)."""
    low, high = float(grid.min()), float(grid.max())
    if high - low <= 1e-12:
        return np.zeros_like(grid, dtype=np.float32)
    return ((grid - low) / (high - low)).astype(np.float32)


def upsample(grid: np.ndarray, width: int, height: int) -> np.ndarray:
    """A (h, w) cell map resized bilinearly to width x height pixels (cell centres on pixel centres)."""
    image = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32), mode="F")
    return np.asarray(image.resize((max(1, width), max(1, height)), Image.Resampling.BILINEAR), dtype=np.float32)


def place_in_image(grid: np.ndarray, box: tuple[float, float, float, float], width: int, height: int) -> np.ndarray:
    """A cell map over `box` (the part of the image the backbone saw) as a height x width map of the image.

    Pixels outside the box, which the backbone never saw, are 0.
    """
    left, top, right, bottom = (round(v) for v in box)
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, width), min(bottom, height)
    out = np.zeros((height, width), np.float32)
    out[top:bottom, left:right] = upsample(grid, right - left, bottom - top)
    return out
