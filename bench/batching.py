"""Micro-batching: backbone passes asked for one image at a time, from many threads, share one batch.

The HTTP front gets one image per request; a worker thread takes every request waiting in the
queue (and, with `wait_seconds`, those arriving within that window) and runs them as one batch.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from workbench.backbone import BATCH_SIZE, Backbone

WAIT_SECONDS = 0.0  # greedy by default: batch what queued up while the previous pass ran


@dataclass
class _Request:
    tensors: list[np.ndarray]
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple[np.ndarray, np.ndarray] | None = None
    error: BaseException | None = None


class BatchingRunner:
    """`run` like `Backbone.run`, but concurrent calls are gathered into passes of up to `max_images`."""

    def __init__(self, backbone: Backbone, max_images: int = BATCH_SIZE, wait_seconds: float = WAIT_SECONDS) -> None:
        self.backbone = backbone
        self.max_images = max_images
        self.wait_seconds = wait_seconds
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._start_lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def run(self, tensors: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed CHW arrays -> (embeddings, probabilities), computed in a shared batch."""
        request = _Request(list(tensors))
        with self._start_lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._serve, name="backbone-batcher", daemon=True)
                self._worker.start()
        self._queue.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _gather(self) -> list[_Request]:
        """The next request, plus those queued (or arriving within `wait_seconds`) up to `max_images`."""
        batch = [self._queue.get()]
        count = len(batch[0].tensors)
        deadline = time.monotonic() + self.wait_seconds
        while count < self.max_images:
            try:
                remaining = deadline - time.monotonic()
                request = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            batch.append(request)
            count += len(request.tensors)
        return batch

    def _serve(self) -> None:
        while True:
            batch = self._gather()
            try:
                embeddings, probabilities = self.backbone.run([t for r in batch for t in r.tensors])
                start = 0
                for request in batch:
                    end = start + len(request.tensors)
                    request.result = (embeddings[start:end], probabilities[start:end])
                    start = end
            except BaseException as exc:  # every waiting caller hears about the failure
                for request in batch:
                    request.error = exc
            for request in batch:
                request.done.set()
