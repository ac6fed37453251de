"""MLflow tracking: an experiment per classifier, a run per training, registered versions, alias `serving`.

The `Tracker` mirrors the store into MLflow. It listens to training events but does its logging on
a worker thread of its own, so a slow or unreachable tracking server never delays or breaks a
training; what could not be logged is reported as a warning and retried. Every sync reads the
store, so it is idempotent: a version is logged once, however many times it is asked for.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from . import explain, plots
from .backbone import Backbone
from .errors import ClassifierNotFound, TrackingError
from .jobs import ClassifierEvent
from .pyfunc import save_pyfunc
from .store import ClassifierRecord, ExampleRow, Store, VersionRecord
from .training import CV_FOLDS, HEAD_C, SEED, THRESHOLD, Heads, OutOfFold

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
WORKBENCH_TRACKING_ENV = "WORKBENCH_TRACKING_URI"  # overrides MLFLOW_TRACKING_URI for workbench only; "none" = off
MLRUNS_DIR = "mlruns"  # default tracking home, under the project (current) directory
MLRUNS_DB = "mlflow.db"
MLRUNS_ARTIFACTS = "artifacts"
OFF_VALUES = frozenset({"", "none", "off", "false"})  # tracking_uri values that turn tracking off
SERVING_ALIAS = "serving"
MODEL_ARTIFACT = "model"
MANIFEST_ARTIFACT = "examples/manifest.csv"
HTTP_TIMEOUT_SECONDS = "10"  # per MLflow HTTP request, unless MLFLOW_HTTP_REQUEST_TIMEOUT says otherwise
HTTP_MAX_RETRIES = "1"  # per MLflow HTTP request, unless MLFLOW_HTTP_REQUEST_MAX_RETRIES says otherwise
RETRY_SECONDS = 60.0  # how often missed logging is retried while something is pending
EXIT_FLUSH_SECONDS = 60.0  # how long a process waits at exit for its last runs to be logged
STALE_LOGGING_SECONDS = 600.0  # a run still half-logged after this long was abandoned (crash, outage)
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
TRACKED_STAGES = ("started", "ready", "failed", "deleted")
HEAD_TYPE = "logistic regression, one-vs-rest per class, class_weight=balanced, L2-normalised embeddings"

# tags on runs, registered versions and experiments
TAG_KIND = "workbench.kind"  # "version" (a successful training) or "failed_training"
TAG_VERSION = "workbench.version"
TAG_PARENT = "workbench.parent_version"
TAG_OUTCOME = "workbench.outcome"  # "ready" or "failed"
TAG_ADDED = "workbench.added"  # what the update added, in words
TAG_EXPLANATION = "workbench.explanation"
TAG_REGISTERED = "workbench.registered_version"
TAG_LOGGED = "workbench.logged"  # set last: the run is complete
TAG_LOGGING_SINCE = "workbench.logging_since_ms"  # when logging began (a half-logged run older than STALE_... is removed)
TAG_DELETED = "workbench.deleted"
NOTE_TAG = "mlflow.note.content"  # MLflow shows it as the run / experiment description


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go: the tracking URI and, for a local store, the artifact root of new experiments."""

    uri: str
    artifact_root: str | None = None


@dataclass
class Failure:
    """A failed training waiting to be logged as a failed run."""

    classifier_id: str
    explanation: str
    at_ms: int


def tracking_target(tracking_uri: str | os.PathLike | bool | None) -> TrackingTarget | None:
    """Resolves `tracking_uri`: None -> $WORKBENCH_TRACKING_URI, $MLFLOW_TRACKING_URI or ./mlruns; False/"none" -> off.

    A plain directory means a SQLite store `mlflow.db` with artifacts in `artifacts/` inside it.
    """
    if tracking_uri is None or tracking_uri is True:
        tracking_uri = os.environ.get(WORKBENCH_TRACKING_ENV) or os.environ.get(TRACKING_URI_ENV) or Path.cwd() / MLRUNS_DIR
    if tracking_uri is False or (isinstance(tracking_uri, str) and tracking_uri.strip().lower() in OFF_VALUES):
        return None
    text = str(tracking_uri)
    if isinstance(tracking_uri, os.PathLike) or "://" not in text and not text.startswith("sqlite:"):
        folder = Path(tracking_uri).resolve()
        return TrackingTarget(f"sqlite:///{folder / MLRUNS_DB}", (folder / MLRUNS_ARTIFACTS).as_uri())
    if text.startswith("sqlite:///"):
        folder = Path(text.removeprefix("sqlite:///")).resolve().parent
        return TrackingTarget(text, (folder / MLRUNS_ARTIFACTS).as_uri())
    return TrackingTarget(text)


