"""What the store holds, as plain records: a classifier, one training example, one trained version.

They live below the store so that readers of a version (the pyfunc flavor, tracking) need no SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from .vocabulary import Status


@dataclass(frozen=True)
class ClassifierRecord:
    """One classifier as stored (the Watson record is derived from it)."""

    classifier_id: str
    name: str
    owner: str
    status: Status
    created: str
    updated: str
    retrained: str | None
    explanation: str | None
    serving_version: int | None
    job_owner: str | None
    lease_expires: float | None = None
    pinned_version: int | None = None  # set by promote: trainings leave serving_version alone

    @property
    def busy_status(self) -> Status:
        """The status while it trains: `training` before its first version, `retraining` after (the old one serves)."""
        return "training" if self.serving_version is None else "retraining"


@dataclass(frozen=True)
class ExampleRow:
    """One training image of a classifier; `class_name` is None for a negative example.

    A curated example is never deleted (earlier versions trained on it): `removed_by` names the
    curation that took it out, and a relabelled one comes back as a new row that `replaces` it.
    """

    example_id: int
    class_name: str | None
    sha256: str
    source: str
    removed_by: int | None = None
    replaces: int | None = None


@dataclass(frozen=True)
class VersionRecord:
    """One trained version of a classifier."""

    classifier_id: str
    version: int
    created: str
    classes: list[str]
    last_example_id: int
    metrics: dict
    head_file: str
    last_curation_id: int = 0  # the curations it saw: with last_example_id, its example set (curation.version_rows)
