"""Scaling out, measured in one run: Spark local[2] vs single-process `wb.classify` vs `classify-dir`
on the same images, `classify-dir`'s peak RSS at 250 and at 2,000 images, and the time of the
two-process PostgreSQL tracking test.

    PYTHONPATH=src .venv/bin/python bench/scale_out.py [--images 2000] [--skip-postgres]

The 2,000 images are the 250 tutorial images copied under many names, each copy made distinct by
bytes appended after the image's end (decoders ignore them): each copy has its own path and its own sha256.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "data" / "tutorial"
CLASS_FOLDERS = ("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats")
CLASSIFIERS = "{cid},default"  # what the README's classify-dir command runs


def tutorial_images() -> list[Path]:
    return sorted(p for name in CLASS_FOLDERS for p in (TUTORIAL / name).iterdir() if p.is_file())


def distinct_copies(folder: Path, count: int) -> Path:
    """`count` images: tutorial images under new names, each with its own trailing bytes (its own sha256)."""
    sources = tutorial_images()
    for index in range(count):
        source = sources[index % len(sources)]
        target = folder / f"{index // 500:03d}" / f"copy-{index:05d}-{source.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes() + f"copy {index}".encode())
    return folder


def trained_home(root: Path) -> tuple[Path, str]:
    """A home with the tutorial's `dogs` classifier (create step), tracking off."""
    wb = Workbench(root / "home", tracking_uri=False)
    positives = {c: TUTORIAL / c for c in ("beagle", "husky", "goldenretriever")}
    cid = wb.create_classifier("dogs", positives, negative_examples=TUTORIAL / "cats")["classifier_id"]
    assert wb.wait(cid, timeout=600)["status"] == "ready"
    return wb.home, cid


def single_process(home: Path, ids: str, images: list[Path]) -> float:
    """Images per second of one `wb.classify` call over all the images (backbone warmed first)."""
    wb = Workbench(home, tracking_uri=False, train=False, resume=False)
    wb.classify(TUTORIAL / "dogs.jpg", classifier_ids=ids)
    started = time.perf_counter()
    answer = wb.classify(images, classifier_ids=ids)
    assert answer["images_processed"] == len(images)
    return len(images) / (time.perf_counter() - started)


def classify_dir(home: Path, ids: str, folder: Path, out: Path) -> dict:
    """`workbench classify-dir` in its own process: images/s (wall, start-up included) and its peak RSS."""
    command = [
        sys.executable,
        "-m",
        "workbench",
        "--home",
        str(home),
        "classify-dir",
        str(folder),
        "-c",
        ids,
        "--out",
        str(out),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    summary = json.loads(process.stdout.read())
    assert os.waitstatus_to_exitcode(status) == 0, summary
    return {
        "images": summary["classified"],
        "images_per_s": summary["classified"] / seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "seconds": seconds,
    }


def spark_local2(home: Path, ids: str, folder: Path) -> dict:
    """`workbench.spark.classify` in local[2]: session start, first job (workers load the backbone), second job."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    import workbench.spark

    started = time.perf_counter()
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    session_s = time.perf_counter() - started
    df = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(str(folder)).repartition(2)
    count = df.count()
    jobs = []
    for _ in range(2):
        started = time.perf_counter()
        rows = workbench.spark.classify(df, ids.split(","), home=home).where("error is null").count()
        jobs.append(time.perf_counter() - started)
        assert rows == count
    spark.stop()
    return {
        "session_start_s": session_s,
        "first_job_images_per_s": count / jobs[0],
        "warm_job_images_per_s": count / jobs[1],
    }


def postgres_test_seconds() -> dict:
    """Wall time of the two-process PostgreSQL tracking test (pytest, fixtures included)."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "tests/server/test_team_server.py",
            "-k",
            "two_processes",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stdout[-3000:]
    training = re.search(r"two-process training into PostgreSQL-backed MLflow: ([\d.]+) s", done.stdout)
    return {"test_wall_s": seconds, "two_trainings_s": float(training.group(1)) if training else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="images of the large classify-dir run")
    parser.add_argument("--skip-postgres", action="store_true", help="leave out the PostgreSQL test")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home, cid = trained_home(root)
        ids = CLASSIFIERS.format(cid=cid)
        small = root / "tutorial-250"
        for name in CLASS_FOLDERS:
            shutil.copytree(TUTORIAL / name, small / name)
        images = sorted(p for p in small.rglob("*") if p.is_file())
        results = {"images": len(images), "classifiers": ids}
        results["single_process_images_per_s"] = single_process(home, ids, images)
        results["classify_dir_250"] = classify_dir(home, ids, small, root / "out-250.parquet")
        results["spark_local2_250"] = spark_local2(home, ids, small)
        large = distinct_copies(root / f"copies-{args.images}", args.images)
        results[f"classify_dir_{args.images}"] = classify_dir(home, ids, large, root / "out-large.parquet")
        if not args.skip_postgres:
            results["postgres_two_process_test"] = postgres_test_seconds()
    print(json.dumps(results, indent=2))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
