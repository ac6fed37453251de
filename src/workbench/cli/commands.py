"""The command-line front: Watson verbs, JSON on stdout, readable errors on stderr."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import WorkbenchError
from ..core.limits import (
    DOCTOR_GRACE_S,
    HTTP_BODY_IDLE_S,
    HTTP_BODY_MIN_BYTES_PER_S,
    HTTP_BODY_RATE_GRACE_S,
    HTTP_HEADER_TIMEOUT_S,
    HTTP_KEEP_ALIVE_S,
)
from ..core.vocabulary import OWNER_ME, POSITIVE_SUFFIX

if TYPE_CHECKING:
    import pandas

    from ..service.workbench import (
        Workbench,  # imported in `dispatch`: `workbench --help` needs none of it (0.3 s, not 3 s)
    )

TUTORIAL_DIR = Path("data") / "tutorial"
TUTORIAL_CREATE = {"beagle": "beagle", "husky": "husky", "goldenretriever": "goldenretriever"}
TUTORIAL_UPDATE = {"dalmatian": "dalmatian"}
DEMO_HIERARCHY_THRESHOLD = 0.1  # ImageNet probabilities spread over similar breeds; 0.1 shows the breeds
TRACKING_FLUSH_SECONDS = 60.0  # how long `wait` waits for MLflow to log the new version
TRACKING_ENV = "WORKBENCH_TRACKING_URI"  # hands the resolved tracking URI to a detached `workbench wait`
EXPORT_LOGGING_SECONDS = 120.0  # how long `export` waits for MLflow to take the file as an artifact
DIR_FLUSH_IMAGES = 1024  # classify-dir writes its output (one Parquet part) every this many images
SIGPIPE_EXIT = 128 + signal.SIGPIPE  # the shell's code for "the reader went away" (141)
# columns of `versions` that count things: printed as integers, although MLflow keeps every metric as a float
INTEGER_COLUMNS = (
    "version",
    "registered_version",
    "parent_version",
    "images",
    "negatives",
    "images_embedded",
    "images_cached",
    "classes",
)
TABLE_WIDTH = 100  # `versions` prints a table this many characters wide at most (a terminal, a pasted log)
MIN_CELL = 12  # the narrowest version column; fewer versions are shown rather than narrower ones
MAX_LABEL = 30  # metric names (per-class ones carry the class name) are cut to this
TABLE_LEFT_OUT = ("run_id",)  # 32 hex characters; in `--json` and the MLflow UI
SORTS = ("id", "oof")  # `examples --sort` (curation.SORTS; not imported: `--help` loads no engine)


def _print(answer: object) -> None:
    print(json.dumps(answer, indent=2))


def _positive_int(text: str) -> int:
    """argparse's type for a count of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return value


def _positives(pairs: Sequence[str]) -> dict[str, str]:
    """`class=path` (or `class_positive_examples=path`) pairs to a mapping."""
    positives = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not path:
            raise SystemExit(f"workbench: --positive expects CLASS=PATH, got {pair!r}")
        positives[name.removesuffix(POSITIVE_SUFFIX)] = path
    return positives


def tutorial_dir() -> Path:
    """The bundled tutorial images: ./data/tutorial, else the checkout this package was installed from."""
    if TUTORIAL_DIR.is_dir():
        return TUTORIAL_DIR
    return Path(__file__).resolve().parents[3] / TUTORIAL_DIR


