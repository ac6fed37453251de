"""The Watson tutorial through the Python API: create, watch, update, classify, delete."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import pytest
from PIL import Image

from conftest import CREATE_CLASSES, DOGS_JPG, TUTORIAL, Gate
from workbench import (
    ClassifierNotFound,
    ImageUnreadable,
    ImageURL,
    InvalidClassName,
    InvalidExamples,
    InvalidRequest,
    InvalidThreshold,
    LimitExceeded,
    NoImages,
    WaitTimeout,
    Workbench,
)

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def scores_of(answer: dict, classifier_id: str, image: int = 0) -> dict[str, float]:
    result = next(r for r in answer["images"][image]["classifiers"] if r["classifier_id"] == classifier_id)
    return {c["class"]: c["score"] for c in result["classes"]}


def test_create_answers_at_once_with_a_watson_record(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    record = wb.create_classifier(
        "dogs", {c: tutorial_zips[c] for c in CREATE_CLASSES}, negative_examples=tutorial_zips["cats"]
    )
    assert re.fullmatch(r"dogs_\d{9,10}", record["classifier_id"])
    assert record["status"] == "training"
    assert record["name"] == "dogs" and record["owner"] == "me"
    assert record["created"] == record["updated"] and ISO_MS.match(record["created"])
    assert [c["class"] for c in record["classes"]] == list(CREATE_CLASSES)
    assert record["core_ml_enabled"] is False
    ready = wb.wait(record["classifier_id"], timeout=300)
    assert ready["status"] == "ready" and "explanation" not in ready


def test_tutorial_classifier_after_update(dogs) -> None:
    wb, cid = dogs
    record = wb.get_classifier(cid)
    assert record["status"] == "ready"
    assert sorted(c["class"] for c in record["classes"]) == ["beagle", "dalmatian", "goldenretriever", "husky"]
    assert record["retrained"] == record["updated"] and record["updated"] > record["created"]
    assert [v["version"] for v in wb.versions(cid)] == [1, 2]
    metrics = wb.versions(cid)[-1]["metrics"]
    assert metrics["accuracy"] > 0.9 and set(metrics["per_class"]) == {
        "beagle",
        "husky",
        "goldenretriever",
        "dalmatian",
    }
    assert metrics["negatives"] == 50 and metrics["images"] == 250


def test_dogs_jpg_is_a_golden_retriever(dogs) -> None:
    wb, cid = dogs
    answer = wb.classify(DOGS_JPG, classifier_ids=f"{cid},default")
    custom = answer["images"][0]["classifiers"][0]
    assert custom["classifier_id"] == cid and custom["name"] == "dogs"
    assert custom["classes"][0]["class"] == "goldenretriever" and custom["classes"][0]["score"] >= 0.5
    everything = scores_of(wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.0), cid)
    assert all(score < 0.5 for name, score in everything.items() if name != "goldenretriever")
    assert answer["images"][0]["image"] == "dogs.jpg"
    assert answer["images_processed"] == 1 and answer["custom_classes"] == 1


def golden_retriever_on_a_wide_canvas(where: str) -> bytes:
    """The held-out golden retriever (test/5.jpg) as a square at the centre, left, right or top of a 3:1 grey canvas."""
    dog = Image.open(TUTORIAL / "test" / "5.jpg").convert("RGB")
    side = min(dog.size)
    dog = dog.crop(
        ((dog.width - side) // 2, (dog.height - side) // 2, (dog.width + side) // 2, (dog.height + side) // 2)
    )
    size = (side, 3 * side) if where == "top" else (3 * side, side)
    canvas = Image.new("RGB", size, (128, 128, 128))
    canvas.paste(dog, {"centre": (side, 0), "left": (0, 0), "right": (2 * side, 0), "top": (0, 0)}[where])
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("where", ["left", "right", "top"])
def test_a_subject_at_the_edge_of_a_wide_image_keeps_its_score(dogs, where: str) -> None:
    wb, cid = dogs
    centred = scores_of(
        wb.classify(golden_retriever_on_a_wide_canvas("centre"), classifier_ids=[cid], threshold=0.0), cid
    )
    edge = scores_of(wb.classify(golden_retriever_on_a_wide_canvas(where), classifier_ids=[cid], threshold=0.0), cid)
    assert centred["goldenretriever"] >= 0.8
    assert edge["goldenretriever"] >= 0.8 * centred["goldenretriever"]


def test_dogs_jpg_keeps_the_tutorials_answers_with_the_whole_frame(dogs) -> None:
    wb, cid = dogs
    answer = wb.classify(DOGS_JPG, classifier_ids=[cid, "default"])
    assert scores_of(answer, cid)["goldenretriever"] >= 0.8
    general = scores_of(answer, "default")
    assert general["dog"] >= 0.5 and general["golden retriever"] >= 0.5


def test_default_model_answers_with_a_hierarchy(dogs) -> None:
    wb, _ = dogs
    classes = wb.classify(DOGS_JPG, threshold=0.1)["images"][0]["classifiers"][0]["classes"]
    by_name = {c["class"]: c for c in classes}
    breeds = [c for c in classes if "/dog/" in c.get("type_hierarchy", "")]
    assert breeds, classes
    for ancestor in ("dog", "domestic animal", "animal"):
        assert ancestor in by_name and "type_hierarchy" not in by_name[ancestor]
    for leaf in breeds:
        for node in leaf["type_hierarchy"].strip("/").split("/")[:-1]:
            assert by_name[node]["score"] >= leaf["score"]
    assert [c["score"] for c in classes] == sorted((c["score"] for c in classes), reverse=True)


def test_threshold_zero_returns_every_custom_class_and_one_filters(dogs) -> None:
    wb, cid = dogs
    assert len(scores_of(wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.0), cid)) == 4
    assert scores_of(wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=1.0), cid) == {}


def test_images_unlike_any_class_score_low(dogs) -> None:
    wb, cid = dogs
    answer = wb.classify(
        [TUTORIAL / "test" / "1.jpg", TUTORIAL / "test" / "3.jpg"], classifier_ids=[cid], threshold=0.0
    )
    for image in range(2):  # a cheetah and a tiger: felines are negatives, no dog class may claim them
        assert max(scores_of(answer, cid, image).values()) < 0.5


def test_held_out_test_images_get_their_labels(dogs) -> None:
    wb, cid = dogs
    labels = {"0.jpg": "husky", "2.jpg": "dalmatian", "4.jpg": "beagle", "5.jpg": "goldenretriever", "6.jpg": "husky"}
    answer = wb.classify([TUTORIAL / "test" / name for name in labels], classifier_ids=[cid])
    for i, expected in enumerate(labels.values()):
        assert answer["images"][i]["classifiers"][0]["classes"][0]["class"] == expected


def test_a_call_of_many_batches_answers_as_one_image_at_a_time(dogs, tmp_path: Path) -> None:
    """Calls of more than one batch run in lanes (`Backbone.lanes`); each image's answer, and an unreadable one's
    error in its place, match single-image calls (one pass on every core) exactly."""
    wb, cid = dogs
    paths = sorted((TUTORIAL / "beagle").iterdir())[:9] + sorted((TUTORIAL / "cats").iterdir())[:9]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((TUTORIAL / "test" / "5.jpg").read_bytes()[:2000])
    sources = [*paths[:11], broken, *paths[11:]]
    together = wb.classify(sources, classifier_ids=[cid, "default"], threshold=0.0)
    alone = [wb.classify(source, classifier_ids=[cid, "default"], threshold=0.0)["images"][0] for source in sources]
    assert together["images_processed"] == len(paths)
    assert "error" in together["images"][11]
    assert together["images"] == alone


def test_classify_a_zip_names_members_and_reports_bad_images(dogs, tmp_path: Path) -> None:
    import zipfile

    wb, cid = dogs
    archive = tmp_path / "test.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(TUTORIAL / "test" / "4.jpg", "4.jpg")
        z.writestr("broken.jpg", (TUTORIAL / "test" / "5.jpg").read_bytes()[:2000])
    answer = wb.classify(archive, classifier_ids=[cid])
    names = [image["image"] for image in answer["images"]]
    assert names == ["test.zip/4.jpg", "test.zip/broken.jpg"]
    assert answer["images"][1]["error"]["code"] == 400
    assert answer["images"][0]["classifiers"][0]["classes"][0]["class"] == "beagle"
    assert answer["images_processed"] == 1


def test_owners_and_default_selection(dogs) -> None:
    wb, cid = dogs
    only_default = wb.classify(DOGS_JPG)["images"][0]["classifiers"]
    assert [r["classifier_id"] for r in only_default] == ["default"]
    mine = wb.classify(DOGS_JPG, owners="me")["images"][0]["classifiers"]
    assert [r["classifier_id"] for r in mine] == [cid]
    both = wb.classify(DOGS_JPG, owners=["IBM", "me"])["images"][0]["classifiers"]
    assert [r["classifier_id"] for r in both] == ["default", cid]
    ids_win = wb.classify(DOGS_JPG, classifier_ids=[cid], owners="IBM")["images"][0]["classifiers"]
    assert [r["classifier_id"] for r in ids_win] == [cid]


def test_other_owners_do_not_see_a_classifier(dogs) -> None:
    wb, cid = dogs
    stranger = wb.as_owner("someone-else")
    with pytest.raises(ClassifierNotFound):
        stranger.get_classifier(cid)
    assert stranger.list_classifiers() == {"classifiers": []}


def test_list_classifiers_brief_and_verbose(dogs) -> None:
    wb, cid = dogs
    assert wb.list_classifiers() == {"classifiers": [{"classifier_id": cid, "name": "dogs", "status": "ready"}]}
    assert wb.list_classifiers(verbose=True)["classifiers"][0] == wb.get_classifier(cid)


@pytest.mark.parametrize("threshold", [-0.1, 1.5, "high", "0.5", True, float("nan")])
def test_threshold_outside_0_1_is_rejected(dogs, threshold) -> None:
    wb, cid = dogs
    with pytest.raises(InvalidThreshold):
        wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=threshold)


def test_classify_with_no_images_is_rejected(dogs) -> None:
    wb, cid = dogs
    with pytest.raises(NoImages):
        wb.classify([], classifier_ids=[cid])


def test_unknown_classifier_is_not_found(dogs) -> None:
    wb, _ = dogs
    with pytest.raises(ClassifierNotFound):
        wb.classify(DOGS_JPG, classifier_ids=["cats_123456789"])
    with pytest.raises(ClassifierNotFound):
        wb.get_classifier("cats_123456789")
    with pytest.raises(InvalidRequest):
        wb.classify(DOGS_JPG, owners="everyone")


# --- bad examples at create: a clear error, nothing stored ------------------------------------


def assert_nothing_stored(wb: Workbench) -> None:
    assert wb.list_classifiers() == {"classifiers": []}
    assert not list((wb.home / "blobs").glob("*/*")) if (wb.home / "blobs").exists() else True


def test_create_needs_two_example_sets(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    with pytest.raises(InvalidExamples, match="two example sets"):
        wb.create_classifier("dogs", {"beagle": tutorial_zips["beagle"]})
    with pytest.raises(InvalidExamples):
        wb.create_classifier("dogs", {}, negative_examples=tutorial_zips["cats"])
    assert_nothing_stored(wb)


@pytest.mark.parametrize("name", ["golden-retriever", "a/b", "x*", "q'uote", "[x]", " "])
def test_forbidden_class_names(make_workbench, tutorial_zips, name) -> None:
    wb = make_workbench()
    with pytest.raises(InvalidClassName):
        wb.create_classifier("dogs", {name: tutorial_zips["beagle"], "husky": tutorial_zips["husky"]})
    assert_nothing_stored(wb)


def test_duplicate_class_in_one_call(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    with pytest.raises(InvalidExamples, match="twice"):
        wb.create_classifier(
            "dogs", {"beagle": tutorial_zips["beagle"], "beagle_positive_examples": tutorial_zips["husky"]}
        )
    assert_nothing_stored(wb)


def test_a_bad_set_among_good_ones_stores_nothing(make_workbench, tutorial_zips, tmp_path: Path) -> None:
    wb = make_workbench()
    too_few = tmp_path / "few"
    too_few.mkdir()
    for path in sorted((TUTORIAL / "husky").iterdir())[:9]:
        (too_few / path.name).write_bytes(path.read_bytes())
    with pytest.raises(InvalidExamples, match="at least 10"):
        wb.create_classifier("dogs", {"beagle": tutorial_zips["beagle"], "husky": too_few})
    not_a_zip = tmp_path / "notes.zip"
    not_a_zip.write_text("hello")
    with pytest.raises(InvalidExamples):
        wb.create_classifier("dogs", {"beagle": tutorial_zips["beagle"]}, negative_examples=not_a_zip)
    assert_nothing_stored(wb)


def test_bad_update_keeps_classifier_intact(dogs, tmp_path: Path) -> None:
    wb, cid = dogs
    before = wb.get_classifier(cid)
    with pytest.raises(InvalidExamples):
        wb.update_classifier(cid)
    with pytest.raises(InvalidClassName):
        wb.update_classifier(cid, positive_examples={"bad|name": TUTORIAL / "beagle"})
    assert wb.get_classifier(cid) == before
    with pytest.raises(ClassifierNotFound):
        wb.update_classifier("nope_123", positive_examples={"x": TUTORIAL / "beagle"})


# --- background training, coalescing, the old version serving ----------------------------------


def test_update_keeps_old_version_serving(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    cid = wb.create_classifier(
        "dogs", {c: tutorial_zips[c] for c in CREATE_CLASSES}, negative_examples=tutorial_zips["cats"]
    )["classifier_id"]
    wb.wait(cid, timeout=300)
    before = wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.0)
    gate = Gate("fitting")
    wb.subscribe(gate)
    record = wb.update_classifier(
        cid, positive_examples={"dalmatian": tutorial_zips["dalmatian"]}, negative_examples=tutorial_zips["more-cats"]
    )
    assert record["status"] == "retraining"
    assert "dalmatian" in [c["class"] for c in record["classes"]]
    assert gate.reached.wait(120)
    during = wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.0)
    assert during == before  # the old version answers, without dalmatian
    assert wb.get_classifier(cid)["status"] == "retraining"
    gate.opened.set()
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    after = scores_of(wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.0), cid)
    assert "dalmatian" in after


def test_two_updates_during_one_retraining_both_land(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    cid = wb.create_classifier(
        "dogs",
        {"beagle": tutorial_zips["beagle"], "husky": tutorial_zips["husky"]},
        negative_examples=tutorial_zips["cats"],
    )["classifier_id"]
    wb.wait(cid, timeout=300)
    gate = Gate("fitting")
    wb.subscribe(gate)
    wb.update_classifier(cid, positive_examples={"goldenretriever": tutorial_zips["goldenretriever"]})
    assert gate.reached.wait(120)
    wb.update_classifier(cid, positive_examples={"dalmatian": tutorial_zips["dalmatian"]})
    wb.update_classifier(cid, negative_examples=tutorial_zips["more-cats"])
    with pytest.raises(InvalidExamples):  # 7 test images: too few, rejected without touching the rest
        wb.update_classifier(cid, positive_examples={"beagle": TUTORIAL / "test"})
    assert wb.get_classifier(cid)["status"] == "retraining"
    gate.opened.set()
    record = wb.wait(cid, timeout=300)
    versions = wb.versions(cid)
    assert record["status"] == "ready"
    assert len(versions) == 3  # create, the retraining in flight, one follow-up for both updates
    assert versions[1]["classes"] == ["beagle", "husky", "goldenretriever"]
    assert versions[2]["classes"] == ["beagle", "husky", "goldenretriever", "dalmatian"]
    assert versions[2]["metrics"]["negatives"] == 50 and versions[2]["metrics"]["images"] == 250


def test_wait_times_out_with_a_typed_error(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    gate = Gate("fitting")
    wb.subscribe(gate)
    cid = wb.create_classifier("dogs", {c: tutorial_zips[c] for c in CREATE_CLASSES})["classifier_id"]
    assert gate.reached.wait(120)
    with pytest.raises(WaitTimeout):
        wb.wait(cid, timeout=0.2)
    gate.opened.set()
    assert wb.wait(cid, timeout=300)["status"] == "ready"


def test_classify_before_first_training_is_a_clear_error(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    gate = Gate("fitting")
    wb.subscribe(gate)
    cid = wb.create_classifier("dogs", {c: tutorial_zips[c] for c in CREATE_CLASSES})["classifier_id"]
    assert gate.reached.wait(120)
    with pytest.raises(InvalidRequest, match="no trained version"):
        wb.classify(DOGS_JPG, classifier_ids=[cid])
    gate.opened.set()
    wb.wait(cid, timeout=300)


def test_delete_removes_everything_it_alone_uses(make_workbench, tutorial_zips) -> None:
    wb = make_workbench()
    keep = wb.create_classifier("pets", {"beagle": tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"])[
        "classifier_id"
    ]
    gone = wb.create_classifier("dogs", {c: tutorial_zips[c] for c in CREATE_CLASSES})["classifier_id"]
    wb.wait(keep, timeout=300)
    wb.wait(gone, timeout=300)
    blobs_before = len(list((wb.home / "blobs").glob("*/*")))
    wb.delete_classifier(gone)
    with pytest.raises(ClassifierNotFound):
        wb.classify(DOGS_JPG, classifier_ids=[gone])
    with pytest.raises(ClassifierNotFound):
        wb.get_classifier(gone)
    assert not (wb.home / "heads" / gone).exists()
    # beagle images are shared with `pets` and stay; husky and goldenretriever go
    assert len(list((wb.home / "blobs").glob("*/*"))) == blobs_before - 100
    assert wb.classify(DOGS_JPG, classifier_ids=[keep])["images"][0]["classifiers"][0]["classifier_id"] == keep


def test_classify_a_folder_warns_about_files_that_are_not_images(dogs) -> None:
    wb, cid = dogs
    answer = wb.classify(TUTORIAL / "test", classifier_ids=[cid])
    assert [image["image"] for image in answer["images"]] == [f"test/{i}.jpg" for i in range(7)]
    assert answer["images_processed"] == 7
    assert (
        answer["warnings"][0]["warning_id"] == "files_skipped" and "LABELS.txt" in answer["warnings"][0]["description"]
    )


def test_max_images_caps_one_call_counting_zip_members(dogs, tmp_path: Path) -> None:
    import zipfile

    wb, cid = dogs
    archive = tmp_path / "three.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in (0, 2, 4):
            z.write(TUTORIAL / "test" / f"{i}.jpg", f"{i}.jpg")
    with pytest.raises(LimitExceeded, match="at most 2 images"):
        wb.classify(archive, classifier_ids=[cid], max_images=2)
    assert wb.classify(archive, classifier_ids=[cid], max_images=3)["images_processed"] == 3


def test_find_classifier_gives_the_newest_of_that_name_in_the_owners_view(dogs):
    wb, cid = dogs
    assert wb.find_classifier("dogs") == cid
    with pytest.raises(ClassifierNotFound):
        wb.find_classifier("no such name")
    with pytest.raises(ClassifierNotFound):
        wb.as_owner("someone else").find_classifier("dogs")


def test_out_of_fold_scores_every_training_image_of_the_serving_version(dogs):
    wb, cid = dogs
    oof = wb.out_of_fold(cid)
    assert oof.version == 2 and oof.classes == [*CREATE_CLASSES, "dalmatian"]
    assert oof.scores.shape == (len(oof.labels), 4) and ((oof.scores >= 0) & (oof.scores <= 1)).all()
    assert wb.out_of_fold(cid, version=1).classes == list(CREATE_CLASSES)
    with pytest.raises(ClassifierNotFound):
        wb.out_of_fold(cid, version=3)
    with pytest.raises(ClassifierNotFound):
        wb.as_owner("someone else").out_of_fold(cid)


def test_example_image_reads_a_training_image_of_that_classifier_only(dogs):
    wb, cid = dogs
    sha = wb.out_of_fold(cid).sha256[0]
    data = wb.example_image(cid, sha)
    assert hashlib.sha256(data).hexdigest() == sha
    with pytest.raises(ClassifierNotFound):
        wb.example_image(cid, hashlib.sha256(b"not stored").hexdigest())
    with pytest.raises(ClassifierNotFound):
        wb.as_owner("someone else").example_image(cid, sha)


def pets_folder(root: Path, layout: dict[str, Path]) -> Path:
    """A fastai-style folder: each entry a symlinked sub-folder, or a copied .zip, named after its class."""
    root.mkdir()
    for name, source in layout.items():
        if source.suffix == ".zip":
            (root / name).write_bytes(source.read_bytes())
        else:
            (root / name).symlink_to(source, target_is_directory=True)
    return root


def test_create_classifier_from_folder_with_a_progress_bar(make_workbench, tutorial_zips, tmp_path, capsys) -> None:
    """Sub-folders and zips become classes, the named negatives folder the negatives; wait draws a bar."""
    folder = pets_folder(
        tmp_path / "pets",
        {
            "beagle": TUTORIAL / "beagle",
            "husky.zip": tutorial_zips["husky"],
            "background": TUTORIAL / "cats",
        },
    )
    wb = make_workbench(embedding_cache=tmp_path / "fresh.db")  # a fresh cache, so wait sees the embedding
    created = wb.create_classifier_from_folder("pets", folder, negatives="background")
    cid = created["classifier_id"]
    assert wb.wait(cid, timeout=300, progress=True)["status"] == "ready"
    assert {c["class"] for c in wb.get_classifier(cid)["classes"]} == {"beagle", "husky"}
    metrics = wb.versions(cid)[0]["metrics"]
    assert (metrics["images"], metrics["negatives"]) == (125, 25)
    bar = capsys.readouterr().err
    assert f"{cid}: embedding" in bar and "125/125" in bar
    assert bar.rstrip().split("\r")[-1].startswith(f"{cid}: ready")


def test_create_classifier_from_folder_errors_are_typed_and_store_nothing(make_workbench, tmp_path) -> None:
    wb = make_workbench()
    with pytest.raises(InvalidExamples, match="does not exist"):
        wb.create_classifier_from_folder("pets", tmp_path / "missing")
    one_set = pets_folder(tmp_path / "one", {"beagle": TUTORIAL / "beagle"})
    with pytest.raises(InvalidExamples, match=r"at least 2 example sets .* found 1: \['beagle'\]"):
        wb.create_classifier_from_folder("pets", one_set)
    empty_class = pets_folder(tmp_path / "empty", {"beagle": TUTORIAL / "beagle", "negatives": TUTORIAL / "cats"})
    (empty_class / "husky").mkdir()
    with pytest.raises(InvalidExamples, match="'husky' needs at least"):
        wb.create_classifier_from_folder("pets", empty_class)
    assert wb.list_classifiers() == {"classifiers": []}


def test_classify_fetches_image_urls_with_the_callers_fetcher_after_the_checks(dogs) -> None:
    wb, cid = dogs
    fetched: list[str] = []

    def fetch(url: str) -> tuple[bytes, str]:
        fetched.append(url)
        if url.endswith("missing.jpg"):
            raise ImageUnreadable(f"Could not download {url}")
        return DOGS_JPG.read_bytes(), url + "?resolved"

    answer = wb.classify(
        [DOGS_JPG.read_bytes(), ImageURL("https://x/dogs.jpg"), ImageURL("https://x/missing.jpg")],
        classifier_ids=[cid],
        fetch_url=fetch,
    )
    plain, by_url, failed = answer["images"]
    assert plain["image"] == "image_1" and "source_url" not in plain
    assert by_url["source_url"] == "https://x/dogs.jpg" and by_url["resolved_url"] == "https://x/dogs.jpg?resolved"
    assert "image" not in by_url and by_url["classifiers"] == plain["classifiers"]
    assert failed["source_url"] == "https://x/missing.jpg" and failed["error"]["code"] == 400
    assert answer["images_processed"] == 2
    fetched.clear()
    with pytest.raises(InvalidThreshold):
        wb.classify([ImageURL("https://x/dogs.jpg")], classifier_ids=[cid], threshold=2.0, fetch_url=fetch)
    with pytest.raises(LimitExceeded):
        wb.classify([DOGS_JPG, ImageURL("https://x/dogs.jpg")], classifier_ids=[cid], max_images=1, fetch_url=fetch)
    assert fetched == []  # nothing is fetched for a call that is refused anyway
    with pytest.raises(InvalidRequest):
        wb.classify([ImageURL("https://x/dogs.jpg")], classifier_ids=[cid])


def test_unnamed_images_are_named_by_their_position_in_the_call(dogs) -> None:
    wb, cid = dogs
    data = DOGS_JPG.read_bytes()
    answer = wb.classify([data, DOGS_JPG, data], classifier_ids=[cid])
    assert [image["image"] for image in answer["images"]] == ["image_1", "dogs.jpg", "image_3"]


def test_wait_progress_draws_the_bar_only_once_there_is_something_to_count(
    make_workbench, tutorial_zips, tmp_path, capsys
) -> None:
    """No "0img" frames while the training has nothing to count yet; a wait with nothing to count shows its end once."""
    wb = make_workbench(embedding_cache=tmp_path / "fresh-cache.db")  # nothing cached: the 75 images are embedded
    cid = wb.create_classifier("pets", {"beagle": tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"])[
        "classifier_id"
    ]
    capsys.readouterr()
    assert wb.wait(cid, timeout=300, progress=True)["status"] == "ready"
    frames = [f.strip() for f in re.split(r"[\r\n]", capsys.readouterr().err) if f.strip()]
    assert frames and all("/75 [" in frame for frame in frames), frames[:5]
    assert frames[-1].startswith(f"{cid}: ready: 100%")

    assert wb.wait(cid, progress=True)["status"] == "ready"  # settled already: nothing to count
    frames = {f.strip() for f in re.split(r"[\r\n]", capsys.readouterr().err) if f.strip()}
    assert frames == {f"{cid}: ready"}
