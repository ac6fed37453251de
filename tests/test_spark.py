"""Spark batch classification in local mode: `workbench.spark.classify` and `mlflow.pyfunc.spark_udf`.

One SparkSession (one JVM) for the module: starting it takes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import workbench.spark
from conftest import DOGS_JPG, TUTORIAL
from workbench import ClassifierNotFound, InvalidThreshold, folder_images
from workbench.pyfunc import save_pyfunc

pyspark = pytest.importorskip("pyspark", reason="pyspark is a test dependency: pip install -e '.[test]'")

pytestmark = pytest.mark.slow
CLASS_FOLDERS = ("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats")
THRESHOLD = 0.05  # low enough that every image has several classes per classifier to compare
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def spark():
    """A local[2] SparkSession whose Python workers run this interpreter (and so this workbench)."""
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("workbench-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 250 tutorial images, dogs.jpg and one corrupt JPEG (dogs.jpg cut after 2 KB)."""
    folder = tmp_path_factory.mktemp("spark-images")
    for name in CLASS_FOLDERS:
        shutil.copytree(TUTORIAL / name, folder / name)
    shutil.copyfile(DOGS_JPG, folder / "dogs.jpg")
    (folder / "corrupt.jpg").write_bytes(DOGS_JPG.read_bytes()[:2048])
    return folder


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file:"))


def assert_same_classes(got: list[dict], expected: list[dict], where: str) -> None:
    """Same classes and scores to TOLERANCE; a class may be on one side only if it sits on the threshold."""
    got_scores = {c["class"]: c["score"] for c in got}
    expected_scores = {c["class"]: c["score"] for c in expected}
    for name in got_scores.keys() & expected_scores.keys():
        assert got_scores[name] == pytest.approx(expected_scores[name], abs=TOLERANCE), f"{where}: {name}"
    for name in got_scores.keys() ^ expected_scores.keys():
        score = got_scores.get(name, expected_scores.get(name))
        assert abs(score - THRESHOLD) < TOLERANCE, f"{where}: {name} ({score}) on one side only"


@pytest.fixture(scope="module")
def spark_rows(spark, image_folder, dogs) -> dict[Path, dict]:
    """`workbench.spark.classify` of the folder with `dogs` and `default`, by file path."""
    wb, cid = dogs
    df = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(str(image_folder)).repartition(2)
    frame = workbench.spark.classify(df, [cid, "default"], threshold=THRESHOLD, home=wb.home).toPandas()
    return {local_path(row["path"]): row for row in frame.to_dict("records")}


def test_spark_classifies_every_file_like_wb_classify(spark_rows, image_folder, dogs):
    wb, cid = dogs
    images = sorted(p for p in image_folder.rglob("*") if p.is_file() and p.name != "corrupt.jpg")
    assert len(images) == 251 and set(spark_rows) == {*images, image_folder / "corrupt.jpg"}
    assert {row["engine"] for row in spark_rows.values()} == {"onnxruntime"}  # never torch while ONNX exports
    expected = wb.classify(images, classifier_ids=[cid, "default"], threshold=THRESHOLD)["images"]
    for path, answer in zip(images, expected, strict=True):
        row = spark_rows[path]
        assert row["error"] is None or row["error"] != row["error"]  # None, or NaN from pandas
        results = [dict(result) for result in row["classifiers"]]
        assert [r["classifier_id"] for r in results] == [cid, "default"]
        for result, wanted in zip(results, answer["classifiers"], strict=True):
            classes = [{k: v for k, v in dict(c).items() if v is not None} for c in result["classes"]]
            assert_same_classes(classes, wanted["classes"], f"{path.name} {wanted['classifier_id']}")


def test_a_corrupt_file_is_an_error_row_and_the_others_still_answer(spark_rows, image_folder):
    row = spark_rows[image_folder / "corrupt.jpg"]
    assert row["error"].endswith("corrupt.jpg: not a readable JPEG, PNG, GIF, TIFF, WEBP or BMP image")
    assert len(row["classifiers"]) == 0
    assert sum(isinstance(r["error"], str) for r in spark_rows.values()) == 1


