"""MLflow tracking: an experiment per classifier, a run per training, registered versions, alias `serving`.

The `Tracker` mirrors the store into MLflow. The store is the source of truth: at start and every
`SYNC_SECONDS` it compares every classifier with MLflow and logs what is missing, so MLflow converges
after a crash, an outage or a process that ran with tracking off. Training events only bring a
classifier's turn forward. All logging happens on the tracker's own thread, so a slow or unreachable
tracking server never delays a training or a delete; what could not be logged is reported as a
warning and retried. Every sync reads the store, so it is idempotent: a version is logged once,
however many times it is asked for, and by however many processes: a sync holds the classifier's
logging claim (an flock in `<home>/tracking-claims/`) from reading MLflow to its last write, so two
servers on one home never both find a version missing and both log it. Each run records which process
logs it (`host:pid:start`) and a heartbeat, so a run a dead process left RUNNING is told apart from
one being logged right now.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import logging
import os
import queue
import re
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import ClassifierNotFound, TrackingError
from ..core.events import ClassifierEvent
from ..core.records import ClassifierRecord, ExampleRow, VersionRecord
from ..engine.backbone import Backbone
from ..store import curation, owners
from ..store.database import Store
from . import run_record, tracked_files
from .run_record import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    HEAD_DESCRIPTION,
    KEY_METRICS_VIEW,
    KIND_ABANDONED,
    NOTE_TAG,
    SERVING_ALIAS,
    TAG_ABANDONED,
    TAG_ADDED,
    TAG_ADOPTED,
    TAG_CLASSES,
    TAG_CURATED,
    TAG_DELETED,
    TAG_EXPLANATION,
    TAG_HEARTBEAT,
    TAG_KIND,
    TAG_LOGGED,
    TAG_LOGGING_SINCE,
    TAG_OUTCOME,
    TAG_OWNER,
    TAG_PARENT,
    TAG_REGISTERED,
    TAG_VERSION,
    UI_MODE,
    added_since,
    count,
    curation_params,
    iso_to_ms,
    manifest_frame,
    write_changes,
)
from .tracked_files import ClassifierFiles

if TYPE_CHECKING:  # imported in `versions_frame`: a short CLI command builds a Tracker and needs no pandas
    import pandas as pd

log = logging.getLogger(__name__)

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
WORKBENCH_TRACKING_ENV = "WORKBENCH_TRACKING_URI"  # overrides MLFLOW_TRACKING_URI for workbench only; "none" = off
MLRUNS_DIR = "mlruns"  # default tracking home, under the project (current) directory
MLRUNS_DB = "mlflow.db"
ELSEWHERE_POLL_S = 0.5  # how often a sync looks again at versions another live process is logging
OTHERS_WAIT_S = 120.0  # versions_frame waits this long for another process (a CLI create) to log
SCHEMA_LOCK = ".schema.lock"  # beside mlflow.db: held while a process creates or migrates its tables
CLAIMS_DIR = "tracking-claims"  # in the home: one lock file per classifier, held while a process mirrors it
CLAIM_WAIT_S = 60.0  # how long a sync waits for another process's claim before leaving the classifier to it
CLAIM_POLL_S = 0.1  # how often a waiting sync tries the claim again
MLRUNS_ARTIFACTS = "artifacts"
OFF_VALUES = frozenset({"", "none", "off", "false"})  # tracking_uri values that turn tracking off
HTTP_TIMEOUT_SECONDS = "10"  # per MLflow HTTP request, unless MLFLOW_HTTP_REQUEST_TIMEOUT says otherwise
HTTP_MAX_RETRIES = "1"  # per MLflow HTTP request, unless MLFLOW_HTTP_REQUEST_MAX_RETRIES says otherwise
SYNC_SECONDS = 60.0  # how often every classifier is mirrored again (missed logging, crashed processes)
SYNC_SECONDS_ENV = "WORKBENCH_TRACKING_SYNC_SECONDS"  # overrides SYNC_SECONDS
EXIT_FLUSH_SECONDS = 60.0  # how long a process waits at exit for its last runs to be logged
HEARTBEAT_TIMEOUT_SECONDS = 300.0  # a RUNNING run whose logger was silent this long is abandoned (any host)
INVALID_HOST = "Invalid Host header"  # MLflow's 403 for a Host not in its --allowed-hosts (a colleague's URL)
UI_URL = "http://127.0.0.1:5000"  # where `mlflow ui --port 5000` serves, for the links the tracker builds
TRACKED_STAGES = ("started", "ready", "failed", "deleted", "promoted")  # "promoted": the alias follows at once
COUNT_METRICS = (
    "images",
    "negatives",
    "images_embedded",
    "images_cached",
    "classes",
)  # whole numbers in compare_versions
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


@dataclass
class Failure:
    """A failed training waiting to be logged as a failed run."""

    classifier_id: str
    explanation: str
    at_ms: int


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


class LoggedElsewhere(TrackingError):
    """Another live process is logging some of a classifier's versions; this one leaves them to it."""


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


def _claim_name(classifier_id: str) -> str:
    """The claim file's name: the id itself when it is a plain file name, else its hash (never a path)."""
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}", classifier_id):
        return f"{classifier_id}.lock"
    return f"{hashlib.sha256(classifier_id.encode()).hexdigest()}.lock"


