"""Real processes for tests: free ports, `workbench` command lines, `workbench serve`, `mlflow server`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MLFLOW_START_S = 90


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workbench_command(home: Path, *args: str) -> list[str]:
    """`workbench --home HOME ARGS...` as a test runs it: this interpreter, `-m workbench.cli`."""
    return [sys.executable, "-m", "workbench.cli", "--home", str(home), *args]


def serve_command(
    home: Path, port: int, *flags: str, log_level: str = "warning", global_flags: tuple[str, ...] = ()
) -> list[str]:
    """`workbench [GLOBAL_FLAGS] serve` on 127.0.0.1:PORT with FLAGS (for example "--no-auth", "--workers", "2")."""
    return workbench_command(home, *global_flags, "serve", "--port", str(port), "--log-level", log_level, *flags)


def spawn_server(
    home: Path, log: Path, *flags: str, env: dict[str, str] | None = None, global_flags: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, str]:
    """`workbench [GLOBAL_FLAGS] serve --no-auth FLAGS` over `home` on a free port, in its own process group,
    its output appended to `log`, with `env` over this environment; returns it and its URL (not waited for)."""
    port = free_port()
    process = subprocess.Popen(
        serve_command(home, port, "--no-auth", *flags, global_flags=global_flags),
        env={**os.environ, **(env or {})},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process, f"http://127.0.0.1:{port}"


@contextmanager
def running_server(
    home: Path, log: Path, *flags: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen, str]]:
    """A `spawn_server` that answers before the block starts and is stopped when it ends."""
    process, url = spawn_server(home, log, *flags, env=env)
    try:
        wait_until_up(f"{url}/openapi.json", process, log, "workbench serve")
        yield process, url
    finally:
        stop_process_group(process)


def wait_until_up(url: str, process: subprocess.Popen, log: Path, what: str, timeout_s: float = 120) -> None:
    """Polls `url` until it answers 200; stops the process and fails with its log's tail if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.5)
    stop_process_group(process)
    raise RuntimeError(f"{what} did not start: {log.read_text(errors='replace')[-3000:]}")


def stop_process_group(process: subprocess.Popen) -> None:
    """Stops a server and the workers it started (its own process group, `start_new_session=True`)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start_mlflow_server(folder: Path, port: int) -> subprocess.Popen:
    """`mlflow server` with a SQLite backend and proxied artifacts, one worker; returns once it answers."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = open(folder / "server.log", "wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_until_up(f"http://127.0.0.1:{port}/health", server, folder / "server.log", "mlflow server", MLFLOW_START_S)
    return server