def safe_key(name: str) -> str:
    """A class name as MLflow allows it in metric and param keys (other characters become `_`)."""
    return re.sub(r"[^\w.\- :/]", "_", name)


def iso_to_ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


# what a run records ---------------------------------------------------------
def version_params(version: VersionRecord, backbone: Backbone) -> dict[str, str]:
    """What the training was: backbone, head type and hyper-parameters, classes, images per class."""
    spec = backbone.spec
    metrics = version.metrics
    params = {
        "backbone": spec.name,
        "backbone_id": backbone.backbone_id,
        "image_size_px": spec.input_size_px,
        "normalisation": f"(x - {spec.mean:g}) / {spec.std:g} on RGB",
        "head_type": HEAD_TYPE,
        "head_C": HEAD_C,
        "cv_folds": CV_FOLDS,
        "seed": SEED,
        "threshold": THRESHOLD,
        "classes": json.dumps(version.classes),
        "images": metrics.get("images"),
        "negatives": metrics.get("negatives"),
    }
    for name, per_class in metrics.get("per_class", {}).items():
        params[f"images.{safe_key(name)}"] = per_class.get("positives")
    return {key: str(value)[:MAX_PARAM_CHARS] for key, value in params.items()}


def version_metrics(version: VersionRecord) -> dict[str, float]:
    """How good it is (cross-validated) and what it cost: one number per key, NaNs left out."""
    metrics = version.metrics
    numbers = {
        key: metrics[key]
        for key in ("accuracy", "macro_f1", "images", "negatives", "embed_seconds", "fit_seconds",
                    "images_embedded", "images_cached")
        if key in metrics
    }
    numbers["classes"] = len(version.classes)
    for name, per_class in metrics.get("per_class", {}).items():
        for key in ("precision", "recall", "f1", "roc_auc"):
            numbers[f"{key}/{safe_key(name)}"] = per_class.get(key)
    return {key: float(v) for key, v in numbers.items() if v is not None and not np.isnan(float(v))}


def added_since(rows: list[ExampleRow], previous_last_id: int) -> str:
    """In words, the examples after `previous_last_id`: per class how many images, and negatives."""
    earlier = {r.class_name for r in rows if r.example_id <= previous_last_id and r.class_name is not None}
    counts: dict[str | None, int] = {}
    for row in rows:
        if row.example_id > previous_last_id:
            counts[row.class_name] = counts.get(row.class_name, 0) + 1
    parts = [
        f"{name}: +{n} images" + ("" if name in earlier else " (new class)")
        for name, n in counts.items()
        if name is not None
    ]
    if None in counts:
        parts.append(f"negatives: +{counts[None]} images")
    return "; ".join(parts) or "nothing new"


def manifest_frame(rows: list[ExampleRow]) -> pd.DataFrame:
    """The training examples: one row per stored image with sha256, class and source name."""
    return pd.DataFrame(
        {
            "example_id": [r.example_id for r in rows],
            "sha256": [r.sha256 for r in rows],
            "example": ["negative" if r.class_name is None else "positive" for r in rows],
            "class": [r.class_name or "" for r in rows],
            "source": [r.source for r in rows],
        }
    )


# the tracker --------------------------------------------------------------------
@dataclass
class _Flush:
    """A marker in the worker's queue: set when everything before it is handled."""

    done: threading.Event = field(default_factory=threading.Event)


