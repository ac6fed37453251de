"""Every fenced code block of README.md runs here, as a reader following the README would run it.

Python blocks run in README order in one namespace (like a notebook); bash blocks run with
`bash -euo pipefail` and the venv's bin first on PATH. Both run in one temporary folder that
holds the tutorial zips (`beagle.zip` ... `more-cats.zip`), `dogs.jpg`, a copy of `examples/` and
`data/tutorial/`, with `WORKBENCH_HOME` and the MLflow tracking store inside it. The blocks depend
on each other (a classifier made above is used below), so run this module whole.

Other blocks, each accounted for:
- named snippets (`<!-- snippet:NAME -->`) run verbatim in tests/compat against a real server;
  here only their names are checked against the compat tests;
- untagged and `text` fences are output or diagrams, not code;
- blocks after `<!-- not-run: REASON -->` never run in a test. There are 14 (the test below
  checks this list against the README, reasons included there):
  - `make demo` / `make test`: pip-installs .venv in the checkout; `make test` is this suite
  - `source .venv/bin/activate`: the venv's bin is first on PATH here instead
  - `PYTHONPATH=src .venv/bin/python -m bench.reliability_campaign [--quick]`: the campaign itself, minutes
  - `.venv/bin/mlflow ui --backend-store-uri "$(.venv/bin/python -c 'import workbench; print(workbench.tracking_uri())')" --port 5000`: serves until stopped; tools/browser_check.py opens it
  - `workbench keys add me` / `workbench serve`: serves in the foreground until stopped
  - `import os, sys`: needs a SparkSession (a JVM); tests/test_spark.py runs the calls
  - `MLFLOW_TRACKING_URI=http://team:5000 mlflow models serve -m "models:/$CLASSIFIER_ID@serving" --env-manager local -h 0.0.0.0 -p 5001`: serves until stopped; tests/server/test_team_server.py
  - `sudo -u postgres psql -c "CREATE ROLE mlflow LOGIN PASSWORD 'change-me'"`: needs root and a system PostgreSQL
  - `mlflow server --backend-store-uri postgresql+psycopg2://mlflow:change-me@127.0.0.1/mlflow --artifacts-destination /srv/mlflow-artifacts --host 0.0.0.0 --port 5000 --allowed-hosts "team:*,team.example.com:*,192.0.2.10:*,localhost:*,127.0.0.1:*"`: needs PostgreSQL; tests/server/test_team_server.py
  - `sudo -u postgres psql -c "CREATE ROLE workbench LOGIN PASSWORD 'change-me'"`: needs root and a system PostgreSQL
  - `export WORKBENCH_STORE=postgresql://workbench:change-me@db.example.com/workbench`: serves until stopped; tests/reliability/test_many_hosts.py
  - `make lab`: JupyterLab serves until stopped
  - `.venv/bin/python tools/browser_check.py`: headless Chromium, about 5 minutes
  - `.venv/bin/python -m bench`: the measurement itself, minutes
"""  # noqa: E501 -- the list quotes each command whole, as the test matches it

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from compat.readme import README, Block, readme_blocks
from conftest import DOGS_JPG, TUTORIAL

pytestmark = pytest.mark.slow  # `make test-slow`: every README block, run as printed (about 9 min)

REPO = Path(__file__).resolve().parents[1]
COMPAT = REPO / "tests" / "compat"
RUNNABLE = {"python", "bash"}
OUTPUT = {"", "text"}
BASH_TIMEOUT_S = 300

BLOCKS = readme_blocks()
RUN = [b for b in BLOCKS if b.lang in RUNNABLE and not (b.snippet or b.not_run is not None)]


def first_command(block: Block) -> str:
    """A block's first line without its comment: how the docstring names it."""
    return block.body.strip().splitlines()[0].split("#")[0].strip()


