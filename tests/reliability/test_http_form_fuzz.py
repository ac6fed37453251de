"""Property: no form a client can build makes classify, create or update answer 5xx.

Hypothesis builds multipart and urlencoded forms from Watson's field names and random ones: list fields,
thresholds, `parameters` JSON of every type and nesting up to far past the parser's recursion limit, small
random files, zips of random members (names as a client can send them, NUL included) and real tutorial
images. Every answer must be below 500, and every error Watson's JSON.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TUTORIAL
from reliability.served_http import VERSION, open_app, served
from workbench import Workbench

REAL_JPEG = (TUTORIAL / "test" / "1.jpg").read_bytes()
WATSON_FIELDS = [
    "images_file",
    "url",
    "classifier_ids",
    "owners",
    "threshold",
    "parameters",
    "name",
    "negative_examples",
    "beagle_positive_examples",
    "husky_positive_examples",
]


@pytest.fixture(scope="module")
def target(
    tmp_path_factory: pytest.TempPathFactory, tutorial_zips: dict[str, Path], embedding_cache: Path
) -> Iterator[tuple[httpx.Client, str]]:
    """A server over an engine that stores but never trains (train=False), with one stored classifier to update."""
    wb = Workbench(tmp_path_factory.mktemp("fuzz"), embedding_cache=embedding_cache, tracking_uri=False, train=False)
    created = wb.create_classifier("fuzzed", {c: tutorial_zips[c] for c in ("beagle", "husky")})
    with served(open_app(wb, file_url_root=TUTORIAL.resolve())) as client:
        yield client, created["classifier_id"]


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
watson_parameters = st.fixed_dictionaries(
    {}, optional={key: json_values for key in ("classifier_ids", "owners", "owner", "threshold", "url")}
)
deep_json = st.builds(lambda n, opener: opener * n, st.integers(1, 200_000), st.sampled_from(["[", '{"a":', '["x",']))
field_names = (
    st.sampled_from(WATSON_FIELDS)
    | st.text(max_size=12)
    | st.text(max_size=12).map(lambda name: name + "_positive_examples")
)
field_values = (
    st.text(max_size=40)
    | json_values.map(json.dumps)
    | watson_parameters.map(json.dumps)
    | deep_json
    | st.sampled_from(
        [
            "true",
            "\u0660.\u0665",
            "0.5",
            "1e-05",
            "nan",
            "-0",
            "default",
            "IBM,me",
            "file:///etc/passwd",
            f"{TUTORIAL.resolve().as_uri()}/%00.jpg",
            f"{TUTORIAL.resolve().as_uri()}/{'a' * 5000}.jpg",
        ]
    )
)


member_characters = st.characters(codec="utf-8", exclude_characters="\x00")  # what a zip can name; zipfile cuts at NUL
NUL_MARK, NUL_NAME = b"\x01nul.jpg", b"\x00nul.jpg"  # written as the first, sent as the second


def nul_named_zip(members: dict[str, bytes]) -> bytes:
    """A zip as a client can craft it: a member named `NUL_MARK` goes out named `\x00nul.jpg` (read back as "")."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name or "x", data)
    return buffer.getvalue().replace(NUL_MARK, NUL_NAME)  # same length: the headers stay valid


@st.composite
def zips(draw) -> bytes:
    """A small zip of named members: real JPEGs, random bytes, a name starting with NUL; sometimes cut short."""
    names = st.sampled_from(
        ["a.jpg", "b.png", "c.txt", "__MACOSX/._a.jpg", "../up.jpg", "d/", "e.zip", NUL_MARK.decode()]
    ) | st.text(member_characters, max_size=12)
    data = nul_named_zip(draw(st.dictionaries(names, st.just(REAL_JPEG) | st.binary(max_size=200), max_size=5)))
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


file_bodies = (
    st.binary(max_size=300)
    | zips()
    | st.just(REAL_JPEG)
    | watson_parameters.map(lambda p: json.dumps(p).encode())
    | deep_json.map(str.encode)
)
file_parts = st.tuples(field_names, st.text(max_size=20), file_bodies)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    route=st.sampled_from(["classify", "create", "update"]),
    fields=st.lists(st.tuples(field_names, field_values), max_size=6),
    files=st.lists(file_parts, max_size=3),
)
def test_no_form_makes_the_server_answer_5xx(target, route, fields, files) -> None:
    client, classifier_id = target
    path = {"classify": "/v3/classify", "create": "/v3/classifiers", "update": f"/v3/classifiers/{classifier_id}"}
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    parts = [(name, (filename, body, "application/octet-stream")) for name, filename, body in files]
    answer = client.post(path[route], params=VERSION, data=data, files=parts or None)
    assert answer.status_code < 500, answer.text[:500]
    if answer.status_code >= 400:
        body = answer.json()
        assert set(body) == {"code", "error"} and body["code"] == answer.status_code


def test_a_zip_member_named_from_nul_is_skipped_not_a_500(target) -> None:
    """zipfile reads `\x00nul.jpg` as an empty name; the other member is still classified."""
    client, _ = target
    data = nul_named_zip({NUL_MARK.decode(): REAL_JPEG, "ok.jpg": REAL_JPEG})
    answer = client.post("/v3/classify", params=VERSION, files=[("images_file", ("pair.zip", data, "application/zip"))])
    assert answer.status_code == 200, answer.text[:500]
    assert [image["image"] for image in answer.json()["images"]] == ["pair.zip/ok.jpg"]
