"""`python -m bench`: runs each phase in its own process, prints the table, writes bench/results.json."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnxruntime

from bench.phases import ROOT, TRAIN_FOLDERS, TUTORIAL, ceiling, single_thread_ceiling
from workbench.engine import providers
from workbench.engine.onnx_engine import CACHE_DIR_ENV

RESULTS = Path(__file__).with_name("results.json")
LIMIT_REPEATS = 5
DECODE_REPEATS = 3
NAIVE_REPEATS = 3
CLASSIFY_REPEATS = 3
TRAIN_REPEATS = 3  # fresh homes: create, update, retrain in each
BATCHING_REPEATS = 3
SERVER_CLIENTS, SERVER_SECONDS = 8, 30
COLD_REPEATS = 3  # each with a new empty ONNX cache and home
CEILING_ROUNDS = 2  # limit, decode and classify (FP32, INT8) back to back, twice: each round's ratio is its own
CEILING_PHASES = ("limit", "decode", "classify", "classify_int8")
PAIRED_REPEATS = 5  # limit, decode and classify in one process, seconds apart: the ratio rows


def run_phase(name: str, workdir: Path, repeats: int, env: dict | None = None) -> dict:
    """Runs `bench.phases NAME` in a fresh process and returns its JSON line."""
    env = {**os.environ, **(env or {}), "BENCH_SPAWNED_AT": repr(time.time())}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "bench.phases", name, str(workdir), str(repeats)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench phase {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "onnxruntime_providers": providers.choose_providers(onnxruntime.get_available_providers()),
        "load_average_before": os.getloadavg(),
    }


def server_load(precision: str) -> dict:
    """`bench/server_load.py --clients 8 --seconds 30` against a real `workbench serve` process (its JSON)."""
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            str(ROOT / "bench" / "server_load.py"),
            "--clients",
            str(SERVER_CLIENTS),
            "--seconds",
            str(SERVER_SECONDS),
            "--upload-mb",
            "0",
            "--precision",
            precision,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench server_load failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout[done.stdout.index("{") :])


def cold_create(tmp: Path, repeat: int) -> dict:
    """The cold_create phase with its own empty ONNX cache and home, both removed afterwards."""
    workdir, cache = tmp / f"cold{repeat}", tmp / f"cold{repeat}-onnx-cache"
    cache.mkdir()
    try:
        return run_phase("cold_create", workdir, 1, {CACHE_DIR_ENV: str(cache)})
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def measure(tmp: Path) -> dict:
    from workbench.cli import zip_folder

    (tmp / "zips").mkdir()
    for name in TRAIN_FOLDERS:
        zip_folder(TUTORIAL / name, tmp / "zips" / f"{name}.zip")
    raw: dict = {"cpus": len(os.sched_getaffinity(0))}
    raw["naive"] = run_phase("naive", tmp / "naive", NAIVE_REPEATS)
    raw["train"] = []
    for repeat in range(TRAIN_REPEATS):
        workdir = tmp / f"train{repeat}"
        raw["train"].append({step: run_phase(step, workdir, 1) for step in ("create", "update", "retrain")})
    raw["cold_create"] = [cold_create(tmp, repeat) for repeat in range(COLD_REPEATS)]
    raw["ceiling_rounds"] = [ceiling_round(tmp, tmp / f"train{TRAIN_REPEATS - 1}") for _ in range(CEILING_ROUNDS)]
    for name in CEILING_PHASES:
        raw[name] = median_phase([r[name] for r in raw["ceiling_rounds"]])
    raw |= paired(tmp / f"train{TRAIN_REPEATS - 1}")
    raw["whole_frame"] = run_phase("whole_frame", tmp / f"train{TRAIN_REPEATS - 1}", CLASSIFY_REPEATS)
    raw["batching"] = run_phase("batching", tmp / "batching", BATCHING_REPEATS)
    raw["server"] = server_load("fp32")
    raw["server_int8"] = server_load("int8")
    return raw


def ceiling_round(tmp: Path, train: Path) -> dict:
    """The ceiling's phases once, back to back (each in its own process), with the load average before each, and
    this round's ratios: a shared machine's speed drifts over minutes, so a ratio compares numbers measured together.
    `train` holds the tutorial classifier that classify runs against."""
    repeats = {"limit": LIMIT_REPEATS, "decode": DECODE_REPEATS}
    workdirs = {"classify": train, "classify_int8": int8_copy(train)}
    phases: dict = {}
    for name in CEILING_PHASES:
        load = os.getloadavg()[0]
        workdir = workdirs.get(name, tmp / name)
        phases[name] = run_phase(name, workdir, repeats.get(name, CLASSIFY_REPEATS)) | {"load_before": load}
    return phases | {"ratios": round_ratios(phases, len(os.sched_getaffinity(0)))}


def int8_copy(train: Path) -> Path:
    """A copy of the FP32 home for the INT8 phases: an INT8 process retrains its classifier on INT8, and an FP32
    phase must not then score an INT8-trained version."""
    home = train.with_name(f"{train.name}-int8")
    if not home.exists():
        shutil.copytree(train, home)
    return home


def paired(train: Path) -> dict:
    """The paired phases (`bench.phases.phase_paired`): each ratio from numbers measured seconds apart."""
    return {
        "paired": run_phase("paired", train, PAIRED_REPEATS),
        "paired_int8": run_phase("paired_int8", int8_copy(train), PAIRED_REPEATS),
    }


def round_ratios(phases: dict, cpus: int) -> dict:
    """One round's limits, ceilings, classify rates and their ratios to the ceilings, per precision."""
    limits, decode = best_limits(phases["limit"]), phases["decode"]
    row = {
        "load": [phases[name]["load_before"] for name in CEILING_PHASES],
        "decode_ms": decode["ms_per_image"],
        "decode_all_cores_ms": decode.get("all_cores_ms_per_image"),
    }
    for precision, phase in (("fp32", "classify"), ("int8", "classify_int8")):
        top = ceiling(decode, limits[precision], cpus)
        row |= {
            f"limit_{precision}": limits[precision],
            f"ceiling_{precision}": top,
            f"classify_{precision}": phases[phase]["images_per_s"],
            f"cpu_ms_{precision}": phases[phase]["cpu_ms_per_image"],
            f"ratio_{precision}": phases[phase]["images_per_s"] / top,
        }
    return row


