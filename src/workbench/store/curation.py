"""Curating a classifier's examples: list them with their out-of-fold scores, remove or relabel them.

Nothing is deleted or changed in place, so every version keeps the exact set it trained on. A
change is one row in `curations`: a removal marks its examples `removed_by` that curation; a
relabelling marks them the same way and adds each image again under its new label (a new example
that `replaces` the old one). A version records two watermarks, the last example id and the last
curation id it saw; its example set is every example up to the first that no curation up to the
second removed (`version_rows`). The change, the classifier's (re)training status and its training
lease are one commit (the service does it as an update does); the training that follows, coalesced
with any under way, trains without the removed examples while the serving version answers. Images
stay in the store while any example row, removed or not, uses them: deleting the classifier frees them.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..analysis.training import NEGATIVE_LABEL, OutOfFold
from ..core.errors import ClassifierNotFound, ExampleNotFound, InvalidRequest, TooFewExamples, echo, echo_list
from ..core.limits import MIN_EXAMPLE_SETS
from ..core.names import check_class_name, shown_name
from ..core.records import ExampleRow, VersionRecord
from ..core.timestamps import now_iso
from .database import Store
from .schema import EXAMPLE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

SORTS = ("id", "oof")  # examples in the order they were added, or worst out-of-fold margin first
NEGATIVE_WORD = "negative"  # how the CLI and JSON answers name the negative examples' set


@dataclass(frozen=True)
class TrainingExample:
    """One training example of a classifier, with the out-of-fold scores a version gave its image.

    `score` is the score of its own class (None for a negative example, or a class the version does
    not have); `top_other_class`/`top_other_score` the best class besides its own. Scores are None
    when the version did not score the image. `in_version`: whether that version trained on this example.
    """

    example_id: int
    sha256: str
    class_name: str | None  # None: a negative example
    source: str
    version: int | None  # the version whose scores these are (None: no trained version yet)
    in_version: bool
    score: float | None
    top_other_class: str | None
    top_other_score: float | None
    removed: bool = False  # curated out (listed only with include_removed)

    @property
    def negative(self) -> bool:
        return self.class_name is None

    @property
    def margin(self) -> float | None:
        """How clearly the version got it right: own score minus the best other (a negative: minus the best class).

        Below 0, some other class outscored it: the examples worth a look come first when sorted by it.
        """
        if self.top_other_score is None:
            return None if self.score is None else self.score
        return (self.score or 0.0) - self.top_other_score

    def to_dict(self) -> dict:
        """JSON-ready, with Watson's word `class` (null for a negative example) and `negative`."""
        answer = asdict(self)
        answer["class"] = answer.pop("class_name")
        return {
            "example_id": answer.pop("example_id"),
            "class": answer.pop("class"),
            "negative": self.negative,
            **answer,
        }


@dataclass(frozen=True)
class Relabelled:
    """One relabelled example: the image now trains under `class_name` as the new example `new_example_id`."""

    example_id: int
    new_example_id: int
    previous_class: str | None
    class_name: str | None


@dataclass(frozen=True)
class Curation:
    """What one `remove_examples` / `relabel_examples` call changed, in one commit (None: nothing to change)."""

    classifier_id: str
    curation_id: int | None
    removed: tuple[int, ...]
    relabelled: tuple[Relabelled, ...]
    status: str | None = None  # the classifier's status once the change is committed

    @property
    def changed(self) -> bool:
        return self.curation_id is not None

    def to_dict(self) -> dict:
        return {
            "classifier_id": self.classifier_id,
            "status": self.status,
            "curation_id": self.curation_id,
            "removed": list(self.removed),
            "relabelled": [
                {
                    "example_id": r.example_id,
                    "new_example_id": r.new_example_id,
                    "previous_class": r.previous_class,
                    "class": r.class_name,
                }
                for r in self.relabelled
            ],
        }


# which examples a version trains on ----------------------------------------------------------
def live_at(row: ExampleRow, last_curation_id: int) -> bool:
    """Whether no curation up to `last_curation_id` removed the example."""
    return row.removed_by is None or row.removed_by > last_curation_id


def version_rows(rows: Iterable[ExampleRow], version: VersionRecord) -> list[ExampleRow]:
    """The examples `version` trained on, from a classifier's rows (every row, curated-out ones included)."""
    return [r for r in rows if r.example_id <= version.last_example_id and live_at(r, version.last_curation_id)]


