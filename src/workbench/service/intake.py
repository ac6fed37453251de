"""Intake for a Workbench: example sets (zips, folders, bytes) read, checked and stored; curated examples.

Every set of a request is read and validated before anything is stored; then one transaction stores the
examples, the classifier's status and the training's lease, and the training starts. Curating (removing or
relabelling examples) commits the same way.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from ..core.errors import InvalidClassName, InvalidExamples
from ..core.limits import MIN_EXAMPLE_SETS
from ..core.names import check_class_name, check_classifier_name, shown_name
from ..core.records import ClassifierRecord
from ..core.timestamps import now_iso
from ..core.vocabulary import NEGATIVE_FIELD, POSITIVE_SUFFIX
from ..images.examples import ExampleSet, Source, folder_sets, read_example_set, request_budget
from ..store import curation
from .engine import Engine


def folder_examples(folder: str | os.PathLike, negatives: str) -> tuple[dict[str, Path], Path | None]:
    """A folder's class-named sub-folders or .zip files as positive sets, and the one called `negatives`."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise InvalidExamples(f"Folder {str(root)!r} does not exist")
    sets = folder_sets(root)
    if len(sets) < MIN_EXAMPLE_SETS:
        raise InvalidExamples(
            f"Folder {str(root)!r} needs at least {MIN_EXAMPLE_SETS} example sets (sub-folders or .zip files, "
            f"one per class; {negatives!r} for negative examples); found {len(sets)}: {sorted(sets)}"
        )
    negative_set = sets.pop(negatives, None)
    return sets, negative_set


class Intake:
    """Stores example sets for one owner's create and update requests (and curations), then starts training."""

    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner

    def create(
        self, name: str, positive_examples: Mapping[str, Source], negative_examples: Source | None
    ) -> tuple[ClassifierRecord, list[str]]:
        """A new classifier's record (status `training`) and its class names, its examples stored."""
        name = check_classifier_name(name)
        given = len(positive_examples or {}) + (negative_examples is not None)
        if given < MIN_EXAMPLE_SETS or not positive_examples:
            raise InvalidExamples(
                "Creating a classifier needs at least two example sets: two positive classes, "
                "or one positive class and negative examples"
            )
        positives, negatives = self._read_sets(positive_examples, negative_examples)
        store = self.engine.open().store
        classifier_id = self._new_classifier_id(name)
        stamp = now_iso()
        record = ClassifierRecord(classifier_id, name, self.owner, "training", stamp, stamp, None, None, None, None)
        with store.transaction() as db:
            store.insert_classifier(db, record)
            self._store_sets(db, classifier_id, positives, negatives)
            self.engine.claim(db, classifier_id)
        self.engine.start_training(classifier_id)
        return record, list(positives)

    def update(
        self, classifier_id: str, positive_examples: Mapping[str, Source] | None, negative_examples: Source | None
    ) -> None:
        """Adds the sets to one of the owner's classifiers and queues its retraining."""
        self.engine.owned(classifier_id, self.owner)
        if not positive_examples and negative_examples is None:
            raise InvalidExamples("An update needs at least one example set (positive or negative)")
        positives, negatives = self._read_sets(positive_examples or {}, negative_examples)
        store = self.engine.open().store
        with store.transaction() as db:
            record = store.classifier(classifier_id, db)
            positives = self._as_stored(db, classifier_id, positives)
            self._store_sets(db, classifier_id, positives, negatives)
            store.update_classifier(db, classifier_id, status=record.busy_status, updated=now_iso(), explanation=None)
            self.engine.claim(db, classifier_id)
        self.engine.start_training(classifier_id)

    def curate(self, classifier_id: str, remove: list[int], relabel: dict[int, str | None]) -> curation.Curation:
        """One commit: the change, the (re)training status and the training's lease; then the training starts."""
        self.engine.owned(classifier_id, self.owner)
        store = self.engine.open().store
        with store.transaction() as db:
            record = store.classifier(classifier_id, db)
            change = curation.apply(db, classifier_id, remove, relabel, self.engine.settings.limits.min_images_per_set)
            if change.changed:
                store.update_classifier(
                    db, classifier_id, status=record.busy_status, updated=now_iso(), explanation=None
                )
                self.engine.claim(db, classifier_id)
        if change.changed:
            self.engine.start_training(classifier_id)
        return dataclasses.replace(change, status=store.classifier(classifier_id).status)

    def _read_sets(
        self, positive_examples: Mapping[str, Source], negative_examples: Source | None
    ) -> tuple[dict[str, ExampleSet], ExampleSet | None]:
        """Reads and validates every example set before anything is stored.

        The sets' zip directories and file sizes are checked against `limits.max_request_bytes` (and each zip
        against `limits.max_zip_members`) before any image is read, and the reads stop once past it.
        """
        limits = self.engine.settings.limits
        sources: dict[str, Source] = {}
        for raw_name, source in positive_examples.items():
            name = check_class_name(raw_name.removesuffix(POSITIVE_SUFFIX) if isinstance(raw_name, str) else raw_name)
            if name in sources:
                raise InvalidClassName(
                    f"Class {shown_name(name)} is given twice in one request (names are compared in Unicode NFC form)"
                )
            sources[name] = source
        negative = [(NEGATIVE_FIELD, negative_examples)] if negative_examples is not None else []
        budget = request_budget([*sources.items(), *negative], limits)
        positives = {
            name: read_example_set(source, limits=limits, label=name, budget=budget) for name, source in sources.items()
        }
        negatives = None
        if negative_examples is not None:
            negatives = read_example_set(negative_examples, limits=limits, label=NEGATIVE_FIELD, budget=budget)
        return positives, negatives

    def _as_stored(self, db, classifier_id: str, positives: dict[str, ExampleSet]) -> dict[str, ExampleSet]:
        """Names each set as the stored class with the same NFC form (a store written before names were
        normalised may hold a decomposed spelling), so an update adds to that class instead of a twin."""
        names = self.engine.open().store.class_names(classifier_id, db)
        stored = {unicodedata.normalize("NFC", name): name for name in names}
        return {stored.get(name, name): example_set for name, example_set in positives.items()}

    def _store_sets(
        self, db, classifier_id: str, positives: dict[str, ExampleSet], negatives: ExampleSet | None
    ) -> None:
        store = self.engine.open().store
        sets = [(name, s) for name, s in positives.items()] + ([(None, negatives)] if negatives else [])
        rows = []
        for class_name, example_set in sets:
            for image in example_set.images:
                store.put_blob(image.sha256, image.data)
                rows.append((class_name, image.sha256, f"{example_set.source}/{image.name.split('/')[-1]}"))
        store.add_examples(db, classifier_id, rows)

    def _new_classifier_id(self, name: str) -> str:
        stem = re.sub(r"[^A-Za-z0-9_]", "", name.replace(" ", "_")) or "classifier"
        taken = self.engine.open().store.classifier_ids()
        rng = random.SystemRandom()
        while True:
            candidate = f"{stem}_{rng.randrange(10**9, 2**31)}"
            if candidate not in taken:
                return candidate