def median_phase(runs: list[dict]) -> dict:
    """Several runs of one phase as one: the median of each number (lists of repeats are joined)."""
    merged: dict = {}
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = statistics.median(r[key] for r in runs)
        elif isinstance(value, list):
            merged[key] = [item for r in runs for item in r[key]]
        else:
            merged[key] = value
    return merged


LIMIT_SETTINGS = ("spin_on", "spin_off", "lanes")  # the limit phase's ORT settings per precision (`bench.phases`)


def best_limits(limit: dict) -> dict[str, float]:
    """Each precision's limit: its fastest setting in this run (spinning on wins on an idle machine, off or the
    single-threaded lanes when other work shares the cores; a limit phase from before lanes has two settings)."""
    return {p: max(limit[f"{p}_{s}"] for s in LIMIT_SETTINGS if f"{p}_{s}" in limit) for p in ("fp32", "int8")}


def summary(raw: dict) -> dict:
    """The table's numbers: medians across repeats, ratios, ceilings, peak RSS per phase."""
    limit, decode, classify = raw["limit"], raw["decode"], raw["classify"]
    cpus = raw["cpus"]

    def train(step: str, key: str) -> float:
        return statistics.median(r[step][key] for r in raw["train"])

    int8 = raw["classify_int8"]
    best = best_limits(limit)
    ceilings = {p: ceiling(decode, best[p], cpus) for p in best}
    one_thread = {p: single_thread_ceiling(decode, best[p], cpus) for p in best}
    rounds = [r["ratios"] for r in raw.get("ceiling_rounds", [])]  # a run from before rounds has none
    paired = {"fp32": raw.get("paired") or {}, "int8": raw.get("paired_int8") or {}}  # a run from before: none

    def ratio(precision: str, rate: float) -> float:
        """The paired phase's median ratio (each from numbers measured seconds apart); a run from before it: the
        median of the rounds' ratios, else this run's single one."""
        pairs = paired[precision]
        if pairs:
            return pairs["ratio"]
        if rounds:
            return statistics.median(r[f"ratio_{precision}"] for r in rounds)
        return rate / ceilings[precision]

    def one_thread_ratio(precision: str, rate: float) -> float:
        """As `ratio`, against the one-thread ceiling (`single_thread_ceiling`): the bench's ratio before 12-03."""
        pairs = paired[precision]
        if pairs:  # paired phases from before 12-03 measured against the one-thread ceiling
            return pairs.get("ratio_single_thread_decode", pairs["ratio"])
        return rate / one_thread[precision]

    numbers = {
        "limit_fp32": best["fp32"],
        "limit_int8": best["int8"],
        "limit_int8_spin_on": limit["int8_spin_on"],
        "limit_int8_spin_off": limit["int8_spin_off"],
        "limit_int8_lanes": limit["int8_lanes"],
        "int8_speedup": best["int8"] / best["fp32"],
        "ceiling_int8": ceilings["int8"],
        "ceiling_int8_single_thread_decode": one_thread["int8"],
        "classify_int8_images_per_s": int8["images_per_s"],
        "classify_int8_ratio_to_ceiling": ratio("int8", int8["images_per_s"]),
        "classify_int8_ratio_to_single_thread_ceiling": one_thread_ratio("int8", int8["images_per_s"]),
        "classify_int8_ratio_to_ceiling_steal_corrected": paired["int8"].get("ratio_steal_corrected"),
        "paired_int8_stolen_share": paired["int8"].get("stolen_share"),
        "classify_int8_ratio_to_ceiling_rounds": [r["ratio_int8"] for r in rounds],
        "classify_ratio_to_ceiling_rounds": [r["ratio_fp32"] for r in rounds],
        "classify_ratio_to_ceiling_repeats": [r["ratio"] for r in paired["fp32"].get("repeats", [])],
        "classify_int8_ratio_to_ceiling_repeats": [r["ratio"] for r in paired["int8"].get("repeats", [])],
        "ceiling_load_average": [load for r in rounds for load in r["load"]],
        "single_int8_p50_ms": int8["single_p50_ms"],
        "classify_int8_peak_rss_mb": int8["batch_peak_rss_mb"],
        "limit_fp32_spin_on": limit["fp32_spin_on"],
        "limit_fp32_spin_off": limit["fp32_spin_off"],
        "limit_fp32_lanes": limit["fp32_lanes"],
        "views_per_image": decode["views_per_image"],
        "decode_ms_per_image": decode["ms_per_image"],
        "decode_all_cores_ms_per_image": decode.get("all_cores_ms_per_image"),
        "ceiling_fp32": ceilings["fp32"],
        "ceiling_fp32_single_thread_decode": one_thread["fp32"],
        "classify_images_per_s": classify["images_per_s"],
        "classify_ratio_to_limit": classify["images_per_s"] / best["fp32"],
        "classify_ratio_to_ceiling": ratio("fp32", classify["images_per_s"]),
        "classify_ratio_to_single_thread_ceiling": one_thread_ratio("fp32", classify["images_per_s"]),
        "classify_ratio_to_ceiling_steal_corrected": paired["fp32"].get("ratio_steal_corrected"),
        "paired_stolen_share": paired["fp32"].get("stolen_share"),
        "classify_threshold_0_images_per_s": classify["threshold_0_images_per_s"],
        "threshold_0_ratio": classify["threshold_0_images_per_s"] / classify["images_per_s"],
        "naive_images_per_s": raw["naive"]["images_per_s"],
        "speedup_over_naive": classify["images_per_s"] / raw["naive"]["images_per_s"],
        "single_p50_ms": classify["single_p50_ms"],
        "single_p99_ms": classify["single_p99_ms"],
        "create_to_ready_s": train("create", "seconds"),
        "cold_create_s": statistics.median(r["seconds"] for r in raw["cold_create"]),
        "cold_create_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in raw["cold_create"]),
        "retrain_after_update_s": train("update", "seconds"),
        "retrain_no_new_embeddings_s": train("retrain", "seconds"),
        "classify_peak_rss_mb": classify["batch_peak_rss_mb"],
        "limit_peak_rss_mb": limit["peak_rss_mb"],
        "naive_peak_rss_mb": raw["naive"]["peak_rss_mb"],
        "create_peak_rss_mb": train("create", "peak_rss_mb"),
        "update_peak_rss_mb": train("update", "peak_rss_mb"),
        "retrain_peak_rss_mb": train("retrain", "peak_rss_mb"),
        "single_peak_rss_mb": classify["peak_rss_mb"],
        "server_requests_per_s": raw["server"]["requests_per_s"],
        "server_p50_ms": raw["server"]["p50_ms"],
        "server_p99_ms": raw["server"]["p99_ms"],
        "server_errors": raw["server"]["errors"],
        "server_peak_rss_mb": raw["server"]["server_peak_rss_mb_during_load"],
        "server_int8_requests_per_s": raw["server_int8"]["requests_per_s"],
        "server_int8_p99_ms": raw["server_int8"]["p99_ms"],
        "server_int8_errors": raw["server_int8"]["errors"],
        "batching_direct_images_per_s": raw["batching"]["direct"],
        "batching_greedy_images_per_s": raw["batching"]["batched"],
        "batching_3ms_images_per_s": raw["batching"]["batched_3ms"],
        **{f"wide_{key}": value for key, value in raw["whole_frame"].items() if key.endswith("_images_per_s")},
        "wide_3_1_cost": raw["whole_frame"]["3:1_centre_images_per_s"] / raw["whole_frame"]["3:1_whole_images_per_s"],
        "wide_4_3_cost": raw["whole_frame"]["4:3_centre_images_per_s"] / raw["whole_frame"]["4:3_whole_images_per_s"],
    }
    return numbers


