"""Schemathesis against our /openapi.json: no 5xx, and every answer matches the schema it documents.

Runs the `st` CLI (schemathesis's pytest plugin does not load under pytest 9) with a fixed seed and a
bounded number of examples, so the run is reproducible and takes seconds. `positive_data_acceptance`
is left out on purpose: a create or classify call needs content no schema can describe (zips of at
least 10 decodable images), so schema-valid data is often rightly answered 400.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # `make test-slow`: every operation fuzzed against its schema (about 1 min)

MAX_EXAMPLES_PER_OPERATION = 15
SEED = 20180319


def test_every_operation_answers_within_its_schema(compat_server) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{compat_server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {compat_server.keys['fuzz']}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            str(MAX_EXAMPLES_PER_OPERATION),
            "--seed",
            str(SEED),
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Tested: 13" in done.stdout and " passed" in done.stdout
