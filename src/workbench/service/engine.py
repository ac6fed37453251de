"""The Engine: a Workbench's parts wired together (store, backbone, jobs, tracker, exports), opened on first use.

Every owner view of a Workbench shares one Engine, so they share the store connection, the backbone,
the training threads, the MLflow worker and the cache of serving heads.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
from pathlib import Path

from ..analysis.training import Heads
from ..core.errors import ClassifierNotFound, InvalidRequest, StoreUnavailable, echo
from ..core.events import ClassifierEvent
from ..core.records import ClassifierRecord
from ..engine.backbone import Backbone, scratch_dir
from ..jobs.runner import JobRunner, JobSettings
from ..scoring.export import Exporter, ExportSource, coreml_available, default_file_name, write_copy
from ..store.database import Store
from ..store.doctor import run_doctor, startup_sweep, unavailable_report
from ..store.embeddings import EmbeddingCache
from ..store.findings import DoctorReport
from ..tracking.sync import Tracker, log_export, new_tracker
from .settings import Settings


@dataclasses.dataclass(frozen=True)
class Parts:
    """The opened parts of an Engine."""

    store: Store
    backbone: Backbone
    cache: EmbeddingCache
    jobs: JobRunner
    tracker: Tracker | None  # None when tracking is off
    exports: Exporter


def export_source(store: Store, record: ClassifierRecord, version: int | None) -> ExportSource:
    """The version to export (the serving one by default), with its heads."""
    number = version if version is not None else record.serving_version
    if number is None:
        raise InvalidRequest(
            f"Classifier {record.classifier_id!r} is {record.status} and has no trained version to export yet"
        )
    if isinstance(number, bool) or not isinstance(number, int):
        raise InvalidRequest(f"version must be a whole number, got {echo(number)}")
    stored = store.version(record.classifier_id, number)
    heads = Heads.from_bytes(store.head_path(record.classifier_id, number).read_bytes())
    return ExportSource(record.classifier_id, record.name, number, stored.created, heads)


class Engine:
    """Opens the store and wires the parts on first use (`workbench --help` and `list` load no model)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.heads: dict[tuple[str, int], tuple[Heads, str | None]] = {}  # (heads, backbone id) by (id, version)
        self._lock = threading.Lock()
        self._parts: Parts | None = None

    def open(self) -> Parts:
        """The parts, wired on the first call; with `resume` and `train`, orphaned trainings are adopted."""
        with self._lock:
            if self._parts is None:
                self._parts = self._wire()
                if self.settings.resume and self.settings.train:
                    self._parts.jobs.watch()  # adopts orphans now and while this Engine lives
                    self._follow_precision(self._parts.backbone)
            return self._parts

    def _follow_precision(self, backbone: Backbone) -> None:
        """An INT8 process: once INT8 serves (now if cached, else after its background calibration),
        `switch_precision` retrains the versions another backbone embedded."""
        if backbone.precision == "int8" and not self.settings.read_only:
            backbone.on_int8_ready.append(self.switch_precision)
            threading.Thread(target=backbone.prepare, name="int8-prepare", daemon=True).start()

    def switch_precision(self) -> list[str]:
        """Queues a background retraining of every ready classifier whose serving version another backbone
        embedded (a store trained in FP32, opened with precision int8); returns their ids.

        Each is an ordinary retraining (status, lease and all, as an update queues it): it embeds only the
        examples the cache lacks under the new backbone id and saves a new version; until then the old version
        keeps serving, scored on the backbone that trained it.
        """
        if not self.settings.train or self.settings.read_only:
            return []
        parts = self.open()
        current = parts.backbone.backbone_id
        switched = []
        for listed in parts.store.classifiers():
            cid = listed.classifier_id
            try:
                with parts.store.transaction() as db:
                    record = parts.store.classifier(cid, db)  # again, in the write: it may have changed
                    if record.status != "ready" or record.serving_version is None:
                        continue
                    embedded_by = parts.store.version(cid, record.serving_version, db).metrics.get("backbone_id")
                    if embedded_by in (None, current):
                        continue
                    parts.store.update_classifier(db, cid, status=record.busy_status, explanation=None)
                    self.claim(db, cid)
            except ClassifierNotFound:  # deleted meanwhile
                continue
            self.start_training(cid)
            switched.append(cid)
        return switched

    def _wire(self) -> Parts:
        s = self.settings
        store = Store(s.home, read_only=s.read_only, uri=s.store, files=s.blobs)
        if not s.read_only:
            startup_sweep(store)  # orphan blobs and temporary files a killed process left (cheap)
        backbone = Backbone(precision=s.precision)
        cache = EmbeddingCache(scratch_dir() / "embeddings.db" if s.read_only else s.embedding_cache)
        jobs = JobRunner(store, backbone, cache, s.limits, s.progress, s.job_settings or JobSettings.from_env())
        tracker = new_tracker(store, backbone, s.tracking_uri)
        if tracker is not None and s.resume:  # a short-lived process (a CLI query) leaves it to the next
            jobs.listeners.append(tracker)
            tracker.start()  # MLflow converges to the store: now, then every few seconds
        exports = Exporter(store, lambda: backbone.spec)
        if tracker is not None:  # export files go to MLflow
            exports.after_build.append(lambda cid, version, path: log_export(tracker, cid, version, path))
        if s.prebuild_exports:
            jobs.listeners.append(self._prebuild)
        return Parts(store, backbone, cache, jobs, tracker, exports)

    def _prebuild(self, event: ClassifierEvent) -> None:
        """After a training: starts building the `prebuild_exports` formats of the new serving version."""
        if event.stage not in ("ready", "promoted") or event.version is None:
            return
        parts = self.open()
        source = export_source(parts.store, parts.store.classifier(event.classifier_id), event.version)
        for format in self.settings.prebuild_exports:
            parts.exports.start(source, format)

    def owned(self, classifier_id: str, owner: str) -> ClassifierRecord:
        """The stored record, if `owner` owns it (another owner's classifier is not found, as in Watson)."""
        record = self.open().store.classifier(classifier_id)
        if record.owner != owner:
            raise ClassifierNotFound(f"Classifier {echo(classifier_id)} not found")
        return record

    def claim(self, db, classifier_id: str) -> None:
        """Holds the training's lease from the write that asks for it, so no watcher adopts it in between."""
        if self.settings.train:
            self.open().jobs.claim(db, classifier_id)

    def start_training(self, classifier_id: str) -> None:
        """Trains in a background thread here, unless this Engine leaves training to another process."""
        if self.settings.train:
            self.open().jobs.request(classifier_id)

    def delete(self, classifier_id: str) -> None:
        """Deletes a classifier from every part: store, embedding cache, serving heads; tracking keeps its history.

        Versions not yet logged are copied aside first and logged in the background, whatever MLflow is doing.
        """
        parts = self.open()
        if parts.tracker is not None:
            parts.tracker.stage_delete(classifier_id)  # a local copy, no MLflow call; never raises
        try:
            orphans = parts.store.delete_classifier(classifier_id)
        except BaseException:  # not deleted (a locked store, a full disk): its copy would stand for a delete
            if parts.tracker is not None:
                parts.tracker.unstage_delete(classifier_id)
            raise
        parts.cache.delete_many(orphans)
        parts.jobs.emit(ClassifierEvent(classifier_id, "deleted"))
        for key in [k for k in self.heads if k[0] == classifier_id]:
            del self.heads[key]

    def export(
        self, record: ClassifierRecord, format: str, version: int | None, path: str | os.PathLike | None
    ) -> Path:
        """Copies the version's cached export file (built on first request) to `path`, a file or a folder."""
        parts = self.open()
        source = export_source(parts.store, record, version)
        cached = parts.exports.get(source, format)
        target = Path(path) if path is not None else Path.cwd()
        if target.is_dir():
            target = target / default_file_name(record.classifier_id, source.version, format)
        return write_copy(cached, target)

    def core_ml_model(self, record: ClassifierRecord) -> bytes:
        """The serving version's Core ML file, built on first request."""
        if not coreml_available():
            raise InvalidRequest(
                f"Core ML export needs coremltools; classifier {record.classifier_id!r} has core_ml_enabled false"
            )
        parts = self.open()
        return parts.exports.get(export_source(parts.store, record, None), "coreml").read_bytes()

    def doctor(self, repair: bool, full: bool, grace_s: float) -> DoctorReport:
        """Checks (and with `repair`, fixes) the store and the embedding cache; an unavailable store is a finding."""
        try:
            parts = self.open()
            sizes = {parts.backbone.backbone_id: parts.backbone.spec.embedding_size}
            return run_doctor(
                parts.store, self.settings.embedding_cache, sizes, repair=repair, full=full, grace_s=grace_s
            )
        except (StoreUnavailable, OSError, sqlite3.Error) as exc:
            report = unavailable_report(self.settings.home, exc, repair=repair, full=full)
            if report is None:
                raise
            return report