def zip_folder(folder: Path, target: Path) -> Path:
    """Zips a folder of images (stored, not recompressed) as the tutorial's example zips."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.name}")
    return target


def _settle(wb: Workbench, record: dict, wait: bool, home: Path, log_to: str | None = None) -> dict:
    """Waits for training here, or hands it to a detached `workbench wait` process.

    With `log_to` (a tracked create or update that waits), the answer comes once the version is
    stored: MLflow logging, seconds of work, goes on in a detached `workbench wait` process.
    """
    cid = record["classifier_id"]
    if wait:
        settled = wb.wait(cid, timeout=None)
        if log_to is None:  # untracked, or a tracking server: logged here
            return _flush_tracking(wb, cid)
        pid = _detached_wait(wb, cid, home, {TRACKING_ENV: log_to})
        print(
            f"workbench: {cid} is stored; logging to MLflow at {log_to} goes on in the background "
            f"(pid {pid}); `workbench wait {cid}` waits for it",
            file=sys.stderr,
            flush=True,
        )
        return settled
    _detached_wait(wb, cid, home, {})
    return record


def _detached_wait(wb: Workbench, classifier_id: str, home: Path, env: dict[str, str]) -> int:
    """Starts `workbench wait` in its own session (it outlives this process): it trains or logs what is left."""
    child = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "--home", str(home), "--owner", wb.owner, "wait", classifier_id],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **env},
    )
    return child.pid


def _flush_tracking(wb: Workbench, classifier_id: str) -> dict:
    """Logs the settled training to MLflow now, saying so on stderr (it takes seconds); the fresh record.

    Without it the process would sit silent at exit while the tracker flushes.
    """
    tracker = wb.tracker
    if tracker is not None:
        print(f"workbench: logging to MLflow at {tracker.uri} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        logged = tracker.flush(timeout=TRACKING_FLUSH_SECONDS)
        if not logged:  # a create's background logger may be at it: wait for its runs to finish
            logged = tracker.sync(classifier_id, wait_for_others_s=started + TRACKING_FLUSH_SECONDS - time.monotonic())
        outcome = "logged to MLflow" if logged else "NOT logged to MLflow"
        print(f"workbench: {outcome} in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        if not logged:  # the reason, not only a pointer to it: the record's `warnings` carries it too
            print(
                f"workbench: {tracker.warnings.get(classifier_id, 'another process is still logging it')}",
                file=sys.stderr,
                flush=True,
            )
    return wb.get_classifier(classifier_id)


def _create(wb: Workbench, args: argparse.Namespace) -> dict:
    """`create`: from -p/-n example sets, or from a folder of class-named sub-folders (--from-folder)."""
    if args.from_folder is None:
        return wb.create_classifier(args.name, _positives(args.positive), negative_examples=args.negative)
    if args.positive or args.negative:
        raise SystemExit("workbench: --from-folder takes every class from the folder; leave out -p/-n")
    return wb.create_classifier_from_folder(args.name, args.from_folder, negatives=args.negatives_name)


def _delete(wb: Workbench, classifier_id: str) -> dict:
    """`delete`: deletes, then confirms in JSON which classifier is gone."""
    wb.delete_classifier(classifier_id)
    return {"deleted": classifier_id}


def versions_frame(frame: pandas.DataFrame) -> pandas.DataFrame:
    """`compare_versions`'s frame with its count columns as (nullable) integers, sorted by version."""
    import pandas as pd

    frame = frame.copy()
    for column in INTEGER_COLUMNS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column]).round().astype("Int64")
    return frame.sort_values("version").reset_index(drop=True) if "version" in frame else frame


def _cell(value: object) -> str:
    """One table cell: integers as integers, floats to 3 decimals, lists joined, missing as blank."""
    import pandas as pd

    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if pd.isna(value):
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _clip(text: str, width: int) -> str:
    """The text, cut to `width` characters with an ellipsis at the end when longer."""
    return text if len(text) <= width else text[: width - 1] + "…"