def test_unknown_classifier_or_bad_threshold_fails_on_the_driver_before_spark_runs(spark, dogs):
    wb, cid = dogs
    df = spark.createDataFrame([("x.jpg", b"")], "path string, content binary")
    with pytest.raises(ClassifierNotFound):
        workbench.spark.classify(df, ["no-such-classifier"], home=wb.home)
    with pytest.raises(InvalidThreshold):
        workbench.spark.classify(df, [cid], threshold=1.5, home=wb.home)


def test_one_workbench_per_worker_process(dogs):
    wb, _ = dogs
    home = str(wb.home.resolve())
    assert workbench.spark.worker_workbench(home) is workbench.spark.worker_workbench(home)


def test_spark_udf_of_the_pyfunc_with_defaults_scores_every_class(spark, dogs, tmp_path):
    """Issue 15 item 5: `spark_udf` with no result_type reads every declared column, `watson` included."""
    import mlflow.pyfunc
    from pyspark.sql.functions import col

    wb, cid = dogs
    record = wb.store.classifier(cid)
    version = wb.store.version(cid, record.serving_version)
    model = tmp_path / "model"
    save_pyfunc(model, record, version, wb.store.head_path(cid, version.version), wb.backbone.backbone_id)
    udf = mlflow.pyfunc.spark_udf(spark, str(model))
    df = spark.createDataFrame([("dogs.jpg", DOGS_JPG.read_bytes())], "path string, image binary")
    [row] = df.select(udf(col("image")).alias("scores")).collect()
    scores = row["scores"].asDict()
    assert scores["watson"] is None
    expected = wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.0)["images"][0]["classifiers"][0]["classes"]
    assert {name for name in scores if name not in ("watson", "error", "engine")} == {c["class"] for c in expected}
    assert scores["error"] == "" and scores["engine"] == "onnxruntime"  # the column and value of way 1's rows
    for entry in expected:
        assert scores[entry["class"]] == pytest.approx(entry["score"], abs=TOLERANCE)


def test_spark_udf_answers_a_corrupt_image_with_an_error_row_and_the_job_completes(spark, dogs, tmp_path):
    """Issue 24 item 3: one bad image is an `error` (its scores NaN), not a failed job."""
    import mlflow.pyfunc
    from pyspark.sql.functions import col

    wb, cid = dogs
    record = wb.store.classifier(cid)
    version = wb.store.version(cid, record.serving_version)
    model = tmp_path / "model"
    save_pyfunc(model, record, version, wb.store.head_path(cid, version.version), wb.backbone.backbone_id)
    udf = mlflow.pyfunc.spark_udf(spark, str(model))
    images = [
        ("dogs.jpg", DOGS_JPG.read_bytes()),
        ("corrupt.jpg", DOGS_JPG.read_bytes()[:2048]),
        ("again.jpg", DOGS_JPG.read_bytes()),
    ]
    df = spark.createDataFrame(images, "path string, image binary").repartition(1)
    rows = {
        row["path"]: row["scores"].asDict() for row in df.select("path", udf(col("image")).alias("scores")).collect()
    }
    assert set(rows) == {"dogs.jpg", "corrupt.jpg", "again.jpg"}
    assert "not a readable" in rows["corrupt.jpg"]["error"]
    assert rows["dogs.jpg"]["error"] == "" and rows["again.jpg"]["error"] == ""
    classes = {
        c["class"]
        for c in wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.0)["images"][0]["classifiers"][0]["classes"]
    }
    assert all(
        rows["corrupt.jpg"][name] is None or rows["corrupt.jpg"][name] != rows["corrupt.jpg"][name] for name in classes
    )  # no scores: null (spark_udf's NaN) or NaN
    assert all(rows["dogs.jpg"][name] == pytest.approx(rows["again.jpg"][name], abs=TOLERANCE) for name in classes)


