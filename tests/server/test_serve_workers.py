"""`serve --workers N` splits the cores: each worker's backbone gets cores / N threads unless told otherwise."""

from __future__ import annotations

import os

from workbench.core.limits import THREADS_ENV
from workbench.server.serve_workers import usable_cpus, worker_environment


def test_each_worker_gets_its_share_of_the_cores() -> None:
    assert worker_environment({"HOME": "/h"}, workers=4, cpus=16) == {"HOME": "/h", THREADS_ENV: "4"}
    assert worker_environment({}, workers=3, cpus=16)[THREADS_ENV] == "5"  # rounded down: never more than the cores
    assert worker_environment({}, workers=4, cpus=2)[THREADS_ENV] == "1"  # more workers than cores: one thread each
    assert worker_environment({}, workers=1, cpus=8)[THREADS_ENV] == "8"


def test_a_thread_count_the_user_set_is_kept() -> None:
    assert worker_environment({THREADS_ENV: "6"}, workers=4, cpus=16)[THREADS_ENV] == "6"
    assert worker_environment({THREADS_ENV: "0"}, workers=4, cpus=16)[THREADS_ENV] == "4"  # 0 means unset
    assert worker_environment({THREADS_ENV: "many"}, workers=2, cpus=16)[THREADS_ENV] == "8"


def test_the_cores_are_this_process_affinity() -> None:
    assert usable_cpus() == len(os.sched_getaffinity(0))
