"""Class and classifier names: control characters, length, Unicode forms and non-string keys.

Before the fix a NUL was accepted (numpy strips a trailing NUL, so "\\x00" trained as the negative
label and "dog\\x00" answered as "dog" in classify), a 600-character name broke MLflow logging for
good (keys are capped at 250 characters), composed and decomposed "café" were two classes, and
`{5: zip}` raised AttributeError.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import httpx
import pytest
from mlflow.utils.validation import _validate_metric_name, _validate_param_name

from workbench.core.errors import InvalidClassifierName, InvalidClassName, InvalidRequest
from workbench.core.limits import MAX_CLASS_NAME_CHARS
from workbench.core.names import check_class_name
from workbench.core.records import VersionRecord
from workbench.server.app import create_app
from workbench.server.runner import ServerThread
from workbench.server.settings import ServerSettings
from workbench.tracking.run_record import version_metrics, version_params

VERSION = {"version": "2018-03-19"}
CAFE_NFC = unicodedata.normalize("NFC", "café")
CAFE_NFD = unicodedata.normalize("NFD", "café")
BAD_NAMES = {
    "nul": "\x00",
    "trailing-nul": "dog\x00",
    "newline": "dog\nhusky",
    "tab": "dog\t",
    "del": "dog\x7f",
    "c1-control": "dog\x85",
    "lone-surrogate": "dog\ud800",
    "bidi-override": "dog\u202egod",
    "too-long": "d" * 600,
    "dot": ".",  # "precision/." is not a valid MLflow key
    "dot-dot": "..",
    "percent-escaped-nul": "dog%00",  # how browsers and httpx send a NUL in a multipart field name
}


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_bad_class_names_are_refused_with_a_typed_error(make_workbench, tutorial_zips, name: str) -> None:
    wb = make_workbench(train=False)
    with pytest.raises(InvalidClassName) as refused:
        wb.create_classifier("pets", {name: tutorial_zips["beagle"], "husky": tutorial_zips["husky"]})
    assert "class name" in refused.value.message.lower()
    assert wb.list_classifiers() == {"classifiers": []}  # nothing stored


@pytest.mark.parametrize("key", [5, None, b"dog", 2.5], ids=["int", "none", "bytes", "float"])
def test_a_non_string_class_key_is_a_typed_error(make_workbench, tutorial_zips, key: object) -> None:
    wb = make_workbench(train=False)
    with pytest.raises(InvalidClassName, match="must be a string"):
        wb.create_classifier("pets", {key: tutorial_zips["beagle"], "husky": tutorial_zips["husky"]})


def test_the_nul_class_does_not_turn_negatives_into_positives(make_workbench, tutorial_zips) -> None:
    """numpy reads "\\x00" back as "" (the negative label): such a class must never be stored."""
    wb = make_workbench(train=False)
    with pytest.raises(InvalidClassName, match="control character"):
        wb.create_classifier("pets", {"\x00": tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"])
    created = wb.create_classifier("pets", {"beagle": tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"])
    with pytest.raises(InvalidClassName):
        wb.update_classifier(created["classifier_id"], positive_examples={"beagle\x00": tutorial_zips["husky"]})
    assert wb.store.class_names(created["classifier_id"]) == ["beagle"]


def test_the_longest_class_name_gives_valid_mlflow_keys() -> None:
    """Every param and metric key derived from a class name of the maximum length passes MLflow's checks."""
    for letter in ("d", "é", "狗"):
        name = check_class_name(letter * MAX_CLASS_NAME_CHARS)
        per_class = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "roc_auc": 1.0, "positives": 10}
        version = VersionRecord(
            "c",
            1,
            "2018-03-19T00:00:00.000Z",
            [name],
            10,
            {"per_class": {name: per_class}, "images": 20, "negatives": 10},
            "v1.npz",
        )
        for key in version_metrics(version):
            _validate_metric_name(key)
            assert len(key) < 250
        for key in version_params(version, _SpecOnly()):
            _validate_param_name(key)
            assert len(key) < 250
        with pytest.raises(InvalidClassName, match=str(MAX_CLASS_NAME_CHARS)):
            check_class_name(letter * (MAX_CLASS_NAME_CHARS + 1))


class _SpecOnly:
    """What version_params reads of a backbone: its spec and id (no network is loaded)."""

    def __init__(self) -> None:
        from workbench.engine.backbone import lite0_spec

        self.spec = lite0_spec()
        self.backbone_id = self.spec.backbone_id


