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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.server_load import KEY, TUTORIAL, free_port, one_client, rss_kib, train_dogs

RESULTS = Path(__file__).with_name("results.json")
RSS_SAMPLE_SECONDS = 0.1


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


def start_server(home: Path, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "WORKBENCH_API_KEYS": f"me:{KEY}", "WORKBENCH_TRACKING_URI": "none"}
    command = [
        sys.executable,
        "-m",
        "workbench.cli",
        "--home",
        str(home),
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    server = subprocess.Popen(command, env=env, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json").raise_for_status()
            return server
        except httpx.TransportError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("the server did not start within 180 s")


async def sample(pid: int, stop_at: float, peaks: list[int]) -> None:
    while time.perf_counter() < stop_at:
        peaks.append(tree_rss_kib(pid))
        await asyncio.sleep(RSS_SAMPLE_SECONDS)


async def load(url: str, pid: int, cid: str, clients: int, seconds: float) -> dict:
    form = {"classifier_ids": f"{cid},default"}
    image = (TUTORIAL / "dogs.jpg").read_bytes()
    latencies: list[float] = []
    errors: list[str] = []
    peaks: list[int] = []
    load_before = os.getloadavg()
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(
        sample(pid, stop_at, peaks), *(one_client(url, form, image, stop_at, latencies, errors) for _ in range(clients))
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [float("nan")]
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "errors": len(errors),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "peak_rss_mb": round(max(peaks) / 1024, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "first_errors": errors[:3],
    }


def bench_workers(workers: int, client_counts: list[int], seconds: float, warmup_s: float) -> list[dict]:
    """One server with `workers` processes: a trained `dogs`, a warm-up, then one run per client count."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(Path(tmp) / "home", port, workers)
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
