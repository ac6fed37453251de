"""Classify latency while trainings run: p50 of one dogs.jpg classify idle, then while N creates train.

    .venv/bin/python bench/training_pool.py --creates 8 [--max-trainings 1]

Each create gets its own copy of the tutorial images (one pixel changed, so new sha256s) and so
really embeds them, as eight users' different images would. The training pool runs
`--max-trainings` of them at once (default: the Workbench default, 1); the target is a busy p50
within 2x of idle. Also prints the process's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from workbench import Workbench
from workbench.jobs.runner import JobSettings

TUTORIAL = Path(__file__).resolve().parents[1] / "data" / "tutorial"
DOGS_JPG = TUTORIAL / "dogs.jpg"
CLASSES = ("beagle", "husky")
IDLE_CALLS = 30
TARGET_RATIO = 2.0


def distinct_copy(source: Path, target: Path, tag: int, images: int) -> Path:
    """The first `images` images of a folder, each with one pixel set from `tag` (new bytes, same picture)."""
    target.mkdir(parents=True)
    for path in sorted(source.iterdir())[:images]:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.putpixel((0, 0), (tag % 256, (tag * 7) % 256, (tag * 13) % 256))
            image.save(target / f"{path.stem}.jpg", quality=90)
    return target


def classify_ms(wb: Workbench, cid: str) -> float:
    started = time.perf_counter()
    wb.classify(DOGS_JPG, classifier_ids=[cid])
    return (time.perf_counter() - started) * 1000


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=8)
    parser.add_argument("--images", type=int, default=20, help="images per class per create")
    parser.add_argument("--max-trainings", type=int, default=None)
    args = parser.parse_args()
    settings = JobSettings(max_trainings=args.max_trainings) if args.max_trainings else None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wb = Workbench(root / "home", embedding_cache=root / "embeddings.db", tracking_uri=False, job_settings=settings)
        cid = wb.create_classifier("dogs", {c: TUTORIAL / c for c in CLASSES})["classifier_id"]
        wb.wait(cid, timeout=600)
        sets = [
            {c: distinct_copy(TUTORIAL / c, root / f"set{i}" / c, i + 1, args.images) for c in CLASSES}
            for i in range(args.creates)
        ]
        classify_ms(wb, cid)  # warm
        idle = [classify_ms(wb, cid) for _ in range(IDLE_CALLS)]
        started = time.perf_counter()
        ids = [wb.create_classifier(f"user{i}", sets[i])["classifier_id"] for i in range(args.creates)]
        busy = []
        while any(wb.get_classifier(i)["status"] not in ("ready", "failed") for i in ids):
            busy.append(classify_ms(wb, cid))
        trained_s = time.perf_counter() - started
    idle_p50, busy_p50 = statistics.median(idle), statistics.median(busy)
    ratio = busy_p50 / idle_p50
    print(
        f"max trainings at once: {wb.jobs.settings.max_trainings}; "
        f"{args.creates} creates of {len(CLASSES)}x{args.images} new images"
    )
    print(f"classify p50 idle:  {idle_p50:8.1f} ms ({len(idle)} calls)")
    print(f"classify p50 busy:  {busy_p50:8.1f} ms ({len(busy)} calls while the creates trained, {trained_s:.1f} s)")
    print(
        f"ratio busy/idle:    {ratio:8.2f} (target <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'missed'})"
    )
    print(f"peak RSS:           {peak_rss_mb():8.0f} MB")


if __name__ == "__main__":
    main()