def test_composed_and_decomposed_names_are_one_class(make_workbench, tutorial_zips) -> None:
    assert CAFE_NFC != CAFE_NFD
    wb = make_workbench(train=False)
    created = wb.create_classifier(
        "cafés", {CAFE_NFC: tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"]
    )
    cid = created["classifier_id"]
    before = len(wb.store.examples(cid))
    updated = wb.update_classifier(cid, positive_examples={CAFE_NFD: tutorial_zips["husky"]})
    assert [c["class"] for c in updated["classes"]] == [CAFE_NFC]
    assert wb.store.class_names(cid) == [CAFE_NFC]
    assert {r.class_name for r in wb.store.examples(cid)} == {CAFE_NFC, None}
    assert len(wb.store.examples(cid)) > before
    with pytest.raises(InvalidClassName, match="twice"):
        wb.update_classifier(
            cid, positive_examples={CAFE_NFC: tutorial_zips["husky"], CAFE_NFD: tutorial_zips["dalmatian"]}
        )


def test_an_update_adds_to_a_decomposed_class_stored_before_names_were_normalised(
    make_workbench, tutorial_zips
) -> None:
    wb = make_workbench(train=False)
    cid = wb.create_classifier("cafés", {CAFE_NFC: tutorial_zips["beagle"]}, negative_examples=tutorial_zips["cats"])[
        "classifier_id"
    ]
    with wb.store.transaction() as db:  # as an older workbench stored it
        db.execute("UPDATE examples SET class_name = ? WHERE class_name = ?", (CAFE_NFD, CAFE_NFC))
    for spelling in (CAFE_NFC, CAFE_NFD):
        wb.update_classifier(
            cid, positive_examples={spelling: tutorial_zips["husky" if spelling == CAFE_NFC else "dalmatian"]}
        )
        assert wb.store.class_names(cid) == [CAFE_NFD]


def test_classifier_names_get_the_same_checks(make_workbench, tutorial_zips) -> None:
    wb = make_workbench(train=False)
    sets = {"beagle": tutorial_zips["beagle"], "husky": tutorial_zips["husky"]}
    for name in ("dogs\x00", "dogs\n", "dogs\ud800", "d" * 600, 5):
        with pytest.raises(InvalidClassifierName):
            wb.create_classifier(name, sets)
    assert issubclass(InvalidClassifierName, InvalidRequest)
    created = wb.create_classifier(unicodedata.normalize("NFD", "cafés"), sets)
    assert created["name"] == unicodedata.normalize("NFC", "cafés")


# ------------------------------------------------------------------ over HTTP


def _multipart(fields: list[tuple[bytes, bytes, bytes | None]]) -> tuple[bytes, str]:
    """A multipart body written byte for byte (field names exactly as given, no client escaping)."""
    boundary = b"reliability-boundary-7d1f"
    body = b""
    for name, value, filename in fields:
        disposition = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        body += b"--" + boundary + b"\r\n" + disposition + b"\r\n\r\n" + value + b"\r\n"
    body += b"--" + boundary + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary.decode()}"


@pytest.fixture
def server(make_workbench) -> str:
    wb = make_workbench(train=False)
    with ServerThread(create_app(wb, settings=ServerSettings(auth=False))) as url:
        yield url


@pytest.mark.parametrize(
    "field",
    [
        b"dog%00_positive_examples",
        b"dog\x00_positive_examples",
        b"dog\x01_positive_examples",
        b"caf\xc3\xa9\x7f_positive_examples",
        b"d" * 600 + b"_positive_examples",
    ],
    ids=["percent-nul", "raw-nul", "raw-soh", "del", "too-long"],
)
def test_http_create_with_a_bad_class_name_is_a_watson_400(server, tutorial_zips, field: bytes) -> None:
    body, content_type = _multipart(
        [
            (b"name", b"pets", None),
            (field, Path(tutorial_zips["beagle"]).read_bytes(), b"beagle.zip"),
            (b"husky_positive_examples", Path(tutorial_zips["husky"]).read_bytes(), b"husky.zip"),
        ]
    )
    answer = httpx.post(
        f"{server}/v3/classifiers", params=VERSION, content=body, headers={"Content-Type": content_type}, timeout=120
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == 400 and "class name" in answer.json()["error"].lower()
    assert httpx.get(f"{server}/v3/classifiers", params=VERSION).json() == {"classifiers": []}


def test_http_create_with_a_control_character_in_the_classifier_name_is_a_watson_400(server, tutorial_zips) -> None:
    body, content_type = _multipart(
        [
            (b"name", b"pets\x00", None),
            (b"beagle_positive_examples", Path(tutorial_zips["beagle"]).read_bytes(), b"beagle.zip"),
            (b"husky_positive_examples", Path(tutorial_zips["husky"]).read_bytes(), b"husky.zip"),
        ]
    )
    answer = httpx.post(
        f"{server}/v3/classifiers", params=VERSION, content=body, headers={"Content-Type": content_type}, timeout=120
    )
    assert answer.status_code == 400, answer.text
    assert (
        answer.json() == {"code": 400, "error": answer.json()["error"]}
        and "control character" in answer.json()["error"]
    )
