"""A fixed set of images unlike any classifier's classes, for each version's "unknown images" check.

Made here from nothing but seeds (solid colours, gradients, noise, stripes, checkerboards, blurred
blobs) plus the two photos scikit-learn ships (`china.jpg`, `flower.jpg`, CC BY 2.0, credited in
its `datasets/images/README.txt`): nothing is downloaded, and every machine builds the same
pixels. Each version reports the share of these images any of its classes scores at 0.5 or more
(`unknown_images` in its metrics, `unknown_false_positive_rate` in MLflow). The set never trains
a head; the stream evaluation in `bench/open_world.py` uses other colours, other seeds and other
photos, so the check and the evaluation do not share images.
"""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SIDE_PX = 256  # every generated image is this square size
SEED = 20261202  # the generator's seed: the set is the same on every machine
SOLID_COLOURS = 12  # random hues, plus black, white and mid grey
GRADIENTS = 6
NOISE_IMAGES = 6  # half uniform per pixel, half blurred into blobs
PATTERNS = 6  # stripes and checkerboards of two random colours
CACHE_PREFIX = "unknown-images"  # embedding-cache keys: this prefix plus the PNG's sha256


def _solid(rng: np.random.Generator) -> list[Image.Image]:
    colours: list[tuple[int, ...]] = [(0, 0, 0), (255, 255, 255), (128, 128, 128)]
    colours += [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(SOLID_COLOURS)]
    return [Image.new("RGB", (SIDE_PX, SIDE_PX), colour) for colour in colours]


def _gradients(rng: np.random.Generator) -> list[Image.Image]:
    ramp = np.linspace(0.0, 1.0, SIDE_PX)[None, :, None]
    images = []
    for i in range(GRADIENTS):
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        pixels = np.repeat(a * (1 - ramp) + b * ramp, SIDE_PX, axis=0).astype(np.uint8)
        images.append(Image.fromarray(pixels if i % 2 == 0 else pixels.transpose(1, 0, 2).copy()))
    return images


def _noise(rng: np.random.Generator) -> list[Image.Image]:
    images = []
    for i in range(NOISE_IMAGES):
        image = Image.fromarray(rng.integers(0, 256, (SIDE_PX, SIDE_PX, 3), dtype=np.uint8))
        images.append(image if i % 2 == 0 else image.filter(ImageFilter.GaussianBlur(8)))
    return images


def _patterns(rng: np.random.Generator) -> list[Image.Image]:
    images = []
    cells = np.indices((SIDE_PX, SIDE_PX)) // 16
    for i in range(PATTERNS):
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        mask = (cells[1] % 2 == 0) if i % 2 == 0 else ((cells[0] + cells[1]) % 2 == 0)
        images.append(Image.fromarray(np.where(mask[..., None], a, b).astype(np.uint8)))
    return images


def _package_photos() -> list[Image.Image]:
    """scikit-learn's two sample photos (a temple, a flower), when its data folder is installed."""
    import sklearn

    folder = Path(sklearn.__file__).parent / "datasets" / "images"
    return [
        Image.open(folder / name).convert("RGB") for name in ("china.jpg", "flower.jpg") if (folder / name).exists()
    ]


def images() -> list[Image.Image]:
    """The whole set, in a fixed order."""
    rng = np.random.default_rng(SEED)
    return [*_solid(rng), *_gradients(rng), *_noise(rng), *_patterns(rng), *_package_photos()]


def _key(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return f"{CACHE_PREFIX}-{hashlib.sha256(buffer.getvalue()).hexdigest()}"


@lru_cache(maxsize=4)
def _embedded(backbone_id: str, backbone, cache) -> np.ndarray:
    pictures = images()
    keys = [_key(image) for image in pictures]
    known = cache.get_many(keys, backbone_id) if cache is not None else {}
    missing = [i for i, key in enumerate(keys) if key not in known]
    if missing:
        vectors, _ = backbone.embed_images([pictures[i] for i in missing], backbone_id)
        fresh = {keys[i]: vector for i, vector in zip(missing, vectors, strict=True)}
        if cache is not None:
            cache.put_many(fresh, backbone_id)
        known.update(fresh)
    return np.stack([known[key] for key in keys])


def embeddings(backbone, cache=None, backbone_id: str | None = None) -> np.ndarray:
    """The set's embeddings under this backbone (the model `backbone_id` names, default the serving one), from the
    embedding cache when it has them (once per process)."""
    return _embedded(backbone_id or backbone.backbone_id, backbone, cache)
