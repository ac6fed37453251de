"""The built-in `explicit` classifier: NudeNet's nudity detector, an optional extra (`pip install workbench[explicit]`).

The only packaged model found for it is `320n.onnx` inside the `nudenet` 3.4.2 wheel (a YOLOv8n detector of 18
body-part classes, 12 MB). The wheel's metadata says MIT, but both licence files it ships (LICENSE, LICENSE.md)
are the GNU AGPL-3.0, so it is never part of the default install: without it `classifier_ids=explicit` is a
`ModelNotInstalled` error that says so. The model is read from the installed package's folder (found without
importing `nudenet`, which needs OpenCV) and run here with onnxruntime; nothing is downloaded.

An image's explicit score is the detector's highest confidence, over every anchor, for an exposed explicit part
(genitalia, female breast, buttocks, anus); `not explicit` scores 1 minus it, so exactly one of the two reaches
the default threshold of 0.5, as in Watson's answers.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.errors import ModelNotInstalled
from ..core.vocabulary import EXPLICIT_CLASS, EXPLICIT_CLASSIFIER_ID, NOT_EXPLICIT_CLASS, SCORE_DECIMALS

MODEL_PACKAGE = "nudenet"  # the registry package that ships the weights (AGPL-3.0 licence files)
MODEL_FILE = "320n.onnx"
INPUT_SIZE = 320  # the detector's square input, in pixels
# The detector's 18 classes, in its output order (nudenet 3.4.2's `__labels`); the explicit ones are flagged
LABELS = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
EXPLICIT_LABELS = (
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "ANUS_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
)
NOT_INSTALLED = (
    f"The built-in classifier {EXPLICIT_CLASSIFIER_ID!r} is not installed: its model, NudeNet's detector, ships "
    f"in the {MODEL_PACKAGE!r} package under the AGPL-3.0, so it is an optional extra: "
    f"pip install 'workbench[explicit]'"
)


def model_path() -> Path | None:
    """Where the installed `nudenet` package keeps its detector, or None when it (or the file) is not installed."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)  # locates the package without running its __init__ (OpenCV)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / MODEL_FILE
        if path.is_file():
            return path
    return None


def available() -> bool:
    """Whether `explicit` can answer here (the optional extra is installed)."""
    return model_path() is not None


def letterboxed(image: Image.Image) -> np.ndarray:
    """The detector's input for one image: RGB padded right and below to a square, resized to 320, 0..1, NCHW."""
    rgb = image.convert("RGB")
    side = max(rgb.size)
    square = Image.new("RGB", (side, side))
    square.paste(rgb, (0, 0))
    resized = square.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
    return (np.asarray(resized, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None]


@dataclass
class ExplicitModel:
    """The loaded detector; `score` runs in the decode pool's threads at once (onnxruntime's run is thread-safe)."""

    session: object
    input_name: str
    explicit_rows: np.ndarray  # rows of the output (4 box rows, then one per label) that are explicit labels

    def score(self, image: Image.Image) -> float:
        """How explicit one image is, 0..1: the highest explicit part's confidence anywhere in it."""
        (output,) = self.session.run(None, {self.input_name: letterboxed(image)})  # type: ignore[attr-defined]
        return float(np.clip(output[0][self.explicit_rows].max(), 0.0, 1.0))


@functools.cache
def explicit_model() -> ExplicitModel:
    """The installed detector, loaded once; `ModelNotInstalled` when the extra is missing."""
    path = model_path()
    if path is None:
        raise ModelNotInstalled(NOT_INSTALLED)
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    rows = np.array([4 + LABELS.index(label) for label in EXPLICIT_LABELS])
    return ExplicitModel(session, session.get_inputs()[0].name, rows)


def explicit_classes(score: float, threshold: float) -> list[dict]:
    """The `explicit` classifier's classes for one image: `explicit` and `not explicit` at or above the threshold."""
    pairs = sorted(
        [(round(score, SCORE_DECIMALS), EXPLICIT_CLASS), (round(1.0 - score, SCORE_DECIMALS), NOT_EXPLICIT_CLASS)],
        key=lambda pair: -pair[0],
    )
    return [{"class": name, "score": value} for value, name in pairs if value >= threshold]
