"""Where workbench logs: resolving the tracking URI, opening its MLflow client, quieting MLflow's benign loggers.

`tracking_uri` is public (`workbench.tracking_uri`): MLflow's own tools read the store workbench
writes when they are given the same URI.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
WORKBENCH_TRACKING_ENV = "WORKBENCH_TRACKING_URI"  # overrides MLFLOW_TRACKING_URI for workbench only; "none" = off
MLRUNS_DIR = "mlruns"  # default tracking home, under the project (current) directory
MLRUNS_DB = "mlflow.db"
MLRUNS_ARTIFACTS = "artifacts"
SCHEMA_LOCK = ".schema.lock"  # beside mlflow.db: held while a process creates or migrates its tables
OFF_VALUES = frozenset({"", "none", "off", "false"})  # tracking_uri values that turn tracking off
HTTP_TIMEOUT_SECONDS = "10"  # per MLflow HTTP request, unless MLFLOW_HTTP_REQUEST_TIMEOUT says otherwise
HTTP_MAX_RETRIES = "1"  # per MLflow HTTP request, unless MLFLOW_HTTP_REQUEST_MAX_RETRIES says otherwise
# MLflow's known-benign INFO lines while workbench logs ("Creating initial MLflow database tables",
# "Updating database tables", "Validating input example against model signature", alembic's
# migrations): raised to WARNING, so notebooks show no stderr blocks and CLI progress bars stay whole.
BENIGN_LOGGERS = ("mlflow.store.db.utils", "mlflow.pyfunc", "alembic", "alembic.runtime.migration")
_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: dict[str, int] = {}


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's benign INFO loggers at WARNING while workbench logs (nested and cross-thread safe)."""
    global _quiet_depth
    with _quiet_lock:
        if _quiet_depth == 0:
            for name in BENIGN_LOGGERS:
                logger = logging.getLogger(name)
                _quiet_saved[name] = logger.level
                logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                for name, level in _quiet_saved.items():
                    logging.getLogger(name).setLevel(level)


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go: the tracking URI and, for a local store, the artifact root of new experiments."""

    uri: str
    artifact_root: str | None = None


def tracking_target(tracking_uri: str | os.PathLike | bool | None) -> TrackingTarget | None:
    """Resolves `tracking_uri`: None -> $WORKBENCH_TRACKING_URI, $MLFLOW_TRACKING_URI or ./mlruns; False/"none" -> off.

    A plain directory means a SQLite store `mlflow.db` with artifacts in `artifacts/` inside it.
    """
    if tracking_uri is None or tracking_uri is True:
        tracking_uri = (
            os.environ.get(WORKBENCH_TRACKING_ENV) or os.environ.get(TRACKING_URI_ENV) or Path.cwd() / MLRUNS_DIR
        )
    if tracking_uri is False or (isinstance(tracking_uri, str) and tracking_uri.strip().lower() in OFF_VALUES):
        return None
    text = str(tracking_uri)
    if isinstance(tracking_uri, os.PathLike) or ("://" not in text and not text.startswith("sqlite:")):
        folder = Path(tracking_uri).resolve()
        return TrackingTarget(f"sqlite:///{folder / MLRUNS_DB}", (folder / MLRUNS_ARTIFACTS).as_uri())
    if text.startswith("sqlite:///"):
        folder = Path(text.removeprefix("sqlite:///")).resolve().parent
        return TrackingTarget(text, (folder / MLRUNS_ARTIFACTS).as_uri())
    return TrackingTarget(text)


def tracking_uri(where: str | os.PathLike | bool | None = None) -> str | None:
    """The MLflow tracking URI workbench logs to (None if tracking is off), resolved as `Workbench(tracking_uri=where)`.

    `mlflow.set_tracking_uri(workbench.tracking_uri())` before `mlflow.pyfunc.load_model("models:/<id>@serving")`
    reads the same store (MLflow's own default is a `mlflow.db` in the current folder).
    """
    target = tracking_target(where)
    return target.uri if target is not None else None


@contextmanager
def _schema_lock(folder: Path) -> Iterator[None]:
    """Held while this process opens a local SQLite tracking store, so no two create its tables at once.

    MLflow creates and migrates the schema when a client first opens the store, with no lock between
    processes; a CLI's background logger and a `workbench wait` started beside it met "table ...
    already exists" and alembic's "expected to match one row".
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / SCHEMA_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Connection:
    """The MlflowClient of one target, opened on first use, with bounded HTTP timeouts and retries."""

    def __init__(self, target: TrackingTarget) -> None:
        self.target = target
        self._client = None

    def client(self):
        """The client, opened now if it is not yet (a local store's tables made under the schema lock)."""
        if self._client is None:
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_TIMEOUT_SECONDS)
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_MAX_RETRIES)
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
            from mlflow import MlflowClient

            if self.target.uri.startswith("sqlite:///"):
                with _schema_lock(Path(self.target.uri.removeprefix("sqlite:///")).parent):
                    self._client = MlflowClient(tracking_uri=self.target.uri, registry_uri=self.target.uri)
                    self._client.search_registered_models(max_results=1)  # opens the registry store too
            else:
                self._client = MlflowClient(tracking_uri=self.target.uri, registry_uri=self.target.uri)
        return self._client
