"""Runs the `workbench` CLI and SIGKILLs itself right after its Nth file removal: a deterministic crash point.

`WORKBENCH_TEST_KILL_AT_REMOVAL=N python kill_at_removal.py --home HOME delete ID` dies just after the
Nth `os.unlink`/`os.remove`/`os.rmdir` of the process. Only this script reads the variable: the
workbench code runs unchanged. Without it (or when the process makes fewer removals), the CLI runs to
the end and the number of removals it made is printed to stderr.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from workbench.cli.entry import main

KILL_AT_REMOVAL_ENV = "WORKBENCH_TEST_KILL_AT_REMOVAL"
REMOVALS_LINE = "removals made: "


def count_removals(kill_at: int | None) -> Callable[[], int]:
    """Wraps the process's file removals; kills the process after removal number `kill_at`; returns a counter."""
    made = 0

    def wrap(real: Callable) -> Callable:
        def removal(*args, **kwargs):
            nonlocal made
            real(*args, **kwargs)
            made += 1
            if made == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        return removal

    os.unlink, os.remove, os.rmdir = wrap(os.unlink), wrap(os.remove), wrap(os.rmdir)
    return lambda: made


if __name__ == "__main__":
    raw = os.environ.get(KILL_AT_REMOVAL_ENV)
    made = count_removals(int(raw) if raw else None)
    code = main(sys.argv[1:])
    print(f"{REMOVALS_LINE}{made()}", file=sys.stderr)
    sys.exit(code)
