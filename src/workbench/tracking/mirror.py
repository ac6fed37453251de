"""Mirroring one classifier: MLflow brought to match the store, however often it is asked (idempotent).

Reads the store (or, for a deleted classifier, the copy its delete staged), then logs what MLflow
lacks: a run and a registered version per stored version, a failed run per failed training, the
`serving` alias on the version classify uses. A deleted classifier's history is logged, then its
experiment deleted; one already deleted in MLflow is never resurrected.
"""

from __future__ import annotations

import threading

from ..core.errors import ClassifierNotFound, TrackingError
from ..core.records import ClassifierRecord
from ..store.database import Store
from . import run_record, tracked_files
from .claims import LoggedElsewhere
from .recovery import Recovery
from .run_record import HEAD_DESCRIPTION
from .run_writer import Failure, RunWriter
from .tags import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    NOTE_TAG,
    SERVING_ALIAS,
    TAG_CLASSIFIER_NAME,
    TAG_CLASSIFIER_OWNER,
    TAG_REGISTERED,
)
from .tracked_files import ClassifierFiles


class Mirror:
    """Brings MLflow to match the store for one classifier at a time (the caller holds its logging claim).

    Failed trainings wait here (`add_failure`) until their classifier's next sync logs them.
    """

    def __init__(
        self, store: Store, artifact_root: str | None, interval_s: float, recovery: Recovery, writer: RunWriter
    ) -> None:
        self.store = store
        self.artifact_root = artifact_root  # where new experiments keep artifacts (a local store), else the server's
        self.interval_s = interval_s  # for the messages: when the next sync looks again
        self._recovery = recovery
        self._writer = writer
        self._failures: list[Failure] = []
        self._failures_lock = threading.Lock()  # events append from the trainer's thread, syncs remove

    def add_failure(self, failure: Failure) -> None:
        with self._failures_lock:
            self._failures.append(failure)

    def failures_of(self, classifier_id: str) -> list[Failure]:
        with self._failures_lock:
            return [f for f in self._failures if f.classifier_id == classifier_id]

    def sync(self, client, classifier_id: str) -> bool:
        """Makes MLflow match the store (or a deleted classifier's staged copy) for one classifier; raises if not.

        True when the classifier is gone from the store and its history is logged: nothing is left to mirror.
        """
        try:
            files = ClassifierFiles.from_store(self.store, classifier_id)
        except ClassifierNotFound:
            staged = tracked_files.staged(self.store, classifier_id)
            experiment = client.get_experiment_by_name(classifier_id)
            if (
                experiment is not None and experiment.lifecycle_stage == "deleted"
            ):  # forgotten already: never resurrected
                self._recovery.end_runs_of_deleted(client, experiment.experiment_id)
                tracked_files.unstage(self.store, classifier_id)
                return True
            if staged is not None:  # deleted before all its versions were logged: log them as history
                self._mirror(client, staged, alias=False)
            self._recovery.forget(client, classifier_id)
            tracked_files.unstage(self.store, classifier_id)
            return True
        self._mirror(client, files, alias=True)
        return False

    def _mirror(self, client, files: ClassifierFiles, alias: bool) -> None:
        """Logs what MLflow lacks of this classifier; with `alias`, points `serving` at the store's serving version.

        Without `alias` the classifier is deleted (its history, from the staged copy): runs are tagged so.
        """
        record = files.record
        experiment_id = self._experiment(client, record)
        runs, busy = self._recovery.version_runs(client, experiment_id, files, deleted=not alias)
        for i, version in enumerate(files.versions):
            if version.version not in runs and version.version not in busy:
                parent = files.versions[i - 1] if i else None
                runs[version.version] = self._writer.log_version(client, experiment_id, files, version, parent)
        for failure in self.failures_of(record.classifier_id):
            self._writer.log_failure(client, experiment_id, files, failure)
            with self._failures_lock:
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
        location = f"{self.artifact_root}/{record.classifier_id}" if self.artifact_root else None
        tags = {
            TAG_CLASSIFIER_NAME: record.name,
            TAG_CLASSIFIER_OWNER: record.owner,
            EXPERIMENT_KIND_TAG: EXPERIMENT_KIND,
            NOTE_TAG: f"Watson classifier **{record.name}** (`{record.classifier_id}`), owner {record.owner}: "
            f"one run per training. Heads: {HEAD_DESCRIPTION}.",
        }
        experiment_id = client.create_experiment(record.classifier_id, artifact_location=location, tags=tags)
        view_key, view = run_record.key_metrics_view(client.get_experiment(experiment_id).creation_time or 0)
        client.set_experiment_tag(experiment_id, view_key, view)  # dated by the experiment: the same on every sync
        return experiment_id
