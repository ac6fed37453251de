"""Does `workbench serve` give memory back? RSS warm, then after 3,000 mixed requests with a training running.

Trains the tutorial's `dogs` over HTTP in a first server, then starts a second real server on that home
(its own process on 127.0.0.1), warms it (a few of each request kind and one create, update and delete, so
the training's code is loaded too), records its RSS, then sends REQUESTS
mixed requests from CLIENTS clients:
classify dogs.jpg, classify a zip of tutorial images, list, get; a second classifier is created, trained,
updated (retrained) and deleted over and over meanwhile. RSS is read again once the load and the training
are done (after a short quiet pause). Prints JSON; `--results` also writes the figures (with the request
count and the load average) into bench/results.json's summary.

    .venv/bin/python bench/server_memory.py --requests 3000
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.server_load import KEY, TUTORIAL, VERSION, free_port, rss_kib, start_server, train_dogs, wait_ready
from workbench.cli import zip_folder

RESULTS = Path(__file__).with_name("results.json")
ZIP_IMAGES = 4  # images in the classify zip
KINDS = ("classify_image", "classify_zip", "classify_image", "list", "get", "classify_zip", "get", "list")
PROGRESS_EVERY = 250
QUIET_SECONDS = 3.0  # after the load, before the RSS is read again


def classify_zip(folder: Path) -> Path:
    """A zip of ZIP_IMAGES tutorial images (beagles and cats)."""
    source = folder / "zip-source"
    source.mkdir()
    pictures = (
        sorted((TUTORIAL / "beagle").iterdir())[: ZIP_IMAGES // 2]
        + sorted((TUTORIAL / "cats").iterdir())[: ZIP_IMAGES // 2]
    )
    for picture in pictures:
        (source / picture.name).write_bytes(picture.read_bytes())
    return zip_folder(source, folder / "classify.zip")


async def one_request(client: httpx.AsyncClient, kind: str, cid: str, image: bytes, archive: bytes) -> bool:
    form = {"classifier_ids": f"{cid},default"}
    if kind == "classify_image":
        answer = await client.post(
            "/v3/classify", params=VERSION, data=form, files={"images_file": ("dogs.jpg", image, "image/jpeg")}
        )
    elif kind == "classify_zip":
        answer = await client.post(
            "/v3/classify", params=VERSION, data=form, files={"images_file": ("some.zip", archive, "application/zip")}
        )
    elif kind == "list":
        answer = await client.get("/v3/classifiers", params={**VERSION, "verbose": "true"})
    else:
        answer = await client.get(f"/v3/classifiers/{cid}", params=VERSION)
    return answer.status_code == 200


async def mixed_load(url: str, cid: str, requests: int, clients: int, image: bytes, archive: bytes) -> dict:
    kinds = itertools.cycle(KINDS)
    counts = {"sent": 0, "errors": 0}

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=url, auth=("apikey", KEY), timeout=120) as client:
            while counts["sent"] < requests:
                counts["sent"] += 1
                ok = await one_request(client, next(kinds), cid, image, archive)
                counts["errors"] += not ok
                if counts["sent"] % PROGRESS_EVERY == 0:
                    print(f"{counts['sent']} requests sent", file=sys.stderr)

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return {
        "requests": counts["sent"],
        "errors": counts["errors"],
        "load_seconds": round(time.perf_counter() - started, 1),
    }


def train_once(client: httpx.Client, zips: Path, done: list) -> None:
    """Creates a classifier, updates it (a retraining on everything stored) and deletes it; `done` gets each."""
    with (zips / "husky.zip").open("rb") as husky, (zips / "cats.zip").open("rb") as cats:
        created = client.post(
            "/v3/classifiers",
            params=VERSION,
            data={"name": "churn"},
            files={"husky_positive_examples": husky, "negative_examples": cats},
        )
    cid = created.json()["classifier_id"]
    done.append(wait_ready(client, cid)["status"])
    with (zips / "more-cats.zip").open("rb") as more:
        client.post(f"/v3/classifiers/{cid}", params=VERSION, files={"negative_examples": more})
    done.append(wait_ready(client, cid)["status"])
    client.delete(f"/v3/classifiers/{cid}", params=VERSION)


def keep_training(url: str, zips: Path, stop: threading.Event, done: list) -> None:
    """`train_once` over and over until `stop` is set."""
    with httpx.Client(base_url=url, auth=("apikey", KEY), timeout=600) as client:
        while not stop.is_set():
            train_once(client, zips, done)


def trained_home(folder: Path, precision: str | None) -> str:
    """Trains `dogs` over HTTP in a server then stopped: the measured server starts warm, not after a training."""
    port = free_port()
    server = start_server(folder / "home", port, precision)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=("apikey", KEY), timeout=600) as client:
            return train_dogs(client, folder)
    finally:
        server.terminate()
        server.wait(30)


def write_summary(numbers: dict) -> None:
    """Merges `numbers` into bench/results.json's summary (kept beside the full bench's figures)."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"summary": {}}
    results.setdefault("summary", {}).update(numbers)
    temporary = RESULTS.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    temporary.replace(RESULTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--precision", choices=("fp32", "int8"), default=None)
    parser.add_argument("--results", action="store_true", help="write the RSS figures into bench/results.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cid = trained_home(folder, args.precision)
        port = free_port()
        server = start_server(folder / "home", port, args.precision)  # a fresh server on the trained home
        url = f"http://127.0.0.1:{port}"
        try:
            image, archive = (TUTORIAL / "dogs.jpg").read_bytes(), classify_zip(folder).read_bytes()
            asyncio.run(mixed_load(url, cid, 4 * len(KINDS), 2, image, archive))  # warm: every kind, a few times
            with httpx.Client(base_url=url, auth=("apikey", KEY), timeout=600) as client:
                train_once(client, folder, [])  # and one training: its code (scikit-learn...) is loaded when warm
            time.sleep(QUIET_SECONDS)
            warm, load_before = rss_kib(server.pid), os.getloadavg()
            stop, trainings = threading.Event(), []
            trainer = threading.Thread(target=keep_training, args=(url, folder, stop, trainings))
            trainer.start()
            result = asyncio.run(mixed_load(url, cid, args.requests, args.clients, image, archive))
            stop.set()
            trainer.join()
            time.sleep(QUIET_SECONDS)
            after = rss_kib(server.pid)
            result.update(
                {
                    "trainings_during_load": len(trainings),
                    "server_rss_warm_mb": round(warm / 1024, 1),
                    "server_rss_after_load_mb": round(after / 1024, 1),
                    "server_rss_growth_x": round(after / warm, 2),
                    "server_lifetime_peak_rss_mb": round(rss_kib(server.pid, "VmHWM") / 1024, 1),
                    "load_average_before": load_before,
                    "load_average": os.getloadavg(),
                }
            )
        finally:
            server.terminate()
            server.wait(30)
    print(json.dumps(result, indent=2))
    if args.results:
        keys = ("server_rss_warm_mb", "server_rss_after_load_mb", "server_rss_growth_x")
        write_summary(
            {key: result[key] for key in keys}
            | {
                "server_rss_requests": result["requests"],
                "server_rss_trainings": result["trainings_during_load"],
                "server_rss_load_average_1min": result["load_average"][0],
            }
        )


if __name__ == "__main__":
    main()
