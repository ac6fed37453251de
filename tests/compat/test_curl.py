"""The tutorial's curl steps, as the README prints them, with the real curl binary against a real server."""

from __future__ import annotations

import json
import subprocess
import time

from .readme import readme_snippets

SETTLED = ("ready", "failed")


def run_snippet(name: str, env: dict[str, str], cwd) -> dict:
    """Runs one README snippet with bash in `cwd`; its stdout must be one JSON document."""
    done = subprocess.run(
        ["bash", "-c", readme_snippets()[name]], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def poll_until_settled(env: dict[str, str], cwd, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        record = run_snippet("curl-get", env, cwd)
        if record["status"] in SETTLED or time.monotonic() > deadline:
            return record
        time.sleep(0.5)


def test_tutorial_steps_with_curl(snippet_env, tutorial_folder) -> None:
    env = snippet_env("curl")
    created = run_snippet("curl-create", env, tutorial_folder)
    assert created["status"] == "training" and created["name"] == "dogs"
    assert [c["class"] for c in created["classes"]] == ["beagle", "husky", "goldenretriever"]
    env["CLASSIFIER_ID"] = created["classifier_id"]

    assert poll_until_settled(env, tutorial_folder)["status"] == "ready"
    updated = run_snippet("curl-update", env, tutorial_folder)
    assert updated["status"] == "retraining" and updated["classifier_id"] == created["classifier_id"]
    assert {c["class"] for c in updated["classes"]} == {"beagle", "husky", "goldenretriever", "dalmatian"}
    assert poll_until_settled(env, tutorial_folder)["status"] == "ready"

    promoted = run_snippet("curl-promote", env, tutorial_folder)  # roll back to v1 (a workbench extension)
    assert promoted["serving_version"] == 1 and promoted["pinned_version"] == 1 and promoted["status"] == "ready"
    assert run_snippet("curl-get", env, tutorial_folder)["serving_version"] == 1
    unpinned = run_snippet("curl-unpin", env, tutorial_folder)
    assert unpinned["serving_version"] == 2 and "pinned_version" not in unpinned

    classified = run_snippet("curl-classify", env, tutorial_folder)
    (image,) = classified["images"]
    assert image["image"] == "dogs.jpg" and classified["images_processed"] == 1
    custom, default = image["classifiers"]
    assert custom["classifier_id"] == created["classifier_id"] and default["classifier_id"] == "default"
    assert custom["classes"][0]["class"] == "goldenretriever" and custom["classes"][0]["score"] > 0.5
    assert "dog" in {c["class"] for c in default["classes"]}
    assert classified["custom_classes"] == len(custom["classes"])

    assert run_snippet("curl-delete", env, tutorial_folder) == {}
    gone = run_snippet("curl-get", env, tutorial_folder)
    assert gone["code"] == 404 and created["classifier_id"] in gone["error"]
