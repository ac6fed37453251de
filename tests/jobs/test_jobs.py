"""Background training: a killed training process, a failed training, resuming after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import CREATE_CLASSES, DOGS_JPG
from workbench import Workbench

KILLED_TRAINER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from workbench import Workbench

    home, cache, cid, dalmatian, more_cats, marker = sys.argv[1:]

    def hold(event):
        if event.stage == "fitting":
            Path(marker).write_text("fitting")
            time.sleep(600)  # the test kills this process here

    wb = Workbench(home, embedding_cache=cache)
    wb.subscribe(hold)
    wb.update_classifier(cid, positive_examples={"dalmatian": dalmatian}, negative_examples=more_cats)
    time.sleep(600)
    """
)


def custom_classes(wb: Workbench, cid: str) -> set[str]:
    answer = wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.0)
    return {c["class"] for c in answer["images"][0]["classifiers"][0]["classes"]}


def test_killed_training_process_leaves_previous_version_serving(
    tmp_path: Path, tutorial_zips, embedding_cache
) -> None:
    home = tmp_path / "home"
    first = Workbench(home, embedding_cache=embedding_cache)
    cid = first.create_classifier(
        "dogs", {c: tutorial_zips[c] for c in CREATE_CLASSES}, negative_examples=tutorial_zips["cats"]
    )["classifier_id"]
    first.wait(cid, timeout=300)
    marker = tmp_path / "marker"
    args = [
        str(home),
        str(embedding_cache),
        cid,
        str(tutorial_zips["dalmatian"]),
        str(tutorial_zips["more-cats"]),
        str(marker),
    ]
    trainer = subprocess.Popen([sys.executable, "-c", KILLED_TRAINER, *args])
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert trainer.poll() is None, "trainer exited early"
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.wait()

    observer = Workbench(home, embedding_cache=embedding_cache, resume=False)
    assert observer.get_classifier(cid)["status"] == "retraining"
    assert custom_classes(observer, cid) == set(CREATE_CLASSES)  # version 1 still answers
    assert len(observer.versions(cid)) == 1

    survivor = Workbench(home, embedding_cache=embedding_cache)  # resumes the orphaned training
    assert survivor.wait(cid, timeout=300)["status"] == "ready"
    assert custom_classes(survivor, cid) == {*CREATE_CLASSES, "dalmatian"}
    assert [v["version"] for v in survivor.versions(cid)] == [1, 2]


def test_a_failed_training_says_why_and_keeps_the_last_good_version(
    tmp_path: Path, tutorial_zips, embedding_cache
) -> None:
    home = tmp_path / "home"
    wb = Workbench(home, embedding_cache=embedding_cache, resume=False)  # stays up, but must not adopt the update below
    cid = wb.create_classifier(
        "dogs", {c: tutorial_zips[c] for c in CREATE_CLASSES}, negative_examples=tutorial_zips["cats"]
    )["classifier_id"]
    wb.wait(cid, timeout=300)
    # store an update without training it, then damage one of its stored images on disk
    quiet = Workbench(home, embedding_cache=tmp_path / "fresh-cache.db", train=False)
    quiet.update_classifier(cid, positive_examples={"dalmatian": tutorial_zips["dalmatian"]})
    dalmatian_sha = quiet.store.examples(cid)[-1].sha256
    quiet.store.blob_path(dalmatian_sha).write_bytes(b"not an image any more")

    trainer = Workbench(home, embedding_cache=tmp_path / "fresh-cache.db")
    record = trainer.wait(cid, timeout=300)
    assert record["status"] == "failed"
    assert "Training failed" in record["explanation"]
    assert custom_classes(trainer, cid) == set(CREATE_CLASSES)
    assert len(trainer.versions(cid)) == 1


def test_a_listener_that_raises_does_not_fail_the_training(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()

    def broken(event) -> None:
        raise RuntimeError("a widget that cannot draw")

    wb.subscribe(broken)
    cid = wb.create_classifier("dogs", {c: tutorial_zips[c] for c in CREATE_CLASSES})["classifier_id"]
    assert wb.wait(cid, timeout=300)["status"] == "ready"


def test_wait_returns_after_every_listener_heard_ready(make_workbench, tutorial_zips):
    """A listener that takes its time on "ready" has heard it by the time `wait` returns (widgets rely on it)."""
    wb = make_workbench()
    heard: list[str] = []

    def slow_listener(event) -> None:
        if event.stage in ("ready", "failed"):
            time.sleep(0.5)
            heard.append(event.stage)

    wb.subscribe(slow_listener)
    cid = wb.create_classifier("pets", {"beagle": tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"])[
        "classifier_id"
    ]
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    assert heard == ["ready"]
