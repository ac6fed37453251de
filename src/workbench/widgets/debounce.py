"""Debounced: a slider's many moves per second folded into at most one redraw per interval."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

REDRAW_INTERVAL_S = 0.2  # threshold plots redraw at most this often while the slider moves


class Debounced:
    """Runs `action` on a timer thread at most once per `interval_s`, always once more after the last `trigger()`.

    A slider sends many values per second; drawing each one queues seconds of stale plots. The first
    trigger after a quiet spell runs at once (no added latency); triggers while a run is due or in
    progress are folded into one more run, `interval_s` after the previous one started. The action
    reads the slider itself when it runs, so the value it draws is always the latest one.
    """

    def __init__(self, action: Callable[[], None], interval_s: float = REDRAW_INTERVAL_S) -> None:
        self.action = action
        self.interval_s = interval_s
        self._lock = threading.Lock()  # guards _timer, _pending and _started
        self._running = threading.Lock()  # one action at a time
        self._timer: threading.Timer | None = None
        self._pending = 0  # scheduled or running actions
        self._started = -math.inf  # time.monotonic() when the last run started
        self._idle = threading.Condition(self._lock)

    def trigger(self) -> None:
        """Asks for a run; one already scheduled and not yet started covers this request too."""
        with self._lock:
            if self._timer is not None:
                return
            self._pending += 1
            delay = max(0.0, self._started + self.interval_s - time.monotonic())
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        try:
            with self._running:
                with self._lock:
                    self._timer = None  # from here on, a new trigger schedules another run after this one
                    self._started = time.monotonic()
                self.action()
        finally:
            with self._lock:
                self._pending -= 1
                self._idle.notify_all()

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Blocks until no run is scheduled or running (for tests and headless runs); False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)
