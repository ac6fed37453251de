"""Micro-batching: backbone passes asked for by many threads at once share one batch.

The HTTP front gets one image per request, each on its own worker thread. A pass over 8 images
costs far less than 8 passes over one (8 threads x 1 image: about 96 img/s one pass each, 107
micro-batched, on 2 cores), so a worker thread takes every request waiting in the queue (and,
once two or more are waiting, those arriving within `wait_seconds`: a bounded wait that a lone
caller never pays) and runs them as one batch. Results are split back per request, in order.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

WAIT_SECONDS = 0.002  # how long a batch of two or more requests waits for more (never a lone request)

Outputs = tuple[np.ndarray, ...]


@dataclass
class _Request:
    tensors: list[np.ndarray]
    done: threading.Event = field(default_factory=threading.Event)
    result: Outputs | None = None
    error: BaseException | None = None


class BatchingRunner:
    """`run(tensors)` like `forward(tensors)`, but concurrent calls are gathered into passes of up to `max_images`.

    `forward` takes a list of CHW arrays and returns arrays whose first axis is per image.
    """

    def __init__(
        self, forward: Callable[[list[np.ndarray]], Outputs], max_images: int, wait_seconds: float = WAIT_SECONDS
    ) -> None:
        self.forward = forward
        self.max_images = max_images
        self.wait_seconds = wait_seconds
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._start_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._carry: _Request | None = None  # a request too big for the last batch: first in the next one

    def run(self, tensors: Sequence[np.ndarray]) -> Outputs:
        """The forward outputs for `tensors`, computed in a batch shared with concurrent callers."""
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
        """The next request, plus those queued up to `max_images`; with two or more, also those arriving in the wait."""
        first, self._carry = self._carry or self._queue.get(), None
        batch = [first]
        count = len(batch[0].tensors)
        deadline = None
        while count < self.max_images:
            try:
                if deadline is None:
                    request = self._queue.get_nowait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    request = self._queue.get(timeout=remaining)
            except queue.Empty:
                if deadline is not None or len(batch) < 2 or self.wait_seconds <= 0:
                    break
                deadline = time.monotonic() + self.wait_seconds  # others are calling: give them a moment
                continue
            if count + len(request.tensors) > self.max_images:
                self._carry = request
                break
            batch.append(request)
            count += len(request.tensors)
        return batch

    def _serve(self) -> None:
        while True:
            batch = self._gather()
            try:
                outputs = self.forward([t for r in batch for t in r.tensors])
                start = 0
                for request in batch:
                    end = start + len(request.tensors)
                    request.result = tuple(output[start:end] for output in outputs)
                    start = end
            except BaseException as exc:  # every waiting caller hears about the failure
                for request in batch:
                    request.error = exc
            for request in batch:
                request.done.set()
