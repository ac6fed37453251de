"""A throwaway PostgreSQL 15 cluster for tests: the team tracking server's and the many-hosts store's.

It runs from a temporary data directory as an unprivileged user (PostgreSQL refuses root), on a free
port of 127.0.0.1, with its socket in that directory, trust authentication for role `workbench`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.servers import free_port

PG_BIN = Path(os.environ.get("WORKBENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "workbench"  # the database role (trust authentication on 127.0.0.1 and the private socket only)
SYSTEM_USER = "nobody"  # the unprivileged account PostgreSQL runs as when the tests run as root
START_SECONDS = 120


class Postgres:
    """A throwaway PostgreSQL cluster: initdb in a temporary folder, pg_ctl start/stop, as a non-root user."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="workbench-pg-"))  # under /tmp: reachable by the server's user
        self.port = free_port()
        self.user = pwd.getpwnam(SYSTEM_USER) if os.geteuid() == 0 else None
        for folder in (self.root, self.root / "socket"):
            folder.mkdir(exist_ok=True)
            if self.user is not None:
                os.chown(folder, self.user.pw_uid, self.user.pw_gid)

    def run(self, *command: str) -> None:
        kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid} if self.user is not None else {}
        done = subprocess.run(command, capture_output=True, text=True, timeout=START_SECONDS, cwd=self.root, **kwargs)
        assert done.returncode == 0, f"{command[0]}: {done.stdout[-2000:]} {done.stderr[-2000:]}"

    def start(self) -> None:
        """Creates and starts the cluster."""
        self.run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.root / "data"),
            "-U",
            PG_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self._start()

    def _start(self) -> None:
        """pg_ctl start, its output to a log file (not to the pipe `run` reads to its end)."""
        options = f"-p {self.port} -k {self.root / 'socket'} -c listen_addresses=127.0.0.1 -c fsync=off"
        data, log = str(self.root / "data"), str(self.root / "postgres.log")
        self.run(str(PG_BIN / "pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "start")

    def database(self, name: str) -> str:
        """Creates a database; its libpq URI (`postgresql://workbench@127.0.0.1:PORT/name`)."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        connection.close()
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{name}"

    def restart(self) -> None:
        """Stops and starts the server again (what a database upgrade or a failover does to its clients)."""
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        self._start()

    def stop(self) -> None:
        try:
            self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A started cluster, stopped and removed afterwards; skips only where PostgreSQL is not installed."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL is not installed: no initdb in {PG_BIN} (set WORKBENCH_PG_BIN)")
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()