# (label, value key, unit, target as (comparison, bound) or None, RSS key); a row whose value is missing prints n/a
ROWS = [
    ("backbone limit FP32: best ORT setting, batch 8", "limit_fp32", "img/s", None, "limit_peak_rss_mb"),
    ("  FP32 with spinning on", "limit_fp32_spin_on", "img/s", None, None),
    ("  FP32 with spinning off (a single-image call's setting)", "limit_fp32_spin_off", "img/s", None, None),
    ("  FP32 lanes: one 1-thread session per core (classify's)", "limit_fp32_lanes", "img/s", None, None),
    ("decode + preprocess + colour sample, 1 thread, CPU", "decode_ms_per_image", "ms", None, None),
    ("  the same on every core at once, wall per image", "decode_all_cores_ms_per_image", "ms", None, None),
    ("  backbone views per image (passes the ceiling counts)", "views_per_image", "", None, None),
    ("  end-to-end ceiling FP32: decode + inference", "ceiling_fp32", "img/s", None, None),
    (
        "  ... with 1-thread decode over the cores (before 12-03)",
        "ceiling_fp32_single_thread_decode",
        "img/s",
        None,
        None,
    ),
    ("backbone limit INT8: best ORT setting, batch 8", "limit_int8", "img/s", None, None),
    ("  INT8 with spinning on", "limit_int8_spin_on", "img/s", None, None),
    ("  INT8 with spinning off", "limit_int8_spin_off", "img/s", None, None),
    ("  INT8 lanes: one 1-thread session per core", "limit_int8_lanes", "img/s", None, None),
    ("  INT8 limit / FP32 limit (INT8 default if >=1.4)", "int8_speedup", "x", (">=", 1.4), None),
    ("  end-to-end ceiling INT8: decode + inference", "ceiling_int8", "img/s", None, None),
    (
        "  ... with 1-thread decode over the cores (before 12-03)",
        "ceiling_int8_single_thread_decode",
        "img/s",
        None,
        None,
    ),
    (
        "wb.classify INT8, 250 images, dogs + default",
        "classify_int8_images_per_s",
        "img/s",
        (">=", 130.0),
        "classify_int8_peak_rss_mb",
    ),
    ("  ratio to the INT8 ceiling (paired, median)", "classify_int8_ratio_to_ceiling", "x", (">=", 0.85), None),
    ("  ... to the one with 1-thread decode", "classify_int8_ratio_to_single_thread_ceiling", "x", None, None),
    (
        "  ... less the time stolen from the cores",
        "classify_int8_ratio_to_ceiling_steal_corrected",
        "x",
        (">=", 0.85),
        None,
    ),
    ("  share of the cores' time stolen meanwhile", "paired_int8_stolen_share", "", None, None),
    ("single-image classify p50, INT8", "single_int8_p50_ms", "ms", ("<=", 12.0), None),
    ("wb.classify FP32, 250 images, dogs + default", "classify_images_per_s", "img/s", None, "classify_peak_rss_mb"),
    ("  ratio to the FP32 limit", "classify_ratio_to_limit", "x", (">=", 0.8), None),
    ("  ratio to the FP32 ceiling (paired, median)", "classify_ratio_to_ceiling", "x", (">=", 0.85), None),
    ("  ... to the one with 1-thread decode", "classify_ratio_to_single_thread_ceiling", "x", None, None),
    ("  ... less the time stolen from the cores", "classify_ratio_to_ceiling_steal_corrected", "x", (">=", 0.85), None),
    ("  share of the cores' time stolen meanwhile", "paired_stolen_share", "", None, None),
    ("wb.classify FP32 at threshold 0.0", "classify_threshold_0_images_per_s", "img/s", None, None),
    ("  ratio to threshold 0.5", "threshold_0_ratio", "x", (">=", 0.8), None),
    ("naive: PIL + eager torch, one image at a time", "naive_images_per_s", "img/s", None, "naive_peak_rss_mb"),
    ("  speed-up over naive", "speedup_over_naive", "x", (">=", 3.0), None),
    ("single-image classify p50, FP32", "single_p50_ms", "ms", ("<=", 12.0), "single_peak_rss_mb"),
    ("single-image classify p99, FP32", "single_p99_ms", "ms", None, None),
    ("create from zips to ready (warm caches)", "create_to_ready_s", "s", ("<=", 5.0), "create_peak_rss_mb"),
    (
        "cold create: process start to ready, empty caches",
        "cold_create_s",
        "s",
        ("<=", 10.0),
        "cold_create_peak_rss_mb",
    ),
    ("retrain after the update", "retrain_after_update_s", "s", ("<=", 3.0), "update_peak_rss_mb"),
    ("retrain, no new embeddings", "retrain_no_new_embeddings_s", "s", ("<=", 1.0), "retrain_peak_rss_mb"),
    ("classify peak RSS (250 images)", "classify_peak_rss_mb", "MB", ("<=", 1024.0), None),
    ("server INT8: 8 clients x dogs.jpg, req/s", "server_int8_requests_per_s", "req/s", (">=", 100.0), None),
    ("  server INT8 p99", "server_int8_p99_ms", "ms", ("<=", 150.0), None),
    ("  server INT8 errors", "server_int8_errors", "", ("<=", 0.0), None),
    (
        "server FP32: 8 clients x dogs.jpg (dogs + default), req/s",
        "server_requests_per_s",
        "req/s",
        (">=", 100.0),
        "server_peak_rss_mb",
    ),
    ("  server FP32 p50", "server_p50_ms", "ms", None, None),
    ("  server FP32 p99", "server_p99_ms", "ms", ("<=", 150.0), None),
    ("  server FP32 errors", "server_errors", "", ("<=", 0.0), None),
    ("8 threads x 1 image: one pass each", "batching_direct_images_per_s", "img/s", None, None),
    ("8 threads x 1 image: Backbone.run (micro-batched)", "batching_greedy_images_per_s", "img/s", None, None),
    ("8 threads x 1 image: micro-batched, 3 ms", "batching_3ms_images_per_s", "img/s", None, None),
    ("wb.classify 3:1 images, whole frame (5 views)", "wide_3:1_whole_images_per_s", "img/s", None, None),
    ("  3:1 images, centre square only (as before)", "wide_3:1_centre_images_per_s", "img/s", None, None),
    ("  cost of the whole frame on 3:1 (centre / whole)", "wide_3_1_cost", "x", None, None),
    ("wb.classify 4:3 images, whole frame (3 views)", "wide_4:3_whole_images_per_s", "img/s", None, None),
    ("  4:3 images, centre square only (as before)", "wide_4:3_centre_images_per_s", "img/s", None, None),
    ("  cost of the whole frame on 4:3 (centre / whole)", "wide_4_3_cost", "x", None, None),
]


