"""The tracker's own thread: a queue of classifiers to mirror, a sweep of every classifier each interval.

All MLflow work happens here, so a slow or unreachable tracking server never delays a training or
a delete. Events only bring a classifier's turn forward; the sweep is due every interval however
busy the queue is.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

SYNC_SECONDS = 60.0  # how often every classifier is mirrored again (missed logging, crashed processes)
SYNC_SECONDS_ENV = "WORKBENCH_TRACKING_SYNC_SECONDS"  # overrides SYNC_SECONDS
EXIT_FLUSH_SECONDS = 60.0  # how long a process waits at exit for its last runs to be logged


def sync_interval() -> float:
    """Seconds between sweeps: $WORKBENCH_TRACKING_SYNC_SECONDS, else SYNC_SECONDS."""
    text = os.environ.get(SYNC_SECONDS_ENV, "").strip()
    try:
        return float(text) if text and float(text) > 0 else SYNC_SECONDS
    except ValueError:
        return SYNC_SECONDS


@dataclass
class _Flush:
    """A marker in the worker's queue: set when everything before it is handled."""

    done: threading.Event = field(default_factory=threading.Event)


class _Sweep:
    """A marker in the worker's queue: mirror every classifier in the store."""


class _Stop:
    """A marker in the worker's queue: the worker ends."""


class Worker:
    """One background thread that runs `sweep()` every `interval_s` and `heard(classifier_id)` for each one queued.

    The thread starts on first use and again if it died; `at_exit` is registered with the interpreter
    when it first starts, and unregistered by `close`.
    """

    def __init__(
        self,
        interval_s: float,
        sweep: Callable[[], object],
        heard: Callable[[str], object],
        at_exit: Callable[[], None],
    ) -> None:
        self.interval_s = interval_s
        self._sweep = sweep
        self._heard = heard
        self._at_exit = at_exit
        self.sweeps_off = threading.Event()  # set at exit and by close: no new sweep starts
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards the thread and `_closed` (held only briefly)
        self._closed = False

    def start(self) -> None:
        """Queues a sweep of every classifier now; the next ones follow every `interval_s`."""
        self._queue.put(_Sweep())
        self._start_thread()

    def put(self, classifier_id: str) -> None:
        """Queues one classifier's turn and returns at once."""
        self._queue.put(classifier_id)
        self._start_thread()

    def catch_up(self, timeout: float | None) -> None:
        """Waits (up to `timeout`) until everything queued so far is handled."""
        marker = _Flush()
        self._queue.put(marker)
        self._start_thread()
        marker.done.wait(timeout)

    def close(self, timeout: float | None) -> None:
        """Stops the thread after what it is doing (waits up to `timeout`); no sweep runs after."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self.sweeps_off.set()
        self._queue.put(_Stop())
        if thread is not None:
            thread.join(timeout)
        atexit.unregister(self._at_exit)

    def _start_thread(self) -> None:
        with self._lock:
            if self._closed or (self._thread is not None and self._thread.is_alive()):
                return
            first = self._thread is None
            self._thread = threading.Thread(target=self._work, name="mlflow-tracking", daemon=True)
            self._thread.start()
        if first:
            atexit.register(self._at_exit)

    def _work(self) -> None:
        next_sweep = time.monotonic() + self.interval_s
        while True:
            try:  # a sweep is due every interval, however busy the queue is
                item = self._queue.get(timeout=max(0.0, next_sweep - time.monotonic()))
            except queue.Empty:
                item = _Sweep()
            if isinstance(item, _Stop):
                return
            if isinstance(item, _Flush):
                item.done.set()
            elif isinstance(item, _Sweep):
                self._sweep()
                next_sweep = time.monotonic() + self.interval_s
            else:
                self._heard(item)
