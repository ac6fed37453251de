"""The argparse definitions of every verb but `serve` and `keys` (`server_verbs` adds those): flags and help.

Only the standard library and `core` load here, so `workbench --help` answers in a fraction of a second.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.limits import DOCTOR_GRACE_S
from ..core.vocabulary import OWNER_ME
from .server_verbs import add_server_verbs

DESCRIPTION = "The command-line front: Watson verbs, JSON on stdout, readable errors on stderr."
DIR_FLUSH_IMAGES = 1024  # classify-dir writes its output (one Parquet part) every this many images
SORTS = ("id", "oof")  # `examples --sort` (curation.SORTS; not imported: `--help` loads no engine)


def build_parser() -> argparse.ArgumentParser:
    """`workbench`'s parser: the global flags (--home, --owner, --precision), then one sub-parser per verb."""
    parser = argparse.ArgumentParser(prog="workbench", description=DESCRIPTION)
    parser.add_argument(
        "--home", type=Path, default=None, help="store folder (default: $WORKBENCH_HOME or data/workbench)"
    )
    parser.add_argument(
        "--store",
        default=None,
        help="postgresql://user@host:port/db: the store's rows on PostgreSQL, for servers on many hosts "
        "(default: $WORKBENCH_STORE, else SQLite in the home)",
    )
    parser.add_argument(
        "--blobs",
        type=Path,
        default=None,
        help="with --store: the folder every host mounts, for images and heads (default: $WORKBENCH_BLOBS)",
    )
    parser.add_argument("--owner", default=OWNER_ME, help="owner of the classifiers this command sees")
    parser.add_argument(
        "--precision",
        choices=("fp32", "int8"),
        default=None,
        help="backbone precision (default: $WORKBENCH_PRECISION, else fp32); int8 is calibrated once per machine, "
        "in the background (fp32 answers until it is ready)",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, help="what to do (each verb has its own --help)")
    _add_training_verbs(verbs)
    _add_lookup_verbs(verbs)
    _add_classify_verb(verbs)
    delete = verbs.add_parser("delete", help="delete a classifier")
    delete.add_argument("classifier_id", help="the classifier to delete, with its versions and example images")
    _add_versions_verb(verbs)
    _add_examples_verb(verbs)
    _add_promote_verb(verbs)
    _add_export_verb(verbs)
    _add_classify_dir_verb(verbs)
    _add_doctor_and_demo_verbs(verbs)
    add_server_verbs(verbs)
    return parser


def _add_training_verbs(verbs: argparse._SubParsersAction) -> None:
    """`create NAME -p CLASS=PATH ... [-n PATH]` (or `--from-folder DIR`) and `update ID -p ... [-n ...]`."""
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


def _add_lookup_verbs(verbs: argparse._SubParsersAction) -> None:
    """`get ID`, `list [--verbose]` and `wait ID [--timeout S]`: a classifier's record, all of them, or its settling."""
    get = verbs.add_parser("get", help="show one classifier")
    get.add_argument("classifier_id", help="the classifier to show")

    listing = verbs.add_parser("list", help="list classifiers")
    listing.add_argument(
        "--verbose", action="store_true", help="full records (classes, timestamps), not just id, name, status"
    )

    wait = verbs.add_parser("wait", help="block until a classifier is ready or failed (resumes its training)")
    wait.add_argument("classifier_id", help="the classifier to wait for")
    wait.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (default: never)")


def _add_classify_verb(verbs: argparse._SubParsersAction) -> None:
    """`classify IMAGES... [-c IDS] [--owners] [-t T] [-l LANG]`: Watson's classify on files, zips or folders."""
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


def _add_doctor_and_demo_verbs(verbs: argparse._SubParsersAction) -> None:
    """`doctor [--repair] [--quick]` (check and repair the store) and `demo` (the tutorial on the bundled images)."""
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


def _add_promote_verb(verbs: argparse._SubParsersAction) -> None:
    """`promote ID VERSION|latest`: which version serves (roll back, or follow the newest again)."""
    promote = verbs.add_parser(
        "promote", help="make a version serve and pin it (roll back); 'latest' follows the newest again"
    )
    promote.add_argument("classifier_id", help="the classifier")
    promote.add_argument("version", help="a version number from `workbench versions`, or 'latest' to lift the pin")


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
