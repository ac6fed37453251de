"""Curating the examples from Python: list them with out-of-fold scores, remove or relabel them, retrain without them.

A small classifier (12 beagles, 12 huskies, 10 cats as negatives) is trained once per module; each
test works on a copy of that home. Nothing a curation takes out is lost: an earlier version's
example set stays as it was, and retraining it from the store gives the same heads.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import TUTORIAL, Gate
from reliability.served_http import VERSION, open_app, served
from support.servers import workbench_command
from support.sets import SIZES, TRAIN_S, create_small
from workbench import (
    ClassifierNotFound,
    ExampleNotFound,
    InvalidClassName,
    TooFewExamples,
    TrainingExample,
    Workbench,
    examples_frame,
)
from workbench.analysis.training import Heads
from workbench.server.app import create_app
from workbench.server.keys import KeyRing
from workbench.server.settings import ServerSettings
from workbench.store import curation
from workbench.store import findings as fd


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
        row = next(
            i for i, (sha, label) in enumerate(zip(oof.sha256, oof.labels, strict=True)) if sha == example.sha256
        )
        scores = dict(zip(oof.classes, oof.scores[row].tolist(), strict=True))
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
    assert report.of_kind(fd.ORPHAN_BLOB) == [] and report.of_kind(fd.MISSING_BLOB) == []


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
    assert (
        refused.value.code == 400 and "class 'beagle'" in refused.value.message and "9 images" in refused.value.message
    )
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
    from workbench.store.database import Store

    store = Store(tmp_path)
    [version] = store.versions("c_1")
    assert version.last_curation_id == 0
    assert [r.example_id for r in curation.version_rows(store.examples("c_1"), version)] == [1, 2]
    assert [(r.removed_by, r.replaces) for r in store.examples("c_1")] == [(None, None), (None, None)]


def test_the_version_after_a_curation_logs_what_changed_in_mlflow(
    template, tmp_path: Path, embedding_cache: Path
) -> None:
    from mlflow import MlflowClient

    from workbench.tracking.run_record import CHANGES_ARTIFACT, MANIFEST_ARTIFACT
    from workbench.tracking.tags import TAG_ADDED, TAG_CURATED, TAG_KIND, TAG_VERSION

    home = Path(shutil.copytree(template[0], tmp_path / "home"))
    cid = template[1]
    storing = Workbench(
        home, embedding_cache=embedding_cache, tracking_uri=False, train=False
    )  # both changes, one training
    removed = ids_of(storing, cid, "beagle")[:2]
    relabelled = ids_of(storing, cid, "husky")[0]
    storing.remove_examples(cid, removed)
    change = storing.relabel_examples(cid, {relabelled: "beagle"})
    wb = Workbench(home, embedding_cache=embedding_cache, tracking_uri=tmp_path / "mlruns")  # adopts the training
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    assert [v["version"] for v in wb.versions(cid)] == [1, 2]
    assert wb.tracker.flush(timeout=TRAIN_S)
    client = MlflowClient(tracking_uri=wb.tracker.uri)
    experiment = client.get_experiment_by_name(cid)
    runs = {
        int(r.data.tags[TAG_VERSION]): r
        for r in client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'version'")
    }
    first, curated = runs[1], runs[2]
    assert (first.data.params["examples_removed"], first.data.params["examples_relabelled"]) == ("0", "0")
    assert first.data.tags[TAG_CURATED] == "nothing"
    assert (curated.data.params["examples_removed"], curated.data.params["examples_relabelled"]) == ("2", "1")
    assert curated.data.tags[TAG_CURATED] == "removed 2 (beagle: 2); relabelled 1 (husky -> beagle: 1)"
    assert curated.data.tags[TAG_ADDED] == "nothing new"  # a relabelled image is not an added one
    assert curated.data.params["images"] == str(sum(SIZES.values()) - 2)
    changes = Path(client.download_artifacts(curated.info.run_id, CHANGES_ARTIFACT, str(tmp_path / "got"))).read_text()
    lines = changes.splitlines()
    assert lines[0] == "change,example_id,new_example_id,sha256,source,class,new_class" and len(lines) == 4
    assert {int(line.split(",")[1]) for line in lines[1:] if line.startswith("removed,")} == set(removed)
    [moved] = [line.split(",") for line in lines[1:] if line.startswith("relabelled,")]
    assert (int(moved[1]), int(moved[2]), moved[5], moved[6]) == (
        relabelled,
        change.relabelled[0].new_example_id,
        "husky",
        "beagle",
    )
    manifest = Path(
        client.download_artifacts(curated.info.run_id, MANIFEST_ARTIFACT, str(tmp_path / "got2"))
    ).read_text()
    assert len(manifest.splitlines()) == 1 + sum(SIZES.values()) - 2
    assert not client.list_artifacts(first.info.run_id, "examples/changes.csv")


# the CLI ---------------------------------------------------------------------------------
def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(workbench_command(home, *args), capture_output=True, text=True, timeout=600)


def test_the_cli_lists_removes_and_relabels_examples(template, tmp_path: Path) -> None:
    home, cid = Path(shutil.copytree(template[0], tmp_path / "home")), template[1]
    listed = cli(home, "examples", cid)
    assert listed.returncode == 0, listed.stderr
    examples = json.loads(listed.stdout)
    assert len(examples) == sum(SIZES.values()) and examples[0]["version"] == 1
    assert {"example_id", "class", "negative", "sha256", "source", "score", "top_other_class", "in_version"} <= set(
        examples[0]
    )
    worst = json.loads(cli(home, "examples", cid, "--sort", "oof").stdout)
    margins = [
        TrainingExample(**{k: v for k, v in e.items() if k not in ("class", "negative")}, class_name=e["class"]).margin
        for e in worst
    ]
    assert margins == sorted(margins)
    beagles = [str(e["example_id"]) for e in examples if e["class"] == "beagle"]
    huskies = [str(e["example_id"]) for e in examples if e["class"] == "husky"]
    removed = cli(home, "examples", "remove", cid, *beagles[:2])
    assert removed.returncode == 0, removed.stderr
    answer = json.loads(removed.stdout)
    assert answer["removed"] == [int(i) for i in beagles[:2]] and answer["status"] == "ready"  # it waited
    relabelled = cli(home, "examples", "relabel", cid, huskies[0], huskies[1], "beagle")
    assert relabelled.returncode == 0, relabelled.stderr
    moved = json.loads(relabelled.stdout)["relabelled"]
    assert [(m["example_id"], m["previous_class"], m["class"]) for m in moved] == [
        (int(huskies[0]), "husky", "beagle"),
        (int(huskies[1]), "husky", "beagle"),
    ]
    negative = cli(home, "examples", "relabel", cid, beagles[2], "--negative")
    assert negative.returncode == 0 and json.loads(negative.stdout)["relabelled"][0]["class"] is None
    versions = json.loads(cli(home, "versions", cid, "--json").stdout)
    assert [v["version"] for v in versions] == [1, 2, 3, 4]
    assert [v["images"] for v in versions] == [34, 32, 32, 32] and versions[-1]["negatives"] == 11
    now = json.loads(cli(home, "examples", cid).stdout)
    assert len(now) == 32 and all(e["version"] == 4 and e["in_version"] for e in now)
    everything = json.loads(cli(home, "examples", cid, "--removed", "--version", "1").stdout)
    assert [e["example_id"] for e in everything if e["in_version"]] == [e["example_id"] for e in examples]
    too_few = cli(home, "examples", "remove", cid, *[str(e["example_id"]) for e in now if e["class"] == "husky"][:1])
    assert (
        too_few.returncode == 1 and "error 400" in too_few.stderr and "husky" in too_few.stderr and too_few.stdout == ""
    )
    unknown = cli(home, "examples", "remove", cid, "999999")
    assert unknown.returncode == 1 and "error 404" in unknown.stderr
    no_class = cli(home, "examples", "relabel", cid, beagles[3])
    assert no_class.returncode != 0 and "CLASS" in no_class.stderr


# HTTP ------------------------------------------------------------------------------------
def test_the_http_front_lists_removes_and_relabels_examples_with_watson_errors(pets) -> None:
    wb, cid = pets
    with served(open_app(wb)) as client:
        path = f"/v3/classifiers/{cid}/examples"
        listed = client.get(path, params=VERSION)
        assert listed.status_code == 200, listed.text
        examples = listed.json()["examples"]
        assert [e["example_id"] for e in examples] == [e.example_id for e in wb.examples(cid)]
        assert examples == [e.to_dict() for e in wb.examples(cid)]
        worst = client.get(path, params={**VERSION, "sort": "oof"}).json()["examples"]
        assert [e["example_id"] for e in worst] == [e.example_id for e in wb.examples(cid, sort="oof")]
        beagles = [e["example_id"] for e in examples if e["class"] == "beagle"]
        huskies = [e["example_id"] for e in examples if e["class"] == "husky"]
        removed = client.post(f"{path}/remove", params=VERSION, json={"example_ids": beagles[:2]})
        assert removed.status_code == 200, removed.text
        assert removed.json()["removed"] == beagles[:2] and removed.json()["status"] == "retraining"
        assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
        relabel = {
            "examples": [{"example_id": huskies[0], "class": "beagle"}, {"example_id": huskies[1], "class": None}]
        }
        relabelled = client.post(f"{path}/relabel", params=VERSION, json=relabel)
        assert relabelled.status_code == 200, relabelled.text
        assert [(m["example_id"], m["class"]) for m in relabelled.json()["relabelled"]] == [
            (huskies[0], "beagle"),
            (huskies[1], None),
        ]
        assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
        assert len(client.get(path, params=VERSION).json()["examples"]) == sum(SIZES.values()) - 2
        errors = {
            "too few": client.post(f"{path}/remove", params=VERSION, json={"example_ids": beagles[2:6]}),
            "unknown example": client.post(f"{path}/remove", params=VERSION, json={"example_ids": [10**9]}),
            "unknown classifier": client.post(
                "/v3/classifiers/nope_1/examples/remove", params=VERSION, json={"example_ids": [beagles[2]]}
            ),
            "string id": client.post(f"{path}/remove", params=VERSION, json={"example_ids": [str(beagles[2])]}),
            "boolean id": client.post(f"{path}/remove", params=VERSION, json={"example_ids": [True]}),
            "huge id": client.post(f"{path}/remove", params=VERSION, json={"example_ids": [2**70]}),
            "empty": client.post(f"{path}/remove", params=VERSION, json={"example_ids": []}),
            "extra field": client.post(f"{path}/remove", params=VERSION, json={"example_ids": [beagles[2]], "x": 1}),
            "not json": client.post(
                f"{path}/remove", params=VERSION, content=b"{", headers={"content-type": "application/json"}
            ),
            "bad class": client.post(
                f"{path}/relabel", params=VERSION, json={"examples": [{"example_id": beagles[2], "class": "a/b"}]}
            ),
            "twice": client.post(
                f"{path}/relabel",
                params=VERSION,
                json={
                    "examples": [
                        {"example_id": beagles[2], "class": "husky"},
                        {"example_id": beagles[2], "class": None},
                    ]
                },
            ),
            "no version": client.post(f"{path}/remove", json={"example_ids": [beagles[2]]}),
            "bad sort": client.get(path, params={**VERSION, "sort": "worst"}),
        }
        codes = {name: (answer.status_code, answer.json()["code"]) for name, answer in errors.items()}
        assert codes == {
            **{name: (400, 400) for name in errors},
            "unknown example": (404, 404),
            "unknown classifier": (404, 404),
        }, codes
        assert all(set(answer.json()) == {"code", "error"} for answer in errors.values())
        assert "beagle" in errors["too few"].json()["error"]
    assert len(wb.versions(cid)) == 3 and wb.get_classifier(cid)["status"] == "ready"  # the refusals changed nothing


def test_http_curation_is_owner_checked(pets) -> None:
    wb, cid = pets
    keys = KeyRing(wb.home, env_value="me:key-me,other:key-other")
    with served(create_app(wb, keys=keys, settings=ServerSettings())) as client:
        path = f"/v3/classifiers/{cid}/examples"
        theirs = {"Authorization": "Bearer key-other"}
        first = wb.examples(cid)[0].example_id
        assert client.get(path, params=VERSION, headers=theirs).status_code == 404
        assert (
            client.post(f"{path}/remove", params=VERSION, headers=theirs, json={"example_ids": [first]}).status_code
            == 404
        )
        assert (
            client.post(
                f"{path}/relabel",
                params=VERSION,
                headers=theirs,
                json={"examples": [{"example_id": first, "class": None}]},
            ).status_code
            == 404
        )
        assert client.get(path, params=VERSION).status_code == 401
        assert client.get(path, params=VERSION, headers={"Authorization": "Bearer key-me"}).status_code == 200
    assert len(wb.examples(cid)) == sum(SIZES.values())


# the review gallery ------------------------------------------------------------------------
def test_the_gallery_buttons_remove_and_relabel_the_shown_example(pets) -> None:
    from workbench import plots, widgets

    wb, cid = pets
    gallery = widgets.Gallery(
        wb, cid, threshold=1.0, max_images=40
    )  # no score reaches 1: every positive is "misclassified"
    tiles = list(gallery.grid.children)
    positives = [t for t in tiles if t.label is not None]
    beagles = [t for t in positives if t.label == "beagle"]
    huskies = [t for t in positives if t.label == "husky"]
    assert len(beagles) >= 3 and huskies, "at threshold 1 no image reaches its class"
    first = beagles[0]
    assert first.example_id == next(
        e.example_id for e in wb.examples(cid) if e.sha256 == first.sha256 and e.class_name == "beagle"
    )
    first.remove_button.click()  # the button a person clicks
    assert first.remove_button.disabled and first.relabel_button.disabled and "removed" in first.caption.value
    assert f"example {first.example_id} removed" in gallery.message.value and "retraining" in gallery.message.value
    assert first.example_id not in {e.example_id for e in wb.examples(cid)}
    second = beagles[1]
    second.new_class.value = "husky"  # typed or picked in the box, as the browser sets it
    second.relabel_button.click()
    assert "relabelled to husky" in second.caption.value
    relabelled = [e for e in wb.examples(cid) if e.sha256 == second.sha256]
    assert [e.class_name for e in relabelled] == ["husky"]
    third = huskies[0]
    third.new_class.value = plots.NEGATIVE_NAME
    third.relabel_button.click()
    assert [e.class_name for e in wb.examples(cid) if e.sha256 == third.sha256] == [None]
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    assert wb.versions(cid)[-1]["metrics"]["per_class"]["beagle"]["positives"] == SIZES["beagle"] - 2
    # a refusal is shown, and the tile stays usable: one beagle fewer would leave 9
    fourth = beagles[2]
    fourth.remove_button.click()
    assert "TooFewExamples" in gallery.message.value and not fourth.remove_button.disabled
    fourth.new_class.value = ""
    fourth.relabel_button.click()
    assert "new class" in gallery.message.value
    gallery.kind.value = "borderline"
    gallery.kind.value = "misclassified"  # redrawn: the removed example's tile says it is no longer trained on
    redrawn = next(t for t in gallery.grid.children if t.sha256 == first.sha256 and t.label == "beagle")
    assert (
        redrawn.example_id is None
        and redrawn.remove_button.disabled
        and "no longer trained on" in redrawn.caption.value
    )
