"""Spark batch classification in local mode: `workbench.spark.classify` and `mlflow.pyfunc.spark_udf`.

One SparkSession (one JVM) for the module: starting it takes seconds.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

import workbench.spark
from workbench import ClassifierNotFound, InvalidThreshold
from workbench.pyfunc import save_pyfunc

from conftest import DOGS_JPG, TUTORIAL

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
    session = (SparkSession.builder.master("local[2]").appName("workbench-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
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
    assert {name for name in scores if name != "watson"} == {c["class"] for c in expected}
    for entry in expected:
        assert scores[entry["class"]] == pytest.approx(entry["score"], abs=TOLERANCE)