def test_image_files_gives_the_rows_and_paths_classify_dir_gives(spark, dogs, tmp_path):
    """Issue 24 item 4: empty and oversized files are error rows (Spark's binaryFile drops empty files),
    symlinked folders are walked, and `path` is classify-dir's "folder/relative/path"."""
    wb, cid = dogs
    elsewhere, folder = tmp_path / "elsewhere", tmp_path / "archive"
    shutil.copytree(TUTORIAL / "beagle", elsewhere / "beagle")
    folder.mkdir()
    (folder / "linked").symlink_to(elsewhere / "beagle", target_is_directory=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "big.jpg").write_bytes(DOGS_JPG.read_bytes() + bytes(10 * 2**20))
    (folder / "notes.txt").write_text("not an image")
    binary = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(str(folder))
    assert not any(row["path"].endswith("empty.jpg") for row in binary.select("path").collect())  # the gap
    files = workbench.spark.image_files(spark, folder, partitions=2)
    frame = workbench.spark.classify(files, [cid], home=wb.home).toPandas()
    expected = [answer for answer in wb.classify_iter(folder, classifier_ids=[cid])]  # classify-dir's stream
    assert sorted(frame["path"]) == sorted(a["image"] for a in expected)
    assert len(frame) == len(expected) > 40
    errors = dict(zip(frame["path"], frame["error"], strict=True))
    assert "size limit" in errors["archive/big.jpg"] and isinstance(errors["archive/empty.jpg"], str)
    assert sum(isinstance(e, str) for e in errors.values()) == 2


READ_ONLY_JOB = """
import json, os, sys, time
from pyspark.sql import SparkSession
import workbench.spark
home, folder, cid = sys.argv[1:4]
try:
    open(os.path.join(home, "probe"), "w")
    writable = True
except OSError:
    writable = False
os.environ["PYSPARK_PYTHON"] = sys.executable
spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
started = time.monotonic()
rows = workbench.spark.classify(workbench.spark.image_files(spark, folder), [cid], home=home).toPandas()
print(json.dumps({"home_writable": writable, "rows": len(rows), "errors": int(rows["error"].notna().sum()),
                  "engines": sorted(set(rows["engine"])), "seconds": round(time.monotonic() - started, 1)}))
"""


def read_only_command(folders: list[Path], command: list[str]) -> list[str]:
    """`command` with `folders` read-only: a read-only bind mount in a private mount namespace as root (where
    permissions do not stop writes), else the folders' write permissions taken away."""
    if os.geteuid() != 0:
        for folder in folders:
            subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
        return command
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare(1): no way to make the home read-only")
    mounts = " && ".join(f"mount --bind -o ro {f} {f}" for f in folders)
    return ["unshare", "-m", "sh", "-c", f'{mounts} && exec "$@"', "sh", *command]


def test_way_1_on_a_read_only_home_classifies_every_image_with_onnx_runtime(dogs, tmp_path):
    """Issue 24 item 2: executors read the store and heads read-only, and export the backbone to a scratch
    folder when the user's cache is read-only too, instead of aborting or falling back to torch."""
    wb, cid = dogs
    home, user_home = tmp_path / "home", tmp_path / "user"
    shutil.copytree(wb.home, home, ignore=shutil.ignore_patterns("workbench.db*", "embeddings.db*"))
    with sqlite3.connect(wb.home / "workbench.db") as source, sqlite3.connect(home / "workbench.db") as copy:
        source.backup(copy)  # a consistent copy of the live store
    (user_home / ".cache").mkdir(parents=True)  # an empty, read-only per-user cache: no ONNX model in it
    folder = tmp_path / "images"
    shutil.copytree(TUTORIAL / "husky", folder / "husky")
    (folder / "corrupt.jpg").write_bytes(DOGS_JPG.read_bytes()[:2048])
    env = {key: value for key, value in os.environ.items() if key not in ("WORKBENCH_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME=str(user_home), PYSPARK_PYTHON=sys.executable)
    command = read_only_command([home, user_home], [sys.executable, "-c", READ_ONLY_JOB, str(home), str(folder), cid])
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"way 1, read-only home: {result}")
    assert result["home_writable"] is False
    assert result["rows"] == 1 + sum(1 for _ in folder_images(TUTORIAL / "husky")) and result["errors"] == 1
    assert result["engines"] == ["onnxruntime"]
