"""`classify` (images, zips or folders, one answer) and `classify-dir` (a folder of any size into a results file).

`classify-dir` streams `Workbench.classify_iter` into `results_files`, resuming where an earlier run stopped.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..service.workbench import Workbench


def classify(wb: Workbench, args: argparse.Namespace) -> dict:
    """`classify`: Watson's answer for the images against the classifiers, in the language asked for."""
    return wb.classify(
        args.images,
        classifier_ids=args.classifier_ids,
        owners=args.owners,
        threshold=args.threshold,
        accept_language=args.language,
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
    engine = wb.backbone.prepare(wait=True)  # as Spark's workers: no image scored by torch while ONNX exports
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
                rows.append(result_row(answer, engine))
                counts["errors" if "error" in answer else "classified"] += 1
                bar.update(1)
                if len(rows) >= args.flush_every:
                    writer.write(rows)
                    rows = []
        finally:  # also on Ctrl-C: what was classified is kept
            writer.write(rows)
            writer.close()
    return {"out": str(args.out), **counts}
