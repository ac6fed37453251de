"""The three fronts are one engine: the tutorial through Python, the CLI and HTTP gives the same answer.

Each front runs the whole tutorial on its own home (create with three classes and cats, update with
dalmatian and more cats, classify `dogs.jpg` against the classifier and `default`); the classes
and scores must agree to 1e-6.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import CREATE_CLASSES, DOGS_JPG
from support.servers import workbench_command
from workbench import Workbench
from workbench.server.app import create_app
from workbench.server.runner import ServerThread
from workbench.server.settings import ServerSettings

VERSION = {"version": "2018-03-19"}
TOLERANCE = 1e-6


def cli(home: Path, *args: str) -> dict:
    done = subprocess.run(workbench_command(home, *args), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def python_answer(dogs) -> dict:
    wb, cid = dogs
    return wb.classify(DOGS_JPG, classifier_ids=[cid, "default"])


def cli_answer(home: Path, zips: dict[str, Path]) -> dict:
    created = cli(home, "create", "dogs", *[f"-p{c}={zips[c]}" for c in CREATE_CLASSES], "-n", str(zips["cats"]))
    cid = created["classifier_id"]
    cli(home, "update", cid, "-p", f"dalmatian={zips['dalmatian']}", "-n", str(zips["more-cats"]))
    return cli(home, "classify", str(DOGS_JPG), "-c", f"{cid},default")


def http_answer(home: Path, zips: dict[str, Path], embedding_cache: Path) -> dict:
    wb = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False)
    with ServerThread(create_app(wb, settings=ServerSettings(auth=False))) as url:
        with httpx.Client(base_url=url, timeout=120) as client:
            files = [(f"{c}_positive_examples", zips[c].read_bytes()) for c in CREATE_CLASSES]
            created = client.post(
                "/v3/classifiers",
                params=VERSION,
                data={"name": "dogs"},
                files=[(field, (f"{field}.zip", data)) for field, data in files]
                + [("negative_examples", ("cats.zip", zips["cats"].read_bytes()))],
            )
            assert created.status_code == 200, created.text
            cid = created.json()["classifier_id"]
            wait_ready(client, cid)
            updated = client.post(
                f"/v3/classifiers/{cid}",
                params=VERSION,
                files=[
                    ("dalmatian_positive_examples", ("dalmatian.zip", zips["dalmatian"].read_bytes())),
                    ("negative_examples", ("more-cats.zip", zips["more-cats"].read_bytes())),
                ],
            )
            assert updated.status_code == 200, updated.text
            wait_ready(client, cid)
            answer = client.post(
                "/v3/classify",
                params=VERSION,
                data={"classifier_ids": f"{cid},default"},
                files={"images_file": ("dogs.jpg", DOGS_JPG.read_bytes())},
            )
            assert answer.status_code == 200, answer.text
            return answer.json()


def wait_ready(client: httpx.Client, classifier_id: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = client.get(f"/v3/classifiers/{classifier_id}", params=VERSION).json()
        if record["status"] == "ready":
            return
        assert record["status"] in ("training", "retraining"), record
        time.sleep(0.2)
    pytest.fail(f"{classifier_id} not ready after {timeout_s} s")


def scores(answer: dict) -> list[tuple[str, dict[str, float]]]:
    """Per classifier of the one image: its name and {class: score}."""
    image = answer["images"][0]
    return [(c["name"], {k["class"]: k["score"] for k in c["classes"]}) for c in image["classifiers"]]


@pytest.mark.slow
def test_python_cli_and_http_give_the_same_classes_and_scores(dogs, tutorial_zips, embedding_cache, tmp_path):
    answers = {
        "python": python_answer(dogs),
        "cli": cli_answer(tmp_path / "cli-home", tutorial_zips),
        "http": http_answer(tmp_path / "http-home", tutorial_zips, embedding_cache),
    }
    reference = scores(answers["python"])
    assert [name for name, _ in reference] == ["dogs", "default"]
    assert reference[0][1]["goldenretriever"] >= 0.5
    for front in ("cli", "http"):
        found = scores(answers[front])
        assert [name for name, _ in found] == ["dogs", "default"], front
        for (name, expected), (_, got) in zip(reference, found, strict=True):
            assert set(got) == set(expected), f"{front} answers other {name} classes: {set(got) ^ set(expected)}"
            worst = max(abs(got[k] - expected[k]) for k in expected)
            assert worst <= TOLERANCE, f"{front} {name} scores differ from Python's by {worst}"
