"""What one MLflow run records for a classifier version: params, metrics, tags, dataset, artifacts, registry.

The tracker (`tracking`) decides when and whether to log; this module decides what a run holds,
so the MLflow UI reads the same whoever logged it.
"""

from __future__ import annotations

import getpass
import json
import re
import warnings
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..analysis.training import CV_FOLDS, HEAD_C, SEED, Heads, OutOfFold
from ..core.records import ClassifierRecord, ExampleRow, VersionRecord
from ..core.vocabulary import THRESHOLD
from ..engine.backbone import Backbone
from ..images.decode import decode_image
from ..store.curation import VersionChanges
from ..store.database import Store
from .tags import (
    KEY_METRICS_VIEW,
    MODEL_VERSIONS_TAG,
    SERVING_ALIAS,
    TAG_ADDED,
    TAG_CLASSIFIER_NAME,
    TAG_CLASSIFIER_OWNER,
    TAG_VERSION,
    VIEW_TAG_PREFIX,
)
from .tracked_files import ClassifierFiles

if TYPE_CHECKING:  # imported where used: the tracker is built by `workbench list` too, which needs neither
    import pandas as pd

MANIFEST_ARTIFACT = "examples/manifest.csv"
CHANGES_ARTIFACT = "examples/changes.csv"  # what curations removed or relabelled since the parent version
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
HEAD_TYPE = "logistic_ovr"  # a short param that compares well; HEAD_DESCRIPTION says it in words
HEAD_DESCRIPTION = (
    "logistic regression, one-vs-rest per class, class_weight=balanced, L2-normalised embeddings, "
    "Platt-calibrated on out-of-fold logits, times a familiarity gate (similarity to the class centre)"
)
OVERLAYS_FILE = "overlays.png"
KEY_METRICS_VIEW_NAME = "Key metrics"  # the runs table's saved view (tags.KEY_METRICS_VIEW) as the UI names it
KEY_METRICS = ("accuracy", "macro_f1", "ece", "brier_score", "unknown_false_positive_rate", "images", "classes")


def safe_key(name: str) -> str:
    """A class name as MLflow allows it in metric and param keys (other characters become `_`)."""
    return re.sub(r"[^\w.\- :/]", "_", name)


def iso_to_ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def embedded_with(version: VersionRecord, backbone: Backbone) -> tuple[str, str]:
    """The backbone id and precision that embedded the version's images (FP32 for versions older than the record)."""
    metrics = version.metrics
    if "backbone_id" in metrics:
        return metrics["backbone_id"], metrics.get("precision", "fp32")
    return backbone.spec.backbone_id, "fp32"


def version_params(version: VersionRecord, backbone: Backbone) -> dict[str, str]:
    """What the training was: backbone (id and precision), head type and hyper-parameters, classes, images per class."""
    spec = backbone.spec
    metrics = version.metrics
    backbone_id, precision = embedded_with(version, backbone)
    params = {
        "backbone": spec.name,
        "backbone_id": backbone_id,
        "precision": precision,
        "image_size_px": spec.input_size_px,
        "normalisation": f"(x - {spec.mean:g}) / {spec.std:g} on RGB",
        "head_type": HEAD_TYPE,
        "head_C": HEAD_C,
        **cv_params(metrics),
        "seed": SEED,
        "threshold": THRESHOLD,
        "images": count(metrics.get("images")),
        "negatives": count(metrics.get("negatives")),
    }
    for name, per_class in metrics.get("per_class", {}).items():
        params[f"images.{safe_key(name)}"] = count(per_class.get("positives"))
    return {key: str(value)[:MAX_PARAM_CHARS] for key, value in params.items()}


def cv_params(metrics: dict) -> dict[str, object]:
    """How the held-out evidence was made (`analysis.retraining`): a full k-fold, or the previous version's reused.

    Versions older than the record were all a full k-fold of CV_FOLDS folds on every image.
    """
    cv = metrics.get("cv", {})
    images = count(metrics.get("images"))
    return {
        "cv_scheme": cv.get("scheme", "kfold"),
        "cv_folds": cv.get("folds", CV_FOLDS),
        "cv_repeats": cv.get("repeats", metrics.get("calibration", {}).get("cv_repeats", 1)),
        "cv_cross_validated_images": cv.get("cross_validated_images", images),
        "cv_reused_images": cv.get("reused_images", 0),
        "cv_scored_by_previous_version": cv.get("scored_by_previous_version", 0),
        "warm_start": cv.get("warm_start", False),
    }