def watermarks(db: sqlite3.Connection, classifier_id: str) -> tuple[int, int]:
    """(last example id, last curation id) of a classifier now: what a training started now covers."""
    last_example = db.execute(
        "SELECT COALESCE(MAX(example_id), 0) FROM examples WHERE classifier_id = ?", (classifier_id,)
    ).fetchone()[0]
    last_curation = db.execute(
        "SELECT COALESCE(MAX(curation_id), 0) FROM curations WHERE classifier_id = ?", (classifier_id,)
    ).fetchone()[0]
    return last_example, last_curation


def covers(db: sqlite3.Connection, version: VersionRecord) -> bool:
    """Whether `version` trained on every example and curation its classifier has now (no training is due)."""
    last_example, last_curation = watermarks(db, version.classifier_id)
    return last_example <= version.last_example_id and last_curation <= version.last_curation_id


def training_rows(rows: Sequence[ExampleRow]) -> tuple[list[ExampleRow], list[str], list[str]]:
    """What a training fits from an example set: one row per (label, image), its labels, and the classes in order.

    An image both positive and negative stays positive (Watson's rule); an image twice in one class counts once.
    """
    classes = list(dict.fromkeys(r.class_name for r in rows if r.class_name is not None))
    positives = {r.sha256 for r in rows if r.class_name is not None}
    kept = [r for r in rows if r.class_name is not None or r.sha256 not in positives]
    kept = list({(r.class_name, r.sha256): r for r in kept}.values())
    labels = [r.class_name if r.class_name is not None else NEGATIVE_LABEL for r in kept]
    return kept, labels, classes


# listing -------------------------------------------------------------------------------
def list_examples(
    store: Store, classifier_id: str, *, version: int | None = None, sort: str = "id", include_removed: bool = False
) -> list[TrainingExample]:
    """A classifier's examples with the out-of-fold scores of `version` (default: its newest trained version)."""
    if sort not in SORTS:
        raise InvalidRequest(f"sort must be one of {', '.join(SORTS)}; got {echo(sort)}")
    versions = store.versions(classifier_id)
    chosen: VersionRecord | None = versions[-1] if versions else None
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidRequest(f"version must be a whole number, got {echo(version)}")
        found = [v for v in versions if v.version == version]
        if not found:
            raise ClassifierNotFound(f"Classifier {classifier_id!r} has no trained version {version}")
        chosen = found[0]
    rows = store.examples(classifier_id)
    trained = {r.example_id for r in version_rows(rows, chosen)} if chosen else set()
    oof = None
    if chosen is not None:
        oof = OutOfFold.from_bytes(store.out_of_fold_path(classifier_id, chosen.version).read_bytes(), chosen.version)
    where = _oof_rows(oof) if oof is not None else {}
    records = [
        _record(row, chosen, row.example_id in trained, oof, where)
        for row in rows
        if include_removed or row.removed_by is None
    ]
    return sort_examples(records, sort)


def _record(
    row: ExampleRow,
    version: VersionRecord | None,
    in_version: bool,
    oof: OutOfFold | None,
    where: dict[tuple[str, str | None], int],
) -> TrainingExample:
    score = top_class = top_score = None
    label = row.class_name if row.class_name is not None else NEGATIVE_LABEL
    index = where.get((row.sha256, label), where.get((row.sha256, None)))
    if oof is not None and index is not None:
        scores = oof.scores[index]
        own = oof.classes.index(row.class_name) if row.class_name in oof.classes else None
        if own is not None:
            score = float(scores[own])
        others = [i for i in range(len(oof.classes)) if i != own]
        if others:
            best = max(others, key=lambda i: scores[i])
            top_class, top_score = oof.classes[best], float(scores[best])
    return TrainingExample(
        row.example_id,
        row.sha256,
        row.class_name,
        row.source,
        version.version if version else None,
        in_version,
        score,
        top_class,
        top_score,
        row.removed_by is not None,
    )


def _oof_rows(oof: OutOfFold) -> dict[tuple[str, str | None], int]:
    """Where each image is in the out-of-fold scores: by (sha256, label), and by (sha256, None) under any label
    (a relabelled image shows the held-out scores it got under its old label)."""
    where: dict[tuple[str, str | None], int] = {}
    for i, (sha, label) in enumerate(zip(oof.sha256, oof.labels, strict=True)):
        where.setdefault((sha, label), i)
        where.setdefault((sha, None), i)
    return where


