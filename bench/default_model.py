"""`python -m bench.default_model [BASELINE_SRC]`: the `default` model's measures on the tutorial images.

Prints one row per measure: top-leaf agreement with the answers of the starting code (recorded in
default_model_before.json), leaves and colours >= 0.5 per image, the dogs.jpg answer, explain
latency, and, when BASELINE_SRC (a `src` folder of the starting code) is given, wb.classify
throughput on the 250 training images against `default`, both codes in alternating subprocesses.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "data" / "tutorial"
BEFORE = Path(__file__).with_name("default_model_before.json")
TRAIN_FOLDERS = ("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats")
THROUGHPUT_REPEATS = 4
EXPLAIN_REPEATS = 20

THROUGHPUT = """
import sys, time, tempfile
from pathlib import Path
from workbench import Workbench
wb = Workbench(tempfile.mkdtemp() + "/home", tracking_uri=False)
wb.backbone.prepare(wait=True)
folders = [Path(sys.argv[1]) / f for f in sys.argv[2:]]
wb.classify(folders[0])
started = time.perf_counter()
answer = wb.classify(folders)
print(answer["images_processed"] / (time.perf_counter() - started))
"""


def images() -> list[Path]:
    return [p for f in TRAIN_FOLDERS for p in sorted((TUTORIAL / f).iterdir())] + sorted(
        (TUTORIAL / "test").glob("*.jpg")
    )


def answers(wb) -> dict[str, dict]:
    out = {}
    for path in images():
        [result] = wb.classify(path, threshold=0.0)["images"][0]["classifiers"]
        leaves = [c for c in result["classes"] if "type_hierarchy" in c]
        colors = [c for c in result["classes"] if c["class"].endswith(" color")]
        out[str(path.relative_to(TUTORIAL))] = {
            "top_leaf": leaves[0]["class"],
            "leaves_05": sum(c["score"] >= 0.5 for c in leaves),
            "colors_05": sum(c["score"] >= 0.5 for c in colors),
        }
    return out


def throughput(src: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", THROUGHPUT, str(TUTORIAL), *TRAIN_FOLDERS],
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from workbench import Workbench

    before = json.loads(BEFORE.read_text())
    wb = Workbench(tempfile.mkdtemp() + "/home", tracking_uri=False)
    wb.backbone.prepare(wait=True)
    after = answers(wb)
    agree = sum(after[k]["top_leaf"] == v["top_leaf"] for k, v in before["images"].items()) / len(before["images"])
    rows = {"images": len(after), "top_leaf_agreement": round(agree, 4)}
    for key in ("leaves_05", "colors_05"):
        rows[f"{key}_per_image_before"] = round(statistics.mean(v[key] for v in before["images"].values()), 3)
        rows[f"{key}_per_image_after"] = round(statistics.mean(v[key] for v in after.values()), 3)
    [dogs] = wb.classify(TUTORIAL / "dogs.jpg", threshold=0.5)["images"][0]["classifiers"]
    rows["dogs_jpg_before"] = ", ".join(f"{c['class']} {c['score']:.2f}" for c in before["dogs_jpg_at_0.5"])
    rows["dogs_jpg_after"] = ", ".join(f"{c['class']} {c['score']:.2f}" for c in dogs["classes"])
    for classifier in ("default",):
        wb.explain(TUTORIAL / "dogs.jpg", classifier)
        times = []
        for _ in range(EXPLAIN_REPEATS):
            started = time.perf_counter()
            wb.explain(TUTORIAL / "dogs.jpg", classifier)
            times.append((time.perf_counter() - started) * 1000)
        rows[f"explain_{classifier}_p50_ms"] = round(statistics.median(times), 1)
    if len(sys.argv) > 1:
        old, new = [], []
        for _ in range(THROUGHPUT_REPEATS):
            old.append(throughput(Path(sys.argv[1])))
            new.append(throughput(ROOT / "src"))
        rows["classify_default_images_per_s_before"] = round(statistics.median(old), 1)
        rows["classify_default_images_per_s_after"] = round(statistics.median(new), 1)
        rows["classify_default_change"] = round(statistics.median(new) / statistics.median(old) - 1, 3)
        rows["classify_runs_before"] = [round(x, 1) for x in old]
        rows["classify_runs_after"] = [round(x, 1) for x in new]
    for key, value in rows.items():
        print(f"{key:40s} {value}")


if __name__ == "__main__":
    main()