def versions_table(frame: pandas.DataFrame, width: int = TABLE_WIDTH) -> tuple[str, int]:
    """The versions as an aligned text table, one row per metric, one column per version; and how many it shows.

    It fits `width` columns: the newest versions that fit (at least MIN_CELL characters each), the
    metric names cut to MAX_LABEL and longer cells (class lists, what a version added) cut with an
    ellipsis; `run_id` is left out (`--json` has everything). Returns the table and the versions shown.
    """
    frame = versions_frame(frame).drop(columns=[c for c in TABLE_LEFT_OUT if c in frame])
    numbers = [f"v{n}" for n in frame["version"]] if "version" in frame else [f"v{i + 1}" for i in range(len(frame))]
    labels = [_clip(str(c), MAX_LABEL) for c in frame.columns if c != "version"]
    label_width = max(map(len, labels), default=0)
    shown = max(1, min(len(numbers), (width - label_width) // (MIN_CELL + 2)))
    rows = frame.tail(shown)
    cell_width = (width - label_width) // shown - 2
    columns = [[_clip(_cell(v), cell_width) for v in rows[c].astype(object)] for c in frame.columns if c != "version"]
    widths = [max([len(h), *(len(column[i]) for column in columns)]) for i, h in enumerate(numbers[-shown:])]
    lines = [" " * label_width + "".join(f"  {h:>{w}}" for h, w in zip(numbers[-shown:], widths, strict=True))]
    lines += [
        f"{label:<{label_width}}" + "".join(f"  {c:>{w}}" for c, w in zip(column, widths, strict=True))
        for label, column in zip(labels, columns, strict=True)
    ]
    return "\n".join(line.rstrip() for line in lines), shown


def _versions(wb: Workbench, args: argparse.Namespace) -> object:
    """`versions`: each version's metrics as a table (or JSON records with --json)."""
    frame = wb.compare_versions(args.classifier_id)
    if frame.empty:
        print(f"workbench: classifier {args.classifier_id!r} has no trained version yet", file=sys.stderr)
        return [] if args.json else None
    if args.json:
        return json.loads(versions_frame(frame).to_json(orient="records"))
    table, shown = versions_table(frame)
    print(table)
    if shown < len(frame):
        print(
            f"workbench: the newest {shown} of {len(frame)} versions fit {TABLE_WIDTH} columns; --json has every one",
            file=sys.stderr,
        )
    return None


def run_demo(wb: Workbench, data: Path, keep: bool) -> None:
    """The tutorial end to end: create `dogs`, update it, classify dogs.jpg, delete."""
    with tempfile.TemporaryDirectory() as tmp:
        zips = {
            name: zip_folder(data / name, Path(tmp) / f"{name}.zip")
            for name in [*TUTORIAL_CREATE, *TUTORIAL_UPDATE, "cats", "more-cats"]
        }
        print("# Step 2: create the dogs classifier", file=sys.stderr)
        created = wb.create_classifier("dogs", {c: zips[c] for c in TUTORIAL_CREATE}, negative_examples=zips["cats"])
        _print(created)
        cid = created["classifier_id"]
        _print(wb.wait(cid, timeout=None))
        print("# Step 3: add dalmatian and more-cats", file=sys.stderr)
        _print(
            wb.update_classifier(
                cid, positive_examples={c: zips[c] for c in TUTORIAL_UPDATE}, negative_examples=zips["more-cats"]
            )
        )
        _print(wb.wait(cid, timeout=None))
    print("# Step 4: classify dogs.jpg against dogs and default", file=sys.stderr)
    _print(wb.classify(data / "dogs.jpg", classifier_ids=[cid, "default"]))
    print(f"# The default model's hierarchy for dogs.jpg at threshold {DEMO_HIERARCHY_THRESHOLD}", file=sys.stderr)
    _print(wb.classify(data / "dogs.jpg", classifier_ids=["default"], threshold=DEMO_HIERARCHY_THRESHOLD))
    if not keep:
        print("# Step 5: delete the classifier", file=sys.stderr)
        wb.delete_classifier(cid)
        _print(wb.list_classifiers())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__)
    parser.add_argument(
        "--home", type=Path, default=None, help="store folder (default: $WORKBENCH_HOME or data/workbench)"
    )
    parser.add_argument("--owner", default=OWNER_ME, help="owner of the classifiers this command sees")
    parser.add_argument(
        "--precision",
        choices=("fp32", "int8"),
        default=None,
        help="backbone precision (default: $WORKBENCH_PRECISION, else fp32); int8 is calibrated once per machine",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, help="what to do (each verb has its own --help)")

    create = verbs.add_parser("create", help="create a classifier and train it")
    create.add_argument("name", help="the classifier's name (its id is the name plus a random number)")
    create.add_argument(
        "--positive",
        "-p",
        action="append",
        default=[],
        metavar="CLASS=PATH",
        help="a class's examples: zip or folder of images (repeat for each class)",
    )
    create.add_argument("--negative", "-n", metavar="PATH", help="negative examples: zip or folder of images")
    _add_from_folder(create)
    create.add_argument("--no-wait", action="store_true", help="answer at once; train in a detached process")

    update = verbs.add_parser("update", help="add classes, images or negatives, then retrain")
    update.add_argument("classifier_id", help="the classifier to update")
    update.add_argument(
        "--positive",
        "-p",
        action="append",
        default=[],
        metavar="CLASS=PATH",
        help="images for a new or existing class: zip or folder (repeat)",
    )
    update.add_argument("--negative", "-n", metavar="PATH", help="more negative examples: zip or folder of images")
    update.add_argument("--no-wait", action="store_true", help="answer at once; retrain in a detached process")

    get = verbs.add_parser("get", help="show one classifier")
    get.add_argument("classifier_id", help="the classifier to show")

    listing = verbs.add_parser("list", help="list classifiers")
    listing.add_argument(
        "--verbose", action="store_true", help="full records (classes, timestamps), not just id, name, status"
    )

    wait = verbs.add_parser("wait", help="block until a classifier is ready or failed (resumes its training)")
    wait.add_argument("classifier_id", help="the classifier to wait for")
    wait.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (default: never)")

    classify = verbs.add_parser("classify", help="classify images, zips or folders")
    classify.add_argument("images", nargs="+", help="image files, zips of images or folders of images")
    classify.add_argument(
        "--classifier-ids",
        "-c",
        action="append",
        default=None,
        help="classifiers to apply, comma-separated or repeated (default: yours); 'default' is the general model, "
        "'food' the food model, 'explicit' the explicit model (optional extra)",
    )
    classify.add_argument("--owners", action="append", default=None, help="whose classifiers to apply: IBM and/or me")
    classify.add_argument(
        "--threshold", "-t", type=float, default=None, help="leave out classes scoring under this (0 to 1; default 0.5)"
    )
    classify.add_argument(
        "--language",
        "-l",
        default=None,
        metavar="LANG",
        help="names of the built-in classes in en (default), ar, de, es, fr, it, ja, ko, pt-br, zh-cn "
        "or zh-tw (or an Accept-Language list: ja-JP, 'fr-CH, fr;q=0.9'); custom names stay as trained",
    )

    delete = verbs.add_parser("delete", help="delete a classifier")
    delete.add_argument("classifier_id", help="the classifier to delete, with its versions and example images")
    _add_versions_verb(verbs)
    _add_examples_verb(verbs)
    _add_promote_verb(verbs)
    _add_export_verb(verbs)
    _add_classify_dir_verb(verbs)

    doctor = verbs.add_parser("doctor", help="check the store; with --repair, fix what is safe to fix")
    doctor.add_argument(
        "--repair",
        action="store_true",
        help="remove orphan blobs and temporary files, quarantine corrupt blobs, mark broken classifiers failed",
    )
    doctor.add_argument("--quick", action="store_true", help="only orphan blobs and temporary files (no hashing)")
    doctor.add_argument(
        "--grace-seconds",
        type=float,
        default=DOCTOR_GRACE_S,
        help=f"leave files younger than this alone (default {DOCTOR_GRACE_S:g})",
    )

    demo = verbs.add_parser("demo", help="run the tutorial on the bundled images")
    demo.add_argument("--data", type=Path, default=None, help="tutorial images (default: data/tutorial)")
    demo.add_argument("--keep", action="store_true", help="keep the classifier instead of deleting it")
    _add_server_verbs(verbs)
    return parser


def _add_from_folder(create: argparse.ArgumentParser) -> None:
    """`create --from-folder DIR`: classes from sub-folder (or .zip) names, fastai's `from_folder` layout."""
    create.add_argument(
        "--from-folder",
        type=Path,
        default=None,
        metavar="DIR",
        help="a folder with one sub-folder (or .zip) of images per class, instead of -p/-n",
    )
    create.add_argument(
        "--negatives-name",
        default="negatives",
        metavar="NAME",
        help="with --from-folder: the sub-folder holding negative examples (default: negatives)",
    )


def _add_versions_verb(verbs: argparse._SubParsersAction) -> None:
    """`versions ID [--json]`: the cross-validated metrics of every trained version."""
    versions = verbs.add_parser("versions", help="every trained version of a classifier with its metrics, as a table")
    versions.add_argument("classifier_id", help="the classifier whose versions to show")
    versions.add_argument("--json", action="store_true", help="JSON records on stdout instead of the table")


EXAMPLE_ACTIONS = ("remove", "relabel")  # `examples remove|relabel CID ...`; else `examples CID` lists


def _add_examples_verb(verbs: argparse._SubParsersAction) -> None:
    """`examples CID [--sort oof]`, `examples remove CID ID...`, `examples relabel CID ID... CLASS|--negative`."""
    examples = verbs.add_parser(
        "examples",
        help="list a classifier's examples with their out-of-fold scores; remove or relabel them",
        usage="workbench examples CID [--sort {id,oof}] [--version N] [--removed]\n"
        "       workbench examples remove CID ID [ID ...] [--no-wait]\n"
        "       workbench examples relabel CID ID [ID ...] (CLASS | --negative) [--no-wait]",
        description="A change is one commit and queues a retraining, as an update does (the serving version answers "
        "meanwhile); earlier versions keep the examples they trained on.",
    )
    examples.add_argument(
        "words",
        nargs="+",
        metavar="[remove|relabel] CID ...",
        help="CID to list; remove CID ID...; relabel CID ID... CLASS (or --negative)",
    )
    examples.add_argument(
        "--sort",
        choices=SORTS,
        default="id",
        help="id: as added (default); oof: those another class outscored out of fold first",
    )
    examples.add_argument(
        "--version", type=int, default=None, help="whose out-of-fold scores (default: the newest version)"
    )
    examples.add_argument("--removed", action="store_true", help="list curated-out examples too")
    examples.add_argument("--negative", action="store_true", help="relabel: make them negative examples")
    examples.add_argument("--no-wait", action="store_true", help="answer at once; retrain in a detached process")


def _examples(wb: Workbench, args: argparse.Namespace, log_to: str | None = None) -> object:
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
        record = _settle(wb, {"classifier_id": cid, "status": change.status}, not args.no_wait, wb.home, log_to)
        answer.update({key: record[key] for key in ("status", "explanation") if key in record})
    return answer


def _add_promote_verb(verbs: argparse._SubParsersAction) -> None:
    """`promote ID VERSION|latest`: which version serves (roll back, or follow the newest again)."""
    promote = verbs.add_parser(
        "promote", help="make a version serve and pin it (roll back); 'latest' follows the newest again"
    )
    promote.add_argument("classifier_id", help="the classifier")
    promote.add_argument("version", help="a version number from `workbench versions`, or 'latest' to lift the pin")


def _promote(wb: Workbench, args: argparse.Namespace) -> dict:
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


def _add_export_verb(verbs: argparse._SubParsersAction) -> None:
    """`export ID --format coreml|onnx [-o FILE] [--version N]`: one file for devices."""
    export = verbs.add_parser("export", help="write a classifier version as a Core ML (.mlmodel) or ONNX file")
    export.add_argument("classifier_id", help="the classifier to export")
    export.add_argument("--format", "-f", choices=("coreml", "onnx"), required=True, help="coreml (.mlmodel) or onnx")
    export.add_argument(
        "--output",
        "-o",
        type=Path,
        default=None,
        metavar="FILE",
        help="file or folder to write (default: ID-vN.mlmodel / .onnx in the current folder)",
    )
    export.add_argument("--version", type=int, default=None, help="the version to export (default: the serving one)")


def _export(wb: Workbench, args: argparse.Namespace) -> dict:
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


def _add_classify_dir_verb(verbs: argparse._SubParsersAction) -> None:
    """`classify-dir DIR -c IDS --out FILE`: a folder of any size, streamed to Parquet, CSV or JSON Lines."""
    batch = verbs.add_parser("classify-dir", help="classify every image under a folder into a results file, resumably")
    batch.add_argument("folder", type=Path, help="the folder of images (walked recursively)")
    batch.add_argument(
        "--classifier-ids",
        "-c",
        action="append",
        default=None,
        help="classifiers to apply, comma-separated or repeated (default: yours); 'default' is the general model",
    )
    batch.add_argument(
        "--threshold",
        "-t",
        type=float,
        default=None,
        help="leave out classes scoring under this (0 to 1; default 0.5; 0 keeps every score)",
    )
    batch.add_argument(
        "--out",
        "-o",
        type=Path,
        required=True,
        metavar="FILE",
        help="results.parquet (a folder of parts), results.csv or results.jsonl; an existing one is resumed",
    )
    batch.add_argument(
        "--flush-every",
        type=int,
        default=DIR_FLUSH_IMAGES,
        metavar="N",
        help=f"write to the output every N images (default {DIR_FLUSH_IMAGES}); a crash redoes at most N",
    )


def classify_dir(wb: Workbench, args: argparse.Namespace) -> dict:
    """Streams the folder's images through `classify_iter` into the output, skipping those already in it (by path)."""
    from tqdm import tqdm

    from .. import named_images
    from .results_files import done_paths, open_writer, result_row

    if not args.folder.is_dir():
        raise SystemExit(f"workbench: {str(args.folder)!r} is not a folder")
    done = done_paths(args.out)
    total = sum(1 for _ in named_images(args.folder))
    if total == 0:  # an empty folder, or a typo: not a silent success with an empty output
        raise SystemExit(f"workbench: no images under {str(args.folder)!r} (JPEG, PNG, GIF, TIFF, WEBP or BMP files)")
    counts = {"classified": 0, "errors": 0, "already_done": 0}
    writer = open_writer(args.out)
    rows: list[dict] = []
    with tqdm(total=total, unit="img", desc="classify-dir", file=sys.stderr, dynamic_ncols=True) as bar:

        def pending() -> Iterator[tuple[str, Path]]:
            for name, path in named_images(args.folder):
                if name in done:  # a row for it already, error rows included: not read again
                    counts["already_done"] += 1
                    bar.update(1)
                else:
                    yield name, path

        try:
            for answer in wb.classify_iter(pending(), classifier_ids=args.classifier_ids, threshold=args.threshold):
                rows.append(result_row(answer))
                counts["errors" if "error" in answer else "classified"] += 1
                bar.update(1)
                if len(rows) >= args.flush_every:
                    writer.write(rows)
                    rows = []
        finally:  # also on Ctrl-C: what was classified is kept
            writer.write(rows)
            writer.close()
    return {"out": str(args.out), **counts}


def _add_server_verbs(verbs: argparse._SubParsersAction) -> None:
    """`serve` (the Watson v3 HTTP server) and `keys add|list|remove` (its API keys)."""
    serve = verbs.add_parser("serve", help="serve the Watson Visual Recognition v3 REST API")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.add_argument("--no-auth", action="store_true", help="accept requests without an API key (loopback only)")
    serve.add_argument("--allow-remote-no-auth", action="store_true", help="allow --no-auth on a non-loopback host")
    serve.add_argument("--max-body-mb", type=float, default=None, help="largest request body (default 257 MB)")
    serve.add_argument("--max-classify-images", type=int, default=None, help="images per classify call (default 20)")
    serve.add_argument("--allow-file-root", type=Path, default=None, help="serve file:// image URLs under this folder")
    serve.add_argument(
        "--allow-url",
        action="append",
        default=[],
        metavar="PREFIX",
        help="allow http(s) image URLs under PREFIX (repeat)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a DNS name clients may send in Host besides IP addresses, localhost and --host (repeat; '*': any)",
    )
    serve.add_argument(
        "--header-timeout-s",
        type=float,
        default=HTTP_HEADER_TIMEOUT_S,
        help="close a connection whose request line and headers are not in within S seconds of "
        f"connecting or of its previous answer (default {HTTP_HEADER_TIMEOUT_S:g})",
    )
    serve.add_argument(
        "--keep-alive-s",
        type=int,
        default=HTTP_KEEP_ALIVE_S,
        help=f"close a connection silent for S seconds after an answer (default {HTTP_KEEP_ALIVE_S})",
    )
    serve.add_argument(
        "--body-min-kib-per-s",
        type=float,
        default=HTTP_BODY_MIN_BYTES_PER_S / 1024,
        help="answer 408 and close when a body averages under this many KiB/s after --body-grace-s "
        f"(default {HTTP_BODY_MIN_BYTES_PER_S / 1024:g}; 0: no minimum)",
    )
    serve.add_argument(
        "--body-grace-s",
        type=float,
        default=HTTP_BODY_RATE_GRACE_S,
        help=f"seconds a body may be slower than the minimum (default {HTTP_BODY_RATE_GRACE_S:g})",
    )
    serve.add_argument(
        "--body-idle-s",
        type=float,
        default=HTTP_BODY_IDLE_S,
        help=f"answer 408 and close when a body sends nothing for S seconds (default {HTTP_BODY_IDLE_S:g})",
    )
    serve.add_argument("--log-level", default="info", help="uvicorn's log level: debug, info, warning, error")
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes on one socket and one home (default 1; one host only, see README)",
    )
    serve.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)  # a worker of --workers N
    serve.add_argument(
        "--prebuild-core-ml",
        action="store_true",
        help="build each new version's Core ML model right after its training (default: on first download)",
    )

    keys = verbs.add_parser("keys", help="API keys of the HTTP server (only their hashes are stored)")
    key_verbs = keys.add_subparsers(dest="keys_verb", required=True, help="what to do with the keys")
    add = key_verbs.add_parser("add", help="create a key for an owner and print it once")
    add.add_argument("owner", help="the owner whose classifiers the key reaches")
    add.add_argument("--key", default=None, help="store this key instead of a new random one")
    key_verbs.add_parser("list", help="owners, key ids and creation times")
    remove = key_verbs.add_parser("remove", help="remove an owner's keys, or one key by its id")
    remove.add_argument("owner_or_key_id", help="an owner (all their keys) or one key id from `keys list`")


