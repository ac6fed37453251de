"""A long-running server gives freed memory back: glibc malloc settings at `serve`, and a periodic trim.

glibc keeps freed heap memory for reuse and, by default, opens up to 8 arenas per core, one per thread
that allocates at the same time as another; each arena keeps its own free memory. A server's threads
(the request pool, decode, batching, training) each then hold on to what their busiest request needed,
and RSS climbs for good. Fewer arenas, large buffers (images, tensors) mapped on their own so that freeing
them unmaps them, and `malloc_trim` every few seconds keep RSS near what the server holds now.
Elsewhere than glibc (musl, macOS) every call here does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from functools import lru_cache

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
SERVER_ARENAS = 2  # malloc arenas for the whole server process
MMAP_THRESHOLD_BYTES = 256 * 1024  # allocations this large are mmapped: freed, they leave the process at once
TRIM_INTERVAL_S = 2.0  # how often the server hands free heap pages back

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has malloc_trim and mallopt), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def tune_malloc(arenas: int = SERVER_ARENAS, mmap_threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Caps malloc arenas and fixes the mmap threshold for this process; False where malloc is not glibc's.

    Call it early (before the threads start): arenas already opened stay open.
    """
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas)) and bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold))


def release_free_memory() -> bool:
    """glibc's malloc_trim(0): free pages of every arena go back to the system; False where there is none."""
    libc = _glibc()
    return libc is not None and bool(libc.malloc_trim(0))


class MemoryTrimmer:
    """A daemon thread calling `release_free_memory` every `interval_s` until `stop`."""

    def __init__(self, interval_s: float = TRIM_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-trim", daemon=True)

    def start(self) -> MemoryTrimmer:
        if _glibc() is not None:
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            release_free_memory()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