# Rows the other bench scripts write into results.json's summary (each run on its own: minutes to an hour), shown
# from the file as they left it: (label, key, unit, target, the script that measures it).
OTHER_ROWS = [
    ("INT8 top-1 agreement with FP32, held-out images", "int8_heldout_agreement", "", (">=", 0.97), "int8_agreement"),
    ("  largest custom-score move FP32 -> INT8", "int8_max_custom_score_move", "", ("<=", 0.03), "int8_agreement"),
    ("  default precision it chose", "default_precision", "", None, "int8_agreement"),
    ("server RSS warm (requests and one training)", "server_rss_warm_mb", "MB", None, "server_memory"),
    ("  after 3,000 mixed requests while trainings run", "server_rss_after_load_mb", "MB", None, "server_memory"),
    ("  after / warm", "server_rss_growth_x", "x", ("<=", 1.5), "server_memory"),
    ("  load average while it ran", "server_rss_load_average_1min", "", None, "server_memory"),
    *(
        row
        for size in (250, 2000, 10000)
        for row in (
            (f"create from {size:,} images to ready", f"create_{size}_images_s", "s", None, "training_scale"),
            ("  load average while it ran", f"create_{size}_images_load_average", "", None, "training_scale"),
            (
                f"retrain adding 10 to {size:,} images",
                f"retrain_add_10_to_{size}_s",
                "s",
                ("<=", 5.0) if size == 10000 else None,
                "training_scale",
            ),
            ("  load average while it ran", f"retrain_add_10_to_{size}_load_average", "", None, "training_scale"),
        )
    ),
]


