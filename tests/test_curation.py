"""Curating the examples from Python: list them with out-of-fold scores, remove or relabel them, retrain without them.

A small classifier (12 beagles, 12 huskies, 10 cats as negatives) is trained once per module; each
test works on a copy of that home. Nothing a curation takes out is lost: an earlier version's
example set stays as it was, and retraining it from the store gives the same heads.
"""

from __future__ import annotations

import shutil
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import TUTORIAL, Gate
from workbench import (
    ClassifierNotFound,
    ExampleNotFound,
    InvalidClassName,
    TooFewExamples,
    TrainingExample,
    Workbench,
    examples_frame,
)
from workbench import curation
from workbench import doctor as dr
from workbench.training import Heads

TRAIN_S = 300.0
SIZES = {"beagle": 12, "husky": 12, "cats": 10}  # 10 is the least a set may keep


def small_zip(folder: Path, name: str, count: int) -> Path:
    """The first `count` tutorial images of `name`, as `folder/name.zip`."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for photo in sorted((TUTORIAL / name).iterdir())[:count]:
            archive.write(photo, f"{name}/{photo.name}")
    return target


def create_small(wb: Workbench, folder: Path) -> str:
    zips = {name: small_zip(folder, name, n) for name, n in SIZES.items()}
    cid = wb.create_classifier("pets", {"beagle": zips["beagle"], "husky": zips["husky"]},
                               negative_examples=zips["cats"])["classifier_id"]
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    return cid


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, embedding_cache: Path) -> tuple[Path, str]:
    """A home holding `pets` (beagle, husky; cats as negatives) with version 1 ready."""
    root = tmp_path_factory.mktemp("curation")
    wb = Workbench(root / "home", embedding_cache=embedding_cache, tracking_uri=False, resume=False)
    return root / "home", create_small(wb, root / "zips")


@pytest.fixture
def pets(template, tmp_path: Path, embedding_cache: Path) -> tuple[Workbench, str]:
    """A Workbench on a copy of the template home, and the classifier id."""
    home = Path(shutil.copytree(template[0], tmp_path / "home"))
    return Workbench(home, embedding_cache=embedding_cache, tracking_uri=False), template[1]


def ids_of(wb: Workbench, cid: str, label: str | None) -> list[int]:
    return [e.example_id for e in wb.examples(cid) if e.class_name == label]


def test_examples_lists_every_example_with_its_own_and_best_other_out_of_fold_score(pets) -> None:
    wb, cid = pets
    found = wb.examples(cid)
    assert all(isinstance(e, TrainingExample) for e in found)
    assert [e.example_id for e in found] == sorted(e.example_id for e in found)
    assert len(found) == sum(SIZES.values()) and all(e.in_version and e.version == 1 and not e.removed for e in found)
    oof = wb.out_of_fold(cid)
    for example in found:
        row = next(i for i, (sha, label) in enumerate(zip(oof.sha256, oof.labels)) if sha == example.sha256)
        scores = dict(zip(oof.classes, oof.scores[row].tolist()))
        if example.negative:
            assert example.score is None and example.class_name is None
            assert example.top_other_score == max(scores.values())
        else:
            assert example.score == scores[example.class_name]
            other = "husky" if example.class_name == "beagle" else "beagle"
            assert (example.top_other_class, example.top_other_score) == (other, scores[other])
    worst_first = wb.examples(cid, sort="oof")
    margins = [e.margin for e in worst_first]
    assert margins == sorted(margins) and {e.example_id for e in worst_first} == {e.example_id for e in found}
    frame = examples_frame(found)
    assert len(frame) == len(found) and {"example_id", "sha256", "class_name", "score", "margin"} <= set(frame.columns)
    assert found[0].to_dict()["class"] == found[0].class_name


def test_removed_examples_are_not_in_the_next_version_and_the_first_version_keeps_its_set(pets) -> None:
    wb, cid = pets
    first_set = [(e.example_id, e.class_name, e.sha256) for e in wb.examples(cid)]
    doomed = ids_of(wb, cid, "beagle")[:2]
    doomed_shas = {e.sha256 for e in wb.examples(cid) if e.example_id in doomed}
    change = wb.remove_examples(cid, doomed)
    assert change.removed == tuple(doomed) and change.changed and change.status == "retraining"
    assert wb.get_classifier(cid)["status"] == "retraining"
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    versions = wb.versions(cid)
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["metrics"]["images"] == versions[0]["metrics"]["images"] - 2
    assert versions[1]["metrics"]["per_class"]["beagle"]["positives"] == SIZES["beagle"] - 2
    assert not doomed_shas & set(wb.out_of_fold(cid).sha256)
    assert len(wb.examples(cid)) == sum(SIZES.values()) - 2 and all(e.version == 2 for e in wb.examples(cid))
    # nothing is lost: version 1's set is unchanged, its removed images are still stored
    listed = wb.examples(cid, version=1, include_removed=True)
    assert [(e.example_id, e.class_name, e.sha256) for e in listed if e.in_version] == first_set
    assert {e.example_id for e in listed if e.removed} == set(doomed)
    assert all(wb.store.blob_path(sha).exists() for sha in doomed_shas)
    assert wb.example_image(cid, next(iter(doomed_shas)))[:2] == b"\xff\xd8"
    report = wb.doctor()
    assert report.of_kind(dr.ORPHAN_BLOB) == [] and report.of_kind(dr.MISSING_BLOB) == []


def test_an_earlier_version_retrains_from_the_store_to_the_same_heads(pets) -> None:
    wb, cid = pets
    wb.remove_examples(cid, ids_of(wb, cid, "husky")[:2])
    wb.relabel_examples(cid, {ids_of(wb, cid, "beagle")[0]: None})
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    rows = wb.store.examples(cid)
    for number in [v["version"] for v in wb.versions(cid)]:
        stored = wb.store.version(cid, number)
        result, trained = wb.jobs.fit(cid, curation.version_rows(rows, stored))
        heads = Heads.from_bytes(wb.store.head_path(cid, number).read_bytes())
        assert list(result.heads.classes) == list(heads.classes)
        np.testing.assert_allclose(result.heads.weights, heads.weights, rtol=0, atol=1e-9)
        np.testing.assert_allclose(result.heads.bias, heads.bias, rtol=0, atol=1e-9)
        held_out = wb.out_of_fold(cid, version=number)
        assert [r.sha256 for r in trained] == held_out.sha256  # the same images, in the same order


def test_relabel_to_an_existing_class_to_negative_and_to_a_new_class(pets) -> None:
    wb, cid = pets
    beagle, husky = ids_of(wb, cid, "beagle")[0], ids_of(wb, cid, "husky")[0]
    change = wb.relabel_examples(cid, {beagle: "husky", husky: None})
    moved = {r.example_id: r for r in change.relabelled}
    assert set(moved) == {beagle, husky}
    assert (moved[beagle].previous_class, moved[beagle].class_name) == ("beagle", "husky")
    assert (moved[husky].previous_class, moved[husky].class_name) == ("husky", None)
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    now = {e.example_id: e for e in wb.examples(cid)}
    assert beagle not in now and now[moved[beagle].new_example_id].class_name == "husky"
    assert now[moved[husky].new_example_id].negative and now[moved[husky].new_example_id].in_version
    metrics = wb.versions(cid)[-1]["metrics"]
    assert metrics["per_class"]["beagle"]["positives"] == 11 and metrics["negatives"] == 11
    # every husky becomes a new class: husky drops out, "sled dog" trains with all twelve
    huskies = ids_of(wb, cid, "husky")
    wb.relabel_examples(cid, dict.fromkeys(huskies, "sled dog"))
    record = wb.wait(cid, timeout=TRAIN_S)
    assert record["status"] == "ready" and [c["class"] for c in record["classes"]] == ["beagle", "sled dog"]
    assert wb.versions(cid)[-1]["classes"] == ["beagle", "sled dog"]
    assert wb.store.version(cid, 1).classes == ["beagle", "husky"]  # version 1 as it was


def test_a_change_that_leaves_too_few_images_or_names_no_example_is_refused_and_changes_nothing(pets) -> None:
    wb, cid = pets
    before = wb.examples(cid)
    beagles, huskies, cats = ids_of(wb, cid, "beagle"), ids_of(wb, cid, "husky"), ids_of(wb, cid, None)
    with pytest.raises(TooFewExamples) as refused:
        wb.remove_examples(cid, beagles[:3])  # 9 beagles left
    assert refused.value.code == 400 and "class 'beagle'" in refused.value.message and "9 images" in refused.value.message
    with pytest.raises(TooFewExamples):
        wb.relabel_examples(cid, {beagles[0]: "puppy"})  # a new class of one image
    with pytest.raises(TooFewExamples):
        wb.remove_examples(cid, cats[:1])  # 9 negatives
    with pytest.raises(TooFewExamples, match="two sets"):
        wb.remove_examples(cid, [*beagles, *huskies])  # only negatives left
    with pytest.raises(ExampleNotFound) as missing:
        wb.remove_examples(cid, [beagles[0], 10**9])
    assert missing.value.code == 404
    with pytest.raises(InvalidClassName):
        wb.relabel_examples(cid, {beagles[0]: "a/b"})
    with pytest.raises(ClassifierNotFound):
        wb.as_owner("someone else").remove_examples(cid, beagles[:1])
    with pytest.raises(ClassifierNotFound):
        wb.examples(cid, version=7)
    assert wb.examples(cid) == before and wb.get_classifier(cid)["status"] == "ready"
    with sqlite3.connect(wb.home / "workbench.db") as db:
        assert db.execute("SELECT COUNT(*) FROM curations").fetchone()[0] == 0
    unchanged = wb.relabel_examples(cid, {beagles[0]: "beagle"})  # its own class: no change, no retraining
    assert not unchanged.changed and unchanged.status == "ready" and len(wb.versions(cid)) == 1
    every_cat = wb.remove_examples(cid, cats)  # all negatives: two classes remain, allowed
    assert every_cat.changed and wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    assert wb.versions(cid)[-1]["metrics"]["negatives"] == 0


def test_changes_during_a_retraining_fold_into_one_more_training(pets) -> None:
    wb, cid = pets
    gate = Gate("fitting", timeout_s=TRAIN_S)
    wb.subscribe(gate)
    first, second = ids_of(wb, cid, "beagle")[:2]
    wb.remove_examples(cid, [first])
    assert gate.reached.wait(TRAIN_S)
    wb.remove_examples(cid, [second])  # while the first change trains
    assert wb.classify(TUTORIAL / "test" / "4.jpg", classifier_ids=[cid])["images"][0]["classifiers"]  # v1 serves
    gate.opened.set()
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    latest = wb.versions(cid)[-1]
    assert latest["metrics"]["per_class"]["beagle"]["positives"] == SIZES["beagle"] - 2
    assert {first, second}.isdisjoint(e.example_id for e in wb.examples(cid))
    stored = wb.store.version(cid, latest["version"])
    with sqlite3.connect(wb.home / "workbench.db") as db:
        assert stored.last_curation_id == db.execute("SELECT MAX(curation_id) FROM curations").fetchone()[0]


def test_deleting_the_classifier_frees_the_removed_examples_images(pets) -> None:
    wb, cid = pets
    doomed = ids_of(wb, cid, "beagle")[:2]
    shas = [e.sha256 for e in wb.examples(cid) if e.example_id in doomed]
    wb.remove_examples(cid, doomed)
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    wb.delete_classifier(cid)
    assert not any(wb.store.blob_path(sha).exists() for sha in shas)


def test_a_home_from_before_curation_gains_its_columns_and_old_versions_keep_their_sets(tmp_path: Path) -> None:
    old = (  # examples and versions as homes made before curation have them
        "CREATE TABLE examples (example_id INTEGER PRIMARY KEY AUTOINCREMENT, classifier_id TEXT NOT NULL,"
        " class_name TEXT, sha256 TEXT NOT NULL, source TEXT NOT NULL);"
        "CREATE TABLE versions (classifier_id TEXT NOT NULL, version INTEGER NOT NULL, created TEXT NOT NULL,"
        " classes TEXT NOT NULL, last_example_id INTEGER NOT NULL, metrics TEXT NOT NULL, head_file TEXT NOT NULL,"
        " PRIMARY KEY (classifier_id, version));"
        "INSERT INTO examples VALUES (1, 'c_1', 'a', 'aa', 'a.zip/1.jpg'), (2, 'c_1', NULL, 'bb', 'n.zip/2.jpg');"
        "INSERT INTO versions VALUES ('c_1', 1, 't', '[\"a\"]', 2, '{}', 'v1.npz');"
    )
    with sqlite3.connect(tmp_path / "workbench.db") as db:
        db.executescript(old)
    from workbench.store import Store

    store = Store(tmp_path)
    [version] = store.versions("c_1")
    assert version.last_curation_id == 0
    assert [r.example_id for r in curation.version_rows(store.examples("c_1"), version)] == [1, 2]
    assert [(r.removed_by, r.replaces) for r in store.examples("c_1")] == [(None, None), (None, None)]
