"""Runs the `workbench` CLI; SIGKILLs itself as its Nth SQL statement of a promote starts: a deterministic crash point.

`WORKBENCH_TEST_KILL_AT_STATEMENT=N python kill_at_statement.py --home HOME promote ID VERSION` dies as
the Nth SQL statement run after `Workbench.promote` is entered starts (SQLite's trace hook fires
before the statement runs, so a kill at a `COMMIT` leaves it undone). The store is opened before
counting starts, so the statements counted are the promote's own. Only this script reads the
variable: the workbench code runs unchanged. Without it (or when the promote runs fewer statements)
the CLI runs to the end and prints the statements it ran, numbered, to stderr.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys

from workbench.cli.entry import main
from workbench.service.workbench import Workbench
from workbench.store.database import Store

KILL_AT_STATEMENT_ENV = "WORKBENCH_TEST_KILL_AT_STATEMENT"
STATEMENT_LINE = "statement "  # "statement 3: BEGIN IMMEDIATE"


def trace_promote(kill_at: int | None) -> list[str]:
    """Counts the SQL statements run once a promote begins; kills the process as number `kill_at` starts."""
    ran: list[str] = []
    promoting = False
    connect, promote = Store._connect, Workbench.promote

    def traced(statement: str) -> None:
        if not promoting:
            return
        ran.append(" ".join(statement.split()))
        if len(ran) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def connected(self: Store) -> sqlite3.Connection:
        db = connect(self)
        db.set_trace_callback(traced)
        return db

    def promoted(self: Workbench, *args, **kwargs):
        nonlocal promoting
        _ = self.store  # opened (schema, start-up sweep) before the count starts
        promoting = True
        try:
            return promote(self, *args, **kwargs)
        finally:
            promoting = False

    Store._connect = connected  # type: ignore[method-assign]
    Workbench.promote = promoted  # type: ignore[method-assign]
    return ran


if __name__ == "__main__":
    raw = os.environ.get(KILL_AT_STATEMENT_ENV)
    ran = trace_promote(int(raw) if raw else None)
    code = main(sys.argv[1:])
    for number, statement in enumerate(ran, start=1):
        print(f"{STATEMENT_LINE}{number}: {statement}", file=sys.stderr)
    sys.exit(code)
