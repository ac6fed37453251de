"""`workbench serve --workers N`: one listening socket, N `workbench serve` processes accepting on it.

The parent binds the address once and starts each worker as the same `workbench serve` command with
the socket's descriptor (`--listen-fd`), so a worker is exactly the one-process server: its own
Workbench, engine, JobRunner and Tracker on the shared home. The kernel hands each connection to
whichever worker accepts it first. Trainings are shared through the store's leases and MLflow logging
through the tracker's per-classifier claims, so any worker may take any request. A worker that dies
is started again; SIGINT or SIGTERM stops them all. One host only: the home's SQLite (WAL) and the
flocks need processes that share one kernel.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)

WORKERS_FLAG = "--workers"
LISTEN_FD_FLAG = "--listen-fd"
RESTART_PAUSE_S = 1.0  # between a worker's death and its replacement, so a worker that cannot start does not spin
STOP_WAIT_S = 30.0  # how long stopping workers may finish their requests before they are killed
SUPERVISE_POLL_S = 0.5


def bind(host: str, port: int, backlog: int) -> socket.socket:
    """The listening socket every worker accepts on (SO_REUSEADDR, as uvicorn binds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def worker_command(argv: Sequence[str], fd: int) -> list[str]:
    """One worker's CLI words: the parent's without `--workers N`, with `--listen-fd FD` (the last verb is serve)."""
    words: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == WORKERS_FLAG:
            skip = True
        elif not word.startswith(WORKERS_FLAG + "="):
            words.append(word)
    return [sys.executable, "-m", "workbench.cli", *words, LISTEN_FD_FLAG, str(fd)]


class Supervisor:
    """Keeps `workers` copies of a worker command alive on one inherited socket until told to stop."""

    def __init__(self, command: list[str], sock: socket.socket, workers: int) -> None:
        self.command = command
        self.sock = sock
        self.workers = workers
        self.processes: list[subprocess.Popen] = []
        self.stopping = False

    def start_one(self) -> subprocess.Popen:
        return subprocess.Popen(self.command, pass_fds=(self.sock.fileno(),))

    def run(self) -> None:
        """Starts the workers and restarts any that die, until SIGINT or SIGTERM; then stops them all."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.processes = [self.start_one() for _ in range(self.workers)]
            log.info("Started %d workers: %s", self.workers, ", ".join(str(p.pid) for p in self.processes))
            while not self.stopping:
                time.sleep(SUPERVISE_POLL_S)
                self._replace_dead()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _replace_dead(self) -> None:
        for i, process in enumerate(self.processes):
            if process.poll() is not None and not self.stopping:
                log.warning("Worker %d exited with %s; starting another", process.pid, process.returncode)
                time.sleep(RESTART_PAUSE_S)
                self.processes[i] = self.start_one()

    def _stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.sock.close()


def serve_workers(argv: Sequence[str], host: str, port: int, workers: int, backlog: int) -> None:
    """Binds host:port and runs `workers` worker processes on it until interrupted."""
    sock = bind(host, port, backlog)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    print(
        f"workbench: serving on http://{host}:{sock.getsockname()[1]} with {workers} worker processes "
        f"(parent pid {os.getpid()})",
        file=sys.stderr,
        flush=True,
    )
    Supervisor(worker_command(argv, sock.fileno()), sock, workers).run()