def sort_examples(records: list[TrainingExample], sort: str = "id") -> list[TrainingExample]:
    """`id`: as added; `oof`: the lowest margin first (some other class outscored it), unscored ones last."""
    if sort == "oof":
        return sorted(
            records, key=lambda r: (r.margin is None, r.margin if r.margin is not None else 0.0, r.example_id)
        )
    return sorted(records, key=lambda r: r.example_id)


def examples_frame(records: Sequence[TrainingExample]) -> pd.DataFrame:
    """The records as a pandas DataFrame, one row each, with their `margin` (for notebooks)."""
    import pandas as pd

    columns = [*TrainingExample.__dataclass_fields__, "negative", "margin"]
    return pd.DataFrame([{**asdict(r), "negative": r.negative, "margin": r.margin} for r in records], columns=columns)


# changing ------------------------------------------------------------------------------
def example_ids(values: object) -> list[int]:
    """Example ids as whole numbers (digit strings accepted, from the CLI and forms), each once, in order."""
    if isinstance(values, (str, bytes, int)) or not isinstance(values, Iterable):
        values = [values]
    ids: list[int] = []
    for value in values:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidRequest(f"An example id is a positive whole number; got {echo(value)}")
        if int(value) not in ids:
            ids.append(int(value))
    if not ids:
        raise InvalidRequest("Name at least one example id")
    return ids


def new_labels(labels: Mapping) -> dict[int, str | None]:
    """{example id: class name, or None for a negative example}, names checked and NFC (as a create checks them)."""
    if not isinstance(labels, Mapping) or not labels:
        raise InvalidRequest("Name at least one example and its new class ({example id: class, or None for negative})")
    checked: dict[int, str | None] = {}
    for key, name in labels.items():
        [example_id] = example_ids([key])
        checked[example_id] = None if name is None else check_class_name(name)
    return checked


def apply(
    db: sqlite3.Connection,
    classifier_id: str,
    remove: Sequence[int],
    relabel: Mapping[int, str | None],
    min_images: int,
) -> Curation:
    """Removes and relabels examples inside the caller's write transaction; refuses what would leave too few images.

    Raises ExampleNotFound for an id that is not a current example of the classifier, TooFewExamples
    when a set it changes would keep 1 to `min_images - 1` images or fewer than two sets would be left.
    Relabelling to the class an example already has is no change; a call that changes nothing records nothing.
    """
    both = sorted(set(remove) & set(relabel))
    if both:
        raise InvalidRequest(f"Examples {echo_list(both)} are both removed and relabelled in one change")
    rows = [
        ExampleRow(*row)
        for row in db.execute(
            f"SELECT {EXAMPLE_COLUMNS} FROM examples "
            "WHERE classifier_id = ? AND removed_by IS NULL ORDER BY example_id",
            (classifier_id,),
        )
    ]
    by_id = {r.example_id: r for r in rows}
    missing = [i for i in [*remove, *relabel] if i not in by_id]
    if missing:
        raise ExampleNotFound(f"Classifier {classifier_id!r} has no current example with the ids {echo_list(missing)}")
    stored = {unicodedata.normalize("NFC", r.class_name): r.class_name for r in rows if r.class_name is not None}
    relabel = {i: stored.get(c, c) if c is not None else None for i, c in relabel.items()}
    relabel = {i: c for i, c in relabel.items() if by_id[i].class_name != c}
    if not remove and not relabel:
        return Curation(classifier_id, None, (), ())
    gone = set(remove) | set(relabel)
    after = [r for r in rows if r.example_id not in gone]
    after += [replace(by_id[i], example_id=0, class_name=c) for i, c in relabel.items()]
    touched = {by_id[i].class_name for i in gone} | set(relabel.values())
    _check_sets(classifier_id, after, touched, min_images)
    curation_id = db.execute(  # RETURNING, not lastrowid: the same statement serves PostgreSQL
        "INSERT INTO curations (classifier_id, created) VALUES (?, ?) RETURNING curation_id", (classifier_id, now_iso())
    ).fetchone()[0]
    db.executemany("UPDATE examples SET removed_by = ? WHERE example_id = ?", [(curation_id, i) for i in sorted(gone)])
    relabelled = []
    for example_id, name in relabel.items():
        old = by_id[example_id]
        new_id = db.execute(
            "INSERT INTO examples (classifier_id, class_name, sha256, source, replaces) VALUES (?,?,?,?,?)"
            " RETURNING example_id",
            (classifier_id, name, old.sha256, old.source, example_id),
        ).fetchone()[0]
        relabelled.append(Relabelled(example_id, new_id, old.class_name, name))
    return Curation(classifier_id, curation_id, tuple(i for i in remove), tuple(relabelled))


