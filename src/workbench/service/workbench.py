"""The Workbench: the one engine behind every front (Python, CLI, HTTP, widgets)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import os
import random
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..analysis.colors import ColorSample, color_sample
from ..analysis.food import food_classes
from ..analysis.general import general_classes
from ..analysis.languages import names_in, negotiate, translate
from ..analysis.training import Heads, OutOfFold
from ..core.errors import (
    ClassifierNotFound,
    ImageUnreadable,
    InvalidClassName,
    InvalidExamples,
    InvalidRequest,
    LimitExceeded,
    NoImages,
    StoreUnavailable,
    TrackingError,
    WaitTimeout,
    echo,
    echo_list,
)
from ..core.events import ClassifierEvent, Listener
from ..core.limits import (
    DOCTOR_GRACE_S,
    MIN_EXAMPLE_SETS,
    Limits,
)
from ..core.names import check_class_name, check_classifier_name, shown_name
from ..core.records import ClassifierRecord
from ..core.sources import Fetcher, ImageURL
from ..core.spec import view_boxes
from ..core.timestamps import now_iso
from ..core.vocabulary import (
    BUILT_IN_CLASSIFIER_IDS,
    DEFAULT_LANGUAGE,
    EXPLICIT_CLASSIFIER_ID,
    FOOD_CLASSIFIER_ID,
    GENERAL_CLASSIFIER_ID,
    NEGATIVE_FIELD,
    OWNER_ME,
    POSITIVE_SUFFIX,
    SETTLED_STATUSES,
)
from ..engine.backbone import Backbone, scratch_dir, single_threaded_blas
from ..engine.explicit import ExplicitModel, explicit_classes, explicit_model
from ..images import streaming
from ..images.classify_inputs import read_images
from ..images.decode import backbone_views, prepared_batches
from ..images.entries import ImageInput, Skipped, Source
from ..images.examples import ExampleSet, folder_sets, read_example_set, request_budget
from ..jobs.runner import JobRunner, JobSettings
from ..jobs.wait_progress import WaitBar
from ..scoring import classify as cls
from ..scoring import explain
from ..scoring.export import Exporter, ExportSource, check_format, coreml_available, default_file_name, write_copy
from ..store import curation, promotion
from ..store.database import Store
from ..store.doctor import run_doctor, startup_sweep, unavailable_report
from ..store.embeddings import EmbeddingCache
from ..store.findings import DoctorReport
from ..tracking.run_record import version_metrics
from ..tracking.sync import Tracker, log_export, new_tracker

if TYPE_CHECKING:
    import pandas

    from ..analysis.interpretation import Interpretation

HOME_ENV = "WORKBENCH_HOME"
DEFAULT_HOME = Path("data") / "workbench"
DEFAULT_OWNER = OWNER_ME
WAIT_POLL_SECONDS = 0.05
UNTRANSLATED_SHOWN = 10  # an untranslated_classes warning names at most this many


def default_home() -> Path:
    """`WORKBENCH_HOME`, else `data/workbench/` under the current directory."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME)


def untranslated_warning(language: str, names: list[str]) -> dict:
    """The Watson WarningInfo that says which built-in class names are answered in English, having no translation."""
    shown = ", ".join(names[:UNTRANSLATED_SHOWN]) + (", ..." if len(names) > UNTRANSLATED_SHOWN else "")
    return {
        "warning_id": "untranslated_classes",
        "description": f"No {language} name for {len(names)} built-in class names; they are in English: {shown}",
    }


def watson_record(record: ClassifierRecord, classes: list[str]) -> dict:
    """The Watson Classifier JSON for a stored record."""
    answer = {
        "classifier_id": record.classifier_id,
        "name": record.name,
        "owner": record.owner,
        "status": record.status,
        "core_ml_enabled": record.serving_version is not None and coreml_available(),
        "created": record.created,
        "updated": record.updated,
        "classes": [{"class": name} for name in classes],
        **promotion.serving_fields(record),  # extensions: serving_version, pinned_version (Watson clients ignore them)
    }
    if record.retrained:
        answer["retrained"] = record.retrained
    if record.explanation:
        answer["explanation"] = record.explanation
    return answer


