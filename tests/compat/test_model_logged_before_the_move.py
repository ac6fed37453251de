"""A model logged before the package move (issue 20) still loads and scores after it.

`data/model_logged_before_the_package_move.tar.gz` is a pyfunc model saved by `save_pyfunc` of the
flat layout (commit b112b5c): a `dogs` classifier trained on the tutorial's beagle, husky and
golden retriever zips, with cats as negatives. Its MLmodel names the loader `workbench.pyfunc`, and its
`code/` folder carries the flat package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

import workbench.pyfunc
from workbench.tracking.pyfunc import LOADER_MODULE

HERE = Path(__file__).resolve().parent
ARCHIVE = HERE / "data" / "model_logged_before_the_package_move.tar.gz"
DOGS_JPG = HERE.parents[1] / "data" / "tutorial" / "dogs.jpg"
CLASSES = ["beagle", "husky", "goldenretriever"]

# MLflow puts the model's code/ first on sys.path: the flat package it was logged with answers
LOAD_AS_LOGGED = """
import json, sys
import mlflow
model = mlflow.pyfunc.load_model(sys.argv[1])
import workbench
answer = model.predict(__import__("pandas").DataFrame({"image": [sys.argv[2]]}))
print(json.dumps({"code": workbench.__file__, "scores": answer.drop(columns=["watson", "error"]).to_dict("records")}))
"""


@pytest.fixture(scope="module")
def old_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("old-model")
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(folder, filter="data")
    return folder / "model_logged_before_the_package_move"


def test_the_old_model_names_the_loader_that_never_moves(old_model: Path) -> None:
    flavor = yaml.safe_load((old_model / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["loader_module"] == LOADER_MODULE == "workbench.pyfunc"
    assert (old_model / "code" / "workbench" / "backbone.py").exists(), "the archive is not of the flat layout"
    assert not (Path(workbench.pyfunc.__file__).parent / "backbone.py").exists(), "this checkout is not the new layout"


def test_the_new_layout_loads_the_old_model_data_and_scores_it(old_model: Path) -> None:
    """What MLflow does with the installed package: import `workbench.pyfunc`, call `_load_pyfunc`."""
    model = workbench.pyfunc._load_pyfunc(str(old_model / "data" / "classifier"))
    answer = model.predict(pd.DataFrame({"image": [str(DOGS_JPG)]}), params={"watson": True})
    assert list(answer.columns) == [*CLASSES, "watson", "error", "engine"]  # scored by this tree's code
    assert answer["error"][0] == ""
    watson = json.loads(answer["watson"][0])
    assert watson["classifier_id"].startswith("dogs_")
    classes = {c["class"] for c in watson["classes"]}
    assert classes & {"beagle", "husky", "goldenretriever"}, classes
    assert all(0.0 <= answer[name][0] <= 1.0 for name in CLASSES)


def test_the_old_model_as_logged_scores_like_the_new_layout(old_model: Path, tmp_path: Path) -> None:
    """`mlflow.pyfunc.load_model` in a fresh process runs the model's own flat code; both agree."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AS_LOGGED, str(old_model), str(DOGS_JPG)],
        env={**os.environ, "PYTHONPATH": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    logged = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(logged["code"]).parent.parent.name == "code", f"scored with {logged['code']}, not the model's code"
    new = workbench.pyfunc._load_pyfunc(str(old_model / "data" / "classifier"))
    scores = new.predict(pd.DataFrame({"image": [str(DOGS_JPG)]})).drop(columns=["watson", "error", "engine"])
    for name in CLASSES:
        assert scores[name][0] == pytest.approx(logged["scores"][0][name], abs=1e-5)
