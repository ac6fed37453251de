"""Jupyter server settings for `make lab`: notebooks are saved without outputs.

JupyterLab autosaves what a run produced (images, widget state, execution counts) into the
tracked notebooks; `make test` requires them clean. This pre-save hook strips them from every
notebook saved through the server, so running the notebooks in the lab never dirties the repository.
Loaded with `jupyter lab --config=jupyter_server_config.py` (the Makefile's `lab` target).
"""

import warnings

c = get_config()  # noqa: F821 (the name Jupyter's config loader provides)

# jupyter_server validates a configured hook twice and warns that it "overrides" itself: not news.
warnings.filterwarnings("ignore", message="Overriding existing pre_save_hook", category=UserWarning)


def strip_outputs(model: dict, **kwargs) -> None:
    """Empties every code cell's outputs and execution count, and drops saved widget state, before a notebook is written."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    notebook = model["content"]
    notebook.get("metadata", {}).pop("widgets", None)  # ipywidgets' saved state: outputs by another name
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)  # run timestamps (JupyterLab's "record timing" setting)


c.FileContentsManager.pre_save_hook = strip_outputs
