"""Trainings share a bounded pool: at most N at once per process, the rest queued in FIFO order."""

from __future__ import annotations

import threading

import pytest

from conftest import Gate
from workbench import ClassifierEvent

TRAIN_S = 300.0
BUSY_STAGES = ("started", "embedding", "fitting")
CATS = 25  # images in cats.zip


class Recorder:
    """Every event in order, and the most trainings ever between `started` and `ready`/`failed` at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[ClassifierEvent] = []
        self.busy: set[str] = set()
        self.most_busy = 0

    def __call__(self, event: ClassifierEvent) -> None:
        with self.lock:
            self.events.append(event)
            if event.stage in BUSY_STAGES:
                self.busy.add(event.classifier_id)
            elif event.stage in ("ready", "failed"):
                self.busy.discard(event.classifier_id)
            self.most_busy = max(self.most_busy, len(self.busy))

    def stages(self, cid: str) -> list[str]:
        with self.lock:
            return [e.stage for e in self.events if e.classifier_id == cid]

    def started(self) -> list[str]:
        with self.lock:
            return [e.classifier_id for e in self.events if e.stage == "started"]


def pair(tutorial_zips, first: str = "beagle", second: str = "husky") -> dict:
    return {first: tutorial_zips[first], second: tutorial_zips[second]}


def test_one_training_at_a_time_by_default_the_rest_queued_in_order(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    recorder, gate = Recorder(), Gate("fitting")
    wb.subscribe(recorder)
    wb.subscribe(gate)
    try:
        ids = [wb.create_classifier(f"c{i}", pair(tutorial_zips))["classifier_id"] for i in range(3)]
        assert gate.reached.wait(TRAIN_S)
        for cid in ids[1:]:
            assert wb.get_classifier(cid)["status"] == "training"  # queued: reported as training
            assert wb.jobs.is_running(cid)
            assert recorder.stages(cid) == []  # nothing started: no embedding, no fitting
    finally:
        gate.opened.set()
    for cid in ids:
        assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    assert recorder.started() == ids  # FIFO
    assert recorder.most_busy == 1


def test_max_trainings_bounds_the_trainings_in_flight(make_workbench, tutorial_zips, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_MAX_TRAININGS", "2")
    wb = make_workbench()
    recorder = Recorder()
    wb.subscribe(recorder)
    ids = [wb.create_classifier(f"c{i}", pair(tutorial_zips))["classifier_id"] for i in range(4)]
    for cid in ids:
        assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    assert recorder.started() == ids
    assert recorder.most_busy <= 2


def test_updates_to_a_queued_classifier_fold_into_its_one_training(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    recorder, gate = Recorder(), Gate("fitting")
    wb.subscribe(recorder)
    wb.subscribe(gate)
    try:
        first = wb.create_classifier("first", pair(tutorial_zips))["classifier_id"]
        assert gate.reached.wait(TRAIN_S)
        queued = wb.create_classifier("queued", pair(tutorial_zips))["classifier_id"]
        wb.update_classifier(queued, positive_examples={"goldenretriever": tutorial_zips["goldenretriever"]})
        record = wb.update_classifier(queued, negative_examples=tutorial_zips["cats"])
        assert record["status"] == "training"
    finally:
        gate.opened.set()
    for cid in (first, queued):
        assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    [version] = wb.versions(queued)  # one training covered the create and both updates
    assert version["classes"] == ["beagle", "husky", "goldenretriever"]
    assert version["metrics"]["negatives"] == CATS
    assert recorder.stages(queued).count("started") == 1


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_a_bad_max_trainings_is_a_clear_error(make_workbench, monkeypatch, bad) -> None:
    from workbench.core.errors import InvalidRequest

    monkeypatch.setenv("WORKBENCH_MAX_TRAININGS", bad)
    with pytest.raises(InvalidRequest, match="WORKBENCH_MAX_TRAININGS"):
        _ = make_workbench().store
