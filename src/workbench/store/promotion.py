"""Promote and roll back: which version of a classifier serves, and a pin that trainings leave alone.

A classifier's `serving_version` is the version classify, exports and MLflow's `serving` alias use.
Without a pin it follows the newest version: each finished training moves it (Watson's rule).
`promote(version)` pins a version: `pinned_version` and `serving_version` change together in one
commit, so a process killed at any moment leaves either the old or the new version serving. While
a pin is set, a finished training still stores its version (and MLflow logs it), but serving stays
on the pin until it is lifted: `promote(None)` (or "latest") serves the newest version again.

The invariant, kept by every write: `pinned_version` is NULL or equals `serving_version`.
"""

from __future__ import annotations

import sqlite3

from ..core.errors import ClassifierNotFound, InvalidRequest, VersionNotFound, echo
from ..core.records import ClassifierRecord
from .database import Store

LATEST = "latest"  # the word for "no pin: the newest version serves" (CLI, HTTP, widget)


def wanted_version(value: object) -> int | None:
    """A requested version: a whole number >= 1, its ASCII digits, or None / "latest" (no pin); else InvalidRequest."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == LATEST:
            return None
        if text.isascii() and text.isdigit():
            value = int(text)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise InvalidRequest(f"version must be a version number (1, 2, ...) or {LATEST!r}, got {echo(value)}")


def newest_version(db: sqlite3.Connection, classifier_id: str) -> int | None:
    """The classifier's newest trained version (None before its first), whatever serves."""
    row = db.execute("SELECT MAX(version) FROM versions WHERE classifier_id = ?", (classifier_id,)).fetchone()
    return row[0]


def promote(store: Store, classifier_id: str, version: object, owner: str) -> ClassifierRecord:
    """Makes `version` serve and pins it (None or "latest": lifts the pin, the newest serves); one commit.

    ClassifierNotFound for another owner's or an unknown classifier, VersionNotFound for a version that
    was never trained (a failed training makes no version). Allowed during a retraining: the pin holds
    when it finishes.
    """
    number = wanted_version(version)
    with store.transaction() as db:
        record = store.classifier(classifier_id, db)
        if record.owner != owner:
            raise ClassifierNotFound(f"Classifier {echo(classifier_id)} not found")
        if number is not None and not store.version_exists(db, classifier_id, number):
            trained = [
                v
                for (v,) in db.execute(
                    "SELECT version FROM versions WHERE classifier_id = ? ORDER BY version", (classifier_id,)
                )
            ]
            raise VersionNotFound(
                f"Classifier {classifier_id!r} has no version {number} (trained versions: "
                f"{', '.join(map(str, trained)) or 'none yet'}; a failed training makes no version)"
            )
        serving = number if number is not None else newest_version(db, classifier_id)
        store.update_classifier(db, classifier_id, serving_version=serving, pinned_version=number)
        return store.classifier(classifier_id, db)


def serving_fields(record: ClassifierRecord) -> dict[str, int]:
    """The extra fields of the Watson record: which version serves, and the pin when one is set."""
    fields = {}
    if record.serving_version is not None:
        fields["serving_version"] = record.serving_version
    if record.pinned_version is not None:
        fields["pinned_version"] = record.pinned_version
    return fields