class Tracker:
    """Mirrors classifiers into MLflow; use it as a JobRunner listener. Nothing connects before the first event."""

    def __init__(self, store: Store, backbone: Backbone, target: TrackingTarget) -> None:
        self.store = store
        self.backbone = backbone
        self.target = target
        self.warnings: dict[str, str] = {}  # classifier_id -> what could not be logged, and why
        self._failures: list[Failure] = []
        self._seen: set[str] = set()
        self._abandoned: set[str] = set()  # run ids this tracker began but could not finish logging
        self._lock = threading.RLock()  # one MLflow conversation at a time
        self._state_lock = threading.Lock()  # guards _failures and _seen (held only briefly)
        self._queue: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._client = None

    @property
    def uri(self) -> str:
        return self.target.uri

    def client(self):
        """The MlflowClient for this target, with bounded HTTP timeouts and retries."""
        if self._client is None:
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_TIMEOUT_SECONDS)
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_MAX_RETRIES)
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
            from mlflow import MlflowClient

            if self.target.uri.startswith("sqlite:///"):
                Path(self.target.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(tracking_uri=self.target.uri, registry_uri=self.target.uri)
        return self._client

    # listening ------------------------------------------------------------------
    def __call__(self, event: ClassifierEvent) -> None:
        """The JobRunner listener: queues the event and returns at once (never raises)."""
        if event.stage not in TRACKED_STAGES:
            return
        with self._state_lock:
            if event.stage == "failed":
                self._failures.append(Failure(event.classifier_id, event.explanation or "", int(time.time() * 1000)))
            self._seen.add(event.classifier_id)
        self._queue.put(event.classifier_id)
        self._start_worker()

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="mlflow-tracking", daemon=True)
            self._worker.start()
            atexit.register(self.flush, timeout=EXIT_FLUSH_SECONDS)

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=RETRY_SECONDS)
            except queue.Empty:
                for classifier_id in list(self.warnings):
                    self.sync(classifier_id)
                continue
            if isinstance(item, _Flush):
                item.done.set()
            else:
                self.sync(item)
                for classifier_id in [c for c in list(self.warnings) if c != item]:
                    self.sync(classifier_id)

    def flush(self, timeout: float | None = None) -> bool:
        """Logs everything this tracker has seen so far; False if something is still not logged."""
        marker = _Flush()
        self._queue.put(marker)
        self._start_worker()
        marker.done.wait(timeout)
        with self._state_lock:
            seen = sorted(self._seen)
        ok = [self.sync(classifier_id) for classifier_id in seen]
        return all(ok)

    # syncing ----------------------------------------------------------------------
    def sync(self, classifier_id: str) -> bool:
        """Makes MLflow match the store for one classifier; on failure records a warning (never raises)."""
        with self._state_lock:
            self._seen.add(classifier_id)
        with self._lock:
            try:
                self._sync(classifier_id)
            except Exception as exc:  # tracking must never break training or serving
                self.warnings[classifier_id] = self._warning(classifier_id, exc)
                return False
            self.warnings.pop(classifier_id, None)
            return True

    def _warning(self, classifier_id: str, exc: Exception) -> str:
        missing = [str(v.version) for v in self._store_versions(classifier_id)]
        failures = len(self._failures_of(classifier_id))
        what = f"runs and registered versions for versions {', '.join(missing)} (unless logged earlier)" if missing else "its experiment"
        if failures:
            what += f", {failures} failed training run(s)"
        reason = " ".join(str(exc).split())[:300]
        return (
            f"MLflow tracking at {self.uri} failed ({type(exc).__name__}: {reason}). Not logged yet: {what}. "
            f"Training and classify are unaffected; retried every {RETRY_SECONDS:g} s, at the next training, "
            f"and by Workbench.tracker.sync()."
        )

    def _failures_of(self, classifier_id: str) -> list[Failure]:
        with self._state_lock:
            return [f for f in self._failures if f.classifier_id == classifier_id]

    def _store_versions(self, classifier_id: str) -> list[VersionRecord]:
        try:
            return self.store.versions(classifier_id)
        except Exception:
            return []

    def _sync(self, classifier_id: str) -> None:
        client = self.client()
        try:
            record = self.store.classifier(classifier_id)
        except ClassifierNotFound:
            self._forget(client, classifier_id)
            return
        experiment_id = self._experiment(client, record)
        runs = self._version_runs(client, experiment_id, classifier_id)
        versions = self.store.versions(classifier_id)
        for i, version in enumerate(versions):
            if version.version not in runs:
                parent = versions[i - 1] if i else None
                runs[version.version] = self._log_version(client, experiment_id, record, version, parent)
        for failure in self._failures_of(classifier_id):
            self._log_failure(client, experiment_id, record, failure)
            with self._state_lock:
                self._failures.remove(failure)
        if record.serving_version in runs:
            registered = runs[record.serving_version].data.tags[TAG_REGISTERED]
            client.set_registered_model_alias(classifier_id, SERVING_ALIAS, registered)

    def _experiment(self, client, record: ClassifierRecord) -> str:
        """The classifier's experiment (named after its id), created on first use."""
        experiment = client.get_experiment_by_name(record.classifier_id)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                client.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id
        location = f"{self.target.artifact_root}/{record.classifier_id}" if self.target.artifact_root else None
        tags = {"workbench.classifier_name": record.name, "workbench.owner": record.owner,
                NOTE_TAG: f"Watson classifier **{record.name}** (`{record.classifier_id}`), owner {record.owner}: "
                          "one run per training."}
        return client.create_experiment(record.classifier_id, artifact_location=location, tags=tags)

    def _version_runs(self, client, experiment_id: str, classifier_id: str) -> dict[int, Any]:
        """Completely logged version runs by version number; half-logged ones (a crash, an outage) are removed."""
        runs = client.search_runs([experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'version'", max_results=5000)
        complete = {}
        for run in runs:
            if run.data.tags.get(TAG_LOGGED) == "true":
                complete[int(run.data.tags[TAG_VERSION])] = run
                continue
            age_ms = time.time() * 1000 - int(run.data.tags.get(TAG_LOGGING_SINCE, 0))
            if run.info.run_id not in self._abandoned and age_ms < STALE_LOGGING_SECONDS * 1000:
                raise TrackingError(f"Version {run.data.tags[TAG_VERSION]} is being logged by another process")
            for stale in client.search_model_versions(f"name='{classifier_id}' and run_id='{run.info.run_id}'"):
                client.delete_model_version(classifier_id, stale.version)
            client.delete_run(run.info.run_id)
        return complete

    def _log_version(self, client, experiment_id: str, record: ClassifierRecord, version: VersionRecord,
                     parent: VersionRecord | None) -> Any:
        """One successful training: params, metrics, tags, dataset, plots, manifest, model, registry version."""
        cid = record.classifier_id
        rows = self.store.examples(cid, up_to=version.last_example_id)
        added = added_since(rows, parent.last_example_id if parent else 0)
        seconds = version.metrics.get("embed_seconds", 0.0) + version.metrics.get("fit_seconds", 0.0)
        end_ms = iso_to_ms(version.created)
        tags = {
            TAG_KIND: "version", TAG_OUTCOME: "ready", TAG_VERSION: str(version.version),
            TAG_PARENT: str(parent.version) if parent else "", TAG_ADDED: added,
            TAG_LOGGING_SINCE: str(int(time.time() * 1000)),
            "workbench.classifier_id": cid, "workbench.classifier_name": record.name, "workbench.owner": record.owner,
            NOTE_TAG: f"Version {version.version} of **{record.name}** (`{cid}`). "
                      f"{'Created' if parent is None else f'Retrained after v{parent.version}'}; added {added}.",
        }
        run = client.create_run(experiment_id, start_time=end_ms - int(seconds * 1000), tags=tags,
                                run_name=f"v{version.version}")
        run_id = run.info.run_id
        try:
            return self._fill_run(client, run, record, version, rows, end_ms)
        except Exception:
            self._abandoned.add(run_id)  # removed and logged afresh by the next sync
            raise

    def _fill_run(self, client, run, record: ClassifierRecord, version: VersionRecord, rows: list[ExampleRow],
                  end_ms: int) -> Any:
        cid, run_id = record.classifier_id, run.info.run_id
        self._log_numbers(client, run_id, version, end_ms)
        self._log_dataset(client, run, cid, version, rows)
        with tempfile.TemporaryDirectory(prefix="workbench-run-") as tmp:
            folder = Path(tmp)
            self._write_artifacts(folder / "files", record, version, rows)
            client.log_artifacts(run_id, str(folder / "files"))
        registered = self._register(client, record, version, run)
        client.set_tag(run_id, TAG_REGISTERED, registered)
        client.set_tag(run_id, TAG_LOGGED, "true")
        client.set_terminated(run_id, "FINISHED", end_time=end_ms)
        return client.get_run(run_id)

    def _log_numbers(self, client, run_id: str, version: VersionRecord, at_ms: int) -> None:
        from mlflow.entities import Metric, Param

        params = [Param(k, v) for k, v in version_params(version, self.backbone).items()]
        metrics = [Metric(k, v, at_ms, 0) for k, v in version_metrics(version).items()]
        client.log_batch(run_id, metrics=metrics, params=params)

    def _log_dataset(self, client, run, classifier_id: str, version: VersionRecord, rows: list[ExampleRow]) -> None:
        """The training examples as an MLflow dataset input (digest, schema, and a preview in the UI)."""
        import mlflow.data
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        from mlflow.exceptions import MlflowException

        frame, name = manifest_frame(rows), f"{classifier_id}-v{version.version}-examples"
        with warnings.catch_warnings():  # MLflow's hints about integer columns and ambiguous sources
            warnings.simplefilter("ignore", UserWarning)
            try:  # the run's manifest artifact as the source, where MLflow can resolve its scheme (file: can)
                source = f"{run.info.artifact_uri}/{MANIFEST_ARTIFACT}"
                dataset = mlflow.data.from_pandas(frame, source=source, name=name, targets="class")
            except MlflowException:
                dataset = mlflow.data.from_pandas(frame, name=name, targets="class")
            entity = DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, "training")])
        client.log_inputs(run.info.run_id, datasets=[entity])

    def _write_artifacts(self, folder: Path, record: ClassifierRecord, version: VersionRecord, rows: list[ExampleRow]) -> None:
        """Plots (PNG), the manifest (CSV), the full metrics (JSON) and the pyfunc model, into one folder."""
        (folder / "plots").mkdir(parents=True)
        (folder / "examples").mkdir()
        held_out = OutOfFold.from_bytes(self.store.out_of_fold_path(record.classifier_id, version.version).read_bytes())
        scores, labels = held_out.scores, held_out.labels
        figures = {
            "confusion_matrix": plots.confusion_matrix(scores, labels, version.classes),
            "score_histograms": plots.score_histograms(scores, labels, version.classes),
            "threshold_curves": plots.threshold_curves(scores, labels, version.classes),
        }
        for name, figure in figures.items():
            figure.savefig(folder / "plots" / f"{name}.png", dpi=100)
        write_overlay_gallery(folder / "plots", self.store, self.backbone, record, version, rows)
        manifest_frame(rows).to_csv(folder / MANIFEST_ARTIFACT, index=False)
        (folder / "metrics.json").write_text(json.dumps(version.metrics, indent=2))
        model_folder = folder.parent / "model-build" / MODEL_ARTIFACT
        model_folder.parent.mkdir()
        heads_file = self.store.head_path(record.classifier_id, version.version)
        save_pyfunc(model_folder, record, version, heads_file, self.backbone.backbone_id)
        model_folder.rename(folder / MODEL_ARTIFACT)

    def _register(self, client, record: ClassifierRecord, version: VersionRecord, run) -> str:
        """A new registered version (model named after the classifier id) from the run's model; its number."""
        from mlflow.exceptions import MlflowException

        cid = record.classifier_id
        try:
            client.get_registered_model(cid)
        except MlflowException:
            client.create_registered_model(
                cid, tags={"workbench.classifier_name": record.name, "workbench.owner": record.owner},
                description=f"Watson classifier {record.name} ({cid}). Alias `{SERVING_ALIAS}` = the version classify uses.",
            )
        created = client.create_model_version(
            cid, source=f"{run.info.artifact_uri}/{MODEL_ARTIFACT}", run_id=run.info.run_id,
            tags={TAG_VERSION: str(version.version)},
            description=f"v{version.version}: classes {', '.join(version.classes)}",
        )
        return str(created.version)

    def _log_failure(self, client, experiment_id: str, record: ClassifierRecord, failure: Failure) -> None:
        """A failed training: a run marked FAILED with the explanation (the alias does not move)."""
        tags = {
            TAG_KIND: "failed_training", TAG_OUTCOME: "failed", TAG_EXPLANATION: failure.explanation[:5000],
            TAG_PARENT: str(record.serving_version or ""), "workbench.classifier_id": record.classifier_id,
            NOTE_TAG: f"Training failed: {failure.explanation}",
        }
        run = client.create_run(experiment_id, start_time=failure.at_ms, tags=tags, run_name="failed training")
        rows = self.store.examples(record.classifier_id)
        counts = manifest_frame(rows)["class"].replace("", "(negative)").value_counts()
        client.log_batch(run.info.run_id, params=_params({"classes": json.dumps([c for c in counts.index if c != "(negative)"]),
                                                          "images": len(rows)}))
        client.set_terminated(run.info.run_id, "FAILED", end_time=failure.at_ms)

    def _forget(self, client, classifier_id: str) -> None:
        """A deleted classifier: its registered model goes; its runs stay, tagged deleted."""
        from mlflow.exceptions import MlflowException

        experiment = client.get_experiment_by_name(classifier_id)
        if experiment is None:
            return
        try:
            client.delete_registered_model(classifier_id)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        for run in client.search_runs([experiment.experiment_id], max_results=5000):
            if run.data.tags.get(TAG_DELETED) != "true":
                client.set_tag(run.info.run_id, TAG_DELETED, "true")
        client.set_experiment_tag(experiment.experiment_id, TAG_DELETED, "true")

    # reading ------------------------------------------------------------------------
    def versions_frame(self, classifier_id: str) -> pd.DataFrame:
        """Every logged version of a classifier with its MLflow metrics, one row per version (oldest first)."""
        if not self.sync(classifier_id):
            raise TrackingError(self.warnings.get(classifier_id, "MLflow tracking failed"))
        client = self.client()
        experiment = client.get_experiment_by_name(classifier_id)
        runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'version'",
                                  max_results=5000)
        serving = self.store.classifier(classifier_id).serving_version
        rows = []
        for run in runs:
            tags = run.data.tags
            rows.append({
                "version": int(tags[TAG_VERSION]), "serving": int(tags[TAG_VERSION]) == serving,
                "registered_version": int(tags[TAG_REGISTERED]), "run_id": run.info.run_id,
                "parent_version": int(tags[TAG_PARENT]) if tags.get(TAG_PARENT) else None,
                "added": tags.get(TAG_ADDED), "class_names": json.loads(run.data.params.get("classes", "[]")),
                **run.data.metrics,
            })
        return pd.DataFrame(rows).sort_values("version").reset_index(drop=True) if rows else pd.DataFrame()


