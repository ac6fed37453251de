"""A starved lease never makes a second training of the same request: one version per request, always.

Issue 20: a training whose lease renewals were starved was adopted by another Workbench while its
process lived, and four versions were made where three were asked for. Each test builds its moment
from events and store state (gates on training events, polled conditions), never from sleeps.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

from conftest import CREATE_CLASSES
from workbench import ClassifierEvent, Workbench
from workbench.jobs.runner import JobSettings

HOLD_S = 120.0
STARVED = JobSettings(max_trainings=2, lease_s=0.5, renew_s=0.1, scan_s=3600)  # leases lapse fast once renewals stop
SWEEPING = JobSettings(lease_s=0.5, renew_s=0.1, scan_s=0.1)  # its sweeps are made by the test, at chosen moments


class NamedGate:
    """Holds the trainings of classifiers whose id starts with `prefix` at `stage` until opened."""

    def __init__(self, prefix: str, stage: str) -> None:
        self.prefix, self.stage = prefix, stage
        self.reached, self.opened = threading.Event(), threading.Event()

    def __call__(self, event: ClassifierEvent) -> None:
        if event.classifier_id.startswith(self.prefix) and event.stage == self.stage and not self.opened.is_set():
            self.reached.set()
            assert self.opened.wait(HOLD_S), "the test never opened the gate"


class Started:
    """Records the classifiers a runner starts training."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, event: ClassifierEvent) -> None:
        if event.stage == "started":
            self.ids.append(event.classifier_id)


def until(condition, what: str, deadline_s: float = HOLD_S) -> None:
    """Polls a condition on store state (not a guess at how long something takes)."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_live_trainer_whose_renewals_starve_is_never_adopted(tmp_path: Path, tutorial_zips, embedding_cache) -> None:
    """A slow listener on one training's "ready" holds the runner, so its keeper cannot renew the other's lease."""
    home = tmp_path / "home"
    trainer = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False, job_settings=STARVED)
    slow = NamedGate("slow_", "fitting")  # `slow` saves its version only once `busy` holds the runner
    busy = NamedGate("busy_", "ready")  # a listener still drawing `busy`'s end: the runner is held meanwhile
    trainer.subscribe(slow)
    trainer.subscribe(busy)
    slow_id = trainer.create_classifier(
        "slow", {"beagle": tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"]
    )["classifier_id"]
    assert slow.reached.wait(HOLD_S)
    busy_id = trainer.create_classifier(
        "busy", {"husky": tutorial_zips["husky"]}, negative_examples=tutorial_zips["cats"]
    )["classifier_id"]
    assert busy.reached.wait(HOLD_S)
    slow.opened.set()
    until(lambda: len(trainer.versions(slow_id)) == 1, "slow's version to be saved")
    until(lambda: trainer.store.classifier(slow_id).lease_expires < time.time(), "slow's lease to lapse unrenewed")
    assert trainer.store.classifier(slow_id).status == "training"  # saved, not yet marked ready: the runner is held

    sweeper = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False, resume=False, job_settings=SWEEPING)
    started = Started()
    sweeper.subscribe(started)
    try:
        adopted = sweeper.jobs.recover()  # the sweep a watching Workbench makes every scan_s, made now
    finally:
        busy.opened.set()
    for cid in (slow_id, busy_id):
        assert trainer.wait(cid, timeout=HOLD_S)["status"] == "ready"
        assert sweeper.wait(cid, timeout=HOLD_S)["status"] == "ready"
    assert [v["version"] for v in trainer.versions(slow_id)] == [1]  # one request, one version
    assert [v["version"] for v in trainer.versions(busy_id)] == [1]
    assert adopted == [] and started.ids == []  # its owner lives on this host: a lapsed lease proves nothing


def test_a_settled_classifier_is_never_claimed_again(tmp_path: Path, tutorial_zips, embedding_cache) -> None:
    """A sweep that listed an orphan before its trainer finished must not train the finished classifier again."""
    home = tmp_path / "home"
    trainer = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False)
    cid = trainer.create_classifier(
        "pair", {"beagle": tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"]
    )["classifier_id"]
    assert trainer.wait(cid, timeout=HOLD_S)["status"] == "ready"
    late = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False, resume=False)
    assert late.jobs.request(cid) is False  # what a sweep does with a stale list of orphans
    assert late.wait(cid, timeout=HOLD_S)["status"] == "ready"
    assert [v["version"] for v in late.versions(cid)] == [1]


def test_an_owner_that_died_after_saving_is_finished_without_training_again(
    tmp_path: Path, tutorial_zips, embedding_cache
) -> None:
    """Its version covers every example: the adopter marks it ready, and no second version of the request is made."""
    home = tmp_path / "home"
    trainer = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False)
    cid = trainer.create_classifier(
        "dogs", {c: tutorial_zips[c] for c in CREATE_CLASSES}, negative_examples=tutorial_zips["cats"]
    )["classifier_id"]
    assert trainer.wait(cid, timeout=HOLD_S)["status"] == "ready"
    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid names no process
    with (
        trainer.store.transaction() as db
    ):  # the store as a process leaves it when killed between saving and marking ready
        trainer.store.update_classifier(
            db, cid, status="training", job_owner=f"{socket.gethostname()}:{dead.pid}:feedcafe"
        )
    survivor = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False, resume=False)
    started = Started()
    survivor.subscribe(started)
    assert survivor.jobs.recover() == [cid]
    assert survivor.wait(cid, timeout=HOLD_S)["status"] == "ready"
    assert [v["version"] for v in survivor.versions(cid)] == [1] and started.ids == []
