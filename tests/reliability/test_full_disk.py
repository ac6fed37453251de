"""A full disk under a real server: reads (list, get, classify, a built Core ML export) answer 200, writes a
Watson 503 that says the disk is full, and a training that meets it retries and ends ready once space is back.

The fault is RLIMIT_FSIZE 0 on the server process (full_disk.py): every write that grows a file fails
with EFBIG, as on a full disk. SQLite needs its `-shm` file created and grown before a connection can
read a WAL database, so before this was fixed every read answered 503 too ("disk I/O error"), and a
training failed at its first embedding-cache read. No sleeps for synchronisation: the server's own
output says when a training is held or has met the full disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import DOGS_JPG, TUTORIAL, zip_bytes
from reliability.full_disk import Lines, clear, fill, full, ignore_sigxfsz, start_full, stop
from support.servers import free_port
from workbench import Workbench

VERSION = {"version": "2018-03-19"}
READS = 5  # of each kind: list, get, classify
TRAIN_SECONDS = 300
SERVER_START_SECONDS = 180
HERE = Path(__file__).resolve().parent


def small_zip(name: str, count: int = 10) -> bytes:
    return zip_bytes({image.name: image.read_bytes() for image in sorted((TUTORIAL / name).glob("*.jpg"))[:count]})


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home with `dogs` (beagle, husky) ready at v1, its Core ML file built, its own embedding cache."""
    home = tmp_path_factory.mktemp("full-disk") / "home"
    sets = tmp_path_factory.mktemp("sets")
    for name in ("beagle", "husky"):
        (sets / f"{name}.zip").write_bytes(small_zip(name))
    wb = Workbench(home, tracking_uri=False)
    cid = wb.create_classifier("dogs", {name: sets / f"{name}.zip" for name in ("beagle", "husky")})["classifier_id"]
    assert wb.wait(cid, timeout=TRAIN_SECONDS)["status"] == "ready"
    wb.core_ml_model(cid)  # built and cached beside the heads: a download only reads it
    return home, cid


