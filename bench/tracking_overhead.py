"""Overhead of MLflow logging on one training: the tutorial's create with tracking off, then on.

    .venv/bin/python bench/tracking_overhead.py

Both trainings read a warm embedding cache, so the numbers compare training and logging only.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from workbench import Workbench

TUTORIAL = Path(__file__).resolve().parents[1] / "data" / "tutorial"
POSITIVES = {c: TUTORIAL / c for c in ("beagle", "husky", "goldenretriever")}
ROUNDS = 3


def create_to_ready(wb: Workbench) -> float:
    started = time.perf_counter()
    cid = wb.create_classifier("dogs", POSITIVES, negative_examples=TUTORIAL / "cats")["classifier_id"]
    wb.wait(cid, timeout=600)
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache = root / "embeddings.db"
        create_to_ready(Workbench(root / "warm", embedding_cache=cache, tracking_uri=False))
        off = Workbench(root / "off", embedding_cache=cache, tracking_uri=False)
        on = Workbench(root / "on", embedding_cache=cache, tracking_uri=root / "mlruns")
        started = time.perf_counter()
        on.tracker.client().search_experiments()
        print(
            f"first connection to a new local store (MLflow creates its schema): {time.perf_counter() - started:.2f} s"
        )
        for round_ in range(ROUNDS):
            seconds_off = create_to_ready(off)
            seconds_on = create_to_ready(on)
            started = time.perf_counter()
            on.tracker.flush(600)
            logging = time.perf_counter() - started
            print(
                f"round {round_}: create-to-ready tracking off {seconds_off:.2f} s, on {seconds_on:.2f} s; "
                f"then the background thread logged the run in {logging:.2f} s more"
            )


if __name__ == "__main__":
    main()