def other_table(numbers: dict) -> str:
    """The other scripts' rows, from results.json as they left it (`bench/<script>.py` measures each again)."""
    lines = [f"{'from the other bench scripts':58} {'value':>9} {'unit':5} {'target':>8} {'met':4} {'script':>15}"]
    for label, key, unit, target, script in OTHER_ROWS:
        lines.append(_line(label, numbers.get(key), unit, target, f"{script:>15}"))
    return "\n".join(lines)


def kept_from_other_benches(previous: dict, numbers: dict, raw: dict) -> tuple[dict, dict]:
    """This run's summary and raw, with what the other scripts wrote into the previous results.json kept beside
    them (this run's own keys win): rerunning `python -m bench` must not erase the training-scale or memory rows."""
    summary = {k: v for k, v in previous.get("summary", {}).items() if k not in numbers} | numbers
    return summary, {k: v for k, v in previous.get("raw", {}).items() if k not in raw} | raw


def met(value: float, target: tuple[str, float]) -> bool:
    op, bound = target
    return value >= bound if op == ">=" else value <= bound


def table(numbers: dict) -> str:
    lines = [f"{'metric':58} {'value':>9} {'unit':5} {'target':>8} {'met':4} {'peak RSS':>9}"]
    for label, key, unit, target, rss in ROWS:
        rss_text = f"{numbers[rss]:.0f} MB" if rss and rss in numbers else ""
        lines.append(_line(label, numbers.get(key), unit, target, f"{rss_text:>9}"))
    return "\n".join(lines)