@contextmanager
def logging_claim(home: Path, classifier_id: str, wait_s: float = CLAIM_WAIT_S) -> Iterator[None]:
    """Held while this process mirrors one classifier into MLflow: no other process (or Tracker) does it meanwhile.

    Without it two servers on one home both read MLflow, both found a new version missing and both
    logged it (a race left 25 runs and 25 registered versions for 15 versions). The flock is the
    lease: the kernel drops it when its holder dies, so a crash never leaves the classifier stuck.
    Raises LoggedElsewhere when another holder keeps it past `wait_s`; the next sync looks again.
    """
    folder = home / CLAIMS_DIR
    path = folder / _claim_name(classifier_id)
    try:
        folder.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only home: a claim file the writers made can still be locked
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise TrackingError(f"cannot take the MLflow logging claim of {classifier_id} in {folder}: {exc}") from exc
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LoggedElsewhere(
                        f"{classifier_id} is being logged to MLflow by another process "
                        f"(its claim in {folder} was held over {wait_s:g} s)"
                    ) from None
                time.sleep(CLAIM_POLL_S)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


def running_runs(client) -> list:
    """Every RUNNING run of the tracking store, in any experiment: deleted runs and deleted experiments included.

    A deleted (soft) run keeps its status, so one deleted while RUNNING stays RUNNING where the MLflow UI
    and a default search do not show it.
    """
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return []
    return client.search_runs(
        experiments, filter_string="attributes.status = 'RUNNING'", run_view_type=ViewType.ALL, max_results=5000
    )


def out_of_sync(client, store: Store) -> list[str]:
    """What MLflow still lacks against the store, in words; empty once the tracker has converged.

    Converged means: no run left RUNNING (deleted ones included), no deleted classifier whose history
    still waits in `<home>/mlflow-pending/`, every stored version of every classifier a FINISHED run and
    a registered version, and the alias `serving` on the version classify uses.
    """
    missing = [
        f"run {r.info.run_id} still RUNNING" + (" (deleted)" if r.info.lifecycle_stage == "deleted" else "")
        for r in running_runs(client)
    ]
    live = store.classifier_ids()
    missing += [
        f"{cid}: deleted, its history not logged yet ({tracked_files.PENDING_DIR}/)"
        for cid in tracked_files.staged_ids(store)
        if cid not in live
    ]
    for record in store.classifiers():
        cid = record.classifier_id
        experiment = client.get_experiment_by_name(cid)
        if experiment is None:
            missing.append(f"{cid}: no experiment")
            continue
        runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'version'")
        finished = sorted(int(r.data.tags[TAG_VERSION]) for r in runs if r.info.status == "FINISHED")
        registered = sorted(int(v.tags[TAG_VERSION]) for v in client.search_model_versions(f"name='{cid}'"))
        stored = [v.version for v in store.versions(cid)]
        if finished != stored or registered != stored:
            missing.append(f"{cid}: finished runs {finished}, registered {registered}, store {stored}")
            continue
        if stored:
            from mlflow.exceptions import MlflowException

            try:
                alias = client.get_model_version_by_alias(cid, SERVING_ALIAS).tags[TAG_VERSION]
            except MlflowException:  # registered, but the tracker has not set the alias yet
                missing.append(f"{cid}: alias serving not set yet")
                continue
            if alias != str(record.serving_version):
                missing.append(f"{cid}: alias serving -> v{alias}, store serves v{record.serving_version}")
    return missing


def tracking_uri(where: str | os.PathLike | bool | None = None) -> str | None:
    """The MLflow tracking URI workbench logs to (None if tracking is off), resolved as `Workbench(tracking_uri=where)`.

    `mlflow.set_tracking_uri(workbench.tracking_uri())` before `mlflow.pyfunc.load_model("models:/<id>@serving")`
    reads the same store (MLflow's own default is a `mlflow.db` in the current folder).
    """
    target = tracking_target(where)
    return target.uri if target is not None else None


# the tracker --------------------------------------------------------------------
@dataclass
class _Flush:
    """A marker in the worker's queue: set when everything before it is handled."""

    done: threading.Event = field(default_factory=threading.Event)


class _Sweep:
    """A marker in the worker's queue: mirror every classifier in the store."""


class _Stop:
    """A marker in the worker's queue: the worker ends."""


def _hint(uri: str, reason: str) -> str:
    """What to do about a failure whose cause is known: the server's host check refusing the name used for it."""
    if INVALID_HOST not in reason:
        return ""
    host = urllib.parse.urlsplit(uri).netloc
    return (
        f"The server refuses the host name {host!r}: start `mlflow server` with "
        f"--allowed-hosts listing it (e.g. '{host.rsplit(':', 1)[0]}:*'). "
    )


def sync_interval() -> float:
    """Seconds between sweeps: $WORKBENCH_TRACKING_SYNC_SECONDS, else SYNC_SECONDS."""
    text = os.environ.get(SYNC_SECONDS_ENV, "").strip()
    try:
        return float(text) if text and float(text) > 0 else SYNC_SECONDS
    except ValueError:
        return SYNC_SECONDS