def _dispatch_server_verbs(args: argparse.Namespace, wb: Workbench) -> object:
    """Runs `serve` (blocks until interrupted) or a `keys` verb."""
    from ..core.limits import HTTP_BACKLOG
    from ..server.keys import KeyFile, KeyRing
    from ..server.runner import check_exposure, serve
    from ..server.serve_workers import serve_workers
    from ..server.settings import MAX_BODY_BYTES, ServerSettings

    if args.verb == "serve":
        settings = ServerSettings(
            max_body_bytes=int(args.max_body_mb * 1024 * 1024) if args.max_body_mb else MAX_BODY_BYTES,
            max_classify_images=args.max_classify_images or ServerSettings.max_classify_images,
            file_url_root=args.allow_file_root,
            url_prefixes=tuple(args.allow_url),
            allowed_hosts=tuple(args.allowed_host),
            auth=not args.no_auth,
            http_header_timeout_s=args.header_timeout_s,
            http_keep_alive_s=args.keep_alive_s,
            body_min_bytes_per_s=args.body_min_kib_per_s * 1024,
            body_rate_grace_s=args.body_grace_s,
            body_idle_s=args.body_idle_s,
        )
        if args.workers > 1:
            check_exposure(args.host, settings, KeyRing(wb.home) if settings.auth else None, args.allow_remote_no_auth)
            serve_workers(args.argv, args.host, args.port, args.workers, HTTP_BACKLOG)
            return None
        serve(
            wb,
            args.host,
            args.port,
            settings=settings,
            allow_remote_no_auth=args.allow_remote_no_auth,
            log_level=args.log_level,
            listen_fd=args.listen_fd,
        )
        return None
    keys = KeyFile(wb.home)
    if args.keys_verb == "add":
        key = keys.add(args.owner, args.key)
        print("workbench: store this key now; only its hash is kept", file=sys.stderr)
        return {"owner": args.owner, "key": key}
    if args.keys_verb == "list":
        return {"keys": [{"owner": r.owner, "key_id": r.key_id, "created": r.created} for r in keys.records()]}
    gone = keys.remove(args.owner_or_key_id)
    return {"removed": [{"owner": r.owner, "key_id": r.key_id} for r in gone]}


