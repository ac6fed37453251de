"""The catalog of one owner's classifiers: Watson records, versions, out-of-fold scores, example images, waiting.

Everything here reads; a classifier of another owner is not found, as in Watson.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..analysis.training import OutOfFold
from ..core.errors import ClassifierNotFound, TrackingError, WaitTimeout
from ..core.records import ClassifierRecord
from ..core.vocabulary import SETTLED_STATUSES
from ..jobs.wait_progress import WaitBar
from ..scoring.export import coreml_available
from ..store import curation, promotion
from ..tracking.run_record import version_metrics
from .engine import Engine

if TYPE_CHECKING:
    import pandas

    from ..analysis.interpretation import Interpretation

WAIT_POLL_SECONDS = 0.05


def watson_record(record: ClassifierRecord, classes: list[str]) -> dict:
    """The Watson Classifier JSON for a stored record."""
    answer = {
        "classifier_id": record.classifier_id,
        "name": record.name,
        "owner": record.owner,
        "status": record.status,
        "core_ml_enabled": record.serving_version is not None and coreml_available(),
        "created": record.created,
        "updated": record.updated,
        "classes": [{"class": name} for name in classes],
        **promotion.serving_fields(record),  # extensions: serving_version, pinned_version (Watson clients ignore them)
    }
    if record.retrained:
        answer["retrained"] = record.retrained
    if record.explanation:
        answer["explanation"] = record.explanation
    return answer


class Catalog:
    """Reads one owner's classifiers from the engine's store (see the `Workbench` methods of the same names)."""

    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner

    def record(self, classifier_id: str) -> ClassifierRecord:
        """The stored record, if this owner owns it."""
        return self.engine.owned(classifier_id, self.owner)

    def exists(self, classifier_id: str) -> bool:
        """Whether this owner has the classifier."""
        try:
            self.record(classifier_id)
        except ClassifierNotFound:
            return False
        return True

    def get(self, classifier_id: str) -> dict:
        """The Watson Classifier record, with a warning when MLflow could not be reached."""
        record = self.record(classifier_id)
        parts = self.engine.open()
        answer = watson_record(record, parts.store.class_names(classifier_id))
        warning = parts.tracker.warnings.get(classifier_id) if parts.tracker is not None else None
        if warning:  # MLflow could not be reached: training and classify are unaffected, the user is told
            answer["warnings"] = [{"warning_id": TrackingError.error_id, "description": warning}]
        return answer

    def listing(self, verbose: bool) -> dict:
        """Watson Classifiers: brief (id, name, status) or, with verbose, full records."""
        store = self.engine.open().store
        records = store.classifiers(owner=self.owner)
        if verbose:
            return {"classifiers": [watson_record(r, store.class_names(r.classifier_id)) for r in records]}
        return {
            "classifiers": [{"classifier_id": r.classifier_id, "name": r.name, "status": r.status} for r in records]
        }

    def wait(self, classifier_id: str, timeout: float | None, progress: bool) -> dict:
        """The record once settled and no training of it runs here; with `progress`, a tqdm bar meanwhile."""
        if not progress:
            return self._wait(classifier_id, timeout)
        self.record(classifier_id)
        listeners = self.engine.open().jobs.listeners
        with WaitBar(classifier_id) as bar:
            listeners.append(bar)
            try:
                return self._wait(classifier_id, timeout, on_poll=bar.show_status)
            finally:
                if bar in listeners:
                    listeners.remove(bar)

    def _wait(self, classifier_id: str, timeout: float | None, on_poll: Callable[[str], None] | None = None) -> dict:
        """The record once settled; WaitTimeout after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        jobs = self.engine.open().jobs
        while True:
            record = self.get(classifier_id)
            if on_poll is not None:
                on_poll(record["status"])
            if record["status"] in SETTLED_STATUSES and not jobs.is_running(classifier_id):
                return record
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimeout(f"Classifier {classifier_id!r} still {record['status']} after {timeout} s")
            jobs.join(classifier_id, timeout=WAIT_POLL_SECONDS)
            time.sleep(WAIT_POLL_SECONDS / 5)

    def versions(self, classifier_id: str) -> list[dict]:
        """Every trained version: number, created, classes, cross-validated metrics."""
        self.record(classifier_id)
        return [
            {"version": v.version, "created": v.created, "classes": v.classes, "metrics": v.metrics}
            for v in self.engine.open().store.versions(classifier_id)
        ]

    def versions_frame(self, classifier_id: str) -> pandas.DataFrame:
        """Every version with its metrics, one row each: from MLflow when tracking is on, else from the store."""
        self.record(classifier_id)
        parts = self.engine.open()
        if parts.tracker is not None:
            return parts.tracker.versions_frame(classifier_id)
        import pandas as pd

        rows = [
            {"version": v.version, "class_names": v.classes, **version_metrics(v)}
            for v in parts.store.versions(classifier_id)
        ]
        return pd.DataFrame(rows)

    def find(self, name: str) -> str:
        """The id of the newest classifier called `name`."""
        found = [r for r in self.engine.open().store.classifiers(owner=self.owner) if r.name == name]
        if not found:
            raise ClassifierNotFound(f"No classifier named {name!r}")
        return max(found, key=lambda r: r.created).classifier_id

    def out_of_fold(self, classifier_id: str, version: int | None) -> OutOfFold:
        """The out-of-fold scores of a version's training images (the serving version by default)."""
        record = self.record(classifier_id)
        store = self.engine.open().store
        number = version if version is not None else record.serving_version
        if number not in {v.version for v in store.versions(classifier_id)}:
            raise ClassifierNotFound(f"Classifier {classifier_id!r} has no trained version {number!r}")
        path = store.out_of_fold_path(classifier_id, number)
        return OutOfFold.from_bytes(path.read_bytes(), version=number)

    def examples(
        self, classifier_id: str, version: int | None, sort: str, include_removed: bool
    ) -> list[curation.TrainingExample]:
        """The classifier's training examples with a version's out-of-fold scores."""
        self.record(classifier_id)
        store = self.engine.open().store
        return curation.list_examples(store, classifier_id, version=version, sort=sort, include_removed=include_removed)

    def interpretation(self, classifier_id: str, version: int | None) -> Interpretation:
        """fastai's ClassificationInterpretation over a version's out-of-fold scores."""
        from ..analysis.interpretation import Interpretation  # pandas and scikit-learn load only when asked

        return Interpretation.from_out_of_fold(self.out_of_fold(classifier_id, version))

    def example_image(self, classifier_id: str, sha256: str) -> bytes:
        """The bytes of one of the classifier's training images, by sha256."""
        self.record(classifier_id)
        store = self.engine.open().store
        if sha256 not in {row.sha256 for row in store.examples(classifier_id)}:
            raise ClassifierNotFound(f"Classifier {classifier_id!r} has no example image {sha256!r}")
        return store.read_blob(sha256)
