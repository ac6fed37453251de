"""Fast unit tests of engine.batching: concurrent backbone calls share passes, each caller gets its own rows."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from workbench.engine.batching import BatchingRunner


class HeldForward:
    """A forward pass (doubles every image) that holds its first call until the test releases it."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, tensors: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        self.batches.append(len(tensors))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(30), "the test never released the first pass"
        stacked = np.stack(tensors)
        return stacked * 2, stacked.sum(axis=(1, 2))


def images(value: float, count: int) -> list[np.ndarray]:
    return [np.full((2, 3), value + i, dtype=np.float32) for i in range(count)]


def wait_for_queue(runner: BatchingRunner, size: int) -> None:
    for _ in range(3000):
        if runner._queue.qsize() >= size:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{size} requests never queued")


def test_callers_waiting_during_a_pass_share_the_next_one_and_get_their_own_rows() -> None:
    forward = HeldForward()
    runner = BatchingRunner(forward, max_images=16)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(runner.run, images(0, 1))
        assert forward.entered.wait(30)
        later = [pool.submit(runner.run, images(10 * k, k)) for k in range(1, 5)]  # 1 + 2 + 3 + 4 images
        wait_for_queue(runner, 4)
        forward.release.set()
        results = [first.result(30), *(f.result(30) for f in later)]
    assert forward.batches == [1, 10]  # the four waiting callers went through in one pass
    for k, (doubled, sums) in enumerate(results):
        expected = images(10 * k, max(k, 1))
        assert doubled.shape == (len(expected), 2, 3)
        np.testing.assert_array_equal(doubled, np.stack(expected) * 2)
        np.testing.assert_array_equal(sums, np.stack(expected).sum(axis=(1, 2)))


def test_a_request_that_does_not_fit_waits_for_the_next_pass_whole() -> None:
    forward = HeldForward()
    runner = BatchingRunner(forward, max_images=4)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(runner.run, images(0, 1))
        assert forward.entered.wait(30)
        second = pool.submit(runner.run, images(1, 3))
        wait_for_queue(runner, 1)
        third = pool.submit(runner.run, images(2, 3))
        wait_for_queue(runner, 2)
        forward.release.set()
        for future in (first, second, third):
            future.result(30)
    assert forward.batches == [1, 3, 3]  # 3 + 3 > 4: never split across passes
    assert max(forward.batches) <= 4


def test_a_failed_pass_reaches_every_caller_in_it_and_the_runner_goes_on() -> None:
    calls = []

    def forward(tensors: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        calls.append(len(tensors))
        if len(calls) == 1:
            raise RuntimeError("backbone failed")
        return (np.stack(tensors),)

    runner = BatchingRunner(forward, max_images=8)
    with pytest.raises(RuntimeError, match="backbone failed"):
        runner.run(images(0, 2))
    (out,) = runner.run(images(5, 2))
    np.testing.assert_array_equal(out, np.stack(images(5, 2)))


def test_a_lone_caller_never_waits_for_company() -> None:
    seen = []
    runner = BatchingRunner(lambda t: (seen.append(len(t)) or np.stack(t),), max_images=8, wait_seconds=60.0)
    done = threading.Event()
    threading.Thread(target=lambda: (runner.run(images(0, 1)), done.set()), daemon=True).start()
    assert done.wait(30), "a lone request waited for others"  # with a 60 s wait, only skipping it finishes
    assert seen == [1]
