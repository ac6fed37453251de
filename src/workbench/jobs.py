"""Background training: status transitions, one training per classifier, coalescing, crash recovery."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from . import training
from .backbone import Backbone, EmbeddingCache
from .decode import backbone_input, prepared_batches
from .errors import ClassifierNotFound
from .limits import Limits
from .store import Store, VersionRecord, atomic_write_bytes
from .timestamps import now_iso

log = logging.getLogger(__name__)
EMBED_CHUNK_IMAGES = 32  # images decoded and embedded per progress step


@dataclass(frozen=True)
class ClassifierEvent:
    """Something that happened to a classifier; listeners get one at each training stage and on delete."""

    classifier_id: str
    stage: str  # "started", "embedding", "fitting", "ready", "failed", "deleted"
    version: int | None = None
    done: int = 0
    total: int = 0
    explanation: str | None = None


Listener = Callable[[ClassifierEvent], None]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobRunner:
    """Runs trainings in background threads; updates that land during a training fold into one more."""

    def __init__(self, store: Store, backbone: Backbone, cache: EmbeddingCache, limits: Limits, progress: bool) -> None:
        self.store = store
        self.backbone = backbone
        self.cache = cache
        self.limits = limits
        self.progress = progress
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._active: dict[str, threading.Thread] = {}

    # public ------------------------------------------------------------------
    def request(self, classifier_id: str) -> None:
        """Makes sure a training will cover every example stored so far."""
        with self._lock:
            if classifier_id in self._active:
                return  # the running training checks for new examples before it finishes
            thread = threading.Thread(target=self._run, args=(classifier_id,), name=f"train-{classifier_id}", daemon=True)
            self._active[classifier_id] = thread
            thread.start()

    def is_running(self, classifier_id: str) -> bool:
        with self._lock:
            return classifier_id in self._active

    def join(self, classifier_id: str, timeout: float | None = None) -> None:
        with self._lock:
            thread = self._active.get(classifier_id)
        if thread is not None:
            thread.join(timeout)

    def recover(self) -> list[str]:
        """Resumes trainings left `training`/`retraining` by a process that is gone; returns their ids."""
        resumed = []
        for record in self.store.classifiers():
            if record.status not in ("training", "retraining") or self._owner_alive(record.classifier_id, record.job_owner):
                continue
            resumed.append(record.classifier_id)
            self.request(record.classifier_id)
        return resumed

    # internals ---------------------------------------------------------------
    def _owner_alive(self, classifier_id: str, job_owner: str | None) -> bool:
        """Whether the process (or runner) that marked this training is still at it."""
        if not job_owner:
            return False
        host, pid, _ = job_owner.split(":", 2)
        if host != socket.gethostname():
            return True  # another machine's job: not ours to judge
        if int(pid) == os.getpid():
            return job_owner != self.token or self.is_running(classifier_id)
        return _pid_alive(int(pid))

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
                self._train_once(classifier_id)
                if self._finish_if_settled(classifier_id):
                    return
        except ClassifierNotFound:  # deleted while it trained: nothing left to mark
            with self._lock:
                self._active.pop(classifier_id, None)
        except Exception as exc:  # a training failure must never take the process down
            self._fail(classifier_id, exc)

    def _finish_if_settled(self, classifier_id: str) -> bool:
        """Marks the classifier ready unless examples arrived during the training (then trains again)."""
        with self._lock:
            with self.store.transaction() as db:
                record = self.store.classifier(classifier_id, db)
                last_trained = db.execute(
                    "SELECT last_example_id FROM versions WHERE classifier_id = ? AND version = ?",
                    (classifier_id, record.serving_version),
                ).fetchone()[0]
                if self.store.last_example_id(classifier_id, db) > last_trained:
                    return False
                self.store.update_classifier(db, classifier_id, status="ready", job_owner=None, explanation=None)
            del self._active[classifier_id]
        self.emit(ClassifierEvent(classifier_id, "ready", record.serving_version))
        return True

    def _fail(self, classifier_id: str, exc: Exception) -> None:
        explanation = f"Training failed: {exc}"
        with self._lock:
            try:
                with self.store.transaction() as db:
                    self.store.classifier(classifier_id, db)
                    self.store.update_classifier(
                        db, classifier_id, status="failed", explanation=explanation, job_owner=None
                    )
            except Exception:  # deleted meanwhile, or the store itself is broken
                traceback.print_exc()
            self._active.pop(classifier_id, None)
        self.emit(ClassifierEvent(classifier_id, "failed", explanation=explanation))

    def _train_once(self, classifier_id: str) -> None:
        with self.store.transaction() as db:
            record = self.store.classifier(classifier_id, db)
            status = "training" if record.serving_version is None else "retraining"
            self.store.update_classifier(db, classifier_id, status=status, job_owner=self.token)
            last_example_id = self.store.last_example_id(classifier_id, db)
        self.emit(ClassifierEvent(classifier_id, "started"))
        rows = self.store.examples(classifier_id, up_to=last_example_id)
        classes = list(dict.fromkeys(r.class_name for r in rows if r.class_name is not None))
        positives = {r.sha256 for r in rows if r.class_name is not None}
        # an image both positive and negative stays positive (Watson's rule)
        rows = [r for r in rows if r.class_name is not None or r.sha256 not in positives]
        rows = list({(r.class_name, r.sha256): r for r in rows}.values())
        started = time.perf_counter()
        embeddings, embedded = self._embeddings(classifier_id, [r.sha256 for r in rows])
        embed_seconds = time.perf_counter() - started
        labels = [r.class_name if r.class_name is not None else training.NEGATIVE_LABEL for r in rows]
        self.emit(ClassifierEvent(classifier_id, "fitting"))
        started = time.perf_counter()
        result = training.train(embeddings, labels, classes)
        result.metrics.update(
            embed_seconds=embed_seconds,
            fit_seconds=time.perf_counter() - started,
            images_embedded=embedded,
            images_cached=len(set(r.sha256 for r in rows)) - embedded,
        )
        self._save_version(classifier_id, result, last_example_id, rows)

    def _embeddings(self, classifier_id: str, shas: list[str]) -> tuple[np.ndarray, int]:
        """Embeddings for the images, computing only those not in the cache (returns how many it computed)."""
        backbone_id = self.backbone.backbone_id
        known = self.cache.get_many(shas, backbone_id)
        missing = list(dict.fromkeys(s for s in shas if s not in known))
        bar = tqdm(total=len(missing), desc=f"embedding {classifier_id}", unit="img", disable=not self.progress or not missing)
        spec, done = self.backbone.spec, 0

        def prepare(sha: str) -> np.ndarray:
            return backbone_input(self.store.read_blob(sha), spec, self.limits)[0]

        for tensors in prepared_batches(missing, prepare, EMBED_CHUNK_IMAGES):
            chunk = missing[done : done + len(tensors)]
            vectors, _ = self.backbone.run(tensors)
            fresh = dict(zip(chunk, vectors))
            self.cache.put_many(fresh, backbone_id)
            known.update(fresh)
            done += len(chunk)
            bar.update(len(chunk))
            self.emit(ClassifierEvent(classifier_id, "embedding", done=done, total=len(missing)))
        bar.close()
        return np.stack([known[s] for s in shas]), len(missing)

    def _save_version(self, classifier_id: str, result: training.TrainingResult, last_example_id: int, rows: list) -> None:
        """Writes the heads file, then commits the version and moves serving to it in one transaction."""
        with self.store.transaction() as db:
            record = self.store.classifier(classifier_id, db)
            version = 1 + db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM versions WHERE classifier_id = ?", (classifier_id,)
            ).fetchone()[0]
            path = self.store.head_path(classifier_id, version)
            atomic_write_bytes(path, result.heads.to_bytes())
            held_out = training.OutOfFold(
                list(result.heads.classes), result.oof_scores, result.labels,
                [r.sha256 for r in rows], [r.source for r in rows],
            )
            atomic_write_bytes(self.store.out_of_fold_path(classifier_id, version), held_out.to_bytes())
            stamp = now_iso()
            self.store.insert_version(
                db,
                VersionRecord(classifier_id, version, stamp, list(result.heads.classes), last_example_id,
                              result.metrics, path.name),
            )
            retrained = stamp if record.serving_version is not None else record.retrained
            updated = stamp if record.serving_version is not None else record.updated
            self.store.update_classifier(
                db, classifier_id, serving_version=version, retrained=retrained, updated=updated
            )
