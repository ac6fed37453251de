"""Background training: a bounded FIFO pool, one training per classifier, coalescing, adopting orphans.

Each runner holds a lease (leases.py) on the trainings it queued or runs and renews it from a
keeper thread; a runner that watches also adopts trainings whose holder died, while it runs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ..analysis import retraining, training
from ..core.atomic import atomic_write_bytes
from ..core.errors import ClassifierNotFound, InvalidRequest, StoreUnavailable
from ..core.events import ClassifierEvent, Listener
from ..core.limits import Limits
from ..core.records import ExampleRow, VersionRecord
from ..core.timestamps import now_iso
from ..engine.backbone import Backbone
from ..images import unknown_images
from ..images.decode import backbone_input, prepared_batches
from ..store import curation, leases
from ..store.database import Store
from ..store.embeddings import EmbeddingCache
from ..store.promotion import newest_version
from .previous import previous_training

log = logging.getLogger(__name__)
TRAINING_PASS_IMAGES = 2  # images per backbone pass while training: a classify waits for at most this one
TRAINING_DECODE_WORKERS = 1  # training decodes on one thread, leaving a core to classify
EMBED_CHUNK_IMAGES = 32  # images decoded and embedded per progress step
MAX_TRAININGS = 1  # trainings at once per process: each already uses every core, and classify shares them
LEASE_S = 30.0  # a training held from another host and not renewed for this long is adopted by a watching process
RENEW_S = 5.0
SCAN_S = 5.0
STORE_RETRY_S = 600.0  # how long a finished training keeps trying to commit to a locked or full store
STORE_RETRY_FIRST_S = 0.25  # the first pause between tries; it doubles, up to STORE_RETRY_MAX_PAUSE_S
STORE_RETRY_MAX_PAUSE_S = 10.0
Number = TypeVar("Number", int, float)
Result = TypeVar("Result")
SETTINGS_ENV = {  # JobSettings field: environment variable (for the CLI, the server, tests)
    "max_trainings": "WORKBENCH_MAX_TRAININGS",
    "lease_s": "WORKBENCH_LEASE_S",
    "renew_s": "WORKBENCH_LEASE_RENEW_S",
    "scan_s": "WORKBENCH_LEASE_SCAN_S",
    "store_retry_s": "WORKBENCH_STORE_RETRY_S",
}


@dataclass(frozen=True)
class JobSettings:
    """How many trainings run at once here, and the lease timing that lets survivors adopt orphans."""

    max_trainings: int = MAX_TRAININGS
    lease_s: float = LEASE_S
    renew_s: float = RENEW_S
    scan_s: float = SCAN_S
    store_retry_s: float = STORE_RETRY_S  # a training keeps retrying a locked or full store this long, then fails

    def __post_init__(self) -> None:
        if self.max_trainings < 1:
            raise InvalidRequest(f"max_trainings ({SETTINGS_ENV['max_trainings']}) must be at least 1")
        if not 0 < self.renew_s < self.lease_s or self.scan_s <= 0:
            raise InvalidRequest(
                f"lease timings need 0 < renew_s < lease_s and scan_s > 0 "
                f"({', '.join(list(SETTINGS_ENV.values())[1:4])})"
            )
        if self.store_retry_s < 0:
            raise InvalidRequest(f"store_retry_s ({SETTINGS_ENV['store_retry_s']}) must be at least 0")

    @classmethod
    def from_env(cls) -> JobSettings:
        """The defaults, overridden by WORKBENCH_MAX_TRAININGS, WORKBENCH_LEASE_S, _RENEW_S, _SCAN_S."""
        return cls(
            max_trainings=_env_number("max_trainings", int, MAX_TRAININGS),
            lease_s=_env_number("lease_s", float, LEASE_S),
            renew_s=_env_number("renew_s", float, RENEW_S),
            scan_s=_env_number("scan_s", float, SCAN_S),
            store_retry_s=_env_number("store_retry_s", float, STORE_RETRY_S),
        )


def _env_number(field: str, kind: type[Number], default: Number) -> Number:
    """A JobSettings field from its environment variable (SETTINGS_ENV), or its default when unset or empty."""
    env, raw = SETTINGS_ENV[field], os.environ.get(SETTINGS_ENV[field])
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise InvalidRequest(f"{env} must be a {kind.__name__}, got {raw!r}") from None


class LeaseLost(Exception):
    """Another process adopted this training (its owner was judged dead): drop this run's result."""


def _keep(runner_ref: weakref.ref[JobRunner], period_s: float) -> None:
    """The keeper thread: renews this runner's leases and looks for orphans; ends with the runner."""
    while True:
        time.sleep(period_s)
        runner = runner_ref()
        if runner is None:
            return
        try:
            runner.tick()
        except StoreUnavailable as exc:  # locked or full: renewed at the next tick (this host judges by process)
            log.warning("lease keeper of %s: %s", runner.token, exc.message)
        except Exception:  # a vanished store must not end the keeper
            log.exception("lease keeper of %s", runner.token)
        del runner


