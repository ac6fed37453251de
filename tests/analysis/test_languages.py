"""Accept-Language: the built-in classes' names in Watson's 11 languages, negotiated as HTTP does.

From Python (`accept_language=`), the CLI (`--language`) and a real server on 127.0.0.1 (POST and GET
/v3/classify): Japanese names for dogs.jpg, every language's table, HTTP's usual header forms mapped to the
nearest language, a Watson 400 for any other, custom class names never translated, English fallbacks named in a
warning, and the Watson shapes (per-image errors, owner isolation) unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import DOGS_JPG, TUTORIAL, zip_bytes
from support.servers import workbench_command
from workbench import UnsupportedLanguage, Workbench
from workbench.analysis.colors import COLOR_ANCHORS_RGB
from workbench.analysis.hierarchy import load_hierarchy
from workbench.analysis.languages import _table, names_in, negotiate
from workbench.core.vocabulary import LANGUAGES, NON_FOOD_CLASS
from workbench.server.app import create_app
from workbench.server.keys import KeyRing
from workbench.server.runner import ServerThread
from workbench.server.settings import ServerSettings

VERSION = {"version": "2018-03-19"}
KEYS = {"me": "key-me-lang-1", "bob": "key-bob-lang-2"}
DOG, ANIMAL = "犬", "動物"  # Japanese for `dog` and `animal` in the packaged table


# ------------------------------------------------------------------ negotiation


@pytest.mark.parametrize(
    "header, language",
    [
        (None, "en"),
        ("", "en"),
        ("  ", "en"),
        ("ja", "ja"),
        ("ja-JP", "ja"),
        ("JA_jp", "ja"),
        ("en-US,en;q=0.9", "en"),
        ("zh-Hant", "zh-tw"),
        ("zh-Hant-HK", "zh-tw"),
        ("zh-TW", "zh-tw"),
        ("zh-HK", "zh-tw"),
        ("zh-tw", "zh-tw"),
        ("zh", "zh-cn"),
        ("zh-Hans", "zh-cn"),
        ("zh-Hans-CN", "zh-cn"),
        ("zh-CN", "zh-cn"),
        ("zh-SG", "zh-cn"),
        ("pt-BR", "pt-br"),
        ("pt", "pt-br"),
        ("pt-PT", "pt-br"),
        ("ar-EG", "ar"),
        ("es-419", "es"),
        ("de-CH", "de"),
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"),
        ("xx, de;q=0.5", "de"),
        ("en;q=0.2, ko;q=0.9", "ko"),
        ("it;q=0, es", "es"),
        ("*", "en"),
        ("xx;q=0.9, *;q=0.1", "en"),
        ("ko;q=0.500, it;q=0.5", "ko"),
    ],
)
def test_accept_language_maps_to_the_nearest_supported_language(header, language) -> None:
    assert negotiate(header) == language


@pytest.mark.parametrize(
    "header",
    ["xx", "xx-YY, yy;q=0.5", "ja;q=0", "ja;q=2", "ja;q=abc", "ja;level=1", "日本語", "ja JP", "en-", ";q=0.5"],
)
def test_other_languages_and_malformed_lists_are_a_400(header) -> None:
    with pytest.raises(UnsupportedLanguage) as raised:
        negotiate(header)
    assert raised.value.code == 400 and "Accept-Language" in raised.value.message


# ------------------------------------------------------------------ the packaged names


def test_the_table_names_every_built_in_class_once_per_language() -> None:
    columns, rows = _table()
    assert columns == LANGUAGES[1:]
    hierarchy = load_hierarchy()
    english = [row[0] for row in rows]
    expected = {*hierarchy.leaf_names, *hierarchy.ancestor_names, *COLOR_ANCHORS_RGB, NON_FOOD_CLASS}
    assert sorted(english) == sorted(expected), "one row per built-in class name"
    for column, language in enumerate(columns, start=1):
        answered = [row[column] if row[column] is not None else row[0] for row in rows]
        assert len(set(answered)) == len(answered), f"{language}: two classes answer the same name"
        assert not any("/" in name for name in answered), f"{language}: a name would split a type_hierarchy"
        leaves = sum(row[column] is not None for row in rows if row[0] in set(hierarchy.leaf_names))
        assert leaves >= 250, f"{language}: only {leaves} of 1000 leaves named (the README's table says more)"


# ------------------------------------------------------------------ from Python


def english_and(wb: Workbench, cid: str, language: str, threshold: float = 0.5) -> tuple[dict, dict]:
    ids = [cid, "default"]
    return (
        wb.classify(DOGS_JPG, classifier_ids=ids, threshold=threshold),
        wb.classify(DOGS_JPG, classifier_ids=ids, threshold=threshold, accept_language=language),
    )


def test_japanese_names_for_dogs_jpg_in_default(dogs) -> None:
    wb, cid = dogs
    english, japanese = english_and(wb, cid, "ja")
    (custom_en, default_en), (custom_ja, default_ja) = (a["images"][0]["classifiers"] for a in (english, japanese))
    names = names_in("ja").names
    assert [c["score"] for c in default_ja["classes"]] == [c["score"] for c in default_en["classes"]]
    assert [c["class"] for c in default_ja["classes"]] == [
        names.get(c["class"], c["class"]) for c in default_en["classes"]
    ]
    assert {DOG, ANIMAL} <= {c["class"] for c in default_ja["classes"]}
    leaf = next(c for c in default_ja["classes"] if "type_hierarchy" in c)
    assert leaf["type_hierarchy"].startswith(f"/{ANIMAL}/") and f"/{DOG}/" in leaf["type_hierarchy"]
    assert custom_ja == custom_en, "custom class names are never translated"
    assert japanese["custom_classes"] == english["custom_classes"] and "warnings" not in english


def test_names_without_a_translation_stay_english_and_are_named_in_a_warning(dogs) -> None:
    wb, cid = dogs
    _, japanese = english_and(wb, cid, "ja")
    names = names_in("ja").names
    default = japanese["images"][0]["classifiers"][1]["classes"]
    english_left = [c["class"] for c in default if c["class"] not in names.values()]
    assert english_left, "dogs.jpg has names the Japanese sources lack (golden retriever ...)"
    [warning] = japanese["warnings"]
    assert warning["warning_id"] == "untranslated_classes"
    assert warning["description"].startswith(f"No ja name for {len(english_left)} built-in class names")
    assert all(name in warning["description"] for name in english_left)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_keeps_the_answer_and_renames_only_built_in_classes(dogs, language) -> None:
    wb, cid = dogs
    english, answer = english_and(wb, cid, language, threshold=0.3)
    assert answer["images"][0]["classifiers"][0] == english["images"][0]["classifiers"][0]
    table = names_in(language).names if language != "en" else {}
    expected = [
        {
            **c,
            "class": table.get(c["class"], c["class"]),
            **(
                {"type_hierarchy": "/" + "/".join(table.get(s, s) for s in c["type_hierarchy"].split("/")[1:])}
                if "type_hierarchy" in c
                else {}
            ),
        }
        for c in english["images"][0]["classifiers"][1]["classes"]
    ]
    assert answer["images"][0]["classifiers"][1]["classes"] == expected
    assert set(answer) <= {"images", "images_processed", "custom_classes", "warnings"}


def test_custom_class_names_that_are_also_built_in_names_stay_as_trained(dogs) -> None:
    wb, cid = dogs
    table = names_in("zh-cn").names
    assert table["dalmatian"] != "dalmatian" and table["beagle"] != "beagle", "the built-in names are translated"
    dalmatian = sorted((TUTORIAL / "dalmatian").iterdir())[0]
    answer = wb.classify(dalmatian, classifier_ids=[cid], threshold=0.0, accept_language="zh-CN")
    assert {c["class"] for c in answer["images"][0]["classifiers"][0]["classes"]} == {
        "beagle",
        "husky",
        "goldenretriever",
        "dalmatian",
    }
    assert "warnings" not in answer, "no built-in classifier: nothing to translate"


def test_a_language_is_checked_before_any_image_is_read(dogs) -> None:
    wb, cid = dogs
    with pytest.raises(UnsupportedLanguage):
        wb.classify(b"not an image", classifier_ids=[cid], accept_language="xx")


# ------------------------------------------------------------------ the CLI


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        workbench_command(home, *args),
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ.copy(),
    )


def test_cli_language(tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "classify", str(DOGS_JPG), "-c", "default,food", "--language", "ja-JP")
    assert done.returncode == 0, done.stderr
    default, food = json.loads(done.stdout)["images"][0]["classifiers"]
    assert {DOG, ANIMAL} <= {c["class"] for c in default["classes"]}
    assert food["classifier_id"] == "food" and [c["class"] for c in food["classes"]] == [NON_FOOD_CLASS]
    refused = cli(tmp_path / "home", "classify", str(DOGS_JPG), "-c", "default", "--language", "xx")
    assert refused.returncode == 1 and refused.stdout == "" and "Accept-Language" in refused.stderr


# ------------------------------------------------------------------ over HTTP, on a real server


@pytest.fixture(scope="module")
def server(dogs, tmp_path_factory) -> Iterator[str]:
    wb, _ = dogs
    keys = KeyRing(tmp_path_factory.mktemp("keys"), env_value=",".join(f"{o}:{k}" for o, k in KEYS.items()))
    with ServerThread(create_app(wb, keys=keys, settings=ServerSettings(file_url_root=TUTORIAL))) as url:
        yield url


def client(url: str, owner: str = "me") -> httpx.Client:
    return httpx.Client(base_url=url, auth=("apikey", KEYS[owner]), timeout=120)


def post(url: str, language: str | None, classifier_ids: str, owner: str = "me", files=None) -> httpx.Response:
    headers = {"Accept-Language": language} if language is not None else {}
    files = files or {"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")}
    with client(url, owner) as http:
        return http.post(
            "/v3/classify", params=VERSION, headers=headers, files=files, data={"classifier_ids": classifier_ids}
        )


@pytest.mark.parametrize(
    "header, language",
    [
        ("ja", "ja"),
        ("ja-JP", "ja"),
        ("zh-Hant", "zh-tw"),
        ("pt-BR", "pt-br"),
        ("fr-CH, fr;q=0.9, en;q=0.8", "fr"),
        (None, "en"),
    ],
)
def test_http_classify_answers_in_the_negotiated_language(dogs, server, header, language) -> None:
    wb, cid = dogs
    answer = post(server, header, f"{cid},default,food")
    assert answer.status_code == 200, answer.text
    expected = wb.classify(DOGS_JPG, classifier_ids=[cid, "default", "food"], accept_language=language)
    expected["images"][0]["image"] = "dogs.jpg"
    assert answer.json() == expected


def test_http_classify_by_url_reads_the_header_too(dogs, server) -> None:
    wb, _ = dogs
    with client(server) as http:
        answer = http.get(
            "/v3/classify",
            params={**VERSION, "url": f"file://{DOGS_JPG}", "classifier_ids": "default"},
            headers={"Accept-Language": "ja-JP"},
        )
    assert answer.status_code == 200, answer.text
    expected = wb.classify(DOGS_JPG, classifier_ids=["default"], accept_language="ja")
    assert answer.json()["images"][0]["classifiers"] == expected["images"][0]["classifiers"]
    assert answer.json()["warnings"] == expected["warnings"]


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_http_other_languages_get_a_watson_400(server, method) -> None:
    if method == "POST":
        answer = post(server, "xx", "default")
    else:
        with client(server) as http:
            answer = http.get(
                "/v3/classify",
                params={**VERSION, "url": f"file://{DOGS_JPG}"},
                headers={"Accept-Language": "xx, yy;q=0.5"},
            )
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == {"code", "error"} and body["code"] == 400 and "Accept-Language" in body["error"]


def test_http_translated_answers_keep_the_per_image_error_shape(server) -> None:
    files = {
        "images_file": (
            "two.zip",
            zip_bytes({"dogs.jpg": DOGS_JPG.read_bytes(), "broken.jpg": b"\xff\xd8 not a jpeg"}),
            "application/zip",
        )
    }
    answer = post(server, "ja", "default,food", files=files)
    assert answer.status_code == 200, answer.text
    images = {image["image"]: image for image in answer.json()["images"]}
    good, broken = images["two.zip/dogs.jpg"], images["two.zip/broken.jpg"]
    assert DOG in {c["class"] for c in good["classifiers"][0]["classes"]}
    assert broken["classifiers"] == []
    assert set(broken["error"]) == {"code", "description", "error_id"} and broken["error"]["code"] == 400
    assert answer.json()["images_processed"] == 1


def test_http_owners_see_the_built_ins_in_any_language_and_only_their_own_classifiers(dogs, server) -> None:
    _, cid = dogs
    refused = post(server, "ja", f"{cid},default", owner="bob")
    assert refused.status_code == 404 and refused.json()["code"] == 404
    answer = post(server, "ja", "default,food", owner="bob")
    assert answer.status_code == 200
    assert [r["classifier_id"] for r in answer.json()["images"][0]["classifiers"]] == ["default", "food"]
