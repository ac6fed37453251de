"""`version` must be a real calendar date, `threshold` an ASCII decimal number from 0 to 1, and an error
echoes at most a few of the ids or characters it was sent (not 89 KB of them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import DOGS_JPG
from reliability.served_http import VERSION, open_app, served
from workbench import Workbench

MAX_ERROR_BYTES = 1500


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedding_cache: Path) -> Iterator[httpx.Client]:
    wb = Workbench(tmp_path_factory.mktemp("strict-values"), embedding_cache=embedding_cache, tracking_uri=False)
    with served(open_app(wb)) as client:
        yield client


def classify(client: httpx.Client, **data: str) -> httpx.Response:
    files = {"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")}
    return client.post("/v3/classify", params=VERSION, data=data, files=files)


@pytest.mark.parametrize("version", ["9999-99-99", "2018-02-30", "2018-13-01", "0000-00-00"])
def test_a_version_that_is_no_calendar_date_is_a_400(client, version) -> None:
    answer = client.get("/v3/classifiers", params={"version": version})
    assert answer.status_code == 400
    assert "version" in answer.json()["error"] and answer.json()["code"] == 400


def test_a_real_calendar_date_is_a_version(client) -> None:
    assert client.get("/v3/classifiers", params={"version": "2016-02-29"}).status_code == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"parameters": json.dumps({"threshold": True})},
        {"parameters": json.dumps({"threshold": "true"})},
        {"parameters": json.dumps({"threshold": [0.5]})},
        {"threshold": "true"},
        {"threshold": "\u0660.\u0665"},  # Arabic-Indic digits: Python's float() reads them as 0.5
        {"threshold": "\uff10.\uff15"},  # fullwidth digits
        {"threshold": "nan"},
        {"threshold": "1.5"},
    ],
    ids=["json-true", "json-string-true", "json-list", "true", "arabic-indic", "fullwidth", "nan", "over-1"],
)
def test_a_threshold_that_is_not_an_ascii_decimal_from_0_to_1_is_a_400(client, fields) -> None:
    answer = classify(client, **fields)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == 400 and "threshold" in answer.json()["error"]


def test_a_non_ascii_threshold_in_the_query_is_a_400(client) -> None:
    answer = client.get(
        "/v3/classify", params={**VERSION, "url": "http://example.com/x.jpg", "threshold": "\u0660.\u0665"}
    )
    assert answer.status_code == 400 and "threshold" in answer.json()["error"]


@pytest.mark.parametrize(
    "fields",
    [
        {"threshold": "0.6"},
        {"threshold": " 1 "},
        {"threshold": ".25"},
        {"threshold": "1e-05"},
        {"parameters": json.dumps({"threshold": 0})},
    ],
)
def test_ascii_decimal_thresholds_from_0_to_1_are_accepted(client, fields) -> None:
    assert classify(client, **fields).status_code == 200


def test_a_404_names_the_first_ids_and_a_count_not_all_of_10000(client) -> None:
    ids = [f"nosuch_{i:05d}" for i in range(10_000)]
    answer = classify(client, classifier_ids=",".join(ids))
    assert answer.status_code == 404
    assert len(answer.content) < MAX_ERROR_BYTES
    assert "nosuch_00000" in answer.json()["error"] and "10000" in answer.json()["error"]


@pytest.mark.parametrize(
    "fields",
    [
        {"threshold": "9" * 100_000},
        {"owners": ",".join(f"someone{i}" for i in range(10_000))},
        {"url": "ftp://" + "a" * 100_000},
    ],
    ids=["threshold", "owners", "url"],
)
def test_a_400_echoes_a_bounded_part_of_what_it_was_sent(client, fields) -> None:
    answer = classify(client, **fields)
    assert answer.status_code == 400
    assert len(answer.content) < MAX_ERROR_BYTES, answer.content[:300]
