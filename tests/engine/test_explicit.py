"""The built-in `explicit` classifier: NudeNet's detector when the optional extra is installed, else a Watson 404.

The only packaged model (the `nudenet` 3.4.2 wheel's `320n.onnx`) ships under the AGPL-3.0, so the default
install (and CI) has no `explicit` model: there `classifier_ids=explicit` must be a clear Watson error, in
Python and over HTTP. Where the extra is installed (`pip install 'workbench[explicit]'`) the same calls answer
`explicit`/`not explicit` in Watson's shapes; each half runs where its install is the real one.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import DOGS_JPG, TUTORIAL
from workbench.core.errors import ModelNotInstalled
from workbench.core.vocabulary import EXPLICIT_CLASS, NOT_EXPLICIT_CLASS
from workbench.engine.explicit import available, explicit_classes
from workbench.server.app import create_app
from workbench.server.runner import ServerThread
from workbench.server.settings import ServerSettings

VERSION = {"version": "2018-03-19"}
FRUITBOWL = Path(__file__).resolve().parents[2] / "data" / "reference" / "fruitbowl.jpg"
needs_extra = pytest.mark.skipif(
    not available(), reason="the optional `explicit` extra (nudenet, AGPL-3.0) is not installed"
)
without_extra = pytest.mark.skipif(available(), reason="the optional `explicit` extra is installed here")


def explicit_result(image: dict) -> dict:
    [result] = [r for r in image["classifiers"] if r["classifier_id"] == "explicit"]
    return result


def test_explicit_classes_keep_watsons_two_names_and_the_threshold() -> None:
    assert explicit_classes(0.1, 0.5) == [{"class": NOT_EXPLICIT_CLASS, "score": 0.9}]
    assert explicit_classes(0.75, 0.5) == [{"class": EXPLICIT_CLASS, "score": 0.75}]
    assert explicit_classes(0.25, 0.0) == [
        {"class": NOT_EXPLICIT_CLASS, "score": 0.75},
        {"class": EXPLICIT_CLASS, "score": 0.25},
    ]
    assert explicit_classes(0.25, 0.8) == []


@without_extra
def test_without_the_extra_explicit_is_a_clear_error(make_workbench) -> None:
    wb = make_workbench()
    with pytest.raises(ModelNotInstalled) as raised:
        wb.classify(DOGS_JPG, classifier_ids="default,explicit")
    assert raised.value.code == 404
    assert "workbench[explicit]" in raised.value.message and "AGPL-3.0" in raised.value.message
    with ServerThread(create_app(wb, settings=ServerSettings(auth=False))) as url:
        files = {"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")}
        answer = httpx.post(
            f"{url}/v3/classify", params=VERSION, files=files, data={"classifier_ids": "explicit"}, timeout=120
        )
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == 404 and "workbench[explicit]" in answer.json()["error"]
        by_url = httpx.get(
            f"{url}/v3/classify",
            params={**VERSION, "url": "https://example.org/a.jpg", "classifier_ids": "explicit"},
            timeout=120,
        )
        assert by_url.status_code == 404 and "not installed" in by_url.json()["error"]
        assert httpx.post(f"{url}/v3/classify", params=VERSION, files=files, timeout=120).status_code == 200


def tutorial_images() -> list[Path]:
    """The first three of each tutorial folder, the test folder and dogs.jpg (as tests/analysis/test_food.py picks them;
    bench/explicit_model.py scores every tutorial image)."""
    folders = ("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats")
    picked = [p for f in folders for p in sorted((TUTORIAL / f).iterdir())[:3]]
    return picked + sorted((TUTORIAL / "test").glob("*.jpg")) + [DOGS_JPG, FRUITBOWL]


@needs_extra
def test_with_the_extra_tutorial_images_are_not_explicit(make_workbench) -> None:
    wb = make_workbench()
    images = tutorial_images()
    answer = wb.classify(images, classifier_ids="explicit,default")
    assert answer["images_processed"] == len(images) and answer["custom_classes"] == 0
    for image in answer["images"]:
        assert [r["classifier_id"] for r in image["classifiers"]] == ["explicit", "default"]
        result = explicit_result(image)
        assert result["name"] == "explicit"
        [entry] = result["classes"]
        assert entry["class"] == NOT_EXPLICIT_CLASS and entry["score"] >= 0.5, image
    everything = wb.classify(DOGS_JPG, classifier_ids="explicit", threshold=0)
    scores = {c["class"]: c["score"] for c in explicit_result(everything["images"][0])["classes"]}
    assert set(scores) == {EXPLICIT_CLASS, NOT_EXPLICIT_CLASS}
    assert scores[EXPLICIT_CLASS] + scores[NOT_EXPLICIT_CLASS] == pytest.approx(1.0, abs=2e-6)


@needs_extra
def test_with_the_extra_explicit_answers_over_http(make_workbench) -> None:
    wb = make_workbench()
    with ServerThread(create_app(wb, settings=ServerSettings(auth=False))) as url:
        files = {"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")}
        answer = httpx.post(
            f"{url}/v3/classify", params=VERSION, files=files, data={"classifier_ids": "default,explicit"}, timeout=120
        )
        assert answer.status_code == 200, answer.text
        [image] = answer.json()["images"]
        assert [r["classifier_id"] for r in image["classifiers"]] == ["default", "explicit"]
        assert [c["class"] for c in explicit_result(image)["classes"]] == [NOT_EXPLICIT_CLASS]
