"""Classify by URL against hostile hosts and file roots (issue 22): prefixes hold, hosts cannot hang the server.

A real server on 127.0.0.1 fetches from a real image host on 127.0.0.1 (tests/reliability/hostile_site.py)
that, like most hosts, resolves `..` itself: before the fix a URL that only looked as if it lay under
the allowed prefix (`/images/../secret.jpg`, `%2e%2e`, a redirect) classified the host's secret file.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import TUTORIAL
from reliability.hostile_site import HostileSite
from reliability.served_http import VERSION, open_app
from workbench import Workbench
from workbench.server.runner import ServerThread

OK_IMAGE = sorted((TUTORIAL / "beagle").iterdir())[0]
SECRET_IMAGE = sorted((TUTORIAL / "husky").iterdir())[0]
SLOW_REQUESTS = 45  # the count: past the 40 threads Starlette runs blocking work on


@pytest.fixture(scope="module")
def workbench(tmp_path_factory, embedding_cache) -> Workbench:
    return Workbench(tmp_path_factory.mktemp("urls-home"), embedding_cache=embedding_cache, tracking_uri=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[HostileSite]:
    with HostileSite(tmp_path_factory.mktemp("site"), OK_IMAGE, SECRET_IMAGE) as served:
        yield served


@pytest.fixture(scope="module")
def file_root(tmp_path_factory) -> Path:
    """A file root with a good image, and a secret image next to (outside) it."""
    folder = tmp_path_factory.mktemp("files")
    (folder / "root" / "sub").mkdir(parents=True)
    (folder / "root" / "ok.jpg").write_bytes(OK_IMAGE.read_bytes())
    (folder / "secret.jpg").write_bytes(SECRET_IMAGE.read_bytes())
    return folder / "root"


def serve(workbench: Workbench, **settings) -> ServerThread:
    return ServerThread(open_app(workbench, **settings))


def get_classify(url: str, image_url: str, timeout: float = 60) -> httpx.Response:
    return httpx.get(f"{url}/v3/classify", params={**VERSION, "url": image_url}, timeout=timeout)


def assert_watson_400(answer: httpx.Response) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == 400 and isinstance(answer.json()["error"], str)


@pytest.mark.parametrize(
    "path",
    [
        "images/../secret.jpg",
        "images/%2e%2e/secret.jpg",
        "images/%2E%2E/secret.jpg",
        "images/./../secret.jpg",
        "images/..%2fsecret.jpg",
        "images/redirect-out",  # 302 to {site}/images/../secret.jpg
    ],
)
def test_a_url_cannot_leave_its_allowed_prefix(workbench, site, path) -> None:
    escapes_before = len(site.escapes())
    with serve(workbench, url_prefixes=(site.prefix,)) as url:
        answer = get_classify(url, f"{site.url}/{path}")
    assert_watson_400(answer)
    assert "allow-list" in answer.json()["error"]
    assert site.escapes()[escapes_before:] == [], "the host was asked for a path outside the prefix"


def test_a_redirect_inside_the_prefix_still_classifies(workbench, site) -> None:
    """A guard on the fix, not a regression test: normalising refuses nothing that stays under the prefix."""
    escapes_before = len(site.escapes())
    with serve(workbench, url_prefixes=(site.prefix,)) as url:
        answer = get_classify(url, f"{site.url}/images/redirect-in")
        normalised = get_classify(url, f"{site.url}/images/sub/../ok.jpg")
    for got in (answer, normalised):
        assert got.status_code == 200, got.text
        (image,) = got.json()["images"]
        assert "error" not in image and image["classifiers"]
    assert answer.json()["images"][0]["resolved_url"] == f"{site.url}/images/ok.jpg"
    assert site.escapes()[escapes_before:] == []


@pytest.mark.parametrize(
    "image_url",
    [
        "{site}/images/ok\n.jpg",
        "{site}/images/ok.jpg\r\nX-Injected: 1",
        "{site}/images/\tok.jpg",
        "{site}/images/ok%0a.jpg",
        "file://{root}/ok\n.jpg",
    ],
)
def test_control_characters_in_a_url_answer_400(workbench, site, file_root, image_url) -> None:
    image_url = image_url.format(site=site.url, root=file_root)
    with serve(workbench, url_prefixes=(site.prefix,), file_url_root=file_root) as url:
        by_get = get_classify(url, image_url)
        by_post = httpx.post(f"{url}/v3/classify", params=VERSION, data={"url": image_url}, timeout=60)
    assert_watson_400(by_get)
    assert_watson_400(by_post)
    assert "control character" in by_get.json()["error"]


def test_a_file_url_naming_a_host_is_refused(workbench, file_root) -> None:
    with serve(workbench, file_url_root=file_root) as url:
        remote = get_classify(url, f"file://evil.com{file_root}/ok.jpg")
        local = get_classify(url, f"file://localhost{file_root}/ok.jpg")
    assert_watson_400(remote)
    assert "names the host" in remote.json()["error"]
    assert local.status_code == 200 and "error" not in local.json()["images"][0]


def test_file_urls_follow_no_symbolic_link(workbench, file_root) -> None:
    """Not even one that points inside the root: a link swapped between two checks could point anywhere."""
    (file_root / "inside.jpg").symlink_to(file_root / "ok.jpg")
    (file_root / "outside.jpg").symlink_to(file_root.parent / "secret.jpg")
    (file_root / "folder").symlink_to(file_root.parent)
    with serve(workbench, file_url_root=file_root) as url:
        answers = [
            get_classify(url, f"file://{file_root}/{name}")
            for name in ("inside.jpg", "outside.jpg", "folder/secret.jpg")
        ]
        plain = get_classify(url, f"file://{file_root}/sub/../ok.jpg")
    for answer in answers:  # an error on that image, as a missing file is
        assert answer.status_code == 200, answer.text
        (image,) = answer.json()["images"]
        assert image["error"]["code"] == 400 and "symbolic link" in image["error"]["description"]
    assert plain.status_code == 200 and "error" not in plain.json()["images"][0]


def test_a_trickling_host_answers_an_error_within_the_deadline(workbench, site) -> None:
    deadline_s = 1.0
    with serve(workbench, url_prefixes=(site.prefix,), url_fetch_deadline_s=deadline_s, url_rate_grace_s=60) as url:
        started = time.monotonic()
        answer = get_classify(url, f"{site.url}/images/trickle.jpg?bytes=1&every=0.2", timeout=20)
        took = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    (image,) = answer.json()["images"]
    assert image["error"]["code"] == 400 and "within 1 s" in image["error"]["description"]
    assert took < deadline_s + 4


def test_a_host_below_the_minimum_rate_is_cut_after_the_grace(workbench, site) -> None:
    with serve(
        workbench,
        url_prefixes=(site.prefix,),
        url_fetch_deadline_s=60,
        url_rate_grace_s=1.0,
        url_min_bytes_per_s=16 * 1024,
    ) as url:
        started = time.monotonic()
        answer = get_classify(url, f"{site.url}/images/trickle.jpg?bytes=1024&every=0.5", timeout=30)  # 2 KiB/s
        took = time.monotonic() - started
    (image,) = answer.json()["images"]
    assert "slower than 16384 bytes/s" in image["error"]["description"]
    assert took < 6


def test_slow_hosts_starve_no_other_request(workbench, site) -> None:
    """45 classify calls on a host that sends 1 byte every 10 s; uploads and the classifier list answer at once."""
    trickle = f"{site.url}/images/trickle.jpg?bytes=1&every=10"
    done: list[httpx.Response] = []
    asked_before = trickles_asked(site)
    with (
        serve(workbench, url_prefixes=(site.prefix,)) as url,
        concurrent.futures.ThreadPoolExecutor(SLOW_REQUESTS) as pool,
    ):
        slow = [pool.submit(get_classify, url, trickle, 30) for _ in range(SLOW_REQUESTS)]
        for future in slow:
            future.add_done_callback(lambda f: done.append(f.result()) if not f.exception() else None)
        deadline = time.monotonic() + 20
        while len(done) + trickles_asked(site) - asked_before < SLOW_REQUESTS - 5 and time.monotonic() < deadline:
            time.sleep(0.05)  # every slow call is either at the host or answered
        with httpx.Client(base_url=url, timeout=10) as client:
            started = time.monotonic()
            listed = client.get("/v3/classifiers", params=VERSION)
            uploaded = client.post(
                "/v3/classify", params=VERSION, files={"images_file": ("ok.jpg", OK_IMAGE.read_bytes(), "image/jpeg")}
            )
            took = time.monotonic() - started
        answers = [future.result() for future in slow]
    assert listed.status_code == 200 and uploaded.status_code == 200, (listed.text, uploaded.text)
    assert took < 5, f"an upload classify and the classifier list took {took:.1f} s behind slow URL fetches"
    busy = [a for a in answers if a.status_code == 503]
    assert busy and all(a.json()["code"] == 503 and "per-host cap" in a.json()["error"] for a in busy)
    assert all(a.status_code in (200, 503) for a in answers)


def trickles_asked(site: HostileSite) -> int:
    return sum(1 for path in list(site.paths) if "trickle" in path)
