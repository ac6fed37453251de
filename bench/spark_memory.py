"""`python -m bench.spark_memory [--rows 500,5000] [--partitions 2]`: Spark's memory per Python worker
against rows per partition, for way 1 (`workbench.spark.classify`) and way 2 (`mlflow.pyfunc.spark_udf` of
the logged model, which scores 64-image chunks).

The images are augmented tutorial copies (as `bench.training_scale` makes them: every copy a distinct
JPEG file), read with `spark.read.format("binaryFile")` so each partition carries its image bytes, and
repartitioned so every partition holds `rows` images. Each measurement is its own process and its own
SparkSession (local[partitions]): Python workers are reused within a session, so a fresh one keeps
each peak its own. A sampler reads every Python worker's peak RSS (VmHWM) while the job runs; the
largest one is the row's `worker_peak_rss_mb`. Prints one row a measurement, with the 1-minute load
average, and merges `spark_way1_rss_500_rows_mb`, `spark_way2_rss_5000_rows_mb`, ... into
bench/results.json's summary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.training_scale import RESULTS, SEED, augmented, sources

SAMPLE_S = 0.2  # how often the sampler reads the workers' peak RSS
WAYS = ("way1", "way2")
ARROW_BATCH_ENV = "BENCH_ARROW_MAX_RECORDS"  # sets spark.sql.execution.arrow.maxRecordsPerBatch for the jobs


def write_images(folder: Path, count: int) -> Path:
    """`count` augmented tutorial images (every breed and the cats), each a distinct JPEG file."""
    folder.mkdir(parents=True, exist_ok=True)
    images = sources(("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats"))
    rng = random.Random(SEED + count)
    for index in range(count):
        (folder / f"copy-{index:05d}.jpg").write_bytes(augmented(images[index % len(images)], rng))
    return folder


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _is_daemon(pid: int) -> bool:
    try:
        return b"pyspark.daemon" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        pid = _status_kb(pid, "PPid") or 0
    return False


class WorkerSampler:
    """Reads the peak RSS (VmHWM) of this process's Spark Python workers (forks of `pyspark.daemon` under its JVM)
    until stopped; other Spark jobs on the machine are left out."""

    def __init__(self) -> None:
        self.peaks_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _workers(self) -> list[int]:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        daemons = {pid for pid in pids if _is_daemon(pid) and _descends_from(pid, os.getpid())}
        return [pid for pid in daemons if (_status_kb(pid, "PPid") or 0) in daemons]

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self._workers():
                peak = _status_kb(pid, "VmHWM")
                if peak is not None:
                    self.peaks_kb[pid] = max(peak, self.peaks_kb.get(pid, 0))
            self._stop.wait(SAMPLE_S)

    def __enter__(self) -> WorkerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._run_once_more()
        self._stop.set()
        self._thread.join()

    def _run_once_more(self) -> None:
        for pid in self._workers():
            peak = _status_kb(pid, "VmHWM")
            if peak is not None:
                self.peaks_kb[pid] = max(peak, self.peaks_kb.get(pid, 0))


def measure(way: str, home: Path, cid: str, model: Path, folder: Path, partitions: int) -> dict:
    """One job in a fresh local[partitions] session: every image scored; the workers' peak RSS and the time."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import col

    builder = SparkSession.builder.master(f"local[{partitions}]").config("spark.ui.enabled", "false")
    if os.environ.get(ARROW_BATCH_ENV):  # rows per Arrow batch handed to a worker (Spark's default: 10,000)
        builder = builder.config("spark.sql.execution.arrow.maxRecordsPerBatch", os.environ[ARROW_BATCH_ENV])
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.read.format("binaryFile").load(str(folder)).repartition(partitions).cache()
    images = df.count()
    sizes = df.rdd.glom().map(len).collect()
    with WorkerSampler() as sampler:
        started = time.perf_counter()
        if way == "way1":
            import workbench.spark

            scored = workbench.spark.classify(df, [cid], home=home).where("error is null").count()
        else:
            import mlflow.pyfunc

            udf = mlflow.pyfunc.spark_udf(spark, str(model))
            scored = df.select(udf(col("content")).alias("s")).where("s.error = ''").count()
        seconds = time.perf_counter() - started
    spark.stop()
    assert scored == images, (scored, images)
    peaks = sorted(kb / 1024 for kb in sampler.peaks_kb.values())
    return {
        "way": way,
        "rows_per_partition": max(sizes),
        "partitions": len(sizes),
        "workers": len(peaks),
        "worker_peak_rss_mb": round(peaks[-1]) if peaks else None,
        "worker_peaks_mb": [round(p) for p in peaks],
        "images_per_s": round(images / seconds, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def merge_into_results(numbers: dict) -> None:
    """Adds `numbers` to bench/results.json's summary, keeping what the other benches wrote there."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"summary": {}}
    results.setdefault("summary", {}).update(numbers)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, RESULTS)


def prepared_home(root: Path) -> tuple[Path, str, Path]:
    """The tutorial's `dogs` classifier (tracking off) and its serving version saved as an MLflow pyfunc model."""
    from bench.scale_out import trained_home
    from workbench import Workbench
    from workbench.pyfunc import save_pyfunc

    home, cid = trained_home(root)
    wb = Workbench(home, tracking_uri=False, train=False, resume=False)
    wb.backbone.prepare(wait=True)  # the ONNX export cached in the home: workers load it, none exports it
    record = wb.store.classifier(cid)
    version = wb.store.version(cid, record.serving_version)
    model = root / "model"
    save_pyfunc(model, record, version, wb.store.head_path(cid, version.version), wb.backbone.backbone_id)
    return home, cid, model


def run_one(way: str, home: Path, cid: str, model: Path, folder: Path, partitions: int) -> dict:
    arguments = [way, str(home), cid, str(model), str(folder), str(partitions)]
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "bench.spark_memory", "--one", *arguments],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"spark_memory {way} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="500,5000", help="rows per partition, comma-separated")
    parser.add_argument("--partitions", type=int, default=2, help="partitions (and local[N] cores)")
    parser.add_argument("--ways", default=",".join(WAYS), help="way1, way2 or both")
    args = parser.parse_args()
    print(f"load average before {os.getloadavg()}", flush=True)
    summary = {}
    with tempfile.TemporaryDirectory(prefix="spark-memory-") as tmp:
        root = Path(tmp)
        home, cid, model = prepared_home(root)
        for rows in map(int, args.rows.split(",")):
            started = time.perf_counter()
            folder = write_images(root / f"images-{rows}", rows * args.partitions)
            print(f"  ({rows * args.partitions} augmented images written in {time.perf_counter() - started:.0f} s)")
            for way in args.ways.split(","):
                row = run_one(way, home, cid, model, folder, args.partitions)
                print(json.dumps(row), flush=True)
                summary[f"spark_{way}_rss_{rows}_rows_mb"] = row["worker_peak_rss_mb"]
                summary[f"spark_{way}_rss_{rows}_rows_load_average_1min"] = row["load_average_1min"]
    merge_into_results(summary)
    print(json.dumps(summary, indent=2))
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        way, home, cid, model, folder, partitions = sys.argv[2:8]
        print(json.dumps(measure(way, Path(home), cid, Path(model), Path(folder), int(partitions))))
    else:
        main()
