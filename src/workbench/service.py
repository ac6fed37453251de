"""The Workbench: the one engine behind every front (Python, CLI, HTTP, widgets)."""

from __future__ import annotations

import copy
import os
import random
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Mapping

import numpy as np

from . import classify as cls
from . import explain
from .backbone import Backbone, EmbeddingCache, single_threaded_blas
from .decode import backbone_input, prepared_batches
from .spec import crop_box
from .errors import (
    ClassifierNotFound,
    ImageUnreadable,
    InvalidClassName,
    InvalidExamples,
    InvalidRequest,
    LimitExceeded,
    NoImages,
    TrackingError,
    WaitTimeout,
    echo,
    echo_list,
)
from .examples import ExampleSet, ImageInput, Skipped, Source, folder_sets, read_example_set, read_images
from .general import GENERAL_CLASSIFIER_ID, ColorSample, color_sample, general_classes
from .jobs import ClassifierEvent, JobRunner, Listener
from .limits import FORBIDDEN_CLASS_CHARS, MIN_EXAMPLE_SETS, Limits
from .store import ClassifierRecord, Store
from .timestamps import now_iso
from .tracking import Tracker, new_tracker, version_metrics
from .training import Heads, OutOfFold
from .wait_progress import WaitBar

if TYPE_CHECKING:
    import pandas

HOME_ENV = "WORKBENCH_HOME"
DEFAULT_HOME = Path("data") / "workbench"
DEFAULT_OWNER = "me"
SETTLED_STATUSES = ("ready", "failed")
WAIT_POLL_SECONDS = 0.05
MAX_NAME_CHARS = 256


