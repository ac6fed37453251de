"""The command-line front: Watson verbs, JSON on stdout, readable errors on stderr."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

from .doctor import DEFAULT_GRACE_S, KEPT_RECENT, REPAIRED
from .errors import WorkbenchError
from .service import Workbench

TUTORIAL_DIR = Path("data") / "tutorial"
TUTORIAL_CREATE = {"beagle": "beagle", "husky": "husky", "goldenretriever": "goldenretriever"}
TUTORIAL_UPDATE = {"dalmatian": "dalmatian"}
DEMO_HIERARCHY_THRESHOLD = 0.1  # ImageNet probabilities spread over similar breeds; 0.1 shows the breeds


def _print(answer: object) -> None:
    print(json.dumps(answer, indent=2))


def _positives(pairs: Sequence[str]) -> dict[str, str]:
    """`class=path` (or `class_positive_examples=path`) pairs to a mapping."""
    positives = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not path:
            raise SystemExit(f"workbench: --positive expects CLASS=PATH, got {pair!r}")
        positives[name.removesuffix("_positive_examples")] = path
    return positives


def tutorial_dir() -> Path:
    """The bundled tutorial images: ./data/tutorial, else the checkout this package was installed from."""
    if TUTORIAL_DIR.is_dir():
        return TUTORIAL_DIR
    return Path(__file__).resolve().parents[2] / TUTORIAL_DIR


def zip_folder(folder: Path, target: Path) -> Path:
    """Zips a folder of images (stored, not recompressed) as the tutorial's example zips."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.name}")
    return target


def _settle(wb: Workbench, record: dict, wait: bool, home: Path) -> dict:
    """Waits for training here, or hands it to a detached `workbench wait` process."""
    if wait:
        return wb.wait(record["classifier_id"], timeout=None)
    subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "--home", str(home), "wait", record["classifier_id"]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return record


def run_demo(wb: Workbench, data: Path, keep: bool) -> None:
    """The tutorial end to end: create `dogs`, update it, classify dogs.jpg, delete."""
    with tempfile.TemporaryDirectory() as tmp:
        zips = {name: zip_folder(data / name, Path(tmp) / f"{name}.zip") for name in
                [*TUTORIAL_CREATE, *TUTORIAL_UPDATE, "cats", "more-cats"]}
        print("# Step 2: create the dogs classifier", file=sys.stderr)
        created = wb.create_classifier("dogs", {c: zips[c] for c in TUTORIAL_CREATE}, zips["cats"])
        _print(created)
        cid = created["classifier_id"]
        _print(wb.wait(cid, timeout=None))
        print("# Step 3: add dalmatian and more-cats", file=sys.stderr)
        _print(wb.update_classifier(cid, {c: zips[c] for c in TUTORIAL_UPDATE}, zips["more-cats"]))
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
    parser.add_argument("--home", type=Path, default=None, help="store folder (default: $WORKBENCH_HOME or data/workbench)")
    parser.add_argument("--owner", default="me", help="owner of the classifiers this command sees")
    verbs = parser.add_subparsers(dest="verb", required=True)

    create = verbs.add_parser("create", help="create a classifier and train it")
    create.add_argument("name")
    create.add_argument("--positive", "-p", action="append", default=[], metavar="CLASS=PATH", help="a class's zip or folder (repeat)")
    create.add_argument("--negative", "-n", metavar="PATH", help="negative examples: zip or folder")
    create.add_argument("--no-wait", action="store_true", help="answer at once; train in a detached process")

    update = verbs.add_parser("update", help="add classes, images or negatives, then retrain")
    update.add_argument("classifier_id")
    update.add_argument("--positive", "-p", action="append", default=[], metavar="CLASS=PATH")
    update.add_argument("--negative", "-n", metavar="PATH")
    update.add_argument("--no-wait", action="store_true")

    get = verbs.add_parser("get", help="show one classifier")
    get.add_argument("classifier_id")

    listing = verbs.add_parser("list", help="list classifiers")
    listing.add_argument("--verbose", action="store_true")

    wait = verbs.add_parser("wait", help="block until a classifier is ready or failed (resumes its training)")
    wait.add_argument("classifier_id")
    wait.add_argument("--timeout", type=float, default=None)

    classify = verbs.add_parser("classify", help="classify images, zips or folders")
    classify.add_argument("images", nargs="+")
    classify.add_argument("--classifier-ids", "-c", action="append", default=None, help="comma-separated or repeated")
    classify.add_argument("--owners", action="append", default=None, help="IBM and/or me")
    classify.add_argument("--threshold", "-t", type=float, default=None)

    delete = verbs.add_parser("delete", help="delete a classifier")
    delete.add_argument("classifier_id")

    doctor = verbs.add_parser("doctor", help="check the store; with --repair, fix what is safe to fix")
    doctor.add_argument("--repair", action="store_true",
                        help="remove orphan blobs and temporary files, quarantine corrupt blobs, mark broken classifiers failed")
    doctor.add_argument("--quick", action="store_true", help="only orphan blobs and temporary files (no hashing)")
    doctor.add_argument("--grace-seconds", type=float, default=DEFAULT_GRACE_S,
                        help=f"leave files younger than this alone (default {DEFAULT_GRACE_S:g})")

    demo = verbs.add_parser("demo", help="run the tutorial on the bundled images")
    demo.add_argument("--data", type=Path, default=None, help="tutorial images (default: data/tutorial)")
    demo.add_argument("--keep", action="store_true", help="keep the classifier instead of deleting it")
    _add_server_verbs(verbs)
    return parser


