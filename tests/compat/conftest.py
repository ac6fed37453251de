"""Compat fixtures: a real server on 127.0.0.1, the README's snippets, and IBM's SDK in a venv of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from workbench import Workbench
from workbench.server.app import create_app
from workbench.server.keys import KeyRing
from workbench.server.runner import ServerThread

REPO = Path(__file__).resolve().parents[2]
DOGS_JPG = REPO / "data" / "tutorial" / "dogs.jpg"
SDK_VENV = REPO / ".venv-watson-sdk"
SDK_REQUIREMENT = "ibm-watson==5.3.1"
SDK_PYTHON = os.environ.get("WATSON_SDK_PYTHON_BASE", "python3.11")  # the interpreter the SDK venv is made from
OWNER_KEYS = {"curl": "curl-key-5c1f", "sdk": "sdk-key-9a7e", "fuzz": "fuzz-key-0b3d"}


@dataclass(frozen=True)
class Served:
    """A running server: its base URL, the engine behind it, and an API key per test owner."""

    url: str
    workbench: Workbench
    keys: dict[str, str]


@pytest.fixture(scope="session")
def compat_server(tmp_path_factory: pytest.TempPathFactory, embedding_cache: Path) -> Iterator[Served]:
    """`create_app` served by uvicorn on 127.0.0.1 (a free port), on a fresh home; stopped after the session."""
    wb = Workbench(tmp_path_factory.mktemp("compat-home"), embedding_cache=embedding_cache)
    keys = KeyRing(wb.home, env_value=",".join(f"{owner}:{key}" for owner, key in OWNER_KEYS.items()))
    with ServerThread(create_app(wb, keys=keys)) as url:
        yield Served(url, wb, OWNER_KEYS)


@pytest.fixture(scope="session")
def tutorial_folder(tmp_path_factory: pytest.TempPathFactory, tutorial_zips: dict[str, Path]) -> Path:
    """A folder holding the tutorial's zips and dogs.jpg, as a user following the tutorial has."""
    folder = tmp_path_factory.mktemp("tutorial")
    for path in [*tutorial_zips.values(), DOGS_JPG]:
        shutil.copy(path, folder / path.name)
    return folder


def _build_sdk_venv(target: Path) -> None:
    """Creates the SDK venv beside `target`, then renames it into place (so a half-built one is never used)."""
    staging = Path(tempfile.mkdtemp(prefix=".venv-watson-sdk-", dir=target.parent))
    try:
        subprocess.run([SDK_PYTHON, "-m", "venv", str(staging)], check=True)
        subprocess.run(
            [str(staging / "bin" / "python"), "-m", "pip", "install", "--quiet", SDK_REQUIREMENT],
            check=True,
            timeout=600,
        )
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="session")
def watson_sdk_python() -> Path:
    """The python of `.venv-watson-sdk/` with ibm-watson 5.3.1 (its pinned websocket-client clashes with Jupyter's)."""
    python = SDK_VENV / "bin" / "python"
    if not python.exists():
        _build_sdk_venv(SDK_VENV)
    probe = subprocess.run(
        [str(python), "-c", "import ibm_watson; print(ibm_watson.__version__)"], capture_output=True, text=True
    )
    assert probe.returncode == 0 and probe.stdout.strip() == "5.3.1", probe.stderr or probe.stdout
    return python


@pytest.fixture
def snippet_env(compat_server: Served) -> Callable[..., dict[str, str]]:
    """The environment a README snippet runs in for one owner: WB_URL and WB_APIKEY set."""

    def env(owner: str, **extra: str) -> dict[str, str]:
        return {**os.environ, "WB_URL": compat_server.url, "WB_APIKEY": compat_server.keys[owner], **extra}

    return env
