"""Writing one run: a version's (then its registered version) or a failed training's, signed by this process.

`run_record` decides what a run holds; this module creates and ends it. Every run records which
process logs it (`host:pid:start`) and a heartbeat while it does, so a run a dead process left
RUNNING is told apart from one being logged right now. At exit the run under way is finished and
no other starts.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import TrackingError
from ..core.records import ExampleRow, VersionRecord
from ..engine.backbone import Backbone
from ..store import curation
from ..store.database import Store
from . import run_record
from .run_record import added_since, curation_params, iso_to_ms, manifest_frame, write_changes
from .tags import (
    NOTE_TAG,
    TAG_ADDED,
    TAG_CLASSES,
    TAG_CLASSIFIER_ID,
    TAG_CLASSIFIER_NAME,
    TAG_CLASSIFIER_OWNER,
    TAG_CURATED,
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
)
from .tracked_files import ClassifierFiles


@dataclass
class Failure:
    """A failed training waiting to be logged as a failed run."""

    classifier_id: str
    explanation: str
    at_ms: int


class RunWriter:
    """Logs the runs of one tracker's process; `failed_part_way(run_id)` hears of a run it began and left unfinished."""

    def __init__(self, store: Store, backbone: Backbone, owner: str, failed_part_way: Callable[[str], None]) -> None:
        self.store = store
        self.backbone = backbone
        self.owner = owner
        self._failed_part_way = failed_part_way
        self._run_lock = threading.Lock()  # held while one run is being logged
        self._runs_closed = False  # set at exit: no new run starts

    def close_runs(self, timeout: float) -> None:
        """Lets the run being logged finish (waits up to `timeout`), then refuses new ones."""
        if self._run_lock.acquire(timeout=timeout):
            self._runs_closed = True
            self._run_lock.release()

    @contextmanager
    def _one_run(self) -> Iterator[None]:
        """Held while one run is logged, so exit can let it finish; refuses new runs once exit closed them."""
        with self._run_lock:
            if self._runs_closed:
                raise TrackingError("Not logged: this process is exiting; the next Workbench with tracking logs it")
            yield

    def _owner_tags(self) -> dict[str, str]:
        now = str(int(time.time() * 1000))
        return {TAG_OWNER: self.owner, TAG_HEARTBEAT: now, TAG_LOGGING_SINCE: now}

    def _heartbeat(self, client, run_id: str) -> None:
        client.set_tag(run_id, TAG_HEARTBEAT, str(int(time.time() * 1000)))

    def log_version(
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
            TAG_CLASSIFIER_ID: cid,
            TAG_CLASSIFIER_NAME: record.name,
            TAG_CLASSIFIER_OWNER: record.owner,
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
                self._failed_part_way(run.info.run_id)  # deleted and logged afresh by the next sync
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

    def log_failure(self, client, experiment_id: str, files: ClassifierFiles, failure: Failure) -> None:
        """A failed training: a run marked FAILED with the explanation (the alias does not move)."""
        record = files.record
        tags = {
            TAG_KIND: "failed_training",
            TAG_OUTCOME: "failed",
            TAG_EXPLANATION: failure.explanation[:5000],
            TAG_PARENT: str(record.serving_version or ""),
            TAG_CLASSIFIER_ID: record.classifier_id,
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
