"""One parsed command to its verb: opens the Workbench the verb needs, runs the verb, returns what to print.

The Workbench (and with it the engine) is imported here, inside `dispatch`: `workbench --help` needs none of it.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .classifier_verbs import EXAMPLE_ACTIONS, create, delete, examples, export, promote, update
from .classify_verbs import classify, classify_dir
from .demo import run_demo, tutorial_dir
from .server_verbs import run_server_verbs
from .settle import flush_tracking
from .versions_table import versions

if TYPE_CHECKING:
    from ..service.workbench import Workbench


def open_workbench(args: argparse.Namespace) -> tuple[Workbench, str | None]:
    """The Workbench this verb needs, and where a detached `workbench wait` logs to MLflow (None: logged here)."""
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
        store=args.store,
        blobs=args.blobs,
    )
    return wb, log_to


def dispatch(args: argparse.Namespace) -> object:
    """Runs one verb; returns what to print (None prints nothing)."""
    wb, log_to = open_workbench(args)
    if args.verb == "create":
        return create(wb, args, log_to)
    if args.verb == "update":
        return update(wb, args, log_to)
    if args.verb == "get":
        return wb.get_classifier(args.classifier_id)
    if args.verb == "list":
        return wb.list_classifiers(verbose=args.verbose)
    if args.verb == "wait":
        wb.wait(args.classifier_id, timeout=args.timeout)
        return flush_tracking(wb, args.classifier_id)
    if args.verb == "classify":
        return classify(wb, args)
    if args.verb == "delete":
        return delete(wb, args.classifier_id)
    if args.verb == "versions":
        return versions(wb, args)
    if args.verb == "examples":
        return examples(wb, args, log_to)
    if args.verb == "doctor":
        report = wb.doctor(repair=args.repair, full=not args.quick, grace_s=args.grace_seconds)
        if report.advice():
            print(f"workbench: {report.advice()}", file=sys.stderr)
        return report.to_dict()
    if args.verb == "export":
        return export(wb, args)
    if args.verb == "promote":
        return promote(wb, args)
    if args.verb == "classify-dir":
        return classify_dir(wb, args)
    if args.verb == "demo":
        run_demo(wb, args.data or tutorial_dir(), args.keep)
        return None
    if args.verb in ("serve", "keys"):
        return run_server_verbs(args, wb)
    raise AssertionError(args.verb)
