"""Regression runs: papermill executes every notebook in order on a fresh home and MLflow store; we check what they glued."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill
import pytest
import scrapbook

from conftest import TUTORIAL

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
KERNEL = "python3"  # the kernel of the interpreter running the tests (the project venv)


@pytest.fixture(scope="module")
def scraps(tmp_path_factory: pytest.TempPathFactory, embedding_cache: Path) -> dict[str, dict]:
    """What each notebook glued, by notebook stem; a notebook that raises fails every test here."""
    out = tmp_path_factory.mktemp("notebooks")
    parameters = {
        "home": str(out / "home"),
        "tracking_uri": str(out / "mlruns"),
        "data_dir": str(TUTORIAL),
        "embedding_cache": str(embedding_cache),
    }
    glued = {}
    for notebook in NOTEBOOKS:
        executed = out / notebook.name
        papermill.execute_notebook(
            notebook, executed, parameters=parameters, kernel_name=KERNEL, cwd=notebook.parent, progress_bar=False
        )
        glued[notebook.stem] = scrapbook.read_notebook(str(executed)).scraps.data_dict
    return glued


def test_the_five_tutorial_notebooks_exist():
    assert [n.name[:2] for n in NOTEBOOKS] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda n: n.stem)
def test_notebook_is_committed_clean_with_kernel_and_parameters(notebook: Path):
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == KERNEL
    assert nb.metadata["language_info"]["name"] == "python"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and "home =" in tagged[0].source and "tracking_uri =" in tagged[0].source


def test_create_notebook_trains_dogs_until_ready(scraps):
    created = scraps["01_create_custom_model"]
    assert created["status"] == "ready"
    assert created["statuses"][0] == "training" and created["statuses"][-1] == "ready"
    assert created["classifier_id"].startswith("dogs_")


def test_update_notebook_retrains_then_is_ready_with_dalmatian(scraps):
    updated = scraps["02_update_custom_model"]
    assert updated["statuses"] == ["ready", "retraining", "ready"]
    assert updated["version_count"] == 2
    assert updated["added_classes"] == ["dalmatian"]


def test_classify_notebook_finds_the_golden_retriever(scraps):
    classified = scraps["03_classify"]
    assert classified["custom_scores"]["goldenretriever"] >= 0.5
    rows = classified["rows_by_threshold"]
    assert rows["0.1"] > rows["0.5"] > rows["0.9"]  # the slider re-filters the same scores


def test_compare_notebook_reads_both_versions_from_mlflow(scraps):
    compared = scraps["04_compare_versions"]
    assert compared["version_count"] == 2
    assert compared["registered_versions"] == [1, 2]  # read back from the MLflow model registry


def test_delete_notebook_confirms_the_classifier_is_gone(scraps):
    deleted = scraps["05_delete"]
    assert deleted["deleted"] is True
    assert deleted["status"] == "deleted"