def count(value: object) -> object:
    """A count as an int (`50`, not `50.0`), so MLflow's axes read it as one; None stays None."""
    return (
        int(value) if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer() else value
    )


def source_tags() -> dict[str, str]:
    """Who and what logged the run: MLflow's `mlflow.source.*` and `mlflow.user` tags (the run page's Source, User)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = "unknown"
    from importlib import metadata  # here: 20 ms that `workbench list` does not need

    try:
        release = metadata.version("workbench")
    except metadata.PackageNotFoundError:
        release = "dev"
    return {"mlflow.source.type": "LOCAL", "mlflow.source.name": f"workbench {release}", "mlflow.user": user}


def version_metrics(version: VersionRecord) -> dict[str, float]:
    """How good it is (cross-validated) and what it cost: one number per key, NaNs left out."""
    metrics = version.metrics
    numbers = {
        key: metrics[key]
        for key in (
            "accuracy",
            "macro_f1",
            "images",
            "negatives",
            "embed_seconds",
            "fit_seconds",
            "images_embedded",
            "images_cached",
        )
        if key in metrics
    }
    numbers["classes"] = len(version.classes)
    calibration, unknown = metrics.get("calibration", {}), metrics.get("unknown_images", {})
    numbers.update(
        ece=calibration.get("ece"),
        brier_score=calibration.get("brier"),
        unknown_false_positive_rate=unknown.get("false_positive_rate"),
    )
    for name, per_class in metrics.get("per_class", {}).items():
        for key in ("precision", "recall", "f1", "roc_auc"):
            numbers[f"{key}/{safe_key(name)}"] = per_class.get(key)
    return {key: float(v) for key, v in numbers.items() if v is not None and not np.isnan(float(v))}


def added_since(rows: list[ExampleRow], previous_last_id: int) -> str:
    """In words, the examples after `previous_last_id`: images per class, and negatives (relabellings are not added)."""
    earlier = {r.class_name for r in rows if r.example_id <= previous_last_id and r.class_name is not None}
    counts: dict[str | None, int] = {}
    for row in rows:
        if row.example_id > previous_last_id and row.replaces is None:
            counts[row.class_name] = counts.get(row.class_name, 0) + 1
    parts = [
        f"{name}: +{n} images" + ("" if name in earlier else " (new class)")
        for name, n in counts.items()
        if name is not None
    ]
    if None in counts:
        parts.append(f"negatives: +{counts[None]} images")
    return "; ".join(parts) or "nothing new"


def curation_params(changes: VersionChanges) -> dict[str, object]:
    """Params of every version run: how many examples curations removed and relabelled since the parent (0: none)."""
    return {"examples_removed": len(changes.removed), "examples_relabelled": len(changes.relabelled)}


def write_changes(folder: Path, changes: VersionChanges) -> None:
    """`examples/changes.csv` (one row per removed or relabelled example), when curations changed anything."""
    if changes.removed or changes.relabelled:
        path = folder / CHANGES_ARTIFACT
        path.parent.mkdir(parents=True, exist_ok=True)
        changes.frame().to_csv(path, index=False)


def manifest_frame(rows: list[ExampleRow]) -> pd.DataFrame:
    """The training examples: one row per stored image with sha256, class and source name."""
    import pandas as pd

    return pd.DataFrame(
        {
            "example_id": [r.example_id for r in rows],
            "sha256": [r.sha256 for r in rows],
            "example": ["negative" if r.class_name is None else "positive" for r in rows],
            "class": [r.class_name or "" for r in rows],
            "source": [r.source for r in rows],
        }
    )


def log_numbers(
    client, run_id: str, version: VersionRecord, backbone: Backbone, at_ms: int, model_id: str | None = None
) -> None:
    """The version's params and metrics, in one batch; with `model_id` the metrics are also the LoggedModel's."""
    from mlflow.entities import Metric, Param

    params = [Param(k, v) for k, v in version_params(version, backbone).items()]
    metrics = [Metric(k, v, at_ms, 0, model_id=model_id) for k, v in version_metrics(version).items()]
    client.log_batch(run_id, metrics=metrics, params=params)


def log_dataset(client, run, classifier_id: str, version: VersionRecord, rows: list[ExampleRow]) -> None:
    """The training examples as an MLflow dataset input (digest, schema, and a preview in the UI)."""
    from mlflow.data.pandas_dataset import (
        from_pandas,
    )  # mlflow.data adds it by setattr from a registry: mypy cannot see it
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    frame, name = manifest_frame(rows), f"{classifier_id}-v{version.version}-examples"
    with warnings.catch_warnings():  # MLflow's hints about integer columns and ambiguous sources
        warnings.simplefilter("ignore", UserWarning)
        try:  # the run's manifest artifact as the source, where MLflow can resolve its scheme (file: can)
            source = f"{run.info.artifact_uri}/{MANIFEST_ARTIFACT}"
            dataset = from_pandas(frame, source=source, name=name, targets="class")
        except MlflowException:
            dataset = from_pandas(frame, name=name, targets="class")
        entity = DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, "training")])
    client.log_inputs(run.info.run_id, datasets=[entity])


def write_artifacts(
    folder: Path,
    files: ClassifierFiles,
    store: Store,
    backbone: Backbone,
    version: VersionRecord,
    rows: list[ExampleRow],
) -> None:
    """Plots (PNG), the manifest (CSV) and the full metrics (JSON), into one folder.

    The plots sit at the artifact root: MLflow's compare-runs view lists the files every run has
    there and shows the one picked side by side, one column per version.
    """
    from ..analysis import plots  # matplotlib: logging needs it, scoring a logged model does not

    (folder / "examples").mkdir(parents=True)
    held_out = OutOfFold.from_bytes(files.out_of_fold_path(store, version).read_bytes())
    scores, labels = held_out.scores, held_out.labels
    figures = {
        "confusion_matrix": plots.confusion_matrix(scores, labels, version.classes),
        "score_histograms": plots.score_histograms(scores, labels, version.classes),
        "threshold_curves": plots.threshold_curves(scores, labels, version.classes),
        "reliability_diagram": plots.reliability_diagram(scores, labels, version.classes),
    }
    for name, figure in figures.items():
        figure.savefig(folder / f"{name}.png", dpi=100)
    write_overlay_gallery(folder, files, store, backbone, version, rows)
    manifest_frame(rows).to_csv(folder / MANIFEST_ARTIFACT, index=False)
    (folder / "metrics.json").write_text(json.dumps(version.metrics, indent=2))


def key_metrics_view(created_ms: int) -> tuple[str, str]:
    """The experiment tag of the runs table's "Key metrics" view: its key and value (the UI's saved-view envelope).

    `created_ms` (the experiment's creation time) keeps the value the same on every sync, so an
    experiment is written to only when the view changed.
    """
    columns = [
        "attributes.`Models`",
        *(f"metrics.`{key}`" for key in KEY_METRICS),  # no wide Dataset column
        f"tags.`{TAG_ADDED}`",
    ]
    state = json.dumps({"selectedColumns": columns})
    value = {"name": KEY_METRICS_VIEW_NAME, "createdAt": created_ms, "updatedAt": created_ms, "state": state}
    return VIEW_TAG_PREFIX + KEY_METRICS_VIEW, json.dumps(value)


def model_name(classifier_id: str, version: int) -> str:
    """The LoggedModel's name, `<classifier_id>-v<version>` (MLflow forbids / : . % and quotes in it)."""
    return re.sub(r"[/:.%\"']", "_", f"{classifier_id}-v{int(version)}")


def create_model(
    client,
    experiment_id: str,
    run,
    classifier_id: str,
    version: VersionRecord,
    backbone: Backbone,
    extra_params: dict[str, object] | None = None,
) -> str:
    """The run's MLflow 3 LoggedModel (PENDING until `log_model` fills it), linked as the run's output; its id.

    Named after the classifier and version, with the run's params (the model page's Parameters):
    `version_params` and `extra_params`, which the caller logs to the run as well.
    """
    from mlflow.entities import LoggedModelOutput

    model = client.create_logged_model(
        experiment_id,
        name=model_name(classifier_id, version.version),
        source_run_id=run.info.run_id,
        model_type="workbench-classifier",
        tags={TAG_VERSION: str(version.version)},
        params={**version_params(version, backbone), **{k: str(v) for k, v in (extra_params or {}).items()}},
    )
    client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, step=0)])
    return model.model_id