class Workbench:
    """Watson Visual Recognition v3 custom classifiers, locally: create, watch, update, classify, delete.

    Settings only in the constructor; the backbone loads on first use. `train=False` stores
    requests without training them (another workbench process, e.g. `workbench wait`, resumes them).
    With `resume` (and `train`), this Workbench adopts, while it lives, trainings whose process died;
    with `resume` and tracking on, it also keeps MLflow converged to the store (`resume=False` suits a
    short-lived query: the next process that resumes logs what it left, a deleted classifier's history too).
    `limits` are the input limits (default: `Limits.from_env()`, Watson's, with WORKBENCH_MAX_REQUEST_BYTES and
    WORKBENCH_MAX_ZIP_MEMBERS read from the environment).
    `job_settings` bounds the trainings at once and sets the lease timing (default: `JobSettings.from_env()`).
    `prebuild_exports` (e.g. `("coreml",)`) builds those export formats in the background after
    every training; otherwise each is built on first request (`export`, `core_ml_model`).
    `precision="int8"` serves with the quantized backbone (`workbench.engine.quantize`), its embeddings cached apart.
    `read_only=True` classifies without writing anything in the home (a read-only home: Spark executors);
    the embedding cache and, when its folder is read-only, the ONNX export go to a per-user temp folder.
    """

    def __init__(
        self,
        home: str | os.PathLike | None = None,
        *,
        owner: str = DEFAULT_OWNER,
        limits: Limits | None = None,
        progress: bool = False,
        resume: bool = True,
        train: bool = True,
        embedding_cache: str | os.PathLike | None = None,
        tracking_uri: str | os.PathLike | bool | None = None,
        job_settings: JobSettings | None = None,
        prebuild_exports: Iterable[str] = (),
        precision: str | None = None,
        read_only: bool = False,
    ) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.read_only = read_only  # classify only, writing nothing in the home; the embedding cache goes to scratch
        self.owner = owner
        self.limits = limits or Limits.from_env()  # WORKBENCH_MAX_REQUEST_BYTES, WORKBENCH_MAX_ZIP_MEMBERS
        self.progress = progress
        self.resume = resume
        self.train = train
        self.embedding_cache = Path(embedding_cache) if embedding_cache else self.home / "embeddings.db"
        self.tracking_uri = tracking_uri  # None: $MLFLOW_TRACKING_URI or ./mlruns; False or "none": off
        self.job_settings = job_settings
        self._tracker: Tracker | None = None
        self._engine_lock = threading.Lock()
        self._engine: tuple[Store, Backbone, EmbeddingCache, JobRunner] | None = None
        self._heads_cache: dict[tuple[str, int], Heads] = {}
        self.prebuild_exports = tuple(check_format(f) for f in prebuild_exports)
        self._exporter: Exporter | None = None
        self.precision = precision  # the backbone's: "fp32" or "int8" (None: $WORKBENCH_PRECISION, else FP32)

    # wiring ----------------------------------------------------------------
    def _parts(self) -> tuple[Store, Backbone, EmbeddingCache, JobRunner]:
        with self._engine_lock:
            if self._engine is None:
                store = Store(self.home, read_only=self.read_only)
                if not self.read_only:
                    startup_sweep(store)  # orphan blobs and temporary files a killed process left (cheap)
                backbone = Backbone(precision=self.precision)
                cache = EmbeddingCache(scratch_dir() / "embeddings.db" if self.read_only else self.embedding_cache)
                settings = self.job_settings or JobSettings.from_env()
                jobs = JobRunner(store, backbone, cache, self.limits, self.progress, settings)
                self._tracker = new_tracker(store, backbone, self.tracking_uri)
                if (
                    self._tracker is not None and self.resume
                ):  # a short-lived process (a CLI query) leaves it to the next
                    jobs.listeners.append(self._tracker)
                    self._tracker.start()  # MLflow converges to the store: now, then every few seconds
                self._exporter = self._new_exporter(store, backbone, jobs)
                self._engine = (store, backbone, cache, jobs)
                if self.resume and self.train:
                    jobs.watch()  # adopts orphans now and while this Workbench lives
            return self._engine

    def _new_exporter(self, store: Store, backbone: Backbone, jobs: JobRunner) -> Exporter:
        """The export cache; files go to MLflow when tracking is on, and prebuilt ones start after each training."""
        exporter = Exporter(store, lambda: backbone.spec)
        tracker = self._tracker
        if tracker is not None:
            exporter.after_build.append(lambda cid, version, path: log_export(tracker, cid, version, path))
        if self.prebuild_exports:
            jobs.listeners.append(self._prebuild)
        return exporter

    def _prebuild(self, event: ClassifierEvent) -> None:
        """After a training: starts building the `prebuild_exports` formats of the new serving version."""
        if event.stage not in ("ready", "promoted") or event.version is None:
            return
        source = self._export_source(self.store.classifier(event.classifier_id), event.version)
        for format in self.prebuild_exports:
            self.exports.start(source, format)

    @property
    def exports(self) -> Exporter:
        """The export cache (`join` waits for builds under way)."""
        self._parts()
        assert self._exporter is not None
        return self._exporter

    @property
    def store(self) -> Store:
        return self._parts()[0]

    @property
    def backbone(self) -> Backbone:
        return self._parts()[1]

    @property
    def jobs(self) -> JobRunner:
        return self._parts()[3]

    @property
    def tracker(self) -> Tracker | None:
        """The MLflow tracker (None when tracking is off)."""
        self._parts()
        return self._tracker

    def as_owner(self, owner: str) -> Workbench:
        """A view of the same engine acting for another owner (the HTTP front's API keys)."""
        self._parts()
        view = copy.copy(self)
        view.owner = owner
        return view

    def subscribe(self, listener: Listener) -> None:
        """Calls `listener(ClassifierEvent)` at every training stage and on delete (progress, widgets, tracking)."""
        self.jobs.listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stops calling `listener`; a listener that was never subscribed is ignored."""
        if listener in self.jobs.listeners:
            self.jobs.listeners.remove(listener)

    # reading ---------------------------------------------------------------
    def _record(self, classifier_id: str) -> ClassifierRecord:
        record = self.store.classifier(classifier_id)
        if record.owner != self.owner:
            raise ClassifierNotFound(f"Classifier {echo(classifier_id)} not found")
        return record

    def get_classifier(self, classifier_id: str) -> dict:
        """The Watson Classifier record: status, classes, timestamps, explanation when failed."""
        record = self._record(classifier_id)
        answer = watson_record(record, self.store.class_names(classifier_id))
        warning = self.tracker.warnings.get(classifier_id) if self.tracker is not None else None
        if warning:  # MLflow could not be reached: training and classify are unaffected, the user is told
            answer["warnings"] = [{"warning_id": TrackingError.error_id, "description": warning}]
        return answer

    def list_classifiers(self, *, verbose: bool = False) -> dict:
        """Watson Classifiers: brief (id, name, status) or, with verbose, full records."""
        records = self.store.classifiers(owner=self.owner)
        if verbose:
            return {"classifiers": [watson_record(r, self.store.class_names(r.classifier_id)) for r in records]}
        return {
            "classifiers": [{"classifier_id": r.classifier_id, "name": r.name, "status": r.status} for r in records]
        }

    def wait(self, classifier_id: str, *, timeout: float | None = 600.0, progress: bool = False) -> dict:
        """Blocks until the classifier is `ready` or `failed` (and no follow-up training is due).

        `progress=True` shows a tqdm bar (status, then images embedded) that closes when it settles.
        """
        if not progress:
            return self._wait(classifier_id, timeout)
        self._record(classifier_id)
        with WaitBar(classifier_id) as bar:
            self.subscribe(bar)
            try:
                return self._wait(classifier_id, timeout, on_poll=bar.show_status)
            finally:
                self.unsubscribe(bar)

    def _wait(self, classifier_id: str, timeout: float | None, on_poll: Callable[[str], None] | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self.get_classifier(classifier_id)
            if on_poll is not None:
                on_poll(record["status"])
            if record["status"] in SETTLED_STATUSES and not self.jobs.is_running(classifier_id):
                return record
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimeout(f"Classifier {classifier_id!r} still {record['status']} after {timeout} s")
            self.jobs.join(classifier_id, timeout=WAIT_POLL_SECONDS)
            time.sleep(WAIT_POLL_SECONDS / 5)

    def versions(self, classifier_id: str) -> list[dict]:
        """Every trained version: number, created, classes, cross-validated metrics."""
        self._record(classifier_id)
        return [
            {"version": v.version, "created": v.created, "classes": v.classes, "metrics": v.metrics}
            for v in self.store.versions(classifier_id)
        ]

    def compare_versions(self, classifier_id: str) -> pandas.DataFrame:
        """Every version with its metrics, one row each (for notebooks).

        From MLflow when tracking is on (logging what is missing first, so the table is what the
        MLflow UI shows), else the same numbers from the store.
        """
        self._record(classifier_id)
        if self.tracker is not None:
            return self.tracker.versions_frame(classifier_id)
        import pandas as pd

        rows = [
            {"version": v.version, "class_names": v.classes, **version_metrics(v)}
            for v in self.store.versions(classifier_id)
        ]
        return pd.DataFrame(rows)

    def find_classifier(self, name: str) -> str:
        """The id of the newest classifier called `name` (notebooks find the tutorial's `dogs` this way)."""
        found = [r for r in self.store.classifiers(owner=self.owner) if r.name == name]
        if not found:
            raise ClassifierNotFound(f"No classifier named {name!r}")
        return max(found, key=lambda r: r.created).classifier_id

    def out_of_fold(self, classifier_id: str, *, version: int | None = None) -> OutOfFold:
        """The cross-validated (out-of-fold) scores of a version's training images (the serving version by default).

        Each image was scored by heads that never saw it: what threshold plots and galleries need.
        """
        record = self._record(classifier_id)
        number = version if version is not None else record.serving_version
        if number not in {v.version for v in self.store.versions(classifier_id)}:
            raise ClassifierNotFound(f"Classifier {classifier_id!r} has no trained version {number!r}")
        path = self.store.out_of_fold_path(classifier_id, number)
        return OutOfFold.from_bytes(path.read_bytes(), version=number)

    def interpretation(self, classifier_id: str, *, version: int | None = None) -> Interpretation:
        """fastai's ClassificationInterpretation for a version (the serving one by default), over its out-of-fold
        scores: `confusion_matrix(threshold)`, `most_confused(min_count)`, `top_losses(k)`, `metrics(threshold)`."""
        from ..analysis.interpretation import Interpretation  # pandas and scikit-learn load only when asked

        return Interpretation.from_out_of_fold(self.out_of_fold(classifier_id, version=version))

    def example_image(self, classifier_id: str, sha256: str) -> bytes:
        """The bytes of one of the classifier's training images, by sha256 (for galleries)."""
        self._record(classifier_id)
        if sha256 not in {row.sha256 for row in self.store.examples(classifier_id)}:
            raise ClassifierNotFound(f"Classifier {classifier_id!r} has no example image {sha256!r}")
        return self.store.read_blob(sha256)

    # curating the examples (curation.py) ----------------------------------
    def examples(
        self, classifier_id: str, *, version: int | None = None, sort: str = "id", include_removed: bool = False
    ) -> list[curation.TrainingExample]:
        """The classifier's training examples with `version`'s out-of-fold scores (default: its newest version).

        `sort="oof"` puts first the examples some other class outscored. With `include_removed`, curated-out
        examples too; those `in_version` are then exactly the set that version trained on.
        """
        self._record(classifier_id)
        return curation.list_examples(
            self.store, classifier_id, version=version, sort=sort, include_removed=include_removed
        )

    def remove_examples(self, classifier_id: str, example_ids: Iterable[int]) -> curation.Curation:
        """Takes examples out of training and queues a retraining, as an update does; earlier versions keep them."""
        return self._curate(classifier_id, curation.example_ids(example_ids), {})

    def relabel_examples(self, classifier_id: str, labels: Mapping[int, str | None]) -> curation.Curation:
        """Moves examples to another class (existing or new; None: negative) and queues a retraining like an update."""
        return self._curate(classifier_id, [], curation.new_labels(labels))

    def _curate(self, classifier_id: str, remove: list[int], relabel: dict[int, str | None]) -> curation.Curation:
        """One commit: the change, the (re)training status and the training's lease; then the training starts."""
        self._record(classifier_id)
        with self.store.transaction() as db:
            record = self.store.classifier(classifier_id, db)
            change = curation.apply(db, classifier_id, remove, relabel, self.limits.min_images_per_set)
            if change.changed:
                self.store.update_classifier(
                    db, classifier_id, status=record.busy_status, updated=now_iso(), explanation=None
                )
                self._claim(db, classifier_id)
        if change.changed:
            self._start_training(classifier_id)
        return dataclasses.replace(change, status=self.store.classifier(classifier_id).status)

    def doctor(self, *, repair: bool = False, full: bool = True, grace_s: float = DOCTOR_GRACE_S) -> DoctorReport:
        """Checks the store (records, versions, heads, blobs, embedding cache); with `repair`, fixes what is safe.

        Repair removes orphan blobs, temporary files and bad cache rows, quarantines corrupt blobs and marks
        classifiers with broken data `failed` (explained); it never deletes examples. `full=False` only
        looks for orphans and temporary files (no hashing). Files younger than `grace_s` are left alone.
        A disk that refuses writes (full) or a store locked past its busy timeout ends the check with a
        `store_unavailable` finding instead of an exception.
        """
        try:
            store, backbone, _, _ = self._parts()
            sizes = {backbone.backbone_id: backbone.spec.embedding_size}
            return run_doctor(store, self.embedding_cache, sizes, repair=repair, full=full, grace_s=grace_s)
        except (StoreUnavailable, OSError, sqlite3.Error) as exc:
            report = unavailable_report(self.home, exc, repair=repair, full=full)
            if report is None:
                raise
            return report

    # writing ---------------------------------------------------------------
    def _read_sets(
        self, positive_examples: Mapping[str, Source], negative_examples: Source | None
    ) -> tuple[dict[str, ExampleSet], ExampleSet | None]:
        """Reads and validates every example set before anything is stored.

        The sets' zip directories and file sizes are checked against `limits.max_request_bytes` (and each zip
        against `limits.max_zip_members`) before any image is read, and the reads stop once past it.
        """
        sources: dict[str, Source] = {}
        for raw_name, source in positive_examples.items():
            name = check_class_name(raw_name.removesuffix(POSITIVE_SUFFIX) if isinstance(raw_name, str) else raw_name)
            if name in sources:
                raise InvalidClassName(
                    f"Class {shown_name(name)} is given twice in one request (names are compared in Unicode NFC form)"
                )
            sources[name] = source
        negative = [(NEGATIVE_FIELD, negative_examples)] if negative_examples is not None else []
        budget = request_budget([*sources.items(), *negative], self.limits)
        positives = {
            name: read_example_set(source, limits=self.limits, label=name, budget=budget)
            for name, source in sources.items()
        }
        negatives = None
        if negative_examples is not None:
            negatives = read_example_set(negative_examples, limits=self.limits, label=NEGATIVE_FIELD, budget=budget)
        return positives, negatives

    def _as_stored(self, db, classifier_id: str, positives: dict[str, ExampleSet]) -> dict[str, ExampleSet]:
        """Names each set as the stored class with the same NFC form (a store written before names were
        normalised may hold a decomposed spelling), so an update adds to that class instead of a twin."""
        stored = {unicodedata.normalize("NFC", name): name for name in self.store.class_names(classifier_id, db)}
        return {stored.get(name, name): example_set for name, example_set in positives.items()}

    def _store_sets(
        self, db, classifier_id: str, positives: dict[str, ExampleSet], negatives: ExampleSet | None
    ) -> None:
        store = self.store
        sets = [(name, s) for name, s in positives.items()] + ([(None, negatives)] if negatives else [])
        rows = []
        for class_name, example_set in sets:
            for image in example_set.images:
                store.put_blob(image.sha256, image.data)
                rows.append((class_name, image.sha256, f"{example_set.source}/{image.name.split('/')[-1]}"))
        store.add_examples(db, classifier_id, rows)

    def _new_classifier_id(self, name: str) -> str:
        stem = re.sub(r"[^A-Za-z0-9_]", "", name.replace(" ", "_")) or "classifier"
        taken = self.store.classifier_ids()
        rng = random.SystemRandom()
        while True:
            candidate = f"{stem}_{rng.randrange(10**9, 2**31)}"
            if candidate not in taken:
                return candidate

    def create_classifier(
        self,
        name: str,
        positive_examples: Mapping[str, Source],
        *,
        negative_examples: Source | None = None,
    ) -> dict:
        """Creates a classifier from example sets (zips or folders) and starts training in the background.

        `positive_examples` maps class names (or `{class}_positive_examples`) to sources.
        """
        name = check_classifier_name(name)
        given = len(positive_examples or {}) + (negative_examples is not None)
        if given < MIN_EXAMPLE_SETS or not positive_examples:
            raise InvalidExamples(
                "Creating a classifier needs at least two example sets: two positive classes, "
                "or one positive class and negative examples"
            )
        positives, negatives = self._read_sets(positive_examples, negative_examples)
        classifier_id = self._new_classifier_id(name)
        stamp = now_iso()
        record = ClassifierRecord(classifier_id, name, self.owner, "training", stamp, stamp, None, None, None, None)
        with self.store.transaction() as db:
            self.store.insert_classifier(db, record)
            self._store_sets(db, classifier_id, positives, negatives)
            self._claim(db, classifier_id)
        self._start_training(classifier_id)
        return watson_record(record, list(positives))

    def create_classifier_from_folder(
        self, name: str, folder: str | os.PathLike, *, negatives: str = "negatives"
    ) -> dict:
        """Creates a classifier from a folder of class-named sub-folders or .zip files (fastai's `from_folder`).

        Each sub-folder or zip is a class named after it; the one called `negatives` holds the negative
        examples. Raises InvalidExamples for a missing folder, fewer than two sets, or a class without images.
        """
        root = Path(folder).expanduser()
        if not root.exists():
            raise InvalidExamples(f"Folder {str(root)!r} does not exist")
        sets = folder_sets(root)
        if len(sets) < MIN_EXAMPLE_SETS:
            raise InvalidExamples(
                f"Folder {str(root)!r} needs at least {MIN_EXAMPLE_SETS} example sets (sub-folders or .zip files, "
                f"one per class; {negatives!r} for negative examples); found {len(sets)}: {sorted(sets)}"
            )
        negative_set = sets.pop(negatives, None)
        return self.create_classifier(name, sets, negative_examples=negative_set)

    def update_classifier(
        self,
        classifier_id: str,
        *,
        positive_examples: Mapping[str, Source] | None = None,
        negative_examples: Source | None = None,
    ) -> dict:
        """Adds classes, images to classes, or negatives, then retrains on everything stored.

        The serving version keeps answering until the new one is ready; updates that arrive during a
        retraining fold into one follow-up training.
        """
        self._record(classifier_id)
        if not positive_examples and negative_examples is None:
            raise InvalidExamples("An update needs at least one example set (positive or negative)")
        positives, negatives = self._read_sets(positive_examples or {}, negative_examples)
        with self.store.transaction() as db:
            record = self.store.classifier(classifier_id, db)
            positives = self._as_stored(db, classifier_id, positives)
            self._store_sets(db, classifier_id, positives, negatives)
            self.store.update_classifier(
                db, classifier_id, status=record.busy_status, updated=now_iso(), explanation=None
            )
            self._claim(db, classifier_id)
        self._start_training(classifier_id)
        return self.get_classifier(classifier_id)

    def promote(self, classifier_id: str, version: int | str | None = None) -> dict:
        """Makes `version` serve (classify, exports, MLflow's `serving` alias) and pins it; the Watson record.

        While pinned, trainings store and log new versions without serving them. `version=None` (or
        "latest") lifts the pin: the newest version serves, and each training moves it again. One
        commit (`promotion.promote`); VersionNotFound (404) for a version never trained.
        """
        record = promotion.promote(self.store, classifier_id, version, self.owner)
        self.jobs.emit(ClassifierEvent(classifier_id, "promoted", record.serving_version))
        return self.get_classifier(classifier_id)

    def _claim(self, db, classifier_id: str) -> None:
        """Holds the training's lease from the write that asks for it, so no watcher adopts it in between."""
        if self.train:
            self.jobs.claim(db, classifier_id)

    def _start_training(self, classifier_id: str) -> None:
        """Trains in a background thread here, unless this Workbench leaves training to another process."""
        if self.train:
            self.jobs.request(classifier_id)

    def delete_classifier(self, classifier_id: str) -> None:
        """Deletes the classifier, its versions, and the example images no other classifier uses.

        Returns at once, whatever MLflow is doing: versions not yet logged are copied aside first and
        logged in the background, so its runs stay as history.
        """
        self._record(classifier_id)
        if self.tracker is not None:
            self.tracker.stage_delete(classifier_id)  # a local copy, no MLflow call; never raises
        try:
            orphans = self.store.delete_classifier(classifier_id)
        except BaseException:  # not deleted (a locked store, a full disk): its copy would stand for a delete
            if self.tracker is not None:
                self.tracker.unstage_delete(classifier_id)
            raise
        self._parts()[2].delete_many(orphans)
        self.jobs.emit(ClassifierEvent(classifier_id, "deleted"))
        for key in [k for k in self._heads_cache if k[0] == classifier_id]:
            del self._heads_cache[key]  # in place: owner views share this cache

    # export ----------------------------------------------------------------
    def _export_source(self, record: ClassifierRecord, version: int | None) -> ExportSource:
        """The version to export (the serving one by default), with its heads."""
        number = version if version is not None else record.serving_version
        if number is None:
            raise InvalidRequest(
                f"Classifier {record.classifier_id!r} is {record.status} and has no trained version to export yet"
            )
        if isinstance(number, bool) or not isinstance(number, int):
            raise InvalidRequest(f"version must be a whole number, got {echo(number)}")
        stored = self.store.version(record.classifier_id, number)
        heads = Heads.from_bytes(self.store.head_path(record.classifier_id, number).read_bytes())
        return ExportSource(record.classifier_id, record.name, number, stored.created, heads)

    def export(
        self,
        classifier_id: str,
        *,
        format: str = "coreml",
        version: int | None = None,
        path: str | os.PathLike | None = None,
    ) -> Path:
        """Writes a classifier version (the serving one by default) as one file for devices; returns its path.

        `format`: "onnx" (uint8 RGB N x H x W x 3 in; per-class scores and the embedding out) or
        "coreml" (an `.mlmodel` classifier, 224x224 RGB image in). `path`: a file or a folder
        (default: `{classifier_id}-v{version}.onnx|.mlmodel` in the current folder). Built once per
        version and cached in the store.
        """
        check_format(format)
        source = self._export_source(self._record(classifier_id), version)
        cached = self.exports.get(source, format)
        target = Path(path) if path is not None else Path.cwd()
        if target.is_dir():
            target = target / default_file_name(classifier_id, source.version, format)
        return write_copy(cached, target)

    def core_ml_model(self, classifier_id: str) -> bytes:
        """The serving version as a Core ML `.mlmodel` (Watson's `GET .../core_ml_model`)."""
        record = self._record(classifier_id)
        if not coreml_available():
            raise InvalidRequest(
                f"Core ML export needs coremltools; classifier {classifier_id!r} has core_ml_enabled false"
            )
        return self.exports.get(self._export_source(record, None), "coreml").read_bytes()

    # user data (Watson's X-Watson-Metadata: customer_id) ---------------------
    def label_user_data(self, customer_id: str, classifier_id: str) -> None:
        """Marks a classifier as holding data sent for `customer_id`, so `delete_user_data` finds it."""
        self._record(classifier_id)
        self.store.label_customer(customer_id, classifier_id)

    def delete_user_data(self, customer_id: str) -> list[str]:
        """Deletes this owner's classifiers that hold data labelled `customer_id` (their heads learnt from it)."""
        deleted = [cid for cid in self.store.customer_classifiers(customer_id) if self._exists(cid)]
        for classifier_id in deleted:
            self.delete_classifier(classifier_id)
        return deleted

    # classify --------------------------------------------------------------
    def _serving(self, record: ClassifierRecord) -> cls.ServingHeads:
        classifier_id = record.classifier_id
        if record.serving_version is None:
            raise InvalidRequest(
                f"Classifier {classifier_id!r} is {record.status} and has no trained version to classify with yet"
            )
        key = (classifier_id, record.serving_version)
        if key not in self._heads_cache:
            path = self.store.head_path(classifier_id, record.serving_version)
            self._heads_cache[key] = Heads.from_bytes(path.read_bytes())
        return cls.ServingHeads(classifier_id, record.name, self._heads_cache[key])

    def classify(
        self,
        images: Source | ImageURL | list[Source | ImageURL] | tuple[Source | ImageURL, ...],
        *,
        classifier_ids: str | Iterable[str] | None = None,
        owners: str | Iterable[str] | None = None,
        threshold: float | None = None,
        max_images: int | None = None,
        fetch_url: Fetcher | None = None,
        accept_language: str | None = None,
    ) -> dict:
        """Scores images (paths, bytes, zips, folders, URLs) with one backbone pass each, Watson ClassifiedImages.

        `max_images` caps the images of one call (zip members counted from their directories before
        anything is read: the HTTP front's Watson cap). `ImageURL` sources are fetched with `fetch_url`
        once everything else is checked; one that cannot be fetched is an error on that image.
        `accept_language` (Watson's Accept-Language: `ja`, `ja-JP`, `fr-CH, fr;q=0.9`; default English)
        names the built-in classes (`default`, `food`) in one of Watson's 11 languages (`languages.negotiate`);
        custom class names are never translated. Names with no translation stay English and are listed
        in an `untranslated_classes` warning.
        """
        language = negotiate(accept_language)
        limit = cls.check_threshold(threshold)
        ids, serving = self._classifiers_for(classifier_ids, owners)
        entries, warnings, urls = self._classify_inputs(images, max_images, fetch_url)
        untranslated: dict[str, None] = {}
        answers = self._answers(entries, ids, serving, limit, language, untranslated)
        for index, (source_url, resolved_url) in urls.items():  # Watson names a URL's image by its URLs
            del answers[index]["image"]
            answers[index].update(source_url=source_url, resolved_url=resolved_url)
        if untranslated:
            warnings = [*warnings, untranslated_warning(language, list(untranslated))]
        return cls.classified_images(answers, warnings)

    def classify_iter(
        self,
        images: str | os.PathLike | Iterable[str | os.PathLike | bytes | tuple[str, bytes] | tuple[str, os.PathLike]],
        *,
        classifier_ids: str | Iterable[str] | None = None,
        owners: str | Iterable[str] | None = None,
        threshold: float | None = None,
        skip: Container[str] = (),
        on_skip: Callable[[str], None] | None = None,
        chunk_images: int = streaming.CHUNK_IMAGES,
    ) -> Iterator[dict]:
        """Classifies any number of images in bounded memory: a generator of per-image answers, in input order.

        `images` is a folder (walked lazily, recursively, sorted), one image path, or an iterable of image
        paths, bytes, (name, bytes) or (name, file path) pairs. Each answer is a Watson ClassifiedImage plus the image's
        `sha256`; an unreadable image is an answer with an `error`, and the stream goes on. Images
        whose sha256 is in `skip` are not scored nor yielded (resuming a run); `on_skip(name)` hears of
        each. At most `chunk_images` images are held in memory at once.
        """
        limit = cls.check_threshold(threshold)
        ids, serving = self._classifiers_for(classifier_ids, owners)
        for chunk in streaming.chunks(streaming.image_entries(images, self.limits, skip, on_skip), chunk_images):
            for entry, answer in zip(chunk, self._answers(chunk, ids, serving, limit), strict=True):
                answer["sha256"] = entry.sha256 if isinstance(entry, ImageInput) else None
                yield answer

    def _classifiers_for(
        self, classifier_ids: str | Iterable[str] | None, owners: str | Iterable[str] | None
    ) -> tuple[list[str], dict[str, cls.ServingHeads]]:
        """The classifier ids a classify call runs, in order, and the serving heads of the custom ones."""
        mine = {r.classifier_id: r for r in self.store.classifiers(owner=self.owner)}
        my_ids = [cid for cid, r in mine.items() if r.serving_version is not None]
        ids = cls.requested_ids(cls.split_list(classifier_ids), cls.split_list(owners), my_ids)
        unknown = [cid for cid in ids if cid not in BUILT_IN_CLASSIFIER_IDS and cid not in mine]
        if unknown:
            raise ClassifierNotFound(f"Did not find any classifier with the ids {echo_list(unknown)}")
        if EXPLICIT_CLASSIFIER_ID in ids:
            explicit_model()  # ModelNotInstalled, before any image is read, when the optional extra is missing
        return ids, {cid: self._serving(mine[cid]) for cid in ids if cid not in BUILT_IN_CLASSIFIER_IDS}

    def _answers(
        self,
        entries: list[ImageInput | Skipped],
        ids: list[str],
        serving: dict[str, cls.ServingHeads],
        limit: float,
        language: str = DEFAULT_LANGUAGE,
        untranslated: dict[str, None] | None = None,
    ) -> list[dict]:
        """One ClassifiedImage per entry, in order: one backbone pass per image (an error object when unreadable).

        That pass serves `default`, `food` and every custom classifier of the call together. Built-in names are
        in `language`; those with no translation are added to `untranslated`.
        """
        answers: list[dict | None] = [None] * len(entries)
        built_in = [cid for cid in BUILT_IN_CLASSIFIER_IDS if cid in ids]
        dense_ids = [cid for cid in built_in if cid != EXPLICIT_CLASSIFIER_ID]  # those read the backbone's classes
        detector = explicit_model() if EXPLICIT_CLASSIFIER_ID in ids else None
        names = names_in(language) if language != DEFAULT_LANGUAGE else None
        missing: dict[str, None] = {} if untranslated is None else untranslated
        with single_threaded_blas():
            for batch in self._decode_all(entries, answers, bool(dense_ids), detector):
                rows, views, samples, explicit_scores = zip(*batch, strict=True)
                counts = [len(v) for v in views]
                tensors = [tensor for v in views for tensor in v]  # every view of every image, one batched run
                classes: dict[str, list[list[dict]]] = {cid: [] for cid in built_in}
                if detector is not None:
                    classes[EXPLICIT_CLASSIFIER_ID] = [explicit_classes(score, limit) for score in explicit_scores]
                if dense_ids:
                    dense = self.backbone.run_dense(tensors)
                    embeddings, fc = dense.embeddings, self.backbone.classifier_weights()
                    bounds = np.cumsum([0, *counts]).tolist()
                    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
                        sample = samples[i]
                        assert sample is not None, "built-in classifiers sample colours while decoding"
                        if GENERAL_CLASSIFIER_ID in classes:
                            classes[GENERAL_CLASSIFIER_ID].append(
                                general_classes(
                                    dense.probabilities[a:b],
                                    dense.window_probabilities[a:b],
                                    dense.features[a:b],
                                    sample,
                                    fc,
                                    limit,
                                )
                            )
                        if FOOD_CLASSIFIER_ID in classes:
                            classes[FOOD_CLASSIFIER_ID].append(
                                food_classes(
                                    dense.probabilities[a:b], dense.window_probabilities[a:b], sample.spread, limit
                                )
                            )
                    if names is not None:
                        classes = {
                            cid: [translate(c, names, missing) for c in per_image] for cid, per_image in classes.items()
                        }
                else:
                    embeddings, _ = self.backbone.run(tensors)
                results = cls.image_results(classes, embeddings, ids, serving, limit, counts)
                for i, per_image in zip(rows, results, strict=True):
                    answers[i] = {"classifiers": per_image, "image": entries[i].name}
        assert None not in answers, "every entry has its scores or its error"
        return [answer for answer in answers if answer is not None]

    def _classify_inputs(
        self,
        images: Source | ImageURL | list[Source | ImageURL] | tuple[Source | ImageURL, ...],
        max_images: int | None,
        fetch_url: Fetcher | None,
    ) -> tuple[list[ImageInput | Skipped], list[dict], dict[int, tuple[str, str]]]:
        """A classify call's entries in input order, its warnings, and {entry index: (source_url, resolved_url)}."""
        items = list(images) if isinstance(images, (list, tuple)) else [images]
        if max_images is not None:
            count = sum(cls.source_image_count(item, self.limits.max_zip_members) for item in items)
            if count > max_images:  # counted from zip directories, before any upload is read into memory
                raise LimitExceeded(f"A classify call may hold at most {max_images} images; got {count}")
        entries: list[ImageInput | Skipped] = []
        url_of: dict[int, tuple[str, str]] = {}  # id(entry) -> (source_url, resolved_url)
        for position, item in enumerate(items, start=1):
            try:
                if isinstance(item, ImageURL):
                    found, resolved = self._fetched(item, fetch_url)
                    url_of.update({id(entry): (item.url, resolved) for entry in found})
                else:
                    found = read_images([item], limits=self.limits, first_position=position)
            except NoImages:  # nothing in this source; the call fails only if no source holds an image
                continue
            entries.extend(found)
        entries, warnings = cls.split_non_images(entries)
        if not entries:
            raise NoImages("No images were given to classify")
        if max_images is not None and len(entries) > max_images:
            raise LimitExceeded(f"A classify call may hold at most {max_images} images; got {len(entries)}")
        urls = {index: url_of[id(entry)] for index, entry in enumerate(entries) if id(entry) in url_of}
        return entries, warnings, urls

    def _fetched(self, source: ImageURL, fetch_url: Fetcher | None) -> tuple[list[ImageInput | Skipped], str]:
        """One URL's entries (its image, or why it could not be fetched) and the URL it resolved to."""
        if fetch_url is None:
            raise InvalidRequest(f"Image URLs need a fetcher: pass fetch_url to classify {echo(source.url)}")
        try:
            data, resolved = fetch_url(source.url)
        except ImageUnreadable as exc:
            return [Skipped("", exc.message)], source.url
        return read_images([data], limits=self.limits), resolved

    def explain(
        self, image: Source, classifier_id: str, *, class_name: str | None = None, top: int = explain.DEFAULT_TOP
    ) -> list[explain.Explanation]:
        """Where the scores of one image looked: a map per class, upsampled onto the image.

        The `top` best classes, or only `class_name` (for `default`: a leaf, an ancestor or a colour).
        One backbone pass per view (`spec.view_boxes`: the whole image); `workbench.plots.overlay` draws an Explanation.
        """
        entries = [e for e in read_images(image, limits=self.limits) if not isinstance(e, Skipped)]
        if len(entries) != 1:
            raise InvalidRequest(f"explain takes exactly one image; got {len(entries)}")
        spec = self.backbone.spec
        tensors, decoded = backbone_views(entries[0].data, spec, self.limits, entries[0].name)
        boxes = view_boxes(*decoded.size, spec)
        with single_threaded_blas():
            if classifier_id == GENERAL_CLASSIFIER_ID:
                dense = self.backbone.run_dense(tensors)
                sample = color_sample(decoded, boxes)
                return explain.general_explanations(
                    dense, self.backbone.classifier_weights(), sample, decoded, boxes, class_name, top
                )
            served = self._serving(self._record(classifier_id))
            dense = self.backbone.run_dense(tensors)
            return explain.custom_explanations(classifier_id, served.heads, dense, decoded, boxes, class_name, top)

    def _exists(self, classifier_id: str) -> bool:
        try:
            self._record(classifier_id)
        except ClassifierNotFound:
            return False
        return True

    def _decode_all(
        self,
        entries: list[ImageInput | Skipped],
        answers: list[dict | None],
        colors: bool,
        detector: ExplicitModel | None = None,
    ) -> Iterator[list[tuple[int, list[np.ndarray], ColorSample | None, float | None]]]:
        """Decodes each image once, in a pool running ahead of the backbone.

        Batches of (index, view tensors, colour sample, explicit score from `detector`); an unreadable image
        becomes its own error object in `answers`.
        """

        def prepare(index: int) -> tuple[int, dict | tuple[list[np.ndarray], ColorSample | None, float | None]]:
            entry = entries[index]
            if isinstance(entry, Skipped):
                return index, cls.image_error(entry.name, entry.reason)
            spec = self.backbone.spec
            try:
                tensors, image = backbone_views(entry.data, spec, self.limits, entry.name)
            except (ImageUnreadable, LimitExceeded) as exc:
                return index, cls.image_error(entry.name, exc.message, exc.code, exc.error_id)
            sample = color_sample(image, view_boxes(*image.size, spec)) if colors else None
            return index, (tensors, sample, detector.score(image) if detector is not None else None)

        for batch in prepared_batches(range(len(entries)), prepare, self.backbone.batch_size):
            for index, result in batch:
                if isinstance(result, dict):
                    answers[index] = result
            good = [(index, *result) for index, result in batch if not isinstance(result, dict)]
            if good:
                yield good
