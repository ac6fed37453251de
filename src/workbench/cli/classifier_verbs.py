"""The verbs that change one classifier: create, update, delete, promote, export, and `examples` (list, curate).

Each takes the Workbench and the parsed arguments and returns the JSON answer; those that train
answer through `settle` (wait here, or hand the rest to a detached `workbench wait`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.vocabulary import POSITIVE_SUFFIX
from .settle import settle

if TYPE_CHECKING:
    from ..service.workbench import Workbench

EXPORT_LOGGING_SECONDS = 120.0  # how long `export` waits for MLflow to take the file as an artifact
EXAMPLE_ACTIONS = ("remove", "relabel")  # `examples remove|relabel CID ...`; else `examples CID` lists


def positives(pairs: Sequence[str]) -> dict[str, str]:
    """`class=path` (or `class_positive_examples=path`) pairs to a mapping."""
    mapping = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not path:
            raise SystemExit(f"workbench: --positive expects CLASS=PATH, got {pair!r}")
        mapping[name.removesuffix(POSITIVE_SUFFIX)] = path
    return mapping


def create(wb: Workbench, args: argparse.Namespace, log_to: str | None) -> dict:
    """`create`: from -p/-n example sets, or from a folder of class-named sub-folders (--from-folder); then settles."""
    if args.from_folder is None:
        record = wb.create_classifier(args.name, positives(args.positive), negative_examples=args.negative)
    elif args.positive or args.negative:
        raise SystemExit("workbench: --from-folder takes every class from the folder; leave out -p/-n")
    else:
        record = wb.create_classifier_from_folder(args.name, args.from_folder, negatives=args.negatives_name)
    return settle(wb, record, not args.no_wait, wb.home, log_to)


def update(wb: Workbench, args: argparse.Namespace, log_to: str | None) -> dict:
    """`update`: adds classes, images or negatives, then settles the retraining."""
    record = wb.update_classifier(
        args.classifier_id, positive_examples=positives(args.positive), negative_examples=args.negative
    )
    return settle(wb, record, not args.no_wait, wb.home, log_to)


def delete(wb: Workbench, classifier_id: str) -> dict:
    """`delete`: deletes, then confirms in JSON which classifier is gone."""
    wb.delete_classifier(classifier_id)
    return {"deleted": classifier_id}


def examples(wb: Workbench, args: argparse.Namespace, log_to: str | None = None) -> object:
    """Lists the examples (JSON records), or removes / relabels some and waits for the retraining like `update`."""
    action, words = (args.words[0], args.words[1:]) if args.words[0] in EXAMPLE_ACTIONS else ("list", args.words)
    if not words:
        raise SystemExit(f"workbench: examples {'' if action == 'list' else action + ' '}needs a classifier id")
    cid, rest = words[0], words[1:]
    if action == "list":
        if rest:
            raise SystemExit(f"workbench: examples CID lists; to change examples: examples remove|relabel {cid} ...")
        return [
            e.to_dict() for e in wb.examples(cid, version=args.version, sort=args.sort, include_removed=args.removed)
        ]
    target: str | None = None  # relabel's class (None with --negative)
    if action == "relabel" and not args.negative:
        if len(rest) < 2:
            raise SystemExit("workbench: examples relabel CID ID [ID ...] CLASS (or --negative)")
        rest, target = rest[:-1], rest[-1]
    if not rest:
        raise SystemExit(f"workbench: examples {action} {cid} needs example ids")
    if action == "remove":
        change = wb.remove_examples(cid, rest)
    else:
        change = wb.relabel_examples(cid, dict.fromkeys(rest, target))
    answer = change.to_dict()
    if change.changed:
        record = settle(wb, {"classifier_id": cid, "status": change.status}, not args.no_wait, wb.home, log_to)
        answer.update({key: record[key] for key in ("status", "explanation") if key in record})
    return answer


def promote(wb: Workbench, args: argparse.Namespace) -> dict:
    """Promotes, then moves MLflow's `serving` alias now (when tracking is on); the Watson record."""
    wb.promote(args.classifier_id, args.version)
    tracker = wb.tracker
    if tracker is not None and not tracker.sync(args.classifier_id):
        print(
            f"workbench: MLflow's serving alias not moved yet (the next sweep moves it): "
            f"{tracker.warnings.get(args.classifier_id)}",
            file=sys.stderr,
        )
    return wb.get_classifier(args.classifier_id)


def export(wb: Workbench, args: argparse.Namespace) -> dict:
    """Writes the file, waits for its MLflow artifact (when tracking is on), and says what it wrote."""
    # the serving version (the newest unless `promote` pinned one), read once so the answer names what was written
    number = args.version if args.version is not None else wb.get_classifier(args.classifier_id).get("serving_version")
    path = wb.export(args.classifier_id, format=args.format, version=number, path=args.output)
    wb.exports.join(timeout=EXPORT_LOGGING_SECONDS)
    return {
        "classifier_id": args.classifier_id,
        "version": number,
        "format": args.format,
        "path": str(path),
        "bytes": path.stat().st_size,
    }
