"""The HTTP front on a real uvicorn server on 127.0.0.1: auth, Watson JSON errors, forms, limits, URLs, user data."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import DOGS_JPG, TUTORIAL, zip_bytes
from support.servers import free_port, serve_command, workbench_command
from workbench import Workbench
from workbench.cli import entry as cli
from workbench.server.app import create_app
from workbench.server.keys import KeyRing
from workbench.server.runner import ServerThread
from workbench.server.settings import ServerSettings

VERSION = {"version": "2018-03-19"}
KEYS = {"me": "key-me-41d2", "bob": "key-bob-77a0", "carol": "key-carol-1b9e"}
WATSON_OPERATIONS = {
    "classify",
    "getClassify",
    "createClassifier",
    "listClassifiers",
    "getClassifier",
    "updateClassifier",
    "deleteClassifier",
    "getCoreMlModel",
    "deleteUserData",
}
CURATION_OPERATIONS = {
    "listExamples",
    "removeExamples",
    "relabelExamples",
}  # workbench's own, under /v3/classifiers/{id}/examples
EXTENSION_OPERATIONS = {"promoteClassifier"}  # workbench's own paths beside Watson's (README: Promote and roll back)


@dataclass(frozen=True)
class Served:
    url: str
    workbench: Workbench
    classifier_id: str

    def client(self, owner: str | None = "me") -> httpx.Client:
        auth = ("apikey", KEYS[owner]) if owner else None
        return httpx.Client(base_url=self.url, auth=auth, timeout=120)


def keyring(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    return KeyRing(tmp_path_factory.mktemp("keys"), env_value=",".join(f"{o}:{k}" for o, k in KEYS.items()))


@pytest.fixture(scope="module")
def image_site() -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 serving data/tutorial, for URL classify."""
    handler = functools.partial(QuietHandler, directory=str(TUTORIAL))
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(dogs, tmp_path_factory) -> Iterator[Served]:
    """The trained tutorial classifier behind the server's default settings."""
    wb, cid = dogs
    with ServerThread(create_app(wb, keys=keyring(tmp_path_factory))) as url:
        yield Served(url, wb, cid)


@pytest.fixture(scope="module")
def strict(dogs, tmp_path_factory, image_site) -> Iterator[Served]:
    """The same engine behind tight limits, with file:// URLs under data/tutorial and the image site allowed."""
    wb, cid = dogs
    settings = ServerSettings(
        max_body_bytes=1_000_000, max_classify_images=3, file_url_root=TUTORIAL, url_prefixes=(f"{image_site}/",)
    )
    with ServerThread(create_app(wb, keys=keyring(tmp_path_factory), settings=settings)) as url:
        yield Served(url, wb, cid)


def classify(client: httpx.Client, data=None, files=None, **params) -> httpx.Response:
    files = files if files is not None else {"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")}
    return client.post("/v3/classify", params={**VERSION, **params}, data=data, files=files)


def classifier_ids_of(answer: dict) -> list[str]:
    return [result["classifier_id"] for result in answer["images"][0]["classifiers"]]


# ------------------------------------------------------------------ the document


def test_openapi_document_lists_the_watson_operations(served) -> None:
    document = httpx.get(f"{served.url}/openapi.json").json()
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert operations == WATSON_OPERATIONS | CURATION_OPERATIONS | EXTENSION_OPERATIONS
    assert set(document["components"]["securitySchemes"]) == {"basicAuth", "bearerAuth", "legacyApiKey"}


