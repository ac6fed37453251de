"""Load on `workbench serve`: POST /v3/classify with dogs.jpg against `dogs` and `default` from concurrent clients.

Starts the real server as its own process on 127.0.0.1, trains the tutorial's `dogs` through the
HTTP API, warms up, then runs N clients for S seconds and prints requests/s, p50/p99 latency, the
error count and the server's peak RSS during the run (sampled from /proc) and over its life (VmHWM);
then posts a 200 MB body to show that uploads are spooled to disk (the server's RSS barely moves).

    .venv/bin/python bench/server_load.py --clients 8 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from workbench.cli import zip_folder

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "data" / "tutorial"
VERSION = {"version": "2018-03-19"}
KEY = "bench-load-key"
RSS_SAMPLE_SECONDS = 0.1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a process from /proc, in KiB (VmRSS now, VmHWM its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def start_server(
    home: Path,
    port: int,
    precision: str | None = None,
    serve_args: tuple[str, ...] = (),
    env: dict | None = None,
    start_s: float = 120.0,
) -> subprocess.Popen:
    """`workbench serve` in its own session (so a tree of workers can be stopped at once), answering within start_s."""
    env = {**os.environ, "WORKBENCH_API_KEYS": f"me:{KEY}", **(env or {})}
    chosen = ["--precision", precision] if precision else []
    command = [
        sys.executable,
        "-m",
        "workbench.cli",
        "--home",
        str(home),
        *chosen,
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *serve_args,
    ]
    server = subprocess.Popen(command, env=env, start_new_session=True)
    deadline = time.monotonic() + start_s
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json").raise_for_status()
            return server
        except httpx.TransportError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit(f"the server did not start within {start_s:g} s")


def wait_ready(client: httpx.Client, classifier_id: str) -> dict:
    while True:
        record = client.get(f"/v3/classifiers/{classifier_id}", params=VERSION).json()
        if record["status"] in ("ready", "failed"):
            return record
        time.sleep(0.5)


def train_dogs(client: httpx.Client, zips: Path) -> str:
    """The tutorial's Steps 2 and 3 over HTTP; returns the classifier id once it is ready."""
    for name in ("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats"):
        zip_folder(TUTORIAL / name, zips / f"{name}.zip")
    files = {f"{c}_positive_examples": (zips / f"{c}.zip").open("rb") for c in ("beagle", "husky", "goldenretriever")}
    started = time.perf_counter()
    created = client.post(
        "/v3/classifiers",
        params=VERSION,
        data={"name": "dogs"},
        files={**files, "negative_examples": (zips / "cats.zip").open("rb")},
    )
    print(
        f"create answered {created.status_code} in {time.perf_counter() - started:.3f} s "
        f"with status {created.json()['status']}",
        file=sys.stderr,
    )
    cid = created.json()["classifier_id"]
    wait_ready(client, cid)
    client.post(
        f"/v3/classifiers/{cid}",
        params=VERSION,
        files={
            "dalmatian_positive_examples": (zips / "dalmatian.zip").open("rb"),
            "negative_examples": (zips / "more-cats.zip").open("rb"),
        },
    )
    assert wait_ready(client, cid)["status"] == "ready"
    return cid


async def one_client(url: str, form: dict, image: bytes, stop_at: float, latencies: list, errors: list) -> None:
    async with httpx.AsyncClient(base_url=url, auth=("apikey", KEY), timeout=60) as client:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                answer = await client.post(
                    "/v3/classify", params=VERSION, data=form, files={"images_file": ("dogs.jpg", image, "image/jpeg")}
                )
                ok = answer.status_code == 200 and answer.json()["images_processed"] == 1
            except httpx.HTTPError as exc:
                ok, answer = False, exc
            (latencies if ok else errors).append(time.perf_counter() - started if ok else repr(answer))


async def sample_rss(pid: int, stop_at: float, peaks: list, rss: Callable[[int], int] = rss_kib) -> None:
    while time.perf_counter() < stop_at:
        peaks.append(rss(pid))
        await asyncio.sleep(RSS_SAMPLE_SECONDS)


async def load(url: str, pid: int, cid: str, clients: int, seconds: float, rss: Callable[[int], int] = rss_kib) -> dict:
    """`clients` clients classifying dogs.jpg for `seconds`: requests/s, p50/p99, the server's peak RSS (by `rss`)."""
    form = {"classifier_ids": f"{cid},default"}
    image = (TUTORIAL / "dogs.jpg").read_bytes()
    latencies: list[float] = []
    errors: list[str] = []
    peaks: list[int] = []
    load_before = os.getloadavg()
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(
        sample_rss(pid, stop_at, peaks, rss),
        *(one_client(url, form, image, stop_at, latencies, errors) for _ in range(clients)),
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
        "server_peak_rss_mb_during_load": round(max(peaks) / 1024, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "first_errors": errors[:3],
    }


def big_upload(url: str, pid: int, folder: Path, megabytes: int) -> dict:
    """Posts a large body (to a classifier that does not exist, so only the parser handles it); server RSS around it."""
    blob = folder / "big.bin"
    with blob.open("wb") as out:
        for _ in range(megabytes):
            out.write(os.urandom(1024 * 1024))
    before = rss_kib(pid)
    with blob.open("rb") as body:
        answer = httpx.post(
            f"{url}/v3/classifiers/missing_1",
            params=VERSION,
            auth=("apikey", KEY),
            timeout=600,
            files={"beagle_positive_examples": ("beagle.zip", body, "application/zip")},
        )
    return {
        "upload_mb": megabytes,
        "upload_status": answer.status_code,
        "server_rss_growth_mb": round((rss_kib(pid) - before) / 1024, 1),
        "server_lifetime_peak_rss_mb_after_upload": round(rss_kib(pid, "VmHWM") / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup-seconds", type=float, default=15.0)
    parser.add_argument("--precision", choices=("fp32", "int8"), default=None, help="the server's backbone precision")
    parser.add_argument("--upload-mb", type=int, default=200, help="size of the big-upload check (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(Path(tmp) / "home", port, args.precision)
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, auth=("apikey", KEY), timeout=600) as client:
                cid = train_dogs(client, Path(tmp))
            asyncio.run(load(url, server.pid, cid, args.clients, args.warmup_seconds))
            result = asyncio.run(load(url, server.pid, cid, args.clients, args.seconds))
            result["server_lifetime_peak_rss_mb"] = round(rss_kib(server.pid, "VmHWM") / 1024, 1)
            if args.upload_mb:
                result.update(big_upload(url, server.pid, Path(tmp), args.upload_mb))
        finally:
            server.terminate()
            server.wait(30)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