class Tracker:
    """Mirrors the store into MLflow; use it as a JobRunner listener.

    The store is the source of truth and MLflow converges to it: `start` sweeps every classifier at
    once and then every `interval_s`, logging what is missing, finishing or ending runs that a dead
    process left RUNNING, and moving the `serving` alias to the store's serving version. Events only
    make a classifier's turn come sooner. All MLflow work happens on the tracker's own thread.
    """

    def __init__(
        self, store: Store, backbone: Backbone, target: TrackingTarget, interval_s: float | None = None
    ) -> None:
        self.store = store
        self.backbone = backbone
        self.target = target
        self.interval_s = interval_s or sync_interval()
        self.heartbeat_timeout_s = HEARTBEAT_TIMEOUT_SECONDS
        self.owner = owners.this_process()  # recorded on every run this tracker logs
        self.warnings: dict[str, str] = {}  # classifier_id -> what could not be logged, and why
        self._failures: list[Failure] = []
        self._seen: set[str] = set()  # classifiers this process trained, deleted or asked for: flushed at exit
        self._abandoned: set[str] = set()  # run ids this tracker began but could not finish logging
        self._lock = threading.RLock()  # one MLflow conversation at a time
        self._state_lock = threading.Lock()  # guards _failures, _seen and the worker (held only briefly)
        self._queue: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._sweeps_off = threading.Event()  # set at exit and by close: no new sweep starts
        self._run_lock = threading.Lock()  # held while one run is being logged
        self._runs_closed = False  # set at exit: no new run starts
        self._closed = False
        self._client = None
        self._elsewhere: dict[str, bool] = {}  # classifier id -> its last sync met another process logging it

    @property
    def uri(self) -> str:
        return self.target.uri

    def client(self):
        """The MlflowClient for this target, with bounded HTTP timeouts and retries."""
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

    def experiment_url(self, classifier_id: str, base_url: str = UI_URL) -> str:
        """The MLflow UI's runs table of a classifier's experiment, key metrics as columns (`mlflow ui` at `base_url`).

        The link opens the UI in its "Model training" mode whatever the browser last used (MLflow
        3.17's UI opens an experiment in GenAI mode in a browser that never switched) and shows the
        experiment's "Key metrics" view.
        """
        experiment_id = self._experiment_id(classifier_id)
        return (
            f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{UI_MODE}&viewStateShareKey={KEY_METRICS_VIEW}"
        )

    def compare_url(self, classifier_id: str, run_ids: list[str], base_url: str = UI_URL) -> str:
        """The MLflow UI's compare view of these runs of a classifier (pick a plot under Artifacts)."""
        experiment_id = self._experiment_id(classifier_id)
        return (
            f"{base_url.rstrip('/')}/#/compare-runs?runs={json.dumps(list(run_ids), separators=(',', ':'))}"
            f"&experiments={json.dumps([experiment_id])}&{UI_MODE}"
        )

    def registered_model_url(self, classifier_id: str, base_url: str = UI_URL) -> str:
        """The MLflow UI's page of a classifier's registered model (its versions, `@ serving` on one)."""
        return f"{base_url.rstrip('/')}/#/models/{classifier_id}?{UI_MODE}"

    def _experiment_id(self, classifier_id: str) -> str:
        experiment = self.client().get_experiment_by_name(classifier_id)
        if experiment is None:
            raise TrackingError(f"No MLflow experiment for {classifier_id} at {self.uri} yet")
        return experiment.experiment_id

    # the worker -------------------------------------------------------------------
    def start(self) -> None:
        """Sweeps every classifier now (in the background), then every `interval_s`."""
        self._queue.put(_Sweep())
        self._start_worker()

    def close(self, timeout: float | None = EXIT_FLUSH_SECONDS) -> None:
        """Stops the background worker after what it is doing (waits up to `timeout`); no sweep runs after."""
        with self._state_lock:
            self._closed = True
            worker = self._worker
        self._sweeps_off.set()
        self._queue.put(_Stop())
        if worker is not None:
            worker.join(timeout)
        atexit.unregister(self._at_exit)

    def __call__(self, event: ClassifierEvent) -> None:
        """The JobRunner listener: queues the event and returns at once (never raises)."""
        if event.stage not in TRACKED_STAGES:
            return
        with self._state_lock:
            if event.stage == "failed":
                self._failures.append(Failure(event.classifier_id, event.explanation or "", int(time.time() * 1000)))
            self._seen.add(event.classifier_id)
        self._queue.put(event.classifier_id)
        self._start_worker()

    def _start_worker(self) -> None:
        with self._state_lock:
            if self._closed or (self._worker is not None and self._worker.is_alive()):
                return
            first = self._worker is None
            self._worker = threading.Thread(target=self._work, name="mlflow-tracking", daemon=True)
            self._worker.start()
        if first:
            atexit.register(self._at_exit)

    def _work(self) -> None:
        next_sweep = time.monotonic() + self.interval_s
        while True:
            try:  # a sweep is due every interval, however busy the queue is
                item = self._queue.get(timeout=max(0.0, next_sweep - time.monotonic()))
            except queue.Empty:
                item = _Sweep()
            if isinstance(item, _Stop):
                return
            if isinstance(item, _Flush):
                item.done.set()
            elif isinstance(item, _Sweep):
                self.sweep()
                next_sweep = time.monotonic() + self.interval_s
            else:
                self.sync(item)
                for classifier_id in [c for c in list(self.warnings) if c != item]:
                    self.sync(classifier_id)

    def sweep(self) -> bool:
        """Mirrors every classifier in the store, and the history of deleted ones; False if something is left."""
        try:
            ids = sorted(self.store.classifier_ids() | set(tracked_files.staged_ids(self.store)))
        except Exception:  # the store itself is unreadable: nothing to mirror now
            log.exception("MLflow tracking could not read the store")
            return False
        ok = True
        for classifier_id in ids:
            if self._sweeps_off.is_set():
                return False
            ok = self._sync_one(classifier_id) and ok
        return self._end_hidden_runs() and ok

    def _end_hidden_runs(self) -> bool:
        """Ends workbench runs left RUNNING where no classifier's sync looks: deleted runs, runs in deleted experiments.

        An older tracker, or a process that died, may have left them (a delete while MLflow was down).
        False while one cannot be ended yet (MLflow unreachable, its logger still alive).
        """
        with self._lock, quiet_mlflow():
            try:
                client = self.client()
                hidden = [
                    run
                    for run in running_runs(client)
                    if run.info.lifecycle_stage == "deleted" and TAG_KIND in run.data.tags
                ]
                return all([self._end_hidden(client, run) for run in hidden])
            except Exception:  # tracking must never break anything; the next sweep tries again
                log.warning("MLflow tracking could not end runs left RUNNING in deleted experiments", exc_info=True)
                return False

    def _end_hidden(self, client, run) -> bool:
        """Ends one deleted run left RUNNING (restored for the moment it takes); False if its logger still lives."""
        why = self._why_abandoned(run)
        if why is None:
            return False
        experiment = client.get_experiment(run.info.experiment_id)
        deleted = experiment.lifecycle_stage == "deleted" or experiment.tags.get(TAG_DELETED) == "true"
        run_id = run.info.run_id
        client.restore_run(run_id)  # MLflow changes only active runs; its experiment stays deleted
        try:
            self._end(client, run, why, deleted)
        finally:
            client.delete_run(run_id)
        self._abandoned.discard(run_id)
        return True

    def _end(self, client, run, why: str, deleted: bool) -> None:
        """Ends a RUNNING run whose logging never finishes: FAILED, or KILLED if its classifier is gone; tagged why."""
        run_id = run.info.run_id
        client.set_tag(
            run_id,
            TAG_ABANDONED,
            f"Logging never finished: {why}." + (" Its classifier was deleted." if deleted else ""),
        )
        if deleted:
            client.set_tag(run_id, TAG_DELETED, "true")
        client.set_terminated(run_id, "KILLED" if deleted else "FAILED")

    def flush(self, timeout: float | None = None) -> bool:
        """Logs everything this tracker has seen so far; False if something is still not logged."""
        marker = _Flush()
        self._queue.put(marker)
        self._start_worker()
        marker.done.wait(timeout)
        with self._state_lock:
            seen = sorted(self._seen)
        ok = [self.sync(classifier_id) for classifier_id in seen]
        return all(ok)

    def _at_exit(self) -> None:
        """At interpreter exit: no new sweep; the run being logged is finished, and what this process did is logged.

        A process that trained or deleted nothing (a short CLI command) waits only for a run already
        under way; whatever its sweep did not reach, the next process's sweep logs.
        """
        self._sweeps_off.set()
        with self._state_lock:
            seen = bool(self._seen)
        if seen:
            self.flush(timeout=EXIT_FLUSH_SECONDS)
        elif self._run_lock.acquire(timeout=EXIT_FLUSH_SECONDS):  # a sweep's run being logged is finished first
            self._runs_closed = True  # and no other starts: a short command does not wait for a whole sweep
            self._run_lock.release()

    @contextmanager
    def _one_run(self) -> Iterator[None]:
        """Held while one run is logged, so exit can let it finish; refuses new runs once exit closed them."""
        with self._run_lock:
            if self._runs_closed:
                raise TrackingError("Not logged: this process is exiting; the next Workbench with tracking logs it")
            yield

    # staging deletes ------------------------------------------------------------------
    def stage_delete(self, classifier_id: str) -> None:
        """Before a delete: copies what logging its history needs, so the delete never waits for MLflow.

        The "deleted" event then logs its remaining versions from the copy, tags its runs deleted and
        removes its registered model. Never raises: a copy that fails costs only that history.
        """
        try:
            tracked_files.stage(self.store, classifier_id)
        except Exception:
            log.exception(
                "could not keep %s for MLflow before its delete; its unlogged versions are lost", classifier_id
            )

    def unstage_delete(self, classifier_id: str) -> None:
        """After a delete that did not happen: drops the copy `stage_delete` made (never raises)."""
        try:
            tracked_files.unstage(self.store, classifier_id)
        except Exception:
            log.exception("could not remove the MLflow copy of %s", classifier_id)

    # syncing ----------------------------------------------------------------------
    def sync(self, classifier_id: str, wait_for_others_s: float = 0.0) -> bool:
        """Makes MLflow match the store for one classifier now; on failure records a warning (never raises).

        With `wait_for_others_s`, versions another live process is logging (a CLI create's background
        logger) are waited for up to that long, then checked again.
        """
        with self._state_lock:
            self._seen.add(classifier_id)
        deadline = time.monotonic() + wait_for_others_s
        synced = self._sync_one(classifier_id)
        while not synced and self.logged_elsewhere(classifier_id) and time.monotonic() < deadline:
            time.sleep(ELSEWHERE_POLL_S)
            synced = self._sync_one(classifier_id)
        return synced

    def _sync_one(self, classifier_id: str) -> bool:
        with self._lock, quiet_mlflow():
            try:
                with logging_claim(self.store.home, classifier_id):
                    self._sync(classifier_id)
            except Exception as exc:  # tracking must never break training or serving
                self.warnings[classifier_id] = self._warning(classifier_id, exc)
                self._elsewhere[classifier_id] = isinstance(exc, LoggedElsewhere)
                return False
            self.warnings.pop(classifier_id, None)
            self._elsewhere.pop(classifier_id, None)
            return True

    def logged_elsewhere(self, classifier_id: str) -> bool:
        """True while the last sync found another live process logging this classifier's versions."""
        return self._elsewhere.get(classifier_id, False)

    def _warning(self, classifier_id: str, exc: Exception) -> str:
        missing = [str(v.version) for v in self._store_versions(classifier_id)]
        failures = len(self._failures_of(classifier_id))
        what = (
            f"runs and registered versions for versions {', '.join(missing)} (unless logged earlier)"
            if missing
            else "its experiment"
        )
        if failures:
            what += f", {failures} failed training run(s)"
        reason = " ".join(str(exc).split())[:300]
        return (
            f"MLflow tracking at {self.uri} failed ({type(exc).__name__}: {reason}). Not logged yet: {what}. "
            f"{_hint(self.uri, reason)}"
            f"Training and classify are unaffected; retried every {self.interval_s:g} s, at the next training, "
            f"and by Workbench.tracker.sync()."
        )

    def _failures_of(self, classifier_id: str) -> list[Failure]:
        with self._state_lock:
            return [f for f in self._failures if f.classifier_id == classifier_id]

    def _store_versions(self, classifier_id: str) -> list[VersionRecord]:
        try:
            return self.store.versions(classifier_id)
        except Exception:
            return []

    def _sync(self, classifier_id: str) -> None:
        client = self.client()
        try:
            files = ClassifierFiles.from_store(self.store, classifier_id)
        except ClassifierNotFound:
            staged = tracked_files.staged(self.store, classifier_id)
            experiment = client.get_experiment_by_name(classifier_id)
            if (
                experiment is not None and experiment.lifecycle_stage == "deleted"
            ):  # forgotten already: never resurrected
                self._end_runs_of_deleted(client, experiment.experiment_id)
                tracked_files.unstage(self.store, classifier_id)
                return
            if staged is not None:  # deleted before all its versions were logged: log them as history
                self._mirror(client, staged, alias=False)
            self._forget(client, classifier_id)
            tracked_files.unstage(self.store, classifier_id)
            return
        self._mirror(client, files, alias=True)

    def _end_runs_of_deleted(self, client, experiment_id: str) -> None:
        """Ends the runs left RUNNING in a deleted classifier's experiment; TrackingError if a logger is alive."""
        from mlflow.entities import ViewType

        running = client.search_runs(
            [experiment_id], filter_string="attributes.status = 'RUNNING'", run_view_type=ViewType.ALL, max_results=5000
        )
        waiting = [run.info.run_id for run in running if not self._end_hidden(client, run)]
        if waiting:
            raise TrackingError(
                f"run(s) {', '.join(waiting)} of a deleted classifier are still being logged by a live "
                f"process; ended once it stops, checked again in {self.interval_s:g} s"
            )

    def _mirror(self, client, files: ClassifierFiles, alias: bool) -> None:
        """Logs what MLflow lacks of this classifier; with `alias`, points `serving` at the store's serving version.

        Without `alias` the classifier is deleted (its history, from the staged copy): runs are tagged so.
        """
        record = files.record
        experiment_id = self._experiment(client, record)
        runs, busy = self._version_runs(client, experiment_id, files, deleted=not alias)
        for i, version in enumerate(files.versions):
            if version.version not in runs and version.version not in busy:
                parent = files.versions[i - 1] if i else None
                runs[version.version] = self._log_version(client, experiment_id, files, version, parent)
        for failure in self._failures_of(record.classifier_id):
            self._log_failure(client, experiment_id, files, failure)
            with self._state_lock:
                self._failures.remove(failure)
        if alias and record.serving_version in runs:
            self._point_alias(client, record.classifier_id, runs[record.serving_version].data.tags[TAG_REGISTERED])
        if busy:
            raise LoggedElsewhere(
                f"Version(s) {', '.join(map(str, sorted(busy)))} of {record.classifier_id} are being logged by "
                f"another live process ({'; '.join(busy.values())}); checked again in {self.interval_s:g} s"
            )

    def _point_alias(self, client, classifier_id: str, registered: str) -> None:
        current = client.get_registered_model(classifier_id).aliases.get(SERVING_ALIAS)
        if current is None or str(current) != registered:
            client.set_registered_model_alias(classifier_id, SERVING_ALIAS, registered)

    def _experiment(self, client, record: ClassifierRecord) -> str:
        """The classifier's experiment (named after its id), created on first use as a model-training experiment.

        One deleted in MLflow (by a person, in the UI) is not resurrected: logging waits, with a
        warning, until someone restores it.
        """
        experiment = client.get_experiment_by_name(record.classifier_id)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                raise TrackingError(
                    f"MLflow experiment {record.classifier_id} (id {experiment.experiment_id}) is deleted; "
                    f"restore it (`mlflow experiments restore --experiment-id {experiment.experiment_id}`) to log again"
                )
            view_key, view = run_record.key_metrics_view(experiment.creation_time or 0)
            for key, value in ((EXPERIMENT_KIND_TAG, EXPERIMENT_KIND), (view_key, view)):
                if experiment.tags.get(key) != value:  # logged by an earlier workbench
                    client.set_experiment_tag(experiment.experiment_id, key, value)
            return experiment.experiment_id
        location = f"{self.target.artifact_root}/{record.classifier_id}" if self.target.artifact_root else None
        tags = {
            "workbench.classifier_name": record.name,
            "workbench.owner": record.owner,
            EXPERIMENT_KIND_TAG: EXPERIMENT_KIND,
            NOTE_TAG: f"Watson classifier **{record.name}** (`{record.classifier_id}`), owner {record.owner}: "
            f"one run per training. Heads: {HEAD_DESCRIPTION}.",
        }
        experiment_id = client.create_experiment(record.classifier_id, artifact_location=location, tags=tags)
        view_key, view = run_record.key_metrics_view(client.get_experiment(experiment_id).creation_time or 0)
        client.set_experiment_tag(experiment_id, view_key, view)  # dated by the experiment: the same on every sync
        return experiment_id

    # runs left behind ----------------------------------------------------------------
    def _version_runs(
        self, client, experiment_id: str, files: ClassifierFiles, deleted: bool = False
    ) -> tuple[dict[int, Any], dict[int, str]]:
        """Completely logged version runs by version, and the versions a live process is logging now (with its owner).

        Runs left RUNNING by a process that is gone are settled first: a completely logged one is
        finished, a half-logged one is ended FAILED (tagged why) and its version logged afresh.
        """
        complete: dict[int, Any] = {}
        busy: dict[int, str] = {}
        for run in client.search_runs([experiment_id], max_results=5000):
            tags = run.data.tags
            version_run = tags.get(TAG_KIND) == "version"
            logged = tags.get(TAG_LOGGED) == "true"
            if run.info.status == "RUNNING":
                why = self._why_abandoned(run)
                if why is None:
                    if version_run and not logged:
                        busy[int(tags[TAG_VERSION])] = tags.get(TAG_OWNER, "an unknown process")
                    continue
                if not (version_run and logged):
                    self._abandon(client, run, files.classifier_id, why, deleted)
                    continue
                self._adopt(client, run, files, why)
            if version_run and logged:
                complete.setdefault(int(tags[TAG_VERSION]), run)
        return complete, busy

    def _why_abandoned(self, run) -> str | None:
        """Why a RUNNING run's logging will never finish (its owner is dead or silent), or None if it may."""
        if run.info.run_id in self._abandoned:
            return f"its logging by {self.owner} failed part-way"
        tags = run.data.tags
        heartbeat = tags.get(TAG_HEARTBEAT) or tags.get(TAG_LOGGING_SINCE) or run.info.start_time
        return owners.why_abandoned(
            tags.get(TAG_OWNER), int(heartbeat) if heartbeat else None, self.heartbeat_timeout_s
        )

    def _abandon(self, client, run, classifier_id: str, why: str, deleted: bool = False) -> None:
        """Ends a half-logged run (FAILED; KILLED if its classifier is `deleted`), tagged with why, and drops the
        registered versions it made.

        A run of a dead process stays as evidence of the crash; one this tracker failed to finish
        (an outage, a delete under way) is its own debris and is deleted too, as it is logged afresh.
        Ended first either way: a deleted run keeps its status, and one left RUNNING would stay so for good.
        """
        run_id, tags = run.info.run_id, run.data.tags
        for stale in client.search_model_versions(f"name='{classifier_id}' and run_id='{run_id}'"):
            client.delete_model_version(classifier_id, stale.version)
        if tags.get(TAG_KIND) == "version":
            client.set_tag(run_id, TAG_KIND, KIND_ABANDONED)  # not a version run any more: it is logged afresh
            client.set_tag(run_id, "mlflow.runName", f"v{tags.get(TAG_VERSION)} (abandoned)")
        self._end(client, run, why, deleted)
        if run_id in self._abandoned:  # tagged first: restoring a deleted experiment restores its deleted runs too
            client.delete_run(run_id)
            self._abandoned.discard(run_id)

    def _adopt(self, client, run, files: ClassifierFiles, why: str) -> None:
        """Finishes a completely logged run whose owner died before marking it FINISHED."""
        number = int(run.data.tags[TAG_VERSION])
        created = [v.created for v in files.versions if v.version == number]
        client.set_tag(run.info.run_id, TAG_ADOPTED, f"Finished by {self.owner}: {why}.")
        client.set_terminated(run.info.run_id, "FINISHED", end_time=iso_to_ms(created[0]) if created else None)

    # logging a version ------------------------------------------------------------------
    def _owner_tags(self) -> dict[str, str]:
        now = str(int(time.time() * 1000))
        return {TAG_OWNER: self.owner, TAG_HEARTBEAT: now, TAG_LOGGING_SINCE: now}

    def _heartbeat(self, client, run_id: str) -> None:
        client.set_tag(run_id, TAG_HEARTBEAT, str(int(time.time() * 1000)))

    def _log_version(
        self, client, experiment_id: str, files: ClassifierFiles, version: VersionRecord, parent: VersionRecord | None
    ) -> Any:
        """One successful training: params, metrics, tags, dataset, plots, manifest, model, registry version."""
        record = files.record
        cid = record.classifier_id
        rows = curation.version_rows(files.rows, version)
        added = added_since(rows, parent.last_example_id if parent else 0)
        changes = curation.version_changes(files.rows, parent, version)
        curated = f" Curated: {changes.summary()}." if changes.removed or changes.relabelled else ""
        seconds = version.metrics.get("embed_seconds", 0.0) + version.metrics.get("fit_seconds", 0.0)
        end_ms = iso_to_ms(version.created)
        tags = {
            TAG_KIND: "version",
            TAG_OUTCOME: "ready",
            TAG_VERSION: str(version.version),
            TAG_PARENT: str(parent.version) if parent else "",
            TAG_ADDED: added,
            TAG_CURATED: changes.summary(),
            **self._owner_tags(),
            TAG_CLASSES: json.dumps(version.classes),
            **run_record.source_tags(),
            "workbench.classifier_id": cid,
            "workbench.classifier_name": record.name,
            "workbench.owner": record.owner,
            NOTE_TAG: f"Version {version.version} of **{record.name}** (`{cid}`). "
            f"{'Created' if parent is None else f'Retrained after v{parent.version}'}; added {added}.{curated}",
        }
        with self._one_run():
            run = client.create_run(
                experiment_id, start_time=end_ms - int(seconds * 1000), tags=tags, run_name=f"v{version.version}"
            )
            try:
                return self._fill_run(client, experiment_id, run, files, version, rows, changes, end_ms)
            except Exception:
                self._abandoned.add(run.info.run_id)  # deleted and logged afresh by the next sync
                raise

    def _fill_run(
        self,
        client,
        experiment_id: str,
        run,
        files: ClassifierFiles,
        version: VersionRecord,
        rows: list[ExampleRow],
        changes: curation.VersionChanges,
        end_ms: int,
    ) -> Any:
        """The run's numbers, dataset and artifacts; its LoggedModel (with the metrics); the registered version."""
        record, run_id = files.record, run.info.run_id
        changed = curation_params(changes)
        model_id = run_record.create_model(
            client, experiment_id, run, record.classifier_id, version, self.backbone, extra_params=changed
        )
        run_record.log_numbers(client, run_id, version, self.backbone, end_ms, model_id=model_id)
        client.log_batch(run_id, params=run_record.params(changed))
        run_record.log_dataset(client, run, record.classifier_id, version, rows)
        with tempfile.TemporaryDirectory(prefix="workbench-run-") as tmp:
            folder = Path(tmp)
            run_record.write_artifacts(folder / "files", files, self.store, self.backbone, version, rows)
            write_changes(folder / "files", changes)
            self._heartbeat(client, run_id)
            client.log_artifacts(run_id, str(folder / "files"))
            self._heartbeat(client, run_id)
            run_record.log_model(client, model_id, run, folder, files, self.backbone, version)
        self._heartbeat(client, run_id)
        registered = run_record.register(client, record, version, run, model_id)
        client.set_tag(run_id, TAG_REGISTERED, registered)
        client.set_tag(run_id, TAG_LOGGED, "true")
        client.set_terminated(run_id, "FINISHED", end_time=end_ms)
        return client.get_run(run_id)

    def _log_failure(self, client, experiment_id: str, files: ClassifierFiles, failure: Failure) -> None:
        """A failed training: a run marked FAILED with the explanation (the alias does not move)."""
        record = files.record
        tags = {
            TAG_KIND: "failed_training",
            TAG_OUTCOME: "failed",
            TAG_EXPLANATION: failure.explanation[:5000],
            TAG_PARENT: str(record.serving_version or ""),
            "workbench.classifier_id": record.classifier_id,
            NOTE_TAG: f"Training failed: {failure.explanation}",
            **self._owner_tags(),
            **run_record.source_tags(),
        }
        rows = [r for r in files.rows if r.removed_by is None]
        counts = manifest_frame(rows)["class"].replace("", "(negative)").value_counts()
        tags[TAG_CLASSES] = json.dumps([c for c in counts.index if c != "(negative)"])
        with self._one_run():
            run = client.create_run(experiment_id, start_time=failure.at_ms, tags=tags, run_name="failed training")
            client.log_batch(run.info.run_id, params=run_record.params({"images": len(rows)}))
            client.set_terminated(run.info.run_id, "FAILED", end_time=failure.at_ms)

    def _forget(self, client, classifier_id: str) -> None:
        """A deleted classifier: its registered model goes; its runs stay, tagged deleted."""
        from mlflow.exceptions import MlflowException

        experiment = client.get_experiment_by_name(classifier_id)
        if experiment is None:
            return
        try:
            client.delete_registered_model(classifier_id)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        if experiment.lifecycle_stage == "deleted":  # forgotten already (MLflow refuses writes into it)
            return
        runs = client.search_runs([experiment.experiment_id], max_results=5000)
        live = [run.info.run_id for run in runs if run.info.status == "RUNNING" and self._why_abandoned(run) is None]
        if live:  # its logger finishes it first (a deleted experiment's runs cannot be changed)
            raise TrackingError(
                f"run(s) {', '.join(live)} of deleted {classifier_id} are still being logged by a "
                f"live process; its experiment is deleted once they end"
            )
        for run in runs:
            if run.info.status == "RUNNING":  # its logger is gone: ended, not left RUNNING in a deleted experiment
                why = self._why_abandoned(run)
                assert why is not None
                self._end(client, run, why, deleted=True)
            elif run.data.tags.get(TAG_DELETED) != "true":
                client.set_tag(run.info.run_id, TAG_DELETED, "true")
        client.set_experiment_tag(experiment.experiment_id, TAG_DELETED, "true")
        client.delete_experiment(experiment.experiment_id)  # soft: restorable, its runs kept

    # reading ------------------------------------------------------------------------
    def versions_frame(self, classifier_id: str) -> pd.DataFrame:
        """Every logged version of a classifier with its MLflow metrics, one row per version (oldest first)."""
        import pandas as pd

        if not self.sync(classifier_id, wait_for_others_s=OTHERS_WAIT_S):
            raise TrackingError(self.warnings.get(classifier_id, "MLflow tracking failed"))
        client = self.client()
        experiment = client.get_experiment_by_name(classifier_id)
        runs = client.search_runs(
            [experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'version'", max_results=5000
        )
        serving = self.store.classifier(classifier_id).serving_version
        rows = []
        for run in runs:
            tags = run.data.tags
            classes = tags.get(TAG_CLASSES) or run.data.params.get(
                "classes", "[]"
            )  # runs logged before the tag: a param
            rows.append(
                {
                    "version": int(tags[TAG_VERSION]),
                    "serving": int(tags[TAG_VERSION]) == serving,
                    "registered_version": int(tags[TAG_REGISTERED]),
                    "run_id": run.info.run_id,
                    "parent_version": int(tags[TAG_PARENT]) if tags.get(TAG_PARENT) else None,
                    "added": tags.get(TAG_ADDED),
                    "class_names": json.loads(classes),
                    **{key: count(value) if key in COUNT_METRICS else value for key, value in run.data.metrics.items()},
                }
            )
        if not rows:
            return pd.DataFrame()
        frame = pd.DataFrame(rows).sort_values("version").reset_index(drop=True)
        counts = [c for c in ("parent_version", *COUNT_METRICS) if c in frame]
        return frame.astype({c: "Int64" for c in counts})  # whole numbers, None as <NA> (not 1.0 and NaN)


def new_tracker(store: Store, backbone: Backbone, tracking_uri: str | os.PathLike | bool | None) -> Tracker | None:
    """A Tracker for the resolved target, or None when tracking is off."""
    target = tracking_target(tracking_uri)
    return Tracker(store, backbone, target) if target is not None else None


# exports (issue 9): a separate hook, so the Tracker's own logging stays as it is -----------
EXPORT_ARTIFACT_DIR = "export"


def log_export(tracker: Tracker, classifier_id: str, version: int, path: Path) -> bool:
    """Attaches an exported model file to its version's run under `export/` (the MLflow UI's download).

    The artifact is `export/{classifier_id}-v{version}.onnx|.mlmodel`. Logs the version's run first
    if it is missing (`sync`). Never raises: a failure becomes the
    classifier's tracking warning and False.
    """
    if not tracker.sync(classifier_id):
        return False
    with tracker._lock:
        try:
            client = tracker.client()
            experiment = client.get_experiment_by_name(classifier_id)
            runs = client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.`{TAG_KIND}` = 'version' and tags.`{TAG_VERSION}` = '{int(version)}'"
                f" and tags.`{TAG_LOGGED}` = 'true'",
                max_results=1,
            )
            if not runs:
                raise TrackingError(f"no logged run for version {version}")
            run_id = runs[0].info.run_id
            name = f"{classifier_id}-v{int(version)}{path.suffix}"
            logged = {item.path for item in client.list_artifacts(run_id, EXPORT_ARTIFACT_DIR)}
            if f"{EXPORT_ARTIFACT_DIR}/{name}" not in logged:
                with tempfile.TemporaryDirectory(prefix="workbench-export-") as tmp:
                    staged = Path(tmp) / name
                    staged.write_bytes(path.read_bytes())
                    client.log_artifact(run_id, str(staged), EXPORT_ARTIFACT_DIR)
        except Exception as exc:  # tracking must never break exporting
            tracker.warnings[classifier_id] = tracker._warning(classifier_id, exc)
            return False
    return True


__all__ = ["Tracker", "TrackingError", "TrackingTarget", "new_tracker", "tracking_target", "tracking_uri"]