def log_model(
    client, model_id: str, run, folder: Path, files: ClassifierFiles, backbone: Backbone, version: VersionRecord
) -> None:
    """Writes the pyfunc model into the LoggedModel's artifacts and marks it READY (`models:/<model_id>`)."""
    from mlflow.entities import LoggedModelStatus
    from mlflow.models import Model

    from .pyfunc import save_pyfunc

    model = client.get_logged_model(model_id)
    described = Model(
        artifact_path=model.artifact_location, run_id=run.info.run_id, model_id=model_id, model_uuid=model_id
    )
    target = folder / "pyfunc" / "model"  # save_pyfunc stages its data beside the model folder
    target.parent.mkdir()
    backbone_id, precision = embedded_with(version, backbone)
    save_pyfunc(target, files.record, version, files.head_path(version), backbone_id, precision, mlflow_model=described)
    client.log_model_artifacts(model_id, str(target))
    client.finalize_logged_model(model_id, LoggedModelStatus.READY)


def register(client, record: ClassifierRecord, version: VersionRecord, run, model_id: str) -> str:
    """A new registered version (model named after the classifier id) of the run's LoggedModel; its number."""
    from mlflow.exceptions import MlflowException

    cid = record.classifier_id
    try:
        client.get_registered_model(cid)
    except MlflowException:
        client.create_registered_model(
            cid,
            tags={TAG_CLASSIFIER_NAME: record.name, TAG_CLASSIFIER_OWNER: record.owner},
            description=f"Watson classifier {record.name} ({cid}). "
            f"Alias `{SERVING_ALIAS}` = the version classify uses.",
        )
    created = client.create_model_version(
        cid,
        source=model_source(client, model_id),
        run_id=run.info.run_id,
        model_id=model_id,
        tags={TAG_VERSION: str(version.version)},
        description=f"v{version.version}: classes {', '.join(version.classes)}",
    )
    link_source(client, cid, str(created.version), model_id)
    # the LoggedModel lists its registered versions in this tag (what `mlflow.register_model` writes)
    client.set_logged_model_tags(
        model_id, {MODEL_VERSIONS_TAG: json.dumps([{"name": cid, "version": int(created.version)}])}
    )
    return str(created.version)