class JobRunner:
    """Runs trainings on a bounded pool of threads; updates that land during a training fold into one more."""

    def __init__(
        self,
        store: Store,
        backbone: Backbone,
        cache: EmbeddingCache,
        limits: Limits,
        progress: bool,
        settings: JobSettings | None = None,
    ) -> None:
        self.store = store
        self.backbone = backbone
        self.cache = cache
        self.limits = limits
        self.progress = progress
        self.settings = settings or JobSettings()
        self.token = leases.new_token()
        leases.mark_alive(self.token)
        weakref.finalize(self, leases.mark_gone, self.token)
        self.listeners: list[Listener] = []
        self._lock = threading.RLock()  # re-entrant: listeners run under it and may ask is_running
        self._active: dict[str, threading.Event] = {}  # queued or training here; set when it settles
        self._queue: deque[str] = deque()
        self._workers = 0
        self._watching = False
        self._next_scan = 0.0
        self._keeper: threading.Thread | None = None

    # public ------------------------------------------------------------------
    def claim(self, db, classifier_id: str) -> bool:
        """Takes the classifier's lease inside the caller's transaction unless a live process holds it."""
        return leases.claim(db, classifier_id, self.token, self.settings.lease_s)

    def request(self, classifier_id: str) -> bool:
        """Queues a training that will cover every example stored so far; False if a live process holds it."""
        with self._lock:
            if classifier_id in self._active:
                return True  # the queued or running training checks for new examples before it finishes
            with self.store.transaction() as db:
                if not self.claim(db, classifier_id):
                    return False  # its holder trains it, and sees these examples before it finishes
            self._active[classifier_id] = threading.Event()
            self._queue.append(classifier_id)
            if self._workers < self.settings.max_trainings:
                self._workers += 1
                threading.Thread(target=self._work, name=f"train-{self._workers}", daemon=True).start()
        self._start_keeper()
        return True

    def is_running(self, classifier_id: str) -> bool:
        """Whether a training of the classifier is queued or running in this runner."""
        with self._lock:
            return classifier_id in self._active

    def join(self, classifier_id: str, timeout: float | None = None) -> None:
        with self._lock:
            done = self._active.get(classifier_id)
        if done is not None:
            done.wait(timeout)

    def recover(self) -> list[str]:
        """Adopts trainings `training`/`retraining` with no live holder; returns their ids."""
        with self.store.transaction(write=False) as db:
            candidates = leases.orphans(db, self.token)
        return [cid for cid in candidates if not self.is_running(cid) and self.request(cid)]

    def watch(self) -> list[str]:
        """Adopts orphaned trainings now and every `scan_s` while this runner lives; returns those adopted now."""
        self._watching = True
        self._next_scan = time.monotonic() + self.settings.scan_s
        try:
            adopted = self.recover()
        except StoreUnavailable as exc:  # a full disk or a held lock at start: reads serve, the keeper scans again
            log.warning("orphaned trainings not adopted yet: %s", exc.message)
            adopted = []
        self._start_keeper()
        return adopted

    def tick(self) -> None:
        """One keeper step: renew the leases held here, and scan for orphans when due."""
        if self.is_busy():
            with self.store.transaction() as db:
                leases.renew(db, self.token, self.settings.lease_s)
        if self._watching and time.monotonic() >= self._next_scan:
            self._next_scan = time.monotonic() + self.settings.scan_s
            adopted = self.recover()
            if adopted:
                log.warning("adopted trainings whose process is gone: %s", ", ".join(adopted))

    def is_busy(self) -> bool:
        with self._lock:
            return bool(self._active)

    # internals ---------------------------------------------------------------
    def _start_keeper(self) -> None:
        """Starts the keeper thread once; it holds only a weak reference, so it ends with this runner."""
        with self._lock:
            if self._keeper is not None:
                return
            period = min(self.settings.renew_s, self.settings.scan_s)
            self._keeper = threading.Thread(
                target=_keep, args=(weakref.ref(self), period), name="workbench-leases", daemon=True
            )
            self._keeper.start()

    def _work(self) -> None:
        """A pool thread: trains queued classifiers in FIFO order until the queue is empty."""
        while True:
            with self._lock:
                if not self._queue:
                    self._workers -= 1
                    return
                classifier_id = self._queue.popleft()
            self._run(classifier_id)

    def _release(self, classifier_id: str) -> None:
        """Forgets a settled training (caller holds the lock) and wakes its waiters."""
        done = self._active.pop(classifier_id, None)
        if done is not None:
            done.set()

    def emit(self, event: ClassifierEvent) -> None:
        """Tells every listener; a listener that raises is logged and never fails the training."""
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("listener %r failed on %s", listener, event)

    def _run(self, classifier_id: str) -> None:
        try:
            while True:
                if not self._retrying(classifier_id, "check", lambda: self._trained_already(classifier_id)):
                    self._train_once(classifier_id)
                if self._retrying(classifier_id, "finish", lambda: self._finish_if_settled(classifier_id)):
                    return
        except (ClassifierNotFound, LeaseLost) as exc:  # deleted, or adopted elsewhere: nothing to mark
            if isinstance(exc, LeaseLost):
                log.warning("training of %s was adopted by another process; dropping this run", classifier_id)
            with self._lock:
                self._release(classifier_id)
        except Exception as exc:  # a training failure must never take the process down
            self._fail(classifier_id, exc)

    def _retrying(self, classifier_id: str, step: str, action: Callable[[], Result]) -> Result:
        """`action()`, tried again with doubling pauses while the store is locked or full, for `store_retry_s` in all.

        The serving version keeps answering meanwhile; past the bound the StoreUnavailable propagates (the
        training fails, or stays for adoption when even that cannot be written).
        """
        deadline = time.monotonic() + self.settings.store_retry_s
        pause = STORE_RETRY_FIRST_S
        tries = 0
        while True:
            try:
                return action()
            except StoreUnavailable as exc:
                tries += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                log.warning(
                    "store unavailable at the %s of %s's training (try %d): %s; trying again in %.2f s",
                    step,
                    classifier_id,
                    tries,
                    exc.message,
                    min(pause, left),
                )
                time.sleep(min(pause, left))
                pause = min(pause * 2, STORE_RETRY_MAX_PAUSE_S)

    def _holder(self, db, classifier_id: str):
        """The record, if this runner still holds its lease (else LeaseLost)."""
        record = self.store.classifier(classifier_id, db)
        if record.job_owner != self.token:
            raise LeaseLost(classifier_id)
        return record

    def _trained_already(self, classifier_id: str) -> bool:
        """Whether the newest version covers every stored example and curation (its holder died after saving it,
        before marking ready) and was embedded by this backbone (else: a store switching precision retrains)."""
        current = self.backbone.backbone_id  # before the transaction: an INT8 backbone may load its model here
        with self.store.transaction(write=False) as db:
            self.store.classifier(classifier_id, db)
            newest = newest_version(db, classifier_id)
            if newest is None:
                return False
            version = self.store.version(classifier_id, newest, db)
            return curation.covers(db, version) and version.metrics.get("backbone_id") in (None, current)

    def _finish_if_settled(self, classifier_id: str) -> bool:
        """Marks the classifier ready unless examples arrived or were curated during training (then trains again)."""
        with self._lock:
            with self.store.transaction() as db:
                record = self._holder(db, classifier_id)
                newest = newest_version(db, classifier_id)  # the serving one, unless a version is pinned
                if newest is None:  # no version saved (cannot happen after a training): train again
                    return False
                if not curation.covers(db, self.store.version(classifier_id, newest, db)):
                    return False
                self.store.update_classifier(
                    db, classifier_id, status="ready", job_owner=None, lease_expires=None, explanation=None
                )
            # heard before the training counts as finished, so whoever `wait`s finds listeners up to date
            self.emit(ClassifierEvent(classifier_id, "ready", record.serving_version))
            self._release(classifier_id)
        return True

    def _fail(self, classifier_id: str, exc: Exception) -> None:
        explanation = f"Training failed: {exc}"
        with self._lock:
            try:
                with self.store.transaction() as db:
                    self._holder(db, classifier_id)
                    self.store.update_classifier(
                        db, classifier_id, status="failed", explanation=explanation, job_owner=None, lease_expires=None
                    )
            except LeaseLost:
                self._release(classifier_id)
                return
            except (
                Exception
            ):  # deleted meanwhile, or the store itself is broken (logging never raises; a full disk's stderr may)
                log.exception("could not mark %s failed", classifier_id)
            self.emit(ClassifierEvent(classifier_id, "failed", explanation=explanation))
            self._release(classifier_id)

    def _start(self, classifier_id: str) -> tuple[int, int]:
        """Marks the classifier training (or retraining); returns the last example and curation ids it covers."""
        with self.store.transaction() as db:
            record = self._holder(db, classifier_id)
            self.store.update_classifier(db, classifier_id, status=record.busy_status)
            return curation.watermarks(db, classifier_id)

    def _train_once(self, classifier_id: str) -> None:
        last_example_id, last_curation_id = self._retrying(classifier_id, "start", lambda: self._start(classifier_id))
        self.emit(ClassifierEvent(classifier_id, "started"))
        rows = [
            r
            for r in self.store.examples(classifier_id, up_to=last_example_id)
            if curation.live_at(r, last_curation_id)
        ]
        result, rows = self.fit(classifier_id, rows, reuse=True)
        self._retrying(
            classifier_id,
            "save",
            lambda: self._save_version(classifier_id, result, last_example_id, last_curation_id, rows),
        )

    def fit(
        self, classifier_id: str, rows: list[ExampleRow], reuse: bool = False
    ) -> tuple[training.TrainingResult, list[ExampleRow]]:
        """Fits heads on an example set (embedding only uncached images); the result and the rows it trained, in order.

        Without `reuse` the same set gives the same heads (`curation.version_rows` retrains an earlier version);
        with it, adding images to the newest version reuses its evidence and heads (`retraining`, `previous`).
        """
        rows, labels, classes = curation.training_rows(rows)
        started = time.perf_counter()
        backbone_id = self.backbone.backbone_id  # read once: the whole version embeds with one model
        embeddings, embedded = self._embeddings(classifier_id, [r.sha256 for r in rows], backbone_id)
        embed_seconds = time.perf_counter() - started
        self.emit(ClassifierEvent(classifier_id, "fitting"))
        started = time.perf_counter()
        unknown = unknown_images.embeddings(self.backbone, self.cache, backbone_id)  # its "unknown images" check
        precision = self.backbone.precision_of(backbone_id)
        previous = previous_training(self.store, classifier_id, backbone_id, precision) if reuse else None
        shas = [r.sha256 for r in rows]
        result = retraining.retrain(embeddings, labels, shas, classes, previous, unknown=unknown)
        result.metrics.update(
            embed_seconds=embed_seconds,
            fit_seconds=time.perf_counter() - started,
            images_embedded=embedded,
            images_cached=len(set(r.sha256 for r in rows)) - embedded,
            backbone_id=backbone_id,  # what embedded it: its heads score only that backbone's embeddings
            precision=precision,
        )
        return result, rows

    def _embeddings(self, classifier_id: str, shas: list[str], backbone_id: str) -> tuple[np.ndarray, int]:
        """Embeddings from the model `backbone_id` names, computing only those not cached (and how many it did)."""
        known = self.cache.get_many(shas, backbone_id)
        missing = list(dict.fromkeys(s for s in shas if s not in known))
        from tqdm.auto import tqdm  # here, so scoring a logged model (which imports this module) needs no tqdm

        bar = tqdm(
            total=len(missing), desc=f"embedding {classifier_id}", unit="img", disable=not self.progress or not missing
        )
        spec, done = self.backbone.spec, 0

        def prepare(sha: str) -> np.ndarray:
            return backbone_input(self.store.read_blob(sha), spec, self.limits)[0]

        for tensors in prepared_batches(missing, prepare, EMBED_CHUNK_IMAGES, workers=TRAINING_DECODE_WORKERS):
            chunk = missing[done : done + len(tensors)]
            vectors = np.concatenate(
                [
                    self.backbone.run(tensors[i : i + TRAINING_PASS_IMAGES], backbone_id)[0]
                    for i in range(0, len(tensors), TRAINING_PASS_IMAGES)
                ]
            )
            fresh = dict(zip(chunk, vectors, strict=True))
            self.cache.put_many(fresh, backbone_id)
            known.update(fresh)
            done += len(chunk)
            bar.update(len(chunk))
            self.emit(ClassifierEvent(classifier_id, "embedding", done=done, total=len(missing)))
        bar.close()
        return np.stack([known[s] for s in shas]), len(missing)

    def _save_version(
        self,
        classifier_id: str,
        result: training.TrainingResult,
        last_example_id: int,
        last_curation_id: int,
        rows: list[ExampleRow],
    ) -> None:
        """Writes the heads file, then commits the version and moves serving to it (unless pinned) in
        one transaction."""
        with self.store.transaction() as db:
            record = self._holder(db, classifier_id)
            version = self.store.next_version(classifier_id, db)
            path = self.store.head_path(classifier_id, version)
            atomic_write_bytes(path, result.heads.to_bytes(), private=True)
            held_out = result.out_of_fold([r.sha256 for r in rows], [r.source for r in rows])
            atomic_write_bytes(self.store.out_of_fold_path(classifier_id, version), held_out.to_bytes(), private=True)
            stamp = now_iso()
            self.store.insert_version(
                db,
                VersionRecord(
                    classifier_id,
                    version,
                    stamp,
                    list(result.heads.classes),
                    last_example_id,
                    result.metrics,
                    path.name,
                    last_curation_id,
                ),
            )
            retrained = stamp if record.serving_version is not None else record.retrained
            updated = stamp if record.serving_version is not None else record.updated
            serving = version if record.pinned_version is None else record.pinned_version  # a pin holds (promotion.py)
            self.store.update_classifier(
                db, classifier_id, serving_version=serving, retrained=retrained, updated=updated
            )
