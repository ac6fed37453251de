"""MLflow tracking: an experiment per classifier, a run per training, registered versions, alias `serving`.

The `Tracker` mirrors the store into MLflow. The store is the source of truth: at start and every
`SYNC_SECONDS` it compares every classifier with MLflow and logs what is missing, so MLflow converges
after a crash, an outage or a process that ran with tracking off. Training events only bring a
classifier's turn forward. All logging happens on the tracker's own thread (`worker`), so a slow or
unreachable tracking server never delays a training or a delete; what could not be logged is reported
as a warning and retried. Every sync reads the store, so it is idempotent (`mirror`): a version is
logged once, however many times it is asked for, and by however many processes: a sync holds the
classifier's logging claim (`claims`) from reading MLflow to its last write, so two servers on one
home never both find a version missing and both log it. Runs a dead process left RUNNING are settled
by `recovery`; `run_writer` signs every run with its logger and a heartbeat so they can be told apart.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import TrackingError
from ..core.events import ClassifierEvent
from ..core.records import VersionRecord
from ..engine.backbone import Backbone
from ..store import owners
from ..store.database import Store
from . import claims, frames, links, tracked_files
from .claims import LoggedElsewhere, logging_claim
from .mirror import Mirror
from .recovery import Recovery
from .run_writer import Failure, RunWriter
from .tags import TAG_KIND, TAG_LOGGED, TAG_VERSION
from .target import Connection, TrackingTarget, quiet_mlflow, tracking_target
from .worker import EXIT_FLUSH_SECONDS, Worker, sync_interval

if TYPE_CHECKING:  # imported in `frames.versions_frame`: a short CLI command builds a Tracker and needs no pandas
    import pandas as pd

log = logging.getLogger(__name__)

ELSEWHERE_POLL_S = 0.5  # how often a sync looks again at versions another live process is logging
OTHERS_WAIT_S = 120.0  # versions_frame waits this long for another process (a CLI create) to log
INVALID_HOST = "Invalid Host header"  # MLflow's 403 for a Host not in its --allowed-hosts (a colleague's URL)
TRACKED_STAGES = ("started", "ready", "failed", "deleted", "promoted")  # "promoted": the alias follows at once


def _hint(uri: str, reason: str) -> str:
    """What to do about a failure whose cause is known: the server's host check refusing the name used for it."""
    if INVALID_HOST not in reason:
        return ""
    host = urllib.parse.urlsplit(uri).netloc
    return (
        f"The server refuses the host name {host!r}: start `mlflow server` with "
        f"--allowed-hosts listing it (e.g. '{host.rsplit(':', 1)[0]}:*'). "
    )


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
        self.owner = owners.this_process()  # recorded on every run this tracker logs
        self.warnings: dict[str, str] = {}  # classifier_id -> what could not be logged, and why
        self._connection = Connection(target)
        self._recovery = Recovery(self.owner, self.interval_s)
        self._writer = RunWriter(store, backbone, self.owner, self._recovery.failed_part_way)
        self._mirror = Mirror(store, target.artifact_root, self.interval_s, self._recovery, self._writer)
        self._worker = Worker(self.interval_s, self.sweep, self._heard, self._at_exit)
        self._lock = threading.RLock()  # one MLflow conversation at a time
        self._seen_lock = threading.Lock()  # guards _seen (held only briefly)
        self._seen: set[str] = set()  # classifiers this process trained, deleted or asked for: flushed at exit
        self._elsewhere: dict[str, bool] = {}  # classifier id -> its last sync met another process logging it

    @property
    def uri(self) -> str:
        return self.target.uri

    def client(self):
        """The MlflowClient for this target, with bounded HTTP timeouts and retries."""
        return self._connection.client()

    # links into the MLflow UI -------------------------------------------------------
    def experiment_url(self, classifier_id: str, base_url: str = links.UI_URL) -> str:
        """The MLflow UI's runs table of a classifier's experiment, key metrics as columns (`mlflow ui` at `base_url`).

        The link opens the UI in its "Model training" mode whatever the browser last used and shows
        the experiment's "Key metrics" view.
        """
        return links.experiment_url(self._experiment_id(classifier_id), base_url)

    def compare_url(self, classifier_id: str, run_ids: list[str], base_url: str = links.UI_URL) -> str:
        """The MLflow UI's compare view of these runs of a classifier (pick a plot under Artifacts)."""
        return links.compare_url(self._experiment_id(classifier_id), run_ids, base_url)

    def registered_model_url(self, classifier_id: str, base_url: str = links.UI_URL) -> str:
        """The MLflow UI's page of a classifier's registered model (its versions, `@ serving` on one)."""
        return links.registered_model_url(classifier_id, base_url)

    def _experiment_id(self, classifier_id: str) -> str:
        experiment = self.client().get_experiment_by_name(classifier_id)
        if experiment is None:
            raise TrackingError(f"No MLflow experiment for {classifier_id} at {self.uri} yet")
        return experiment.experiment_id

    # the worker -------------------------------------------------------------------
    def start(self) -> None:
        """Sweeps every classifier now (in the background), then every `interval_s`."""
        self._worker.start()

    def close(self, timeout: float | None = EXIT_FLUSH_SECONDS) -> None:
        """Stops the background worker after what it is doing (waits up to `timeout`); no sweep runs after."""
        self._worker.close(timeout)

    def __call__(self, event: ClassifierEvent) -> None:
        """The JobRunner listener: queues the event and returns at once (never raises)."""
        if event.stage not in TRACKED_STAGES:
            return
        if event.stage == "failed":
            self._mirror.add_failure(Failure(event.classifier_id, event.explanation or "", int(time.time() * 1000)))
        with self._seen_lock:
            self._seen.add(event.classifier_id)
        self._worker.put(event.classifier_id)

    def _heard(self, classifier_id: str) -> None:
        """The worker's turn for an event's classifier: it, then every classifier still carrying a warning."""
        self.sync(classifier_id)
        for other in [c for c in list(self.warnings) if c != classifier_id]:
            self.sync(other)

    def sweep(self) -> bool:
        """Mirrors every classifier in the store, and the history of deleted ones; False if something is left."""
        try:
            ids = sorted(self.store.classifier_ids() | set(tracked_files.staged_ids(self.store)))
        except Exception:  # the store itself is unreadable: nothing to mirror now
            log.exception("MLflow tracking could not read the store")
            return False
        ok = True
        for classifier_id in ids:
            if self._worker.sweeps_off.is_set():
                return False
            ok = self._sync_one(classifier_id) and ok
        claims.remove_leftovers(self.store.home, set(ids))  # claim files of classifiers deleted long ago
        return self._end_hidden_runs() and ok

    def _end_hidden_runs(self) -> bool:
        """Ends runs left RUNNING where no classifier's sync looks (`Recovery.end_hidden_runs`); False if some wait."""
        with self._lock, quiet_mlflow():
            try:
                return self._recovery.end_hidden_runs(self.client())
            except Exception:  # tracking must never break anything; the next sweep tries again
                log.warning("MLflow tracking could not end runs left RUNNING in deleted experiments", exc_info=True)
                return False

    def flush(self, timeout: float | None = None) -> bool:
        """Logs everything this tracker has seen so far; False if something is still not logged."""
        self._worker.catch_up(timeout)
        with self._seen_lock:
            seen = sorted(self._seen)
        ok = [self.sync(classifier_id) for classifier_id in seen]
        return all(ok)

    def _at_exit(self) -> None:
        """At interpreter exit: no new sweep; the run being logged is finished, and what this process did is logged.

        A process that trained or deleted nothing (a short CLI command) waits only for a run already
        under way; whatever its sweep did not reach, the next process's sweep logs.
        """
        self._worker.sweeps_off.set()
        with self._seen_lock:
            seen = bool(self._seen)
        if seen:
            self.flush(timeout=EXIT_FLUSH_SECONDS)
        else:  # a sweep's run being logged is finished first, and no other starts: no waiting for a whole sweep
            self._writer.close_runs(timeout=EXIT_FLUSH_SECONDS)

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
        with self._seen_lock:
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
                with logging_claim(self.store, classifier_id) as claim:
                    if self._mirror.sync(self.client(), classifier_id):  # deleted, its history logged: done for good
                        claim.remove()
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
        failures = len(self._mirror.failures_of(classifier_id))
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

    def _store_versions(self, classifier_id: str) -> list[VersionRecord]:
        try:
            return self.store.versions(classifier_id)
        except Exception:
            return []

    # reading ------------------------------------------------------------------------
    def why_not_logged(self, classifier_id: str, version: int) -> str | None:
        """None when MLflow holds a completely logged run of this version (asked now: one search); else why not.

        The reason is the classifier's tracking warning when a sync failed, else what MLflow answered.
        What `workbench wait` says, so "logged" is never claimed for a version MLflow does not have.
        """
        with self._lock, quiet_mlflow():
            try:
                if _version_run(self.client(), classifier_id, version) is not None:
                    return None
                found = f"MLflow at {self.uri} has no logged run of version {version}"
            except Exception as exc:  # unreachable, refused, ...: the warning (if any) says more
                reason = " ".join(str(exc).split())[:300]
                found = f"MLflow at {self.uri} could not be asked ({type(exc).__name__}: {reason})"
        return self.warnings.get(classifier_id) or found

    def versions_frame(self, classifier_id: str) -> pd.DataFrame:
        """Every logged version of a classifier with its MLflow metrics, one row per version (oldest first)."""
        if not self.sync(classifier_id, wait_for_others_s=OTHERS_WAIT_S):
            raise TrackingError(self.warnings.get(classifier_id, "MLflow tracking failed"))
        return frames.versions_frame(self.client(), self.store, classifier_id)


def new_tracker(store: Store, backbone: Backbone, tracking_uri: str | os.PathLike | bool | None) -> Tracker | None:
    """A Tracker for the resolved target, or None when tracking is off."""
    target = tracking_target(tracking_uri)
    return Tracker(store, backbone, target) if target is not None else None


def _version_run(client, classifier_id: str, version: int):
    """The completely logged run of a classifier's version in MLflow, or None (its experiment missing too)."""
    experiment = client.get_experiment_by_name(classifier_id)
    if experiment is None or experiment.lifecycle_stage == "deleted":
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{TAG_KIND}` = 'version' and tags.`{TAG_VERSION}` = '{int(version)}'"
        f" and tags.`{TAG_LOGGED}` = 'true'",
        max_results=1,
    )
    return runs[0] if runs else None


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
            run = _version_run(client, classifier_id, version)
            if run is None:
                raise TrackingError(f"no logged run for version {version}")
            run_id = run.info.run_id
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


__all__ = ["Tracker", "log_export", "new_tracker"]
