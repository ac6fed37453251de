"""The Workbench: the one door behind every front (Python, CLI, HTTP, widgets).

A facade over its parts: `Settings` (service/settings.py) is its frozen configuration, `Engine`
(service/engine.py) wires and opens the store, backbone, jobs, tracker and exports, `Catalog` reads an
owner's classifiers, `Scoring` classifies and explains, `Intake` stores example sets and curations.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar, overload

from ..analysis.training import OutOfFold
from ..core.events import ClassifierEvent, Listener
from ..core.limits import DOCTOR_GRACE_S, Limits
from ..core.records import ClassifierRecord
from ..core.sources import Fetcher
from ..core.vocabulary import OWNER_ME
from ..images import streaming
from ..images.examples import Source
from ..jobs.runner import JobSettings
from ..scoring import explain
from ..scoring.export import check_format
from ..store import curation, promotion
from ..store.findings import DoctorReport
from .catalog import Catalog, watson_record
from .engine import Engine
from .intake import Intake, folder_examples
from .scoring import Images, Scoring
from .settings import Settings

if TYPE_CHECKING:
    import pandas

    from ..analysis.interpretation import Interpretation

DEFAULT_OWNER = OWNER_ME
T = TypeVar("T")


class _Read(Generic[T]):
    """A read-only Workbench attribute, typed: a setting of its frozen `Settings` or a part of its `Engine`."""

    def __init__(self, read: Callable[[Workbench], T], doc: str) -> None:
        self.read = read
        self.__doc__ = doc

    @overload
    def __get__(self, workbench: None, owner: type) -> _Read[T]: ...
    @overload
    def __get__(self, workbench: Workbench, owner: type) -> T: ...
    def __get__(self, workbench: Workbench | None, owner: type) -> T | _Read[T]:
        return self if workbench is None else self.read(workbench)


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
    `store="postgresql://user@host:port/db"` (or $WORKBENCH_STORE) keeps the rows in PostgreSQL, for
    servers on many hosts (SQLite's WAL needs one host); `blobs` (or $WORKBENCH_BLOBS) is then the folder
    every host mounts for images and heads, and `home` holds only this host's caches.
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
        store: str | None = None,
        blobs: str | os.PathLike | None = None,
    ) -> None:
        settings = Settings.resolve(
            home,
            limits=limits,
            progress=progress,
            resume=resume,
            train=train,
            embedding_cache=embedding_cache,
            tracking_uri=tracking_uri,
            job_settings=job_settings,
            prebuild_exports=prebuild_exports,
            precision=precision,
            read_only=read_only,
            store=store,
            blobs=blobs,
        )
        self._bind(Engine(settings), owner)

    def _bind(self, engine: Engine, owner: str) -> None:
        self.engine = engine  # shared by every owner view (`as_owner`)
        self.settings = engine.settings
        self.owner = owner
        self._scoring = Scoring(engine, owner)
        self._intake = Intake(engine, owner)
        self._catalog = Catalog(engine, owner)

    def as_owner(self, owner: str) -> Workbench:
        """A view of the same engine acting for another owner (the HTTP front's API keys)."""
        self.engine.open()
        view = Workbench.__new__(Workbench)
        view._bind(self.engine, owner)
        return view

    # settings and parts ------------------------------------------------------
    home = _Read(lambda wb: wb.settings.home, "The store's folder.")
    limits = _Read(lambda wb: wb.settings.limits, "The input limits (`Limits`).")
    progress = _Read(lambda wb: wb.settings.progress, "Whether trainings show progress bars.")
    resume = _Read(lambda wb: wb.settings.resume, "Whether orphaned trainings are adopted and MLflow kept converged.")
    train = _Read(lambda wb: wb.settings.train, "Whether this Workbench trains (False: another process does).")
    embedding_cache = _Read(lambda wb: wb.settings.embedding_cache, "The embedding cache's file.")
    tracking_uri = _Read(lambda wb: wb.settings.tracking_uri, "The MLflow tracking URI asked for (False: off).")
    job_settings = _Read(lambda wb: wb.settings.job_settings, "The `JobSettings` asked for (None: from the env).")
    prebuild_exports = _Read(lambda wb: wb.settings.prebuild_exports, "The formats exported after every training.")
    precision = _Read(lambda wb: wb.settings.precision, 'The backbone precision asked for ("fp32", "int8", None).')
    read_only = _Read(lambda wb: wb.settings.read_only, "Whether this Workbench only classifies, writing nothing.")
    store = _Read(lambda wb: wb.engine.open().store, "The store (opened on first use).")
    backbone = _Read(lambda wb: wb.engine.open().backbone, "The backbone (its model loads on first use).")
    jobs = _Read(lambda wb: wb.engine.open().jobs, "The training threads and their listeners.")
    tracker = _Read(lambda wb: wb.engine.open().tracker, "The MLflow tracker (None when tracking is off).")
    exports = _Read(lambda wb: wb.engine.open().exports, "The export cache (`join` waits for builds under way).")

    def subscribe(self, listener: Listener) -> None:
        """Calls `listener(ClassifierEvent)` at every training stage and on delete (progress, widgets, tracking)."""
        self.jobs.listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stops calling `listener`; a listener that was never subscribed is ignored."""
        if listener in self.jobs.listeners:
            self.jobs.listeners.remove(listener)

    # reading (catalog.py) --------------------------------------------------
    def _record(self, classifier_id: str) -> ClassifierRecord:
        return self._catalog.record(classifier_id)

    def get_classifier(self, classifier_id: str) -> dict:
        """The Watson Classifier record: status, classes, timestamps, explanation when failed."""
        return self._catalog.get(classifier_id)

    def list_classifiers(self, *, verbose: bool = False) -> dict:
        """Watson Classifiers: brief (id, name, status) or, with verbose, full records."""
        return self._catalog.listing(verbose)

    def wait(self, classifier_id: str, *, timeout: float | None = 600.0, progress: bool = False) -> dict:
        """Blocks until the classifier is `ready` or `failed` (and no follow-up training is due).

        `progress=True` shows a tqdm bar (status, then images embedded) that closes when it settles.
        """
        return self._catalog.wait(classifier_id, timeout, progress)

    def versions(self, classifier_id: str) -> list[dict]:
        """Every trained version: number, created, classes, cross-validated metrics."""
        return self._catalog.versions(classifier_id)

    def compare_versions(self, classifier_id: str) -> pandas.DataFrame:
        """Every version with its metrics, one row each (for notebooks).

        From MLflow when tracking is on (logging what is missing first, so the table is what the
        MLflow UI shows), else the same numbers from the store.
        """
        return self._catalog.versions_frame(classifier_id)

    def find_classifier(self, name: str) -> str:
        """The id of the newest classifier called `name` (notebooks find the tutorial's `dogs` this way)."""
        return self._catalog.find(name)

    def out_of_fold(self, classifier_id: str, *, version: int | None = None) -> OutOfFold:
        """The cross-validated (out-of-fold) scores of a version's training images (the serving version by default).

        Each image was scored by heads that never saw it: what threshold plots and galleries need.
        """
        return self._catalog.out_of_fold(classifier_id, version)

    def interpretation(self, classifier_id: str, *, version: int | None = None) -> Interpretation:
        """fastai's ClassificationInterpretation for a version (the serving one by default), over its out-of-fold
        scores: `confusion_matrix(threshold)`, `most_confused(min_count)`, `top_losses(k)`, `metrics(threshold)`."""
        return self._catalog.interpretation(classifier_id, version)

    def example_image(self, classifier_id: str, sha256: str) -> bytes:
        """The bytes of one of the classifier's training images, by sha256 (for galleries)."""
        return self._catalog.example_image(classifier_id, sha256)

    # curating the examples (curation.py) ----------------------------------
    def examples(
        self, classifier_id: str, *, version: int | None = None, sort: str = "id", include_removed: bool = False
    ) -> list[curation.TrainingExample]:
        """The classifier's training examples with `version`'s out-of-fold scores (default: its newest version).

        `sort="oof"` puts first the examples some other class outscored. With `include_removed`, curated-out
        examples too; those `in_version` are then exactly the set that version trained on.
        """
        return self._catalog.examples(classifier_id, version, sort, include_removed)

    def remove_examples(self, classifier_id: str, example_ids: Iterable[int]) -> curation.Curation:
        """Takes examples out of training and queues a retraining, as an update does; earlier versions keep them."""
        return self._intake.curate(classifier_id, curation.example_ids(example_ids), {})

    def relabel_examples(self, classifier_id: str, labels: Mapping[int, str | None]) -> curation.Curation:
        """Moves examples to another class (existing or new; None: negative) and queues a retraining like an update."""
        return self._intake.curate(classifier_id, [], curation.new_labels(labels))

    def doctor(self, *, repair: bool = False, full: bool = True, grace_s: float = DOCTOR_GRACE_S) -> DoctorReport:
        """Checks the store (records, versions, heads, blobs, embedding cache); with `repair`, fixes what is safe.

        Repair removes orphan blobs, temporary files and bad cache rows, quarantines corrupt blobs and marks
        classifiers with broken data `failed` (explained); it never deletes examples. `full=False` only
        looks for orphans and temporary files (no hashing). Files younger than `grace_s` are left alone.
        A disk that refuses writes (full) or a store locked past its busy timeout ends the check with a
        `store_unavailable` finding instead of an exception.
        """
        return self.engine.doctor(repair, full, grace_s)

    # writing ---------------------------------------------------------------
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
        record, classes = self._intake.create(name, positive_examples, negative_examples)
        return watson_record(record, classes)

    def create_classifier_from_folder(
        self, name: str, folder: str | os.PathLike, *, negatives: str = "negatives"
    ) -> dict:
        """Creates a classifier from a folder of class-named sub-folders or .zip files (fastai's `from_folder`).

        Each sub-folder or zip is a class named after it; the one called `negatives` holds the negative
        examples. Raises InvalidExamples for a missing folder, fewer than two sets, or a class without images.
        """
        sets, negative_set = folder_examples(folder, negatives)
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
        self._intake.update(classifier_id, positive_examples, negative_examples)
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

    def delete_classifier(self, classifier_id: str) -> None:
        """Deletes the classifier, its versions, and the example images no other classifier uses.

        Returns at once, whatever MLflow is doing: versions not yet logged are copied aside first and
        logged in the background, so its runs stay as history.
        """
        self._record(classifier_id)
        self.engine.delete(classifier_id)

    # export ----------------------------------------------------------------
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
        return self.engine.export(self._record(classifier_id), format, version, path)

    def core_ml_model(self, classifier_id: str) -> bytes:
        """The serving version as a Core ML `.mlmodel` (Watson's `GET .../core_ml_model`)."""
        return self.engine.core_ml_model(self._record(classifier_id))

    # user data (Watson's X-Watson-Metadata: customer_id) ---------------------
    def label_user_data(self, customer_id: str, classifier_id: str) -> None:
        """Marks a classifier as holding data sent for `customer_id`, so `delete_user_data` finds it."""
        self._record(classifier_id)
        self.store.label_customer(customer_id, classifier_id)

    def delete_user_data(self, customer_id: str) -> list[str]:
        """Deletes this owner's classifiers that hold data labelled `customer_id` (their heads learnt from it)."""
        deleted = [cid for cid in self.store.customer_classifiers(customer_id) if self._catalog.exists(cid)]
        for classifier_id in deleted:
            self.delete_classifier(classifier_id)
        return deleted

    # classify (scoring.py) ---------------------------------------------------
    def classify(
        self,
        images: Images,
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
        return self._scoring.classify(images, classifier_ids, owners, threshold, max_images, fetch_url, accept_language)

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
        return self._scoring.classify_iter(images, classifier_ids, owners, threshold, skip, on_skip, chunk_images)

    def explain(
        self, image: Source, classifier_id: str, *, class_name: str | None = None, top: int = explain.DEFAULT_TOP
    ) -> list[explain.Explanation]:
        """Where the scores of one image looked: a map per class, upsampled onto the image.

        The `top` best classes, or only `class_name` (for `default`: a leaf, an ancestor or a colour).
        One backbone pass per view (`spec.view_boxes`: the whole image); `workbench.plots.overlay` draws an Explanation.
        """
        return self._scoring.explain(image, classifier_id, class_name, top)
