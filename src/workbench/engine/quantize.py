"""The INT8 backbone: the FP32 model quantized (static, QDQ), calibrated on real images, cached per machine.

The recipe (RECIPE, in the file name and in the backbone id, so embeddings never mix):
- weights int8 per output channel, activations uint8 (VNNI cores accumulate u8 x s8 without
  saturation, so no reduced range);
- Conv *and* Clip are quantized: ReLU6 then becomes the uint8 range [0, 6] of the convolution's
  output, instead of a second, wide quantization of the raw convolution output before the Clip.
  This alone took the embedding cosine to FP32 from a median of 0.971 (minimum 0.895) to 0.996
  (minimum 0.986) and ImageNet top-1 agreement from 90% to 98%;
- the stem, the last convolution (the feature map the embedding averages) and the ImageNet head
  stay FP32 (KEEP_FP32): the most sensitive layers, and cheap ones;
- calibration: min/max over CALIBRATION_DIR, 24 varied photos (the Kodak set: people, boats,
  houses, landscapes, parrots, a plane; licences in its SOURCES.md) shipped with the package,
  never the tutorial's images, so every tutorial image stays held out. Each photo gives its
  `view_pixels` squares (centre and the ends of its long side) and their mirror images
  (CALIBRATION_FLIPS): 144 inputs. The mirror images took top-1 agreement from 97.7% to 99.2% in
  the recipe trials; percentile (99.999) and entropy calibration did no better (97.3%, 98.4%), and
  quantizing the stem too cost 0.5 points.
Against FP32 on images the calibration never saw (`python -m bench.int8_agreement`): ImageNet top-1
agrees on 97.1% of 280 (99.2% of the 258 tutorial images, 72.7% of 22 photos from other libraries).

Calibration takes tens of seconds on 2 shared cores and runs once per machine, in the background of
the first process that asks for INT8 (`Backbone` serves FP32 meanwhile), under a file lock, written
to a temporary file and renamed into place, like the FP32 export. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.spec import BackboneSpec, view_pixels
from .onnx_graph import INPUT_NAME

PRECISIONS = ("fp32", "int8")
RECIPE = "q2"  # q1 calibrated on the tutorial images; q2 on CALIBRATION_DIR
KEEP_FP32 = ("_conv_stem.out", "_conv_stem.out.relu6", "_conv_head.out", "features", "window_logits")  # node names
QUANTIZED_OPS = ("Conv", "Clip")
CALIBRATION_FLIPS = True  # each image and its mirror image
CALIBRATION_BATCH = 4  # photos per batch (x views x mirror): bounded memory
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "data" / "calibration"  # shipped in the package
CALIBRATION_VIEWS = 3  # squares per photo along its long side


class CalibrationUnavailable(RuntimeError):
    """No calibration images: the package's data/calibration folder is missing or empty."""


def id_suffix(precision: str) -> str:
    """What the precision adds to the backbone id: nothing for FP32 (its caches stay valid), the recipe for INT8."""
    return "" if precision == "fp32" else f"-int8{RECIPE}"


def int8_path(fp32_path: Path) -> Path:
    """The quantized model beside the FP32 file it was made from, named after it and the recipe."""
    return fp32_path.with_name(f"{fp32_path.stem}-int8{RECIPE}.onnx")


def calibration_images(folder: Path = CALIBRATION_DIR) -> list[Path]:
    """Every image under `folder`, each distinct file once (by sha256), in a stable order."""
    seen: set[str] = set()
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            found.append(path)
    if not found:
        raise CalibrationUnavailable(f"INT8 calibration needs the photos shipped with the package; none under {folder}")
    return found


def _tensors(path: Path, spec: BackboneSpec) -> list[np.ndarray]:
    """A trusted image file -> its backbone tensors: the centre square and the ends of the long side (`view_pixels`),
    so a small set of wide photos covers more of the activation ranges than their centres alone."""
    with Image.open(path) as image:
        views = view_pixels(image.convert("RGB"), spec, CALIBRATION_VIEWS)
    return [((pixels.astype(np.float32) - spec.mean) / spec.std).transpose(2, 0, 1) for pixels in views]


class _Reader:
    """ONNX Runtime's CalibrationDataReader: the images (and their mirror images) in batches, decoded like classify."""

    def __init__(self, paths: list[Path], spec: BackboneSpec) -> None:
        self._batches = self._iterate(paths, spec)

    @staticmethod
    def _iterate(paths: list[Path], spec: BackboneSpec) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(paths), CALIBRATION_BATCH):
            batch = np.stack([t for p in paths[start : start + CALIBRATION_BATCH] for t in _tensors(p, spec)])
            yield {INPUT_NAME: batch}
            if CALIBRATION_FLIPS:
                yield {INPUT_NAME: np.ascontiguousarray(batch[..., ::-1])}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - called by some ORT calibrators only
        raise NotImplementedError


def _merge_every(images: int) -> int:
    """How many batches ONNX Runtime keeps before merging their ranges: bounded memory, and never a divisor of the
    batch count (onnxruntime 1.2x raises "No data is collected" when the last merge leaves nothing behind)."""
    batches = -(-images // CALIBRATION_BATCH) * (2 if CALIBRATION_FLIPS else 1)
    return next(k for k in (4, 5, 3, 7, 11) if batches % k)


def export_int8(spec: BackboneSpec, fp32_path: Path, path: Path) -> bool:
    """Quantizes `fp32_path` to `path` once per machine (other processes wait on the lock); False when it was there."""
    from .onnx_engine import export_lock

    with export_lock(path):
        if path.exists():
            return False
        quantize(fp32_path, path, spec)
    return True


def quantize(fp32_path: Path, target: Path, spec: BackboneSpec, images: list[Path] | None = None) -> None:
    """Writes the INT8 model of `fp32_path` to `target` atomically, calibrated on `images` (default: shipped set)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import CalibrationDataReader

    class Reader(_Reader, CalibrationDataReader):
        pass

    paths = images if images is not None else calibration_images()
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        quantize_static(
            str(fp32_path),
            str(tmp),
            Reader(paths, spec),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=False,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=list(QUANTIZED_OPS),
            nodes_to_exclude=list(KEEP_FP32),
            extra_options={"CalibMaxIntermediateOutputs": _merge_every(len(paths))},  # bounded memory
        )
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