def _add_server_verbs(verbs: argparse._SubParsersAction) -> None:
    """`serve` (the Watson v3 HTTP server) and `keys add|list|remove` (its API keys)."""
    serve = verbs.add_parser("serve", help="serve the Watson Visual Recognition v3 REST API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--no-auth", action="store_true", help="accept requests without an API key (loopback only)")
    serve.add_argument("--allow-remote-no-auth", action="store_true", help="allow --no-auth on a non-loopback host")
    serve.add_argument("--max-body-mb", type=float, default=None, help="largest request body (default 257 MB)")
    serve.add_argument("--max-classify-images", type=int, default=None, help="images per classify call (default 20)")
    serve.add_argument("--allow-file-root", type=Path, default=None, help="serve file:// image URLs under this folder")
    serve.add_argument("--allow-url", action="append", default=[], metavar="PREFIX", help="allow http(s) image URLs under PREFIX (repeat)")
    serve.add_argument("--log-level", default="info")

    keys = verbs.add_parser("keys", help="API keys of the HTTP server (only their hashes are stored)")
    key_verbs = keys.add_subparsers(dest="keys_verb", required=True)
    add = key_verbs.add_parser("add", help="create a key for an owner and print it once")
    add.add_argument("owner")
    add.add_argument("--key", default=None, help="store this key instead of a new random one")
    key_verbs.add_parser("list", help="owners, key ids and creation times")
    remove = key_verbs.add_parser("remove", help="remove an owner's keys, or one key by its id")
    remove.add_argument("owner_or_key_id")


def _dispatch_server_verbs(args: argparse.Namespace, wb: Workbench) -> object:
    """Runs `serve` (blocks until interrupted) or a `keys` verb."""
    from .keys import KeyFile
    from .server import MAX_BODY_BYTES, ServerSettings, serve

    if args.verb == "serve":
        settings = ServerSettings(
            max_body_bytes=int(args.max_body_mb * 1024 * 1024) if args.max_body_mb else MAX_BODY_BYTES,
            max_classify_images=args.max_classify_images or ServerSettings.max_classify_images,
            file_url_root=args.allow_file_root,
            url_prefixes=tuple(args.allow_url),
            auth=not args.no_auth,
        )
        serve(wb, args.host, args.port, settings=settings, allow_remote_no_auth=args.allow_remote_no_auth,
              log_level=args.log_level)
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
    lives = args.verb in ("create", "update", "wait", "demo", "serve") and not no_wait
    wb = Workbench(args.home, owner=args.owner, progress=args.verb != "serve", train=not no_wait, resume=lives)
    home = wb.home
    if args.verb == "create":
        record = wb.create_classifier(args.name, _positives(args.positive), args.negative)
        return _settle(wb, record, not no_wait, home)
    if args.verb == "update":
        record = wb.update_classifier(args.classifier_id, _positives(args.positive), args.negative)
        return _settle(wb, record, not no_wait, home)
    if args.verb == "get":
        return wb.get_classifier(args.classifier_id)
    if args.verb == "list":
        return wb.list_classifiers(verbose=args.verbose)
    if args.verb == "wait":
        return wb.wait(args.classifier_id, timeout=args.timeout)
    if args.verb == "classify":
        return wb.classify(args.images, classifier_ids=args.classifier_ids, owners=args.owners, threshold=args.threshold)
    if args.verb == "delete":
        wb.delete_classifier(args.classifier_id)
        return {}
    if args.verb == "doctor":
        return wb.doctor(repair=args.repair, full=not args.quick, grace_s=args.grace_seconds).to_dict()
    if args.verb == "demo":
        run_demo(wb, args.data or tutorial_dir(), args.keep)
        return None
    if args.verb in ("serve", "keys"):
        return _dispatch_server_verbs(args, wb)
    raise AssertionError(args.verb)


def _doctor_advice(report: dict, repaired: bool) -> None:
    """One line on stderr saying what to do about what doctor left."""
    left = [f for f in report["findings"] if f["action"] not in REPAIRED]
    if not repaired:
        advice = "run `workbench doctor --repair`"
    elif all(f["action"] == KEPT_RECENT for f in left):
        advice = "some files are too recent to remove safely: run it again later (or with --grace-seconds 0 when no other workbench process runs)"
    else:
        advice = "what is left needs you: re-send missing images with an update, or delete the classifier"
    print(f"workbench: doctor found {len(left)} problem(s) left; {advice}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        answer = dispatch(args)
    except WorkbenchError as exc:
        print(f"workbench: error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    if answer is not None:
        _print(answer)
    if args.verb == "doctor" and not answer["ok"]:
        _doctor_advice(answer, args.repair)
        return 1
    if isinstance(answer, dict) and answer.get("status") == "failed":
        print(f"workbench: training failed: {answer.get('explanation')}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