def dispatch(args: argparse.Namespace) -> object:
    """Runs one verb; returns what to print (None prints nothing)."""
    no_wait = getattr(args, "no_wait", False)
    # only a process that stays to finish the work resumes trainings a dead process left behind
    changes_examples = args.verb == "examples" and args.words[0] in EXAMPLE_ACTIONS
    lives = (args.verb in ("create", "update", "wait", "demo", "serve") or changes_examples) and not no_wait
    prebuild = ("coreml",) if getattr(args, "prebuild_core_ml", False) else ()
    from .. import tracking_uri
    from ..service.workbench import Workbench

    # a create, update or curation that waits answers once the version is stored; a detached process logs it
    log_to = tracking_uri() if (args.verb in ("create", "update") or changes_examples) and not no_wait else None
    if log_to is not None and not log_to.startswith("sqlite:"):
        log_to = None  # a tracking server: logged in this process, as before (the hand-off is proven on local stores)
    wb = Workbench(
        args.home,
        owner=args.owner,
        progress=args.verb != "serve",
        train=not no_wait,
        resume=lives,
        prebuild_exports=prebuild,
        precision=args.precision,
        tracking_uri=False if log_to is not None else None,
    )
    home = wb.home
    if args.verb == "create":
        return _settle(wb, _create(wb, args), not no_wait, home, log_to)
    if args.verb == "update":
        record = wb.update_classifier(
            args.classifier_id, positive_examples=_positives(args.positive), negative_examples=args.negative
        )
        return _settle(wb, record, not no_wait, home, log_to)
    if args.verb == "get":
        return wb.get_classifier(args.classifier_id)
    if args.verb == "list":
        return wb.list_classifiers(verbose=args.verbose)
    if args.verb == "wait":
        wb.wait(args.classifier_id, timeout=args.timeout)
        return _flush_tracking(wb, args.classifier_id)
    if args.verb == "classify":
        return wb.classify(
            args.images,
            classifier_ids=args.classifier_ids,
            owners=args.owners,
            threshold=args.threshold,
            accept_language=args.language,
        )
    if args.verb == "delete":
        return _delete(wb, args.classifier_id)
    if args.verb == "versions":
        return _versions(wb, args)
    if args.verb == "examples":
        return _examples(wb, args, log_to)
    if args.verb == "doctor":
        report = wb.doctor(repair=args.repair, full=not args.quick, grace_s=args.grace_seconds)
        if report.advice():
            print(f"workbench: {report.advice()}", file=sys.stderr)
        return report.to_dict()
    if args.verb == "export":
        return _export(wb, args)
    if args.verb == "promote":
        return _promote(wb, args)
    if args.verb == "classify-dir":
        return classify_dir(wb, args)
    if args.verb == "demo":
        run_demo(wb, args.data or tutorial_dir(), args.keep)
        return None
    if args.verb in ("serve", "keys"):
        return _dispatch_server_verbs(args, wb)
    raise AssertionError(args.verb)


def run(args: argparse.Namespace) -> int:
    """Runs one verb and prints its answer; the exit code."""
    try:
        answer = dispatch(args)
    except WorkbenchError as exc:
        print(f"workbench: error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    if answer is not None:
        _print(answer)
    if args.verb == "doctor" and isinstance(answer, dict) and not answer["ok"]:
        return 1
    if isinstance(answer, dict) and answer.get("status") == "failed":
        print(f"workbench: training failed: {answer.get('explanation')}", file=sys.stderr)
        return 1
    return 0


def _reader_went_away() -> int:
    """stdout's reader closed early (`| head`): quiet exit, as Python's note on SIGPIPE recommends.

    stdout is pointed at /dev/null so the interpreter's final flush does not fail again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return SIGPIPE_EXIT


def _stdout_for_json_only() -> None:
    """MLflow writes "View run ... at: URL" lines to stdout when it logs to a server; stdout here is JSON."""
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `serve --workers N` starts its workers with these
    _stdout_for_json_only()
    try:
        code = run(args)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at interpreter exit
    except BrokenPipeError:
        return _reader_went_away()
    return code


if __name__ == "__main__":
    sys.exit(main())
