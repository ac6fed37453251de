"""What ONNX Runtime's memory options cost in classify speed, and what they save in RSS.

Each variant runs in a fresh process (same conditions: the cached FP32 or INT8 export, the serving
threads, spinning off as `workbench serve` runs it): 250 tutorial images in batches of 8, timed
(wall and CPU seconds per image), then a server-like mix of batch sizes (1 to 8) whose RSS is read
after. Variants alternate round by round, so a change in the machine's load hits them all alike;
the 1-min load average is printed beside each run.

- `arena`: ONNX Runtime's defaults (its CPU memory arena grows to the largest batch and keeps it)
- `no-arena`: `SessionOptions.enable_cpu_mem_arena = False` (every tensor from malloc)
- `same-as-requested`: the arena grows by what a run asks, not by doubling (`arena_extend_strategy`)
- `no-pattern`: `enable_mem_pattern = False` (no pre-planned block per input shape)
- `shrink`: the arena, shrunk back at the end of every run (`memory.enable_memory_arena_shrinkage`)

    .venv/bin/python bench/onnx_memory.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

VARIANTS = ("arena", "no-arena", "same-as-requested", "no-pattern", "shrink")
IMAGES = 250
BATCH = 8
MIXED_BATCHES = (1, 8, 3, 8, 1, 5, 8, 2, 7, 1, 8, 4) * 4  # what a busy server's batcher hands the engine


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def tutorial_batch() -> np.ndarray:
    """IMAGES preprocessed tutorial images (cycled if there are fewer)."""
    from PIL import Image

    from workbench.core.spec import lite0_spec, preprocess

    spec = lite0_spec()
    files = sorted(p for p in (ROOT / "data" / "tutorial").rglob("*.jpg"))
    tensors = []
    for index in range(IMAGES):
        with Image.open(files[index % len(files)]) as image:
            tensors.append(preprocess(image.convert("RGB"), spec))
    return np.stack(tensors)


def session(path: Path, variant: str, threads: int):  # onnxruntime's own types, unannotated
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if variant == "no-arena":
        options.enable_cpu_mem_arena = False
    if variant == "no-pattern":
        options.enable_mem_pattern = False
    providers: list = ["CPUExecutionProvider"]
    if variant == "same-as-requested":
        providers = [("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})]
    run_options = ort.RunOptions()
    if variant == "shrink":
        run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return ort.InferenceSession(str(path), options, providers=providers), run_options


def one_variant(path: Path, variant: str, threads: int) -> dict:
    """Runs in a child process: times IMAGES images, then the mixed batches; returns the figures."""
    images = tutorial_batch()
    sess, run_options = session(path, variant, threads)
    name = sess.get_inputs()[0].name
    sess.run(None, {name: images[:BATCH]}, run_options)  # warm
    rss_loaded = rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, IMAGES, BATCH):
        sess.run(None, {name: images[start : start + BATCH]}, run_options)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    for size in MIXED_BATCHES:
        sess.run(None, {name: images[:size]}, run_options)
    return {
        "variant": variant,
        "wall_ms_per_image": round(1000 * wall / IMAGES, 2),
        "cpu_ms_per_image": round(1000 * cpu / IMAGES, 2),
        "images_per_s": round(IMAGES / wall, 1),
        "rss_loaded_mb": round(rss_loaded, 1),
        "rss_after_mixed_mb": round(rss_mb(), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def model_path(precision: str) -> Path:
    from workbench.engine.backbone import Backbone

    backbone = Backbone(precision=precision)
    backbone.prepare(wait=True)
    return backbone.onnx_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,int8")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--child", nargs=2, metavar=("PATH", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_variant(Path(args.child[0]), args.child[1], args.threads)))
        return
    rows = []
    for precision in args.precisions.split(","):
        path = model_path(precision)
        for round_index in range(args.rounds):
            for variant in args.variants.split(","):
                command = [sys.executable, __file__, "--threads", str(args.threads), "--child", str(path), variant]
                row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
                row.update(precision=precision, round=round_index)
                print(json.dumps(row), flush=True)
                rows.append(row)
    print("median over rounds:")
    for precision in args.precisions.split(","):
        for variant in args.variants.split(","):
            mine = [r for r in rows if r["precision"] == precision and r["variant"] == variant]
            summary = {
                key: statistics.median(r[key] for r in mine)
                for key in ("wall_ms_per_image", "cpu_ms_per_image", "rss_after_mixed_mb", "load_average_1min")
            }
            print(json.dumps({"precision": precision, "variant": variant, **summary}))


if __name__ == "__main__":
    main()
