"""Regression runs: papermill executes every notebook in order on a fresh home and MLflow store; we check what they glued."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import nbformat
import papermill
import pytest
import scrapbook

from conftest import TUTORIAL

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
KERNEL = "python3"  # the kernel of the interpreter running the tests (the project venv)
CLEAN_COMMAND = ".venv/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb"


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
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and (cell.outputs or cell.execution_count)]
    assert not dirty, f"{notebook.name}: cells {dirty} hold outputs; clean them with `{CLEAN_COMMAND}` (`make lab` saves clean)"
    tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and "home =" in tagged[0].source and "tracking_uri =" in tagged[0].source


def lab_config() -> Path:
    """The --config file that `make lab` passes to JupyterLab, read from the Makefile's lab recipe."""
    recipe = (ROOT / "Makefile").read_text().split("\nlab:", 1)[1].split("\n\n", 1)[0]
    return ROOT / re.search(r"--config=(\S+)", recipe).group(1)


def test_make_lab_server_saves_notebooks_without_outputs(tmp_path, monkeypatch):
    from jupyter_server.serverapp import ServerApp

    for variable in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):  # no user config, no litter
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    app = ServerApp()
    try:
        app.initialize(argv=[f"--config={lab_config()}", f"--ServerApp.root_dir={tmp_path}"],
                       find_extensions=False, new_httpserver=False)  # the server's configurables, no socket
    finally:
        for number, handler in handlers.items():  # the server installs its own; give pytest its own back
            signal.signal(number, handler)
    run = nbformat.read(NOTEBOOKS[0], as_version=4)
    for count, cell in enumerate((c for c in run.cells if c.cell_type == "code"), start=1):
        cell.execution_count = count  # what JupyterLab autosaves after "Run All"
        cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": str(count)}, execution_count=count)]
    run.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    model = {"type": "notebook", "format": "json", "content": nbformat.from_dict(run)}
    result = app.contents_manager.save(model, "saved.ipynb")
    if asyncio.iscoroutine(result):  # the lab's default manager is the async one
        asyncio.run(result)
    saved = nbformat.read(tmp_path / "saved.ipynb", as_version=4)
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "widgets" not in saved.metadata
    assert [cell.source for cell in saved.cells] == [cell.source for cell in run.cells]  # nothing else is lost


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
    labels = dict(line.split("\t") for line in (TUTORIAL / "test" / "LABELS.txt").read_text().splitlines()[1:])
    expected = {name: None if "negative" in text else text.split()[0] for name, text in labels.items()}
    assert classified["grid_top_classes"] == expected  # the grid gets test/ right; the cat-family images reach no class
    assert classified["grid_correct"] == [True] * len(expected)  # marked right against test/LABELS.txt
    ap = classified["average_precision"]
    assert set(ap) == {"beagle", "husky", "goldenretriever", "dalmatian"} and min(ap.values()) > 0.9


def test_compare_notebook_reads_both_versions_from_mlflow(scraps):
    compared = scraps["04_compare_versions"]
    assert compared["version_count"] == 2
    assert compared["registered_versions"] == [1, 2]  # read back from the MLflow model registry
    assert compared["unknown_false_positive_rates"] == [0.0, 0.0]  # no class called an unrelated image
    confused = compared["most_confused"]  # each version's (actual, predicted, count) at 0.5, most first
    assert set(confused) == {"v1", "v2"}
    assert all(actual != predicted and count >= 1 for pairs in confused.values() for actual, predicted, count in pairs)
    matrix = compared["confusion_matrix"]  # the serving version's, every training image once
    counts = matrix["counts"]
    assert matrix["classes"] == ["beagle", "goldenretriever", "husky", "dalmatian", "(none)"]
    assert sum(map(sum, counts)) == 250 and sum(counts[i][i] for i in range(5)) >= 240
    losses = [row["loss"] for row in compared["top_losses"]]
    assert len(losses) == 5 and losses == sorted(losses, reverse=True)


def test_delete_notebook_confirms_the_classifier_is_gone(scraps):
    deleted = scraps["05_delete"]
    assert deleted["deleted"] is True
    assert deleted["status"] == "deleted"