# the folder a reader works in ------------------------------------------------------------------
class Reader:
    """The temporary folder, the environment and the Python namespace the README's blocks share."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.namespace: dict = {"__name__": "__readme__"}
        mlruns = folder / "mlruns"
        self.env = {
            "WORKBENCH_HOME": str(folder / "workbench-home"),
            "WORKBENCH_TRACKING_URI": str(mlruns),
            "MLFLOW_TRACKING_URI": f"sqlite:///{mlruns / 'mlflow.db'}",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.outputs: dict[int, str] = {}  # a bash block's stdout, by README line

    def run(self, block: Block) -> None:
        if block.lang == "python":
            # leading newlines make tracebacks point at README.md's own lines
            code = compile("\n" * block.line + block.body, str(README), "exec")
            exec(code, self.namespace)
        else:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block.body],
                cwd=self.folder,
                env={**os.environ, **self.env},
                capture_output=True,
                text=True,
                timeout=BASH_TIMEOUT_S,
            )
            assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            self.outputs[block.line] = done.stdout

    def close(self) -> None:
        """Stops the MLflow workers of the Workbenches the blocks made (their folder is about to go)."""
        from workbench import Workbench

        for value in self.namespace.values():
            if isinstance(value, Workbench) and value.tracker is not None:
                value.tracker.close()
        self.namespace.clear()


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory, tutorial_zips: dict[str, Path]) -> Iterator[Reader]:
    folder = tmp_path_factory.mktemp("readme")
    for path in [*tutorial_zips.values(), DOGS_JPG]:
        shutil.copy(path, folder / path.name)
    shutil.copytree(REPO / "examples", folder / "examples")
    (folder / "data").mkdir()
    (folder / "data" / "tutorial").symlink_to(TUTORIAL)
    reader = Reader(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name, value in reader.env.items():
            patch.setenv(name, value)
        yield reader
        reader.close()


# what a block must have produced, beyond running without an error -----------------------------
def _top_class(answer: dict, classifier_index: int = 0) -> str:
    return answer["images"][0]["classifiers"][classifier_index]["classes"][0]["class"]


def check_from_python(reader: Reader, block: Block) -> None:
    """The answer printed is version 2's: classify ran after the retraining, not during it."""
    wb, cid, answer = reader.namespace["wb"], reader.namespace["cid"], reader.namespace["answer"]
    assert wb.wait(cid)["status"] == "ready" and len(wb.versions(cid)) == 2
    assert answer == wb.classify("dogs.jpg", classifier_ids=[cid, "default"], threshold=0.5), (
        "classify answered before v2"
    )
    assert _top_class(answer) == "goldenretriever"


def check_command_line(reader: Reader, block: Block) -> None:
    out = reader.outputs[block.line]
    assert '"deleted": "dogs_' in out and '"goldenretriever"' in out


def check_onnx(reader: Reader, block: Block) -> None:
    (line,) = reader.outputs[block.line].splitlines()
    scores = json.loads(line)["scores"]
    assert max(scores, key=scores.get) == "goldenretriever"


# by the first line of the block they check
CHECKS: dict[str, Callable[[Reader, Block], None]] = {
    "from workbench import Workbench": check_from_python,
    "CLASSIFIER_ID=$(workbench create dogs": check_command_line,
    "python examples/onnx_classify.py": check_onnx,
}


@pytest.mark.parametrize("block", RUN, ids=[b.label for b in RUN])
def test_block_runs(reader: Reader, block: Block) -> None:
    reader.run(block)
    for first_line, check in CHECKS.items():
        if block.body.startswith(first_line):
            check(reader, block)


# every other block is accounted for --------------------------------------------------------------
def test_every_block_is_code_or_output() -> None:
    languages = {b.lang for b in BLOCKS}
    assert languages <= RUNNABLE | OUTPUT, (
        f"a fence in a language this test cannot run: {languages - RUNNABLE - OUTPUT}"
    )
    checked = [first for first in CHECKS if any(b.body.startswith(first) for b in RUN)]
    assert checked == list(CHECKS), "a block the checks above expect is gone from the README"


def test_not_run_blocks_give_a_reason_and_match_the_list_above() -> None:
    not_run = [b for b in BLOCKS if b.not_run is not None]
    assert all(b.not_run for b in not_run), [b.label for b in not_run if not b.not_run]
    listed = re.findall(r"^  - `([^`]+)`", __doc__, re.M)
    count = int(re.search(r"There are (\d+)", __doc__).group(1))
    assert [first_command(b) for b in not_run] == listed and count == len(not_run), (
        "update the not-run list in this module's docstring: "
        + "; ".join(f"{first_command(b)}: {b.not_run}" for b in not_run)
    )


def test_named_snippets_run_in_the_compat_tests() -> None:
    compat_code = "\n".join(p.read_text() for p in COMPAT.glob("test_*.py"))
    named = [b.snippet for b in BLOCKS if b.snippet]
    assert named and all(f'"{name}"' in compat_code for name in named), [
        n for n in named if f'"{n}"' not in compat_code
    ]