def default_home() -> Path:
    """`WORKBENCH_HOME`, else `data/workbench/` under the current directory."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME)


def watson_record(record: ClassifierRecord, classes: list[str]) -> dict:
    """The Watson Classifier JSON for a stored record."""
    answer = {
        "classifier_id": record.classifier_id,
        "name": record.name,
        "owner": record.owner,
        "status": record.status,
        "core_ml_enabled": False,
        "created": record.created,
        "updated": record.updated,
        "classes": [{"class": name} for name in classes],
    }
    if record.retrained:
        answer["retrained"] = record.retrained
    if record.explanation:
        answer["explanation"] = record.explanation
    return answer


def check_class_name(name: str) -> str:
    """A class name as Watson allows it: non-empty, none of its forbidden characters."""
    bad = sorted(set(name) & FORBIDDEN_CLASS_CHARS)
    if not name or not name.strip():
        raise InvalidClassName("Class names must not be empty")
    if bad:
        raise InvalidClassName(f"Class name {name!r} contains forbidden characters: {' '.join(bad)}")
    return name


class Workbench:
    """Watson Visual Recognition v3 custom classifiers, locally: create, watch, update, classify, delete.

    Settings only in the constructor; the backbone loads on first use. `train=False` stores
    requests without training them (another workbench process, e.g. `workbench wait`, resumes them).
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
    ) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.owner = owner
        self.limits = limits or Limits()
        self.progress = progress
        self.resume = resume
        self.train = train
        self.embedding_cache = Path(embedding_cache) if embedding_cache else self.home / "embeddings.db"
        self.tracking_uri = tracking_uri  # None: $MLFLOW_TRACKING_URI or ./mlruns; False or "none": off
        self._tracker: Tracker | None = None
        self._engine_lock = threading.Lock()
        self._engine: tuple[Store, Backbone, EmbeddingCache, JobRunner] | None = None
        self._heads_cache: dict[tuple[str, int], Heads] = {}

    # wiring ----------------------------------------------------------------
    def _parts(self) -> tuple[Store, Backbone, EmbeddingCache, JobRunner]:
        with self._engine_lock:
            if self._engine is None:
                store = Store(self.home)
                backbone = Backbone()
                cache = EmbeddingCache(self.embedding_cache)
                jobs = JobRunner(store, backbone, cache, self.limits, self.progress)
                self._tracker = new_tracker(store, backbone, self.tracking_uri)
                if self._tracker is not None:
                    jobs.listeners.append(self._tracker)
                self._engine = (store, backbone, cache, jobs)
                if self.resume and self.train:
                    jobs.recover()
            return self._engine

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

    def as_owner(self, owner: str) -> "Workbench":
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

    def list_classifiers(self, verbose: bool = False) -> dict:
        """Watson Classifiers: brief (id, name, status) or, with verbose, full records."""
        records = self.store.classifiers(owner=self.owner)
        if verbose:
            return {"classifiers": [watson_record(r, self.store.class_names(r.classifier_id)) for r in records]}
        return {"classifiers": [{"classifier_id": r.classifier_id, "name": r.name, "status": r.status} for r in records]}

    def wait(self, classifier_id: str, timeout: float | None = 600.0, *, progress: bool = False) -> dict:
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

        rows = [{"version": v.version, "class_names": v.classes, **version_metrics(v)}
                for v in self.store.versions(classifier_id)]
        return pd.DataFrame(rows)

    def find_classifier(self, name: str) -> str:
        """The id of the newest classifier called `name` (notebooks find the tutorial's `dogs` this way)."""
        found = [r for r in self.store.classifiers(owner=self.owner) if r.name == name]
        if not found:
            raise ClassifierNotFound(f"No classifier named {name!r}")
        return max(found, key=lambda r: r.created).classifier_id

    def out_of_fold(self, classifier_id: str, version: int | None = None) -> OutOfFold:
        """The cross-validated (out-of-fold) scores of a version's training images (the serving version by default).

        Each image was scored by heads that never saw it: what threshold plots and galleries need.
        """
        record = self._record(classifier_id)
        number = version if version is not None else record.serving_version
        if number not in {v.version for v in self.store.versions(classifier_id)}:
            raise ClassifierNotFound(f"Classifier {classifier_id!r} has no trained version {number!r}")
        path = self.store.out_of_fold_path(classifier_id, number)
        return OutOfFold.from_bytes(path.read_bytes(), version=number)

    def example_image(self, classifier_id: str, sha256: str) -> bytes:
        """The bytes of one of the classifier's training images, by sha256 (for galleries)."""
        self._record(classifier_id)
        if sha256 not in {row.sha256 for row in self.store.examples(classifier_id)}:
            raise ClassifierNotFound(f"Classifier {classifier_id!r} has no example image {sha256!r}")
        return self.store.read_blob(sha256)

    # writing ---------------------------------------------------------------
    def _read_sets(
        self, positive_examples: Mapping[str, Source], negative_examples: Source | None
    ) -> tuple[dict[str, ExampleSet], ExampleSet | None]:
        """Reads and validates every example set before anything is stored."""
        positives = {}
        for raw_name, source in positive_examples.items():
            name = raw_name.removesuffix("_positive_examples")
            check_class_name(name)
            if name in positives:
                raise InvalidExamples(f"Class {name!r} is given twice in one request")
            positives[name] = read_example_set(source, limits=self.limits, label=name)
        negatives = None
        if negative_examples is not None:
            negatives = read_example_set(negative_examples, limits=self.limits, label="negative_examples")
        return positives, negatives

    def _store_sets(self, db, classifier_id: str, positives: dict[str, ExampleSet], negatives: ExampleSet | None) -> None:
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
        negative_examples: Source | None = None,
    ) -> dict:
        """Creates a classifier from example sets (zips or folders) and starts training in the background.

        `positive_examples` maps class names (or `{class}_positive_examples`) to sources.
        """
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            raise InvalidRequest(f"name must be 1 to {MAX_NAME_CHARS} characters")
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
        self._start_training(classifier_id)
        return watson_record(record, list(positives))

    def create_classifier_from_folder(self, name: str, folder: str | os.PathLike, *, negatives: str = "negatives") -> dict:
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
        return self.create_classifier(name, sets, negative_set)

    def update_classifier(
        self,
        classifier_id: str,
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
            self._store_sets(db, classifier_id, positives, negatives)
            status = "training" if record.serving_version is None else "retraining"
            self.store.update_classifier(db, classifier_id, status=status, updated=now_iso(), explanation=None)
        self._start_training(classifier_id)
        return self.get_classifier(classifier_id)

    def _start_training(self, classifier_id: str) -> None:
        """Trains in a background thread here, unless this Workbench leaves training to another process."""
        if self.train:
            self.jobs.request(classifier_id)

    def delete_classifier(self, classifier_id: str) -> None:
        """Deletes the classifier, its versions, and the example images no other classifier uses.

        Versions not yet logged to MLflow are logged first, so its runs stay as history.
        """
        self._record(classifier_id)
        if self.tracker is not None:
            self.tracker.sync(classifier_id)  # bounded by the HTTP timeouts; never raises
        orphans = self.store.delete_classifier(classifier_id)
        self._parts()[2].delete_many(orphans)
        self.jobs.emit(ClassifierEvent(classifier_id, "deleted"))
        for key in [k for k in self._heads_cache if k[0] == classifier_id]:
            del self._heads_cache[key]  # in place: owner views share this cache

    def core_ml_model(self, classifier_id: str) -> bytes:
        """The classifier as a Core ML `.mlmodel` (Watson's download); not available yet, so a clear error."""
        self._record(classifier_id)
        raise InvalidRequest(
            f"Core ML models are not available yet: classifier {classifier_id!r} has core_ml_enabled false"
        )

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
        images: Source | Iterable[Source],
        classifier_ids: str | Iterable[str] | None = None,
        owners: str | Iterable[str] | None = None,
        threshold: float | None = None,
        max_images: int | None = None,
    ) -> dict:
        """Scores images (paths, bytes, zips, folders) with one backbone pass each, Watson ClassifiedImages.

        `max_images` caps the images of one call (zip members counted; the HTTP front's Watson cap).
        """
        limit = cls.check_threshold(threshold)
        mine = {r.classifier_id: r for r in self.store.classifiers(owner=self.owner)}
        my_ids = [cid for cid, r in mine.items() if r.serving_version is not None]
        ids = cls.requested_ids(cls.split_list(classifier_ids), cls.split_list(owners), my_ids)
        unknown = [cid for cid in ids if cid != GENERAL_CLASSIFIER_ID and cid not in mine]
        if unknown:
            raise ClassifierNotFound(f"Did not find any classifier with the ids {echo_list(unknown)}")
        serving = {cid: self._serving(mine[cid]) for cid in ids if cid != GENERAL_CLASSIFIER_ID}
        entries, warnings = cls.split_non_images(read_images(images, limits=self.limits))
        if not entries:
            raise NoImages("No images were given to classify")
        if max_images is not None and len(entries) > max_images:
            raise LimitExceeded(f"A classify call may hold at most {max_images} images; got {len(entries)}")
        answers: list[dict | None] = [None] * len(entries)
        general = GENERAL_CLASSIFIER_ID in ids
        with single_threaded_blas():
            for batch in self._decode_all(entries, answers, general):
                rows, tensors, samples = zip(*batch)
                if general:
                    dense = self.backbone.run_dense(tensors)
                    embeddings, fc = dense.embeddings, self.backbone.classifier_weights()
                    classes = [general_classes(dense.probabilities[i], dense.window_probabilities[i], dense.features[i],
                                               samples[i], fc, limit) for i in range(len(rows))]
                else:
                    embeddings, _ = self.backbone.run(tensors)
                    classes = [[] for _ in rows]
                results = cls.image_results(classes, embeddings, ids, serving, limit)
                for i, per_image in zip(rows, results):
                    answers[i] = {"classifiers": per_image, "image": entries[i].name}
        return cls.classified_images(answers, warnings)

    def explain(self, image: Source, classifier_id: str, class_name: str | None = None,
                top: int = explain.DEFAULT_TOP) -> list[explain.Explanation]:
        """Where the scores of one image looked: a map per class, upsampled onto the image.

        The `top` best classes, or only `class_name` (for `default`: a leaf, an ancestor or a colour).
        One backbone pass; `workbench.plots.overlay` draws an Explanation.
        """
        entries = [e for e in read_images(image, limits=self.limits) if not isinstance(e, Skipped)]
        if len(entries) != 1:
            raise InvalidRequest(f"explain takes exactly one image; got {len(entries)}")
        spec = self.backbone.spec
        tensor, decoded = backbone_input(entries[0].data, spec, self.limits, entries[0].name)
        box = crop_box(*decoded.size, spec)
        with single_threaded_blas():
            if classifier_id == GENERAL_CLASSIFIER_ID:
                dense = self.backbone.run_dense([tensor])
                sample = color_sample(decoded, box)
                return explain.general_explanations(dense, self.backbone.classifier_weights(), sample, decoded, box,
                                                    class_name, top)
            served = self._serving(self._record(classifier_id))
            dense = self.backbone.run_dense([tensor])
            return explain.custom_explanations(classifier_id, served.heads, dense, decoded, box, class_name, top)

    def _exists(self, classifier_id: str) -> bool:
        try:
            self._record(classifier_id)
        except ClassifierNotFound:
            return False
        return True

    def _decode_all(
        self, entries: list[ImageInput | Skipped], answers: list[dict | None], colors: bool
    ) -> Iterator[list[tuple[int, np.ndarray, ColorSample | None]]]:
        """Decodes each image once, in a pool running ahead of the backbone: batches of (index, tensor, colour sample).

        An unreadable image becomes its own error object in `answers`.
        """

        def prepare(index: int) -> tuple[int, dict | tuple[np.ndarray, ColorSample | None]]:
            entry = entries[index]
            if isinstance(entry, Skipped):
                return index, cls.image_error(entry.name, entry.reason)
            try:
                tensor, image = backbone_input(entry.data, self.backbone.spec, self.limits, entry.name)
            except (ImageUnreadable, LimitExceeded) as exc:
                return index, cls.image_error(entry.name, exc.message, exc.code, exc.error_id)
            return index, (tensor, color_sample(image, crop_box(*image.size, self.backbone.spec)) if colors else None)

        for batch in prepared_batches(range(len(entries)), prepare, self.backbone.batch_size):
            for index, result in batch:
                if isinstance(result, dict):
                    answers[index] = result
            good = [(index, *result) for index, result in batch if not isinstance(result, dict)]
            if good:
                yield good