def copy_home(trained_home: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    source, cid = trained_home
    home = tmp_path / "home"
    shutil.copytree(source, home)
    return home, cid


def settling(client: httpx.Client, cid: str, timeout_s: float) -> list[str]:
    """The statuses a classifier shows, polled until `ready` or `failed` (or the time runs out)."""
    statuses: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not statuses or (statuses[-1] not in ("ready", "failed") and time.monotonic() < deadline):
        statuses.append(client.get(f"/v3/classifiers/{cid}", params=VERSION).json()["status"])
        time.sleep(0.2)
    return statuses


def wait_up(url: str, process: subprocess.Popen, stderr: Lines) -> None:
    """Polls the server's OpenAPI document until it answers; fails with its stderr if it exits or never answers."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/openapi.json", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.3)
    stop(process)
    raise AssertionError(f"the server did not start:\n{stderr.tail()}")


def classify(client: httpx.Client, cid: str) -> httpx.Response:
    return client.post(
        "/v3/classify",
        params=VERSION,
        data={"classifier_ids": cid},
        files={"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")},
    )


@contextmanager
def serving(
    home: Path, folder: Path, preexec: Callable[[], None]
) -> Iterator[tuple[httpx.Client, subprocess.Popen, Lines]]:
    """`workbench serve --no-auth` on `home` (its stderr read on a thread), a client to it, until the block ends."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench",
            "--home",
            str(home),
            "serve",
            "--no-auth",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=folder,
        preexec_fn=preexec,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert server.stderr is not None
    stderr = Lines(server.stderr)
    try:
        wait_up(f"http://127.0.0.1:{port}", server, stderr)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            yield client, server, stderr
    finally:
        stop(server)


@pytest.mark.parametrize("when", ["fills while it serves", "full before it starts"])
def test_a_full_disk_answers_reads_and_refuses_writes_with_a_watson_503(
    trained_home: tuple[Path, str], tmp_path: Path, when: str
) -> None:
    """`workbench serve` on a full disk: list, get, classify, the Core ML download 200; create, update, delete 503."""
    home, cid = copy_home(trained_home, tmp_path)
    with serving(home, tmp_path, start_full if when == "full before it starts" else ignore_sigxfsz) as (
        client,
        server,
        stderr,
    ):
        if when == "fills while it serves":
            fill(server.pid)
        answers: dict[str, list[httpx.Response]] = {"list": [], "get": [], "classify": []}
        for _ in range(READS):
            answers["list"].append(client.get("/v3/classifiers", params=VERSION))
            answers["get"].append(client.get(f"/v3/classifiers/{cid}", params=VERSION))
            answers["classify"].append(classify(client, cid))
        export = client.get(f"/v3/classifiers/{cid}/core_ml_model", params=VERSION)
        zips = {
            f"{name}_positive_examples": (f"{name}.zip", small_zip(name), "application/zip")
            for name in ("beagle", "dalmatian")
        }
        writes = {
            "create": client.post("/v3/classifiers", params=VERSION, data={"name": "more"}, files=zips),
            "update": client.post(f"/v3/classifiers/{cid}", params=VERSION, files=zips),
            "delete": client.delete(f"/v3/classifiers/{cid}", params=VERSION),
        }
        after = client.get(f"/v3/classifiers/{cid}", params=VERSION)
        clear(server.pid)  # space is back: a write goes through again
        created = client.post("/v3/classifiers", params=VERSION, data={"name": "later"}, files=zips)
    failed = {
        kind: [(a.status_code, a.text[:300]) for a in got if a.status_code != 200] for kind, got in answers.items()
    }
    assert failed == {"list": [], "get": [], "classify": []}, (failed, stderr.tail())
    assert all([c["classifier_id"] for c in a.json()["classifiers"]] == [cid] for a in answers["list"])
    assert all(a.json()["status"] == "ready" for a in answers["get"])
    assert all(a.json()["images"][0]["classifiers"][0]["classifier_id"] == cid for a in answers["classify"])
    assert export.status_code == 200 and export.content == (home / "heads" / cid / "v1.mlmodel").read_bytes(), (
        export.text
    )
    for kind, answer in writes.items():
        assert answer.status_code == 503, (kind, answer.status_code, answer.text)
        body = answer.json()
        assert body["code"] == 503 and "disk is full" in body["error"], (kind, body)
    assert after.status_code == 200 and after.json()["status"] == "ready" and len(after.json()["classes"]) == 2
    assert created.status_code == 200, created.text


def test_an_export_not_built_yet_on_a_full_disk_is_a_503_not_a_400(
    trained_home: tuple[Path, str], tmp_path: Path
) -> None:
    """Building the Core ML file needs space: on a full disk the download is a retryable 503 naming the disk."""
    home, cid = copy_home(trained_home, tmp_path)
    (home / "heads" / cid / "v1.mlmodel").unlink()
    with serving(home, tmp_path, ignore_sigxfsz) as (client, server, stderr):
        with full(server.pid):
            refused = client.get(f"/v3/classifiers/{cid}/core_ml_model", params=VERSION)
    assert refused.status_code == 503, (refused.text, stderr.tail())
    assert refused.json()["code"] == 503 and "disk is full" in refused.json()["error"], refused.text


def test_a_training_that_meets_a_full_disk_retries_and_ends_ready(
    trained_home: tuple[Path, str], tmp_path: Path
) -> None:
    """The disk fills as a retraining starts: it embeds (the cache cannot take the vectors), fits, meets the full
    disk at its save and retries; v1 answers meanwhile; once space is back, v2 is ready with the new class."""
    home, cid = copy_home(trained_home, tmp_path)
    child = subprocess.Popen(
        [sys.executable, str(HERE / "gated_server.py"), str(home), "started"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=ignore_sigxfsz,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    stdout, stderr = Lines(child.stdout), Lines(child.stderr)
    try:
        line = stdout.wait_for("url ", timeout_s=SERVER_START_SECONDS)
        assert line is not None, stderr.tail()
        url = stdout.lines[line].split()[1]
        with httpx.Client(base_url=url, timeout=120) as client:
            files = {"dalmatian_positive_examples": ("dalmatian.zip", small_zip("dalmatian"), "application/zip")}
            updated = client.post(f"/v3/classifiers/{cid}", params=VERSION, files=files)
            assert updated.status_code == 200 and updated.json()["status"] == "retraining", updated.text
            assert stdout.wait_for(f"reached {cid}", timeout_s=TRAIN_SECONDS) is not None, stderr.tail()
            with full(child.pid):
                child.stdin.write("\n")  # the training goes on: embedding, fitting, then its save
                child.stdin.flush()
                retry = f"store unavailable at the save of {cid}'s training"
                met = stderr.wait_for(retry, "Traceback", timeout_s=TRAIN_SECONDS)  # a retry, or the training failing
                assert met is not None and retry in stderr.lines[met], (
                    f"the training never retried its save:\n{stderr.tail()}"
                )
                during = client.get(f"/v3/classifiers/{cid}", params=VERSION)
                answer = classify(client, cid)
            statuses = [during.json()["status"], *settling(client, cid, TRAIN_SECONDS)]
            record = client.get(f"/v3/classifiers/{cid}", params=VERSION).json()
    finally:
        stop(child)
    assert during.status_code == 200 and statuses[0] == "retraining", during.text
    assert answer.status_code == 200, answer.text
    served = {c["class"] for c in answer.json()["images"][0]["classifiers"][0]["classes"]}
    assert served <= {"beagle", "husky"}, served  # v1 answered while the disk was full
    assert statuses[-1] == "ready", (statuses, record, stderr.tail())
    assert {c["class"] for c in record["classes"]} == {"beagle", "husky", "dalmatian"}
    assert "embedding cache" in "\n".join(stderr.lines), "the cache write was not refused: the test missed its fault"
