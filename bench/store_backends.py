"""The store's transactions on SQLite (a home) and on PostgreSQL (many hosts): median and p99 per call.

Three calls a server makes all the time: a read of one classifier (every classify and get), a read
of the list (list), and a write transaction that changes one classifier (status, lease renewal). The
PostgreSQL store runs on a throwaway local PostgreSQL 15 (tests/support/postgres.py) unless `--uri`
names one; over a network add its round trips. Prints the rows and the 1-minute load average.

    PYTHONPATH=src .venv/bin/python bench/store_backends.py --calls 500
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from workbench.core.records import ClassifierRecord  # noqa: E402
from workbench.store.database import Store  # noqa: E402

CLASSIFIERS = 50


def fill(store: Store) -> None:
    stamp = "2026-12-03T00:00:00.000Z"
    with store.transaction() as db:
        for i in range(CLASSIFIERS):
            cid = f"c{i:03d}"
            store.insert_classifier(db, ClassifierRecord(cid, cid, "me", "ready", stamp, stamp, None, None, 1, None))


def timed(call: Callable[[], object], calls: int) -> tuple[float, float]:
    """Median and p99 of one call, in milliseconds."""
    took = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.99))]


def write(store: Store) -> None:
    with store.transaction() as db:
        store.update_classifier(db, "c007", updated=str(time.time()))


def measure(name: str, store: Store, calls: int) -> None:
    fill(store)
    for label, call in (
        ("get one", lambda: store.classifier("c007")),
        ("list 50", store.classifiers),
        ("write one", lambda: write(store)),
    ):
        p50, p99 = timed(call, calls)
        print(f"{name:10} {label:10} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  load {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--uri", default=None, help="an empty PostgreSQL database (default: a throwaway one)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="store-bench-"))
    measure("sqlite", Store(folder / "home"), args.calls)
    with ExitStack() as stack:
        uri = args.uri
        if uri is None:
            from support.postgres import running_postgres

            uri = stack.enter_context(running_postgres()).database("bench")
        measure("postgresql", Store(folder / "pg-home", uri=uri, files=folder / "shared"), args.calls)


if __name__ == "__main__":
    main()
