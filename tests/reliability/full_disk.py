"""A server whose disk is full, for the storage-fault tests and the storage campaign.

RLIMIT_FSIZE is the fault: a process whose file size limit is 0 cannot grow any file (each write
that would fails with EFBIG, as ENOSPC does on a full disk), needs no root, and is exact. It is set
on a running server from outside (`prlimit`), or before it starts (`preexec_fn`). SIGXFSZ is ignored
in the server so the write returns the error instead of killing the process. The server's stderr is
a pipe, which no file size limit touches: `Lines` reads it and tells when a line has appeared.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO


def ignore_sigxfsz() -> None:
    """In a child before exec: a write past the file size limit returns EFBIG instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def start_full() -> None:
    """In a child before exec: no file may grow from the start (a server started on a full disk)."""
    ignore_sigxfsz()
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def fill(pid: int) -> None:
    """The disk fills under a running process: from now on no file of it may grow."""
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]))


def clear(pid: int) -> None:
    """Space is freed: the process's files may grow again."""
    hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))


@contextmanager
def full(pid: int) -> Iterator[None]:
    """The disk is full for the block's length."""
    fill(pid)
    try:
        yield
    finally:
        clear(pid)


class Lines:
    """Reads a child's text stream on a thread (so the pipe never fills) and tells when a line holds some text."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_for(self, *texts: str, timeout_s: float, start: int = 0) -> int | None:
        """The index of the first line from `start` holding one of `texts`; None on the stream's end or a timeout."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: self._find(texts, start) is not None or self._closed, timeout=timeout_s
            )
            return self._find(texts, start) if found else None

    def _find(self, texts: tuple[str, ...], start: int) -> int | None:
        return next((i for i, line in enumerate(self.lines[start:], start) if any(t in line for t in texts)), None)

    def tail(self, count: int = 40) -> str:
        with self._changed:
            return "\n".join(self.lines[-count:])


def stop(process: subprocess.Popen) -> None:
    """Ends a server child: SIGTERM, then SIGKILL if it has not ended in 30 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
