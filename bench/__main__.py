"""`python -m bench`: runs each phase in its own process, prints the table, writes bench/results.json."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.phases import ROOT, TRAIN_FOLDERS, TUTORIAL

RESULTS = Path(__file__).with_name("results.json")
LIMIT_REPEATS = 5
NAIVE_REPEATS = 3
CLASSIFY_REPEATS = 3
TRAIN_REPEATS = 3  # fresh homes: create, update, retrain in each
BATCHING_REPEATS = 3
TARGETS = {  # metric: (comparison, bound)
    "classify_ratio_to_limit": (">=", 0.75),
    "speedup_over_naive": (">=", 3.0),
    "single_p50_ms": ("<=", 25.0),
    "create_to_ready_s": ("<=", 5.0),
    "retrain_after_update_s": ("<=", 3.0),
    "retrain_no_new_embeddings_s": ("<=", 1.0),
    "classify_peak_rss_mb": ("<=", 1024.0),
}


def run_phase(name: str, workdir: Path, repeats: int) -> dict:
    """Runs `bench.phases NAME` in a fresh process and returns its JSON line."""
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "bench.phases", name, str(workdir), str(repeats)],
        cwd=ROOT, capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench phase {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_before": os.getloadavg()}


def measure(tmp: Path) -> dict:
    from workbench.cli import zip_folder

    (tmp / "zips").mkdir()
    for name in TRAIN_FOLDERS:
        zip_folder(TUTORIAL / name, tmp / "zips" / f"{name}.zip")
    raw: dict = {"limit": run_phase("limit", tmp / "limit", LIMIT_REPEATS)}
    raw["naive"] = run_phase("naive", tmp / "naive", NAIVE_REPEATS)
    raw["train"] = []
    for repeat in range(TRAIN_REPEATS):
        workdir = tmp / f"train{repeat}"
        raw["train"].append({step: run_phase(step, workdir, 1) for step in ("create", "update", "retrain")})
    raw["classify"] = run_phase("classify", tmp / f"train{TRAIN_REPEATS - 1}", CLASSIFY_REPEATS)
    raw["batching"] = run_phase("batching", tmp / "batching", BATCHING_REPEATS)
    return raw


def summary(raw: dict) -> dict:
    """The table's numbers: medians across repeats, ratios, peak RSS per phase."""
    limit, naive, classify = raw["limit"]["images_per_s"], raw["naive"]["images_per_s"], raw["classify"]["images_per_s"]

    def train(step: str, key: str) -> float:
        return statistics.median(r[step][key] for r in raw["train"])

    return {
        "limit_images_per_s": limit,
        "classify_images_per_s": classify,
        "classify_ratio_to_limit": classify / limit,
        "naive_images_per_s": naive,
        "speedup_over_naive": classify / naive,
        "single_p50_ms": raw["classify"]["single_p50_ms"],
        "single_p99_ms": raw["classify"]["single_p99_ms"],
        "create_to_ready_s": train("create", "seconds"),
        "retrain_after_update_s": train("update", "seconds"),
        "retrain_no_new_embeddings_s": train("retrain", "seconds"),
        "classify_peak_rss_mb": raw["classify"]["batch_peak_rss_mb"],
        "limit_peak_rss_mb": raw["limit"]["peak_rss_mb"],
        "naive_peak_rss_mb": raw["naive"]["peak_rss_mb"],
        "create_peak_rss_mb": train("create", "peak_rss_mb"),
        "update_peak_rss_mb": train("update", "peak_rss_mb"),
        "retrain_peak_rss_mb": train("retrain", "peak_rss_mb"),
        "single_peak_rss_mb": raw["classify"]["peak_rss_mb"],
        "batching_direct_images_per_s": raw["batching"]["direct"],
        "batching_greedy_images_per_s": raw["batching"]["batched_greedy"],
        "batching_3ms_images_per_s": raw["batching"]["batched_3ms"],
    }


ROWS = [  # (label, value key, unit, RSS key)
    ("backbone limit: ONNX Runtime, batch 8, 224x224", "limit_images_per_s", "img/s", "limit_peak_rss_mb"),
    ("wb.classify, 250 images, dogs + default", "classify_images_per_s", "img/s", "classify_peak_rss_mb"),
    ("  ratio to the limit", "classify_ratio_to_limit", "x", None),
    ("naive: PIL + eager torch, one image at a time", "naive_images_per_s", "img/s", "naive_peak_rss_mb"),
    ("  speed-up over naive", "speedup_over_naive", "x", None),
    ("single-image classify p50", "single_p50_ms", "ms", "single_peak_rss_mb"),
    ("single-image classify p99", "single_p99_ms", "ms", None),
    ("create from zips to ready", "create_to_ready_s", "s", "create_peak_rss_mb"),
    ("retrain after the update", "retrain_after_update_s", "s", "update_peak_rss_mb"),
    ("retrain, no new embeddings", "retrain_no_new_embeddings_s", "s", "retrain_peak_rss_mb"),
    ("classify peak RSS (250 images)", "classify_peak_rss_mb", "MB", None),
    ("8 threads x 1 image: one pass each", "batching_direct_images_per_s", "img/s", None),
    ("8 threads x 1 image: micro-batched, greedy", "batching_greedy_images_per_s", "img/s", None),
    ("8 threads x 1 image: micro-batched, 3 ms", "batching_3ms_images_per_s", "img/s", None),
]


def table(numbers: dict) -> str:
    lines = [f"{'metric':48} {'value':>9} {'unit':5} {'target':>8} {'met':4} {'peak RSS':>9}"]
    for label, key, unit, rss in ROWS:
        target, met = "", ""
        if key in TARGETS:
            op, bound = TARGETS[key]
            target = f"{op}{bound:g}"
            met = "yes" if (numbers[key] >= bound if op == ">=" else numbers[key] <= bound) else "NO"
        rss_text = f"{numbers[rss]:.0f} MB" if rss else ""
        lines.append(f"{label:48} {numbers[key]:9.2f} {unit:5} {target:>8} {met:4} {rss_text:>9}")
    return "\n".join(lines)


def main() -> None:
    info = machine()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as tmp:
        raw = measure(Path(tmp))
    info["load_average_after"] = os.getloadavg()
    numbers = summary(raw)
    print(f"{info['cpus']} CPUs ({info['cpu']}), Python {info['python']}, load average before {info['load_average_before']}")
    print(table(numbers))
    RESULTS.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                                   "machine": info, "summary": numbers, "raw": raw}, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