def _line(label: str, value: object, unit: str, target: tuple[str, float] | None, tail: str) -> str:
    """One table row: the value (a number, or text such as a precision), its target and whether it is met."""
    number = isinstance(value, (int, float))
    shown = f"{value:9.2f}" if number else f"{'n/a' if value is None else value:>9}"
    goal = f"{target[0]}{target[1]:g}" if target else ""
    verdict = ("yes" if met(value, target) else "NO") if target and number else ("n/a" if target else "")
    return f"{label:58} {shown} {unit:5} {goal:>8} {verdict:4} {tail}"


LEGEND = """\
limit: the backbone alone on tensors in memory (ORT, batch 8), the fastest of three settings measured interleaved:
  one session on every core with spinning on (the fastest on an idle machine) and off (a single-image call's: the
  decode threads need the cores between ops), and lanes: one single-threaded session that each core calls at once
  with its own batch (what classify runs for a call of many images: no thread waits on another between ops).
ceiling: decode and the limit share the cores, the backbone running once per view: 1 / (decode_all_cores_s +
  views_per_image / limit), decode_all_cores_s the wall time per image with every core decoding at once (one process
  each), as the lanes measure the limit. No pipeline of decode then inference on these cores can beat it. Before
  12-03 the bench spread one thread's decode CPU time over the cores (decode_s / cpus), which no two busy cores
  reach here; the "1-thread decode" rows keep that form. "Less the time stolen": every wall time of the paired
  repeats less the time the hypervisor gave other guests on these cores (/proc/stat steal), which drifts within
  seconds on a shared machine.
  Limit, decode and classify run back to back in rounds (CEILING_ROUNDS: the table's rates are their medians),
  and the ratio rows come from `paired` phases: limit, decode and classify in one process, seconds apart, repeated
  PAIRED_REPEATS times (the median): a shared machine's speed drifts between phases minutes apart.
targets: the issue's table; "met" compares this run's number, so run on an idle machine."""