def _set_name(label: str | None) -> str:
    return "the negative examples" if label is None else f"class {shown_name(label)}"


def _check_sets(classifier_id: str, after: list[ExampleRow], touched: set[str | None], min_images: int) -> None:
    """Every set the change touches keeps none or at least `min_images` images; two sets (one a class) remain."""

    def counts(rows: list[ExampleRow]) -> Counter:
        kept, _, _ = training_rows(rows)
        return Counter(r.class_name for r in kept)

    now = counts(after)
    for label in sorted(touched, key=lambda name: (name is None, name or "")):
        if 0 < now[label] < min_images:
            raise TooFewExamples(
                f"This change would leave {_set_name(label)} of classifier {classifier_id!r} with {now[label]} "
                f"images; a set needs at least {min_images} (remove all of them to drop the set)"
            )
    classes = [label for label, n in now.items() if label is not None and n]
    if not classes or len(classes) + (now[None] > 0) < MIN_EXAMPLE_SETS:
        raise TooFewExamples(
            f"This change would leave classifier {classifier_id!r} with {len(classes)} classes"
            f"{' and negative examples' if now[None] else ''}; it needs two sets: two classes, or one class and "
            "negative examples"
        )


# what a version changed, for MLflow ------------------------------------------------------------
@dataclass(frozen=True)
class VersionChanges:
    """Curations between a version's parent and the version: examples it no longer trains on, or under a new label."""

    removed: tuple[ExampleRow, ...] = ()
    relabelled: tuple[tuple[ExampleRow, ExampleRow], ...] = ()  # (as the parent had it, as this version has it)

    def summary(self) -> str:
        """In words, e.g. `removed 2 (beagle: 2); relabelled 1 (beagle -> husky: 1)`."""

        def name(label: str | None) -> str:
            return NEGATIVE_WORD if label is None else label

        parts = []
        if self.removed:
            per = Counter(name(r.class_name) for r in self.removed)
            parts.append(f"removed {len(self.removed)} ({', '.join(f'{c}: {n}' for c, n in per.items())})")
        if self.relabelled:
            moves = Counter(f"{name(a.class_name)} -> {name(b.class_name)}" for a, b in self.relabelled)
            parts.append(f"relabelled {len(self.relabelled)} ({', '.join(f'{m}: {n}' for m, n in moves.items())})")
        return "; ".join(parts) or "nothing"

    def frame(self) -> pd.DataFrame:
        """One row per change: `removed` or `relabelled`, the example (and its new id), image, source, classes."""
        import pandas as pd

        rows = [
            {
                "change": "removed",
                "example_id": r.example_id,
                "new_example_id": None,
                "sha256": r.sha256,
                "source": r.source,
                "class": r.class_name or "",
                "new_class": None,
            }
            for r in self.removed
        ]
        rows += [
            {
                "change": "relabelled",
                "example_id": a.example_id,
                "new_example_id": b.example_id,
                "sha256": a.sha256,
                "source": a.source,
                "class": a.class_name or "",
                "new_class": b.class_name or "",
            }
            for a, b in self.relabelled
        ]
        frame = pd.DataFrame(
            rows, columns=["change", "example_id", "new_example_id", "sha256", "source", "class", "new_class"]
        )
        return frame.astype({"new_example_id": "Int64"})


def version_changes(rows: Sequence[ExampleRow], parent: VersionRecord | None, version: VersionRecord) -> VersionChanges:
    """What curations took out of, or relabelled in, `parent`'s example set by `version` (rows: every row)."""
    if parent is None:
        return VersionChanges()
    before = {r.example_id: r for r in version_rows(rows, parent)}
    now = version_rows(rows, version)
    by_id = {r.example_id: r for r in rows}
    relabelled, moved = [], set()
    for row in now:
        origin = row
        while origin.example_id not in before and origin.replaces is not None and origin.replaces in by_id:
            origin = by_id[origin.replaces]  # relabelled more than once since the parent: back to the parent's row
        if origin is not row and origin.example_id in before:
            moved.add(origin.example_id)
            if origin.class_name != row.class_name:
                relabelled.append((origin, row))
    kept = {r.example_id for r in now}
    removed = [r for i, r in before.items() if i not in kept and i not in moved]
    return VersionChanges(tuple(removed), tuple(relabelled))
