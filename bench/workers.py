"""`workbench serve --workers N` under load: requests/s, p50/p99 and RSS for 8, 32 and 100 clients, 1 and 2 workers.

Each client POSTs /v3/classify with the tutorial's dogs.jpg against `default` and a custom `dogs`
classifier (trained over HTTP first), as bench/server_load.py does. The server's RSS is the sum over
its process tree (the parent and its workers), sampled every 0.1 s; the load average is read before
and after each run, since the machine is shared. Prints the rows and writes them into
bench/results.json (`summary` keys `workers_W_clients_C_*`, the rows under `raw.workers`).

    .venv/bin/python bench/workers.py --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import server_load
from bench.server_load import KEY, free_port, rss_kib, train_dogs

RESULTS = Path(__file__).with_name("results.json")


def tree(pid: int) -> list[int]:
    """A process and its children (the workers of `serve --workers N`)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(int(c) for c in children)]


def tree_rss_kib(pid: int) -> int:
    total = 0
    for member in tree(pid):
        try:
            total += rss_kib(member)
        except OSError:  # a worker that just exited
            pass
    return total


async def load(url: str, pid: int, cid: str, clients: int, seconds: float) -> dict:
    """bench/server_load.py's load, with the RSS summed over the server's process tree."""
    row = await server_load.load(url, pid, cid, clients, seconds, rss=tree_rss_kib)
    row["peak_rss_mb"] = row.pop("server_peak_rss_mb_during_load")
    return row


def bench_workers(workers: int, client_counts: list[int], seconds: float, warmup_s: float) -> list[dict]:
    """One server with `workers` processes: a trained `dogs`, a warm-up, then one run per client count."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = server_load.start_server(
            Path(tmp) / "home",
            port,
            serve_args=("--workers", str(workers)),
            env={"WORKBENCH_TRACKING_URI": "none"},
            start_s=180,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, auth=("apikey", KEY), timeout=600) as client:
                cid = train_dogs(client, Path(tmp))
            asyncio.run(load(url, server.pid, cid, max(client_counts), warmup_s))  # every worker's engine warm
            for clients in client_counts:
                row = {"workers": workers, **asyncio.run(load(url, server.pid, cid, clients, seconds))}
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            server.terminate()
            server.wait(60)
    return rows


def write_results(rows: list[dict]) -> None:
    """Merges the rows into bench/results.json (summary keys and raw.workers), atomically."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"summary": {}, "raw": {}}
    for row in rows:
        prefix = f"workers_{row['workers']}_clients_{row['clients']}_"
        for key in ("requests_per_s", "p50_ms", "p99_ms", "peak_rss_mb", "errors"):
            results["summary"][prefix + key] = row[key]
        results["summary"][prefix + "load_average_1min"] = row["load_average_after"][0]
    results["raw"]["workers"] = {"cpus": os.cpu_count(), "rows": rows}
    staged = RESULTS.with_suffix(".json.tmp")
    staged.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(staged, RESULTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32, 100])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup-seconds", type=float, default=10.0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.json as it is")
    args = parser.parse_args()
    rows = [
        row
        for workers in args.workers
        for row in bench_workers(workers, args.clients, args.seconds, args.warmup_seconds)
    ]
    if not args.no_write:
        write_results(rows)


if __name__ == "__main__":
    main()
