"""`workbench`'s entry point: parse, run one verb, print its answer; the exit code says how it went."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..core.errors import WorkbenchError
from .dispatch import dispatch
from .output import print_json, reader_went_away, stdout_for_json_only
from .parser import build_parser


def run(args: argparse.Namespace) -> int:
    """Runs one verb and prints its answer; the exit code (1: a Watson error, a failed doctor or training)."""
    try:
        answer = dispatch(args)
    except WorkbenchError as exc:
        print(f"workbench: error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    if answer is not None:
        print_json(answer)
    if args.verb == "doctor" and isinstance(answer, dict) and not answer["ok"]:
        return 1
    if isinstance(answer, dict) and answer.get("status") == "failed":
        print(f"workbench: training failed: {answer.get('explanation')}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `workbench` console script: runs the verb `argv` names (default: the command line's)."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `serve --workers N` starts its workers with these
    stdout_for_json_only()
    try:
        code = run(args)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at interpreter exit
    except BrokenPipeError:
        return reader_went_away()
    return code


if __name__ == "__main__":
    sys.exit(main())