def model_source(client, model_id: str) -> str:
    """A registered version's source: `models:/<model_id>` on a tracking server, the LoggedModel's location locally.

    MLflow's SQL registry resolves a `models:/` source against the process-wide tracking URI, not
    the client's: locally that would look in (and create) a stray `./mlflow.db`. A server resolves it
    itself. `link_source` then gives a local version the `models:/` source too.
    """
    if client.tracking_uri.startswith(("http://", "https://")):
        return f"models:/{model_id}"
    return client.get_logged_model(model_id).artifact_location


def link_source(client, name: str, version: str, model_id: str) -> bool:
    """Sets a local registered version's source to `models:/<model_id>`, as a tracking server stores it.

    The UI links a registered version to its LoggedModel ("Source Model") only from that source;
    MLflow's SQL registry has no column for the model id. The download location stays the
    LoggedModel's artifacts. A store other than MLflow's SQL registry is left as it is (False).
    """
    if client.tracking_uri.startswith(("http://", "https://")):
        return True  # the server stored `models:/<model_id>` already
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    store = client._get_registry_client().store
    if not isinstance(store, SqlAlchemyStore):
        return False
    with store.ManagedSessionMaker(read_only=False) as session:
        store._get_sql_model_version(session, name, version).source = f"models:/{model_id}"
    return True


def params(values: dict[str, object]) -> list:
    """MLflow Params, each value cut to MLflow's limit."""
    from mlflow.entities import Param

    return [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in values.items()]


def write_overlay_gallery(
    folder: Path,
    files: ClassifierFiles,
    store: Store,
    backbone: Backbone,
    version: VersionRecord,
    rows: list[ExampleRow],
) -> Path:
    """`overlays.png`: a few training images per class with where their class's head looked.

    An image whose blob is gone (a deleted classifier logged afterwards) is left out.
    """
    from ..analysis import plots
    from ..scoring import explain

    heads = Heads.from_bytes(files.head_path(version).read_bytes())
    shown: dict[str, list] = {name: [] for name in heads.classes}
    for row in rows:
        if row.class_name in shown and len(shown[row.class_name]) < explain.GALLERY_IMAGES_PER_CLASS:
            try:
                data = store.read_blob(row.sha256)
            except FileNotFoundError:
                continue
            image = decode_image(data, draft_size=backbone.spec.input_size_px)
            shown[row.class_name].append((Path(row.source).name[:24], image))
    tiles = explain.class_gallery_tiles(heads, shown, backbone, backbone.spec)
    path = folder / OVERLAYS_FILE
    title = f"{files.record.classifier_id} v{version.version}: where each class looked"
    plots.overlay_gallery(tiles, title).savefig(path, dpi=80)
    return path
