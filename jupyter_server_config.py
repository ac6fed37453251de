"""Jupyter server settings for `make lab`: notebooks are saved without outputs, as committed.

JupyterLab autosaves what a run produced (images, widget state, execution counts) into the
tracked notebooks, and rewrites their kernel's display name and exact Python version; `make test`
requires them clean. This pre-save hook strips the outputs and writes the kernel metadata in the
committed form (Python version as major.minor), so running the notebooks in the lab never dirties
the repository.

Browser uploads (the create/update form's zip button) reach the kernel as one websocket message, and
tornado closes the connection on a message over `websocket_max_message_size` (10 MiB by default):
JupyterLab then says only "Connection lost" and the upload is gone. This raises the limit to what
one Watson training call could carry, and tells the kernels (through their environment) what it is,
so the form can say it beside its button.
Loaded with `jupyter lab --config=jupyter_server_config.py` (the Makefile's `lab` target).
"""

import os
import re
import warnings

c = get_config()  # noqa: F821 (the name Jupyter's config loader provides)

# jupyter_server validates a configured hook twice and warns that it "overrides" itself: not news.
warnings.filterwarnings("ignore", message="Overriding existing pre_save_hook", category=UserWarning)


KERNEL_DISPLAY_NAME = "Python 3 (ipykernel)"  # what JupyterLab writes for the venv's `python3` kernel


def strip_outputs(model: dict, **kwargs) -> None:
    """Empties every code cell's outputs and execution count, drops saved widget state and pins the kernel metadata."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    notebook = model["content"]
    metadata = notebook.get("metadata", {})
    metadata.pop("widgets", None)  # ipywidgets' saved state: outputs by another name
    if metadata.get("kernelspec", {}).get("name") == "python3":
        metadata["kernelspec"]["display_name"] = KERNEL_DISPLAY_NAME
    info = metadata.get("language_info", {})
    if isinstance(info.get("version"), str):  # "3.11.7" on one machine, "3.11.9" on the next
        info["version"] = re.sub(r"^(\d+\.\d+)\..*$", r"\1", info["version"])
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)  # run timestamps (JupyterLab's "record timing" setting)


c.FileContentsManager.pre_save_hook = strip_outputs

# Watson: 100 MB a zip, 256 MB a training call. One upload (every zip picked at once) travels as one message,
# its JSON header (names, sizes) beside the bytes: 1 MiB of room for that.
UPLOAD_LIMIT_BYTES = 256 * 1024 * 1024
c.ServerApp.tornado_settings = {"websocket_max_message_size": UPLOAD_LIMIT_BYTES + 1024 * 1024}
os.environ["WORKBENCH_LAB_UPLOAD_BYTES"] = str(UPLOAD_LIMIT_BYTES)  # kernels inherit the server's environment
