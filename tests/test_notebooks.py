"""Regression runs: papermill runs each notebook in order on a fresh home and MLflow store; checks what they glue."""

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

pytestmark = pytest.mark.slow  # `make test-slow`: papermill runs of the tutorial notebooks (about 5 min)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
KERNEL = "python3"  # the kernel of the interpreter running the tests (the project venv)
CLEAN_COMMAND = ".venv/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb"


# What the tests read from each notebook, glued by one cell the test appends to its own copy: the
# notebooks a reader opens hold no test plumbing. Each cell reads the notebook's own variables.
SCRAPS = {
    "01_create_custom_model": """
sb.glue("classifier_id", record["classifier_id"])
sb.glue("status", record["status"])
sb.glue("statuses", form.status.statuses)
""",
    "02_update_custom_model": """
sb.glue("status", record["status"])
sb.glue("statuses", form.status.statuses)
sb.glue("version_count", len(versions))
sb.glue("added_classes", added_classes)
""",
    "03_classify": """
from workbench.analysis.review import average_precision
sb.glue("custom_scores", custom)
sb.glue("explained_classes", {cid: [e.class_name for e in found] for cid, found in explained.explanations.items()})
sb.glue("rows_by_threshold", {str(k): v for k, v in rows.items()})
sb.glue("grid_top_classes", {Path(image).name: name if reached else None
                             for image, name, reached in zip(best["image"], best["class"], best["reached"])})
sb.glue("grid_correct", [bool(right) for right in best["correct"]])  # against test/LABELS.txt
sb.glue("average_precision", average_precision(oof))
sb.glue("misclassified", int((gallery.items["kind"] == "misclassified").sum()))
sb.glue("overlay_tiles", len(overlay_gallery.items))
""",
    "04_compare_versions": """
sb.glue("version_count", len(frame))
sb.glue("registered_versions", [int(v) for v in frame["registered_version"]] if wb.tracker is not None else [])
sb.glue("unknown_false_positive_rates", frame["unknown_false_positive_rate"].tolist())
sb.glue("most_confused", {v: [list(pair) for pair in pairs] for v, pairs in confused.items()})
sb.glue("confusion_matrix", {"classes": list(matrix.index), "counts": matrix.to_numpy().tolist()})
sb.glue("top_losses", losses[["name", "actual", "predicted", "loss"]].to_dict(orient="records"))
""",
    "05_delete": """
sb.glue("deleted", gone and classifier_id not in remaining)
sb.glue("status", status.status)
""",
}


def with_scraps_cell(notebook: Path, target: Path) -> Path:
    """A copy of `notebook` with the cell that glues what the tests read appended."""
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import scrapbook as sb\n" + SCRAPS[notebook.stem].lstrip()))
    nbformat.write(nb, target)
    return target


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
            with_scraps_cell(notebook, out / f"scraps-{notebook.name}"),
            executed,
            parameters=parameters,
            kernel_name=KERNEL,
            cwd=notebook.parent,
            progress_bar=False,
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
    dirty = [
        i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and (cell.outputs or cell.execution_count)
    ]
    assert not dirty, (
        f"{notebook.name}: cells {dirty} hold outputs; clean them with `{CLEAN_COMMAND}` (`make lab` saves clean)"
    )
    assert not [i for i, cell in enumerate(code) if "scrapbook" in cell.source or "sb.glue" in cell.source], (
        f"{notebook.name}: test plumbing belongs in SCRAPS here, not in the notebook a reader opens"
    )
    tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and "home =" in tagged[0].source and "tracking_uri =" in tagged[0].source


def lab_config() -> Path:
    """The --config file that `make lab` passes to JupyterLab, read from the Makefile's lab recipe."""
    recipe = (ROOT / "Makefile").read_text().split("\nlab:", 1)[1].split("\n\n", 1)[0]
    return ROOT / re.search(r"--config=(\S+)", recipe).group(1)


def lab_contents_manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The contents manager of a server configured as `make lab` configures it (no socket), rooted at tmp_path."""
    from jupyter_server.serverapp import ServerApp

    for variable in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):  # no user config, no litter
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    app = ServerApp()
    try:
        app.initialize(
            argv=[f"--config={lab_config()}", f"--ServerApp.root_dir={tmp_path}"],
            find_extensions=False,
            new_httpserver=False,
        )  # the server's configurables, no socket
    finally:
        for number, handler in handlers.items():  # the server installs its own; give pytest its own back
            signal.signal(number, handler)
    return app.contents_manager


def lab_save(manager, notebook: nbformat.NotebookNode, name: str) -> None:
    model = {"type": "notebook", "format": "json", "content": nbformat.from_dict(notebook)}
    result = manager.save(model, name)
    if asyncio.iscoroutine(result):  # the lab's default manager is the async one
        asyncio.run(result)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda n: n.stem)
def test_an_autosave_after_run_all_leaves_the_committed_file_unchanged(notebook: Path, tmp_path, monkeypatch):
    """What JupyterLab autosaves after "Run All" (outputs, counts, widget state, its kernel's display name and
    exact Python version) is written back byte for byte as committed: `git status` stays clean."""
    manager = lab_contents_manager(tmp_path, monkeypatch)
    run = nbformat.read(notebook, as_version=4)
    assert all("id" in cell for cell in run.cells), "a cell without an id gets a random one at the first autosave"
    for count, cell in enumerate((c for c in run.cells if c.cell_type == "code"), start=1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": str(count)}, execution_count=count)]
    run.metadata["kernelspec"]["display_name"] = "Python 3 (ipykernel)"
    run.metadata["language_info"]["version"] = "3.11.7"
    run.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    lab_save(manager, run, notebook.name)
    assert (tmp_path / notebook.name).read_text() == notebook.read_text()


def test_make_lab_server_saves_notebooks_without_outputs(tmp_path, monkeypatch):
    manager = lab_contents_manager(tmp_path, monkeypatch)
    run = nbformat.read(NOTEBOOKS[0], as_version=4)
    for count, cell in enumerate((c for c in run.cells if c.cell_type == "code"), start=1):
        cell.execution_count = count  # what JupyterLab autosaves after "Run All"
        cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": str(count)}, execution_count=count)]
    run.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    lab_save(manager, run, "saved.ipynb")
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