# ------------------------------------------------------------------ auth


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key", basic("apikey", "wrong-key"), basic("admin", KEYS["me"]), "Basic !!not-base64!!"],
    ids=["none", "bearer-wrong", "basic-wrong", "basic-not-apikey-user", "basic-garbled"],
)
def test_requests_without_a_valid_key_get_a_watson_401(served, authorization) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = httpx.get(f"{served.url}/v3/classifiers", params=VERSION, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["code"] == 401 and "apikey" in answer.json()["error"]


def test_basic_and_bearer_keys_both_work(served) -> None:
    by_basic = httpx.get(
        f"{served.url}/v3/classifiers", params=VERSION, headers={"Authorization": basic("apikey", KEYS["me"])}
    )
    by_bearer = httpx.get(
        f"{served.url}/v3/classifiers", params=VERSION, headers={"Authorization": f"Bearer {KEYS['me']}"}
    )
    assert by_basic.status_code == by_bearer.status_code == 200
    assert by_basic.json() == by_bearer.json()
    assert served.classifier_id in [c["classifier_id"] for c in by_basic.json()["classifiers"]]


def test_the_legacy_api_key_query_parameter_works_like_a_header(served) -> None:
    """Older Watson SDKs (Node-RED's nodes) send `?api_key=KEY` and no Authorization: same owners, same 401."""
    mine = httpx.get(f"{served.url}/v3/classifiers", params={**VERSION, "api_key": KEYS["me"]})
    bobs = httpx.get(f"{served.url}/v3/classifiers", params={**VERSION, "api_key": KEYS["bob"]})
    wrong = httpx.get(f"{served.url}/v3/classifiers", params={**VERSION, "api_key": "wrong-key"})
    empty = httpx.get(f"{served.url}/v3/classifiers", params={**VERSION, "api_key": ""})
    assert mine.status_code == 200 and served.classifier_id in [c["classifier_id"] for c in mine.json()["classifiers"]]
    assert bobs.status_code == 200 and bobs.json() == {"classifiers": []}
    assert wrong.status_code == empty.status_code == 401 and "api_key" in wrong.json()["error"]
    assert "wrong-key" not in wrong.text
    with DOGS_JPG.open("rb") as image:
        classified = httpx.post(
            f"{served.url}/v3/classify",
            params={**VERSION, "api_key": KEYS["me"]},
            files={"images_file": ("dogs.jpg", image, "image/jpeg")},
            data={"classifier_ids": served.classifier_id},
            timeout=120,
        )
    assert classified.status_code == 200, classified.text
    assert classified.json()["images"][0]["classifiers"][0]["classifier_id"] == served.classifier_id


def test_a_key_sees_and_changes_only_its_owners_classifiers(served) -> None:
    with served.client("bob") as bob:
        assert bob.get("/v3/classifiers", params=VERSION).json() == {"classifiers": []}
        for answer in (
            bob.get(f"/v3/classifiers/{served.classifier_id}", params=VERSION),
            bob.delete(f"/v3/classifiers/{served.classifier_id}", params=VERSION),
            classify(bob, data={"classifier_ids": served.classifier_id}),
        ):
            assert answer.status_code == 404 and answer.json()["code"] == 404
    assert served.workbench.get_classifier(served.classifier_id)["status"] == "ready"


# ------------------------------------------------------------------ request-level errors


@pytest.mark.parametrize(
    "params", [{}, {"version": ""}, {"version": "yesterday"}], ids=["missing", "empty", "malformed"]
)
def test_a_missing_or_malformed_version_is_a_watson_400(served, params) -> None:
    with served.client() as client:
        answer = client.get("/v3/classifiers", params=params)
    assert answer.status_code == 400
    assert answer.json()["code"] == 400 and "version" in answer.json()["error"]


def test_unknown_paths_and_wrong_methods_are_watson_json(served) -> None:
    with served.client() as client:
        missing = client.get("/v3/detect_faces", params=VERSION)
        wrong = client.put("/v3/classifiers", params=VERSION)
    assert missing.status_code == 404 and missing.json() == {"code": 404, "error": "Not Found"}
    assert wrong.status_code == 405 and wrong.json()["code"] == 405
    assert wrong.headers["allow"] == "GET, POST"


def test_a_body_that_is_not_a_form_is_a_watson_415(served) -> None:
    with served.client() as client:
        answer = client.post("/v3/classify", params=VERSION, json={"classifier_ids": ["default"]})
    assert answer.status_code == 415 and "multipart/form-data" in answer.json()["error"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_a_json_413(strict, chunked) -> None:
    part = b'--b\r\nContent-Disposition: form-data; name="images_file"; filename="big.jpg"\r\n\r\n'
    body = part + os.urandom(1_500_000) + b"\r\n--b--\r\n"
    content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    with strict.client() as client:
        answer = client.post(
            "/v3/classify", params=VERSION, content=content, headers={"content-type": "multipart/form-data; boundary=b"}
        )
    assert answer.status_code == 413
    assert answer.json() == {
        "code": 413,
        "error": "The request body is larger than this server's limit of 1000000 bytes",
    }


def test_more_images_than_the_cap_in_one_classify_call_is_a_413(strict) -> None:
    beagles = sorted((TUTORIAL / "beagle").iterdir())[:4]
    archive = zip_bytes({path.name: path.read_bytes() for path in beagles})
    with strict.client() as client:
        answer = classify(client, files={"images_file": ("four.zip", archive, "application/zip")})
    assert answer.status_code == 413 and "at most 3 images" in answer.json()["error"]


def test_files_that_are_not_images_do_not_count_against_the_cap_and_come_back_as_a_warning(strict) -> None:
    beagles = sorted((TUTORIAL / "beagle").iterdir())[:3]
    members = {path.name: path.read_bytes() for path in beagles} | {"README.txt": b"three beagles"}
    with strict.client() as client:
        answer = classify(client, files={"images_file": ("three.zip", zip_bytes(members), "application/zip")})
    assert answer.status_code == 200
    assert answer.json()["images_processed"] == 3
    assert answer.json()["warnings"][0]["warning_id"] == "files_skipped"


def test_core_ml_model_of_an_unknown_classifier_is_a_watson_404(served) -> None:
    # the download itself (bytes, headers, owners, deletion) is tested in test_export.py
    with served.client() as client:
        unknown = client.get("/v3/classifiers/nothing_123/core_ml_model", params=VERSION)
    assert unknown.status_code == 404 and unknown.json()["code"] == 404


# ------------------------------------------------------------------ classify


def test_classify_over_http_answers_what_the_python_api_answers(served) -> None:
    with served.client() as client:
        answer = classify(client, data={"classifier_ids": f"{served.classifier_id},default"})
    assert answer.status_code == 200
    assert answer.json() == served.workbench.classify(DOGS_JPG, classifier_ids=[served.classifier_id, "default"])


def form_variants(cid: str) -> dict[str, tuple[dict | None, dict]]:
    """The same choice of classifiers as repeated fields, an application/json part, and legacy `parameters`."""
    image = ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")
    legacy = {"classifier_ids": [cid, "default"], "threshold": 0.5}
    return {
        "repeated": ({"classifier_ids": [cid, "default"]}, {"images_file": image}),
        "json-part": (
            None,
            {"images_file": image, "classifier_ids": (None, json.dumps([cid, "default"]), "application/json")},
        ),
        "legacy-text": ({"parameters": json.dumps(legacy)}, {"images_file": image}),
        "legacy-file": (
            None,
            {"images_file": image, "parameters": ("p.json", json.dumps({"parameters": legacy}), "application/json")},
        ),
    }


@pytest.mark.parametrize("variant", ["repeated", "json-part", "legacy-text", "legacy-file"])
def test_list_fields_may_be_repeated_json_or_legacy_parameters(served, variant) -> None:
    data, files = form_variants(served.classifier_id)[variant]
    with served.client() as client:
        answer = classify(client, data=data, files=files)
        comma = classify(client, data={"classifier_ids": f"{served.classifier_id},default"})
    assert answer.status_code == 200
    assert classifier_ids_of(answer.json()) == [served.classifier_id, "default"]
    assert answer.json() == comma.json()


def test_an_unreadable_image_is_an_error_on_that_image_in_a_200(served) -> None:
    archive = zip_bytes({"dogs.jpg": DOGS_JPG.read_bytes(), "broken.jpg": b"this is not a jpeg"})
    with served.client() as client:
        answer = classify(client, files={"images_file": ("mixed.zip", archive, "application/zip")})
    assert answer.status_code == 200
    broken, dogs = answer.json()["images"]
    assert broken["image"] == "mixed.zip/broken.jpg" and broken["error"]["code"] == 400 and broken["classifiers"] == []
    assert dogs["image"] == "mixed.zip/dogs.jpg" and classifier_ids_of({"images": [dogs]}) == ["default"]
    assert answer.json()["images_processed"] == 1


def test_image_urls_are_refused_unless_the_server_allows_them(served, image_site) -> None:
    with served.client() as client:
        by_file = client.get("/v3/classify", params={**VERSION, "url": DOGS_JPG.as_uri()})
        by_http = client.get("/v3/classify", params={**VERSION, "url": f"{image_site}/dogs.jpg"})
    assert by_file.status_code == 400 and "--allow-file-root" in by_file.json()["error"]
    assert by_http.status_code == 400 and "--allow-url" in by_http.json()["error"]


def test_allowed_image_urls_classify_like_uploads(strict, image_site) -> None:
    uploaded = strict.workbench.classify(DOGS_JPG, classifier_ids=[strict.classifier_id])["images"][0]
    with strict.client() as client:
        for url in (DOGS_JPG.as_uri(), f"{image_site}/dogs.jpg"):
            answer = client.get("/v3/classify", params={**VERSION, "url": url, "classifier_ids": strict.classifier_id})
            assert answer.status_code == 200
            (image,) = answer.json()["images"]
            assert image["source_url"] == image["resolved_url"] == url and "image" not in image
            assert image["classifiers"] == uploaded["classifiers"]
        by_form = classify(client, data={"url": f"{image_site}/dogs.jpg"}, files={})
        missing = client.get("/v3/classify", params={**VERSION, "url": f"{image_site}/missing.jpg"})
        outside = client.get("/v3/classify", params={**VERSION, "url": Path(sys.executable).resolve().as_uri()})
    assert by_form.status_code == 200 and classifier_ids_of(by_form.json()) == ["default"]
    assert missing.status_code == 200 and missing.json()["images"][0]["error"]["code"] == 400
    assert missing.json()["images_processed"] == 0
    assert outside.status_code == 400 and "outside the folder" in outside.json()["error"]


# ------------------------------------------------------------------ serving behaviour


def test_the_server_survives_a_client_that_disconnects_mid_upload(served) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    head = (
        f"POST /v3/classifiers?version=2018-03-19 HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {KEYS['carol']}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        "Content-Length: 50000000\r\n\r\n"
        '--b\r\nContent-Disposition: form-data; name="beagle_positive_examples"; filename="beagle.zip"\r\n\r\n'
    ).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + os.urandom(2_000_000))
    time.sleep(0.2)
    with served.client("carol") as client:
        assert client.get("/v3/classifiers", params=VERSION).json() == {"classifiers": []}
        assert classify(client).status_code == 200


def wait_settled(client: httpx.Client, classifier_id: str, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        record = client.get(f"/v3/classifiers/{classifier_id}", params=VERSION).json()
        if record["status"] in ("ready", "failed") or time.monotonic() > deadline:
            return record
        time.sleep(0.2)


def test_train_update_classify_and_forget_a_customer_over_http(served, tutorial_zips) -> None:
    metadata = {"X-Watson-Metadata": "customer_id=customer_7"}
    with served.client("carol") as client:
        created = client.post(
            "/v3/classifiers",
            params=VERSION,
            headers=metadata,
            data={"name": "beagles"},
            files={
                "beagle_positive_examples": tutorial_zips["beagle"].open("rb"),
                "negative_examples": tutorial_zips["cats"].open("rb"),
            },
        )
        assert created.status_code == 200 and created.json()["status"] == "training"
        assert created.json()["owner"] == "carol"
        cid = created.json()["classifier_id"]
        assert wait_settled(client, cid)["status"] == "ready"

        updated = client.post(
            f"/v3/classifiers/{cid}",
            params=VERSION,
            files={"husky_positive_examples": tutorial_zips["husky"].open("rb")},
        )
        assert updated.status_code == 200 and updated.json()["status"] == "retraining"
        during = classify(client, data={"classifier_ids": cid, "threshold": "0"})
        assert during.status_code == 200 and classifier_ids_of(during.json()) == [cid]
        assert wait_settled(client, cid)["status"] == "ready"

        forgotten = client.delete("/v3/user_data", params={**VERSION, "customer_id": "customer_7"})
        assert forgotten.status_code == 202 and forgotten.content == b""
        assert client.get(f"/v3/classifiers/{cid}", params=VERSION).status_code == 404
    assert served.workbench.get_classifier(served.classifier_id)["status"] == "ready"


# ------------------------------------------------------------------ the command


def test_serve_refuses_to_run_open_off_loopback_or_without_keys(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("WORKBENCH_API_KEYS", raising=False)
    assert cli.main(["--home", str(tmp_path), "serve", "--no-auth", "--host", "0.0.0.0"]) == 1
    assert "only on loopback" in capsys.readouterr().err
    assert cli.main(["--home", str(tmp_path), "serve"]) == 1
    assert "No API keys" in capsys.readouterr().err


def test_workbench_serve_runs_as_a_process_with_a_key_from_keys_add(tmp_path) -> None:
    home, port = tmp_path / "home", free_port()
    added = subprocess.run(
        workbench_command(home, "keys", "add", "me"),
        capture_output=True,
        text=True,
        check=True,
    )
    key = json.loads(added.stdout)["key"]
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_API_KEYS"}
    server = subprocess.Popen(
        serve_command(home, port),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                answer = httpx.get(f"{url}/v3/classifiers", params=VERSION, auth=("apikey", key))
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read().decode()
                time.sleep(0.3)
        assert answer.status_code == 200 and answer.json() == {"classifiers": []}
        assert httpx.get(f"{url}/v3/classifiers", params=VERSION).status_code == 401
        by_query = httpx.get(f"{url}/v3/classifiers", params={**VERSION, "api_key": key})
        assert by_query.status_code == 200
    finally:
        server.terminate()
        server.wait(30)


def test_a_key_in_the_url_never_reaches_the_access_log(tmp_path) -> None:
    """`?api_key=KEY` (right or wrong) appears in uvicorn's access lines as `api_key=REDACTED`."""
    home, port = tmp_path / "home", free_port()
    key = json.loads(
        subprocess.run(
            workbench_command(home, "keys", "add", "me"),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["key"]
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_API_KEYS"}
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            serve_command(home, port, log_level="info"),
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                right = httpx.get(f"{url}/v3/classifiers", params={**VERSION, "api_key": key})
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        wrong = httpx.get(f"{url}/v3/classifiers?version=2018-03-19&api_key=not-the-key-5f3a&x=1")
        assert right.status_code == 200 and wrong.status_code == 401
    finally:
        server.terminate()
        server.wait(30)
    text = log.read_text()
    assert key not in text and "not-the-key-5f3a" not in text, text[-2000:]
    assert text.count("api_key=REDACTED") == 2, text[-2000:]


# ------------------------------------------------------------------ Host header: no DNS rebinding (issue 22)


def test_a_local_server_refuses_a_host_header_naming_another_site(tmp_path) -> None:
    """A page on rebind.example whose name now resolves to 127.0.0.1 sends `Host: rebind.example`: refused."""
    home, port = tmp_path / "home", free_port()
    server = subprocess.Popen(
        serve_command(home, port, "--no-auth"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                own = httpx.get(f"{url}/v3/classifiers", params=VERSION)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read().decode()
                time.sleep(0.3)
        rebound = httpx.get(f"{url}/v3/classifiers", params=VERSION, headers={"Host": f"rebind.example:{port}"})
        by_name = httpx.get(f"{url}/v3/classifiers", params=VERSION, headers={"Host": f"localhost:{port}"})
    finally:
        server.terminate()
        server.wait(30)
    assert own.status_code == 200 and by_name.status_code == 200
    assert rebound.status_code == 400, rebound.text
    assert rebound.json()["code"] == 400 and "--allowed-host" in rebound.json()["error"]


def test_allowed_host_names_pass_the_host_check(make_workbench) -> None:
    wb = make_workbench()
    settings = ServerSettings(auth=False, bind_host="127.0.0.1", allowed_hosts=("wb.lan",))
    with ServerThread(create_app(wb, settings=settings)) as url:
        answers = {
            host: httpx.get(f"{url}/v3/classifiers", params=VERSION, headers={"Host": host}).status_code
            for host in ("wb.lan", "WB.LAN.:8080", "[::1]:8080", "10.1.2.3", "evil.wb.lan", "wb.lan.evil", "")
        }
    assert answers == {
        "wb.lan": 200,
        "WB.LAN.:8080": 200,
        "[::1]:8080": 200,
        "10.1.2.3": 200,
        "evil.wb.lan": 400,
        "wb.lan.evil": 400,
        "": 400,
    }
