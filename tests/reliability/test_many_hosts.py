"""Many hosts on one store: two `workbench serve` processes with their own homes, one PostgreSQL, one blob folder.

Each process stands for a host: its own home (embedding cache, API keys, tracking hand-offs), its own
claim files, nothing on a shared file system but the blob folder. The rows are in a real PostgreSQL
15 (`--store` on one, `$WORKBENCH_STORE` on the other). A create on one host is classified, updated
and deleted through the other; both answer the same state at every step; each version is trained
once (the leases hold across hosts) and, with tracking on, logged once (the logging claim is a
PostgreSQL advisory lock: the two homes' flocks would not exclude each other).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import DOGS_JPG
from support.postgres import running_postgres
from support.servers import spawn_server, stop_process_group, wait_until_up
from workbench.store.database import Store
from workbench.tracking.recovery import out_of_sync

from .test_many_servers_log_once import (
    ONCE_2,
    SWEEP_SECONDS,
    TRAIN_SECONDS,
    VERSION,
    mlflow_client,
    serving_version,
    train,
    wait_until_logged,
    zips,
)

pytestmark = pytest.mark.slow  # `make test-slow`: a PostgreSQL cluster, two servers, four trainings


@pytest.fixture(scope="module")
def store_uri() -> Iterator[str]:
    """A `workbench` database on a throwaway PostgreSQL 15; its libpq URI."""
    with running_postgres() as server:
        yield server.database("workbench")


def spawn(home: Path, log: Path, env: dict[str, str], *global_flags: str) -> tuple[subprocess.Popen, str]:
    """A `workbench serve --no-auth` on 127.0.0.1 over `home` (not waited for)."""
    return spawn_server(home, log, env=env, global_flags=global_flags)


def state(client: httpx.Client) -> list[tuple[str, str, int | None, list[str]]]:
    """What one host answers: each classifier's id, status, serving version and classes."""
    answer = client.get("/v3/classifiers", params={**VERSION, "verbose": "true"})
    assert answer.status_code == 200, answer.text
    return [
        (c["classifier_id"], c["status"], c.get("serving_version"), [k["class"] for k in c["classes"]])
        for c in answer.json()["classifiers"]
    ]


def versions(store: Store, classifier_id: str) -> list[int]:
    return [v.version for v in store.versions(classifier_id)]


def test_two_hosts_share_one_postgresql_store_and_blob_folder(store_uri, tmp_path):
    homes, blobs, mlruns = [tmp_path / "host-a", tmp_path / "host-b"], tmp_path / "shared", tmp_path / "mlruns"
    log = tmp_path / "servers.log"
    sets = zips(tmp_path / "sets")
    tracking = {"WORKBENCH_TRACKING_URI": str(mlruns), "WORKBENCH_TRACKING_SYNC_SECONDS": SWEEP_SECONDS}
    started = [
        spawn(homes[0], log, tracking, "--store", store_uri, "--blobs", str(blobs)),
        spawn(homes[1], log, {**tracking, "WORKBENCH_STORE": store_uri, "WORKBENCH_BLOBS": str(blobs)}),
    ]
    try:
        for process, url in started:
            wait_until_up(f"{url}/openapi.json", process, log, "workbench serve")
        a, b = (httpx.Client(base_url=url, timeout=TRAIN_SECONDS) for _, url in started)

        first = train(a, "/v3/classifiers", sets, ["beagle", "husky"], name="first")
        assert state(b) == state(a) == [(first, "ready", 1, ["beagle", "husky"])]
        image = {"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")}
        classified = b.post("/v3/classify", params=VERSION, data={"classifier_ids": first}, files=image)
        assert classified.status_code == 200, classified.text
        assert classified.json()["images"][0]["classifiers"][0]["classifier_id"] == first

        train(b, f"/v3/classifiers/{first}", sets, [], negatives=True)
        second = train(b, "/v3/classifiers", sets, ["goldenretriever", "dalmatian"], name="second")
        train(a, f"/v3/classifiers/{second}", sets, ["beagle"])
        assert state(a) == state(b)
        assert sorted(state(a)) == sorted(
            [
                (first, "ready", 2, ["beagle", "husky"]),
                (second, "ready", 2, ["goldenretriever", "dalmatian", "beagle"]),
            ]
        )
        store = Store(homes[0], uri=store_uri, files=blobs)
        assert versions(store, first) == versions(store, second) == [1, 2]  # each request trained once
        assert not (homes[0] / "blobs").exists() and not (homes[1] / "heads").exists()  # files only in the shared one

        assert b.delete(f"/v3/classifiers/{first}", params=VERSION).status_code == 200
        assert a.get(f"/v3/classifiers/{first}", params=VERSION).status_code == 404
        assert [c[0] for c in state(a)] == [c[0] for c in state(b)] == [second]
        assert not (blobs / "heads" / first).exists()

        client = mlflow_client(mlruns)
        expected = {
            f"{first} runs": ONCE_2,
            f"{first} registered": {},
            f"{second} runs": ONCE_2,
            f"{second} registered": ONCE_2,
        }  # one run per version though each host's claim file is its own
        assert wait_until_logged(client, expected) == expected
        assert serving_version(client, second, "2") == "2"
        assert out_of_sync(client, Store(homes[1], uri=store_uri, files=blobs)) == []
    finally:
        for process, _ in started:
            stop_process_group(process)
