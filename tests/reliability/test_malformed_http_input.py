"""Malformed form values, JSON and file URLs answer a specific Watson 400 (never a 500), and the keep-alive
connection they came on stays usable; an unexpected error is a Watson JSON 500 on a kept connection too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import TUTORIAL
from reliability.served_http import VERSION, assert_connection_kept, open_app, served
from workbench import Workbench

DEEP = "[" * 100_000
ROOT = TUTORIAL.resolve()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedding_cache: Path) -> Iterator[httpx.Client]:
    """A fresh engine (nothing trained) behind a server that may read file:// URLs under data/tutorial."""
    wb = Workbench(tmp_path_factory.mktemp("malformed"), embedding_cache=embedding_cache, tracking_uri=False)
    with served(open_app(wb, file_url_root=ROOT)) as client:
        yield client


def post_classify(client: httpx.Client, **data: str) -> httpx.Response:
    return client.post("/v3/classify", params=VERSION, data=data)


CASES = {
    "parameters owners a number": (
        lambda c: post_classify(c, parameters=json.dumps({"owners": 5})),
        "owners must be a string or a list of strings",
    ),
    "parameters classifier_ids a number": (
        lambda c: post_classify(c, parameters=json.dumps({"classifier_ids": 5})),
        "classifier_ids must be a string or a list of strings",
    ),
    "parameters an empty JSON list": (  # was taken for no parameters at all (200), found by bench/reliability_campaign
        lambda c: post_classify(c, parameters="[]"),
        "parameters must be a JSON object",
    ),
    "parameters a JSON list of one object": (
        lambda c: post_classify(c, parameters='[{"threshold": 0.2}]'),
        "parameters must be a JSON object",
    ),
    "parameters url a list": (
        lambda c: post_classify(c, parameters=json.dumps({"url": ["x"]})),
        "url must be a string",
    ),
    "classifier_ids nested 100,000 deep": (lambda c: post_classify(c, classifier_ids=DEEP), "nested too deeply"),
    "parameters nested 100,000 deep": (lambda c: post_classify(c, parameters=DEEP), "nested too deeply"),
    "name nested 100,000 deep": (
        lambda c: c.post("/v3/classifiers", params=VERSION, data={"name": DEEP}),
        "nested too deeply",
    ),
    "classifier_ids holding a list": (lambda c: post_classify(c, classifier_ids='[["a"]]'), "may hold only strings"),
    "file URL with %00": (lambda c: post_classify(c, url=f"{ROOT.as_uri()}/dogs%00.jpg"), "NUL"),
    "file URL by GET with %00": (
        lambda c: c.get("/v3/classify", params={**VERSION, "url": f"{ROOT.as_uri()}/dogs%00.jpg"}),
        "NUL",
    ),
    "image URL with an unclosed IPv6 bracket": (lambda c: post_classify(c, url="http://[::1/dogs.jpg"), "malformed"),
    "file URL with a 5,000-character name": (
        lambda c: post_classify(c, url=f"{ROOT.as_uri()}/{'a' * 5000}.jpg"),
        "too long",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_input_is_a_specific_400_and_the_connection_stays(client, case) -> None:
    send, message = CASES[case]
    answer = send(client)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"code", "error"} and body["code"] == 400
    assert message in body["error"]
    assert_connection_kept(client, answer)


def test_an_unexpected_error_is_a_watson_500_and_the_connection_stays(tmp_path: Path, embedding_cache: Path) -> None:
    app = open_app(Workbench(tmp_path / "home", embedding_cache=embedding_cache, tracking_uri=False))

    def broken() -> None:
        raise RuntimeError("a bug, not the caller's fault")

    app.add_api_route("/v3/broken", broken)
    with served(app) as client:
        answer = client.get("/v3/broken")
        assert answer.status_code == 500
        assert answer.json() == {"code": 500, "error": "Internal error: RuntimeError"}
        assert_connection_kept(client, answer)


def test_a_file_url_into_a_symlink_loop_is_an_error_on_that_image(tmp_path: Path, embedding_cache: Path) -> None:
    (tmp_path / "loop1.jpg").symlink_to(tmp_path / "loop2.jpg")
    (tmp_path / "loop2.jpg").symlink_to(tmp_path / "loop1.jpg")
    wb = Workbench(tmp_path / "home", embedding_cache=embedding_cache, tracking_uri=False)
    with served(open_app(wb, file_url_root=tmp_path)) as client:
        answer = post_classify(client, url=(tmp_path / "loop1.jpg").as_uri())
        assert answer.status_code == 200, answer.text
        assert "symbolic link" in answer.json()["images"][0]["error"]["description"]  # followed by none since issue 22
        assert_connection_kept(client, answer)