def main() -> None:
    info = machine()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as tmp:
        raw = measure(Path(tmp))
    info["load_average_after"] = os.getloadavg()
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    numbers, raw = kept_from_other_benches(previous, summary(raw), raw)
    print(
        f"{info['cpus']} CPUs ({info['cpu']}), Python {info['python']}, "
        f"load average before {info['load_average_before']}"
    )
    print(f"load average after {info['load_average_after']} (above about 0.3 x CPUs, other work shared the cores)")
    print(table(numbers))
    for what, suffix in (("rounds, phase by phase", "rounds"), ("paired repeats", "repeats")):
        fp32 = [round(r, 2) for r in numbers.get(f"classify_ratio_to_ceiling_{suffix}", [])]
        int8 = [round(r, 2) for r in numbers.get(f"classify_int8_ratio_to_ceiling_{suffix}", [])]
        print(f"ratio to the ceiling, {what}: FP32 {fp32}, INT8 {int8}")
    print(f"load average before each phase of the rounds: {numbers.get('ceiling_load_average')}")
    print(other_table(numbers))
    print(LEGEND)
    written = RESULTS.with_suffix(".json.tmp")  # renamed into place: an interrupted write keeps the old file
    written.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "machine": info,
                "summary": numbers,
                "raw": raw,
            },
            indent=2,
        )
        + "\n"
    )
    os.replace(written, RESULTS)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
