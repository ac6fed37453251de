"""stdout carries JSON only: answers printed as JSON, MLflow's URL lines kept off it, a closed pipe a quiet exit."""

from __future__ import annotations

import json
import os
import signal
import sys

SIGPIPE_EXIT = 128 + signal.SIGPIPE  # the shell's code for "the reader went away" (141)


def print_json(answer: object) -> None:
    """One answer on stdout as indented JSON: what every verb prints."""
    print(json.dumps(answer, indent=2))


def reader_went_away() -> int:
    """stdout's reader closed early (`| head`): quiet exit, as Python's note on SIGPIPE recommends.

    stdout is pointed at /dev/null so the interpreter's final flush does not fail again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return SIGPIPE_EXIT


def stdout_for_json_only() -> None:
    """MLflow writes "View run ... at: URL" lines to stdout when it logs to a server; stdout here is JSON."""
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
