"""Runs the `workbench` CLI and SIGKILLs itself at one point of a curation: a deterministic crash.

`WORKBENCH_TEST_KILL_IN_CURATION=POINT python kill_in_curation.py --home HOME examples remove CID ID...`
dies at POINT:

* `uncommitted`: the change is written inside its transaction, not yet committed;
* `committed`: the change is committed (examples, status and lease in one commit), the training not started;
* `training`: the retraining has started and not saved its version.

Only this script reads the variable: the workbench code runs unchanged.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from workbench.cli.entry import main
from workbench.jobs.runner import JobRunner
from workbench.service.engine import Engine
from workbench.store import curation

KILL_IN_CURATION_ENV = "WORKBENCH_TEST_KILL_IN_CURATION"
POINTS = ("uncommitted", "committed", "training")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_after(real: Callable) -> Callable:
    def wrapped(*args, **kwargs):
        result = real(*args, **kwargs)
        die()
        return result

    return wrapped


def kill_before(real: Callable) -> Callable:
    def wrapped(*args, **kwargs):
        die()
        return real(*args, **kwargs)

    return wrapped


if __name__ == "__main__":
    point = os.environ.get(KILL_IN_CURATION_ENV)
    if point == "uncommitted":
        curation.apply = kill_after(curation.apply)  # type: ignore[assignment]
    elif point == "committed":
        Engine.start_training = kill_before(Engine.start_training)  # type: ignore[method-assign]
    elif point == "training":
        JobRunner.fit = kill_before(JobRunner.fit)  # type: ignore[method-assign]
    elif point:
        raise SystemExit(f"{KILL_IN_CURATION_ENV} must be one of {', '.join(POINTS)}")
    sys.exit(main(sys.argv[1:]))