def write_overlay_gallery(folder: Path, store: Store, backbone: Backbone, record: ClassifierRecord,
                          version: VersionRecord, rows: list[ExampleRow]) -> Path:
    """`overlays.png`: a few training images per class with where their class's head looked."""
    from .examples import decode_image

    heads = Heads.from_bytes(store.head_path(record.classifier_id, version.version).read_bytes())
    shown: dict[str, list] = {name: [] for name in heads.classes}
    for row in rows:
        if row.class_name in shown and len(shown[row.class_name]) < explain.GALLERY_IMAGES_PER_CLASS:
            image = decode_image(store.read_blob(row.sha256), draft_size=backbone.spec.input_size_px)
            shown[row.class_name].append((Path(row.source).name[:24], image))
    tiles = explain.class_gallery_tiles(heads, shown, backbone, backbone.spec)
    path = folder / "overlays.png"
    plots.overlay_gallery(tiles, f"{record.classifier_id} v{version.version}: where each class looked").savefig(path, dpi=80)
    return path


def _params(values: dict[str, object]) -> list:
    from mlflow.entities import Param

    return [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in values.items()]


def new_tracker(store: Store, backbone: Backbone, tracking_uri: str | os.PathLike | bool | None) -> Tracker | None:
    """A Tracker for the resolved target, or None when tracking is off."""
    target = tracking_target(tracking_uri)
    return Tracker(store, backbone, target) if target is not None else None


__all__: Iterable[str] = ["Tracker", "TrackingError", "TrackingTarget", "tracking_target", "new_tracker"]
