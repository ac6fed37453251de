"""Idle, half-sent and crawling connections to a real server on 127.0.0.1 (issue 22, item 2).

Before: nothing closed a connection that sent nothing or sent its headers a byte at a time, and a
body could arrive as slowly as a client liked, each holding a socket, a file descriptor and a
spooled upload; at a 1,024 open-file limit, a thousand such sockets made `accept` fail (EMFILE)
and legitimate clients waited forever. Now the header timeout closes the first two, a body under
the minimum rate or stalled gets Watson's 408 and a closed connection, and `workbench serve`
raises its open-file limit.

Raw sockets, because an HTTP client would finish its request. Timeouts are short here (set on the
server), and each test waits for the server's close with a generous bound instead of timing it.
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import DOGS_JPG
from reliability.served_http import VERSION, open_app
from support.servers import wait_until_up
from workbench import Workbench
from workbench.server.runner import ServerThread

HEADER_TIMEOUT_S = 1.0
BODY_GRACE_S = 0.5
BODY_IDLE_S = 1.0
BODY_MIN_BYTES_PER_S = 64 * 1024
CLOSE_BOUND_S = 30.0  # far past every timeout here: a server that has not closed by then never will
BOUNDARY = b"slowconnectionsboundary"


@pytest.fixture(scope="module")
def workbench(tmp_path_factory, embedding_cache) -> Workbench:
    return Workbench(tmp_path_factory.mktemp("slow-home"), embedding_cache=embedding_cache, tracking_uri=False)


@pytest.fixture(scope="module")
def url(workbench: Workbench) -> Iterator[str]:
    app = open_app(
        workbench,
        http_header_timeout_s=HEADER_TIMEOUT_S,
        body_rate_grace_s=BODY_GRACE_S,
        body_idle_s=BODY_IDLE_S,
        body_min_bytes_per_s=BODY_MIN_BYTES_PER_S,
    )
    with ServerThread(app) as served:
        yield served


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=CLOSE_BOUND_S)


def classify_head(content_length: int) -> bytes:
    return (
        f"POST /v3/classify?version={VERSION['version']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY.decode()}\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode()


PART_HEAD = (
    b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="images_file"; filename="a.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n"
)


def until_closed(sock: socket.socket, trickle: bytes = b"", every_s: float = 0.05) -> bytes:
    """Everything the server sends until it closes the connection, sending `trickle` a byte at a time meanwhile.

    The trickle stops once the server answers or closes; fails if the connection is still open after CLOSE_BOUND_S.
    """
    deadline = time.monotonic() + CLOSE_BOUND_S
    received = b""
    sock.settimeout(every_s)
    position = 0
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            if not received and position < len(trickle):
                try:
                    sock.sendall(trickle[position : position + 1])
                except (BrokenPipeError, ConnectionResetError):
                    return received
                position += 1
            continue
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data
    raise AssertionError(f"the server kept the connection open for {CLOSE_BOUND_S} s (sent {received[:200]!r})")


def parsed(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def assert_watson_408_and_closed(answer: bytes) -> str:
    assert answer, "the server closed the connection without an answer"
    status, headers, body = parsed(answer)
    assert status == 408, answer[:500]
    assert headers.get("connection") == "close"
    error = json.loads(body)
    assert error["code"] == 408 and isinstance(error["error"], str)
    return error["error"]


def test_a_connection_that_sends_nothing_is_closed(url: str) -> None:
    with connect(url) as sock:
        assert until_closed(sock) == b""


def test_a_connection_trickling_its_headers_is_closed(url: str) -> None:
    """Each byte arrives well within the timeout; the timer runs from connecting, not from the last byte."""
    with connect(url) as sock:
        sock.sendall(b"GET /v3/classifiers?version=2018-03-19 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert until_closed(sock, trickle=b"X-Slow: " + b"a" * 10_000) == b""


def test_half_headers_after_an_answer_on_a_kept_connection_are_closed(url: str) -> None:
    """uvicorn's keep-alive timer stops at the first byte of the next request; the header timeout does not."""
    with connect(url) as sock:
        sock.sendall(b"GET /v3/classifiers?version=2018-03-19 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or len(parsed(answer)[2]) < int(parsed(answer)[1]["content-length"]):
            answer += sock.recv(65536)
        assert parsed(answer)[0] == 200
        sock.sendall(b"GET /v3/classifiers?version=2018-03-19 HTTP/1.1\r\n")
        assert until_closed(sock, trickle=b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 10_000) == b""


def test_a_body_under_the_minimum_rate_gets_408_and_the_connection_closes(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(classify_head(1_000_000) + PART_HEAD)
        error = assert_watson_408_and_closed(until_closed(sock, trickle=b"\xff" * 100_000, every_s=0.01))
    assert "bytes/s" in error


def test_a_stalled_body_gets_408_and_the_connection_closes(url: str) -> None:
    """1 MB at once keeps the average far above the minimum for seconds; then nothing: the idle limit ends it."""
    with connect(url) as sock:
        sock.sendall(classify_head(2_000_000) + PART_HEAD + b"\xff" * 1_000_000)
        error = assert_watson_408_and_closed(until_closed(sock))
    assert f"sent nothing for {BODY_IDLE_S:g} s" in error


def test_a_100_mb_upload_at_ordinary_speed_is_answered(url: str) -> None:
    """Past the header timeout from connecting (the timer leaves a request with the app alone): answered, no 408."""
    big = b"\xff" * (100 * 1024 * 1024)
    answer = httpx.post(
        f"{url}/v3/classify", params=VERSION, files={"images_file": ("big.jpg", big, "image/jpeg")}, timeout=300
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["images"][0]["error"]["description"] == "File size limit exceeded"


# ------------------------------------------------------------------ many idle sockets at a low open-file limit

IDLE_SOCKETS = 300
LOW_SOFT_LIMIT = 256  # below IDLE_SOCKETS: before the fix, accept failed (EMFILE) and the next client waited forever


def _low_open_file_limit() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_SOFT_LIMIT, hard))


def test_classify_answers_while_300_idle_sockets_are_open_at_a_256_file_limit(tmp_path: Path) -> None:
    """`workbench serve` started at a soft limit of 256 files lifts it; idle sockets stay open (long header timeout)."""
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workbench",
                "--home",
                str(tmp_path / "home"),
                "serve",
                "--no-auth",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--header-timeout-s",
                "600",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_low_open_file_limit,
        )
    url = f"http://127.0.0.1:{port}"
    idle: list[socket.socket] = []
    try:
        wait_until_up(f"{url}/v3/classifiers?version=2018-03-19", server, log, "workbench serve")
        dogs = DOGS_JPG.read_bytes()
        files = {"images_file": ("dogs.jpg", dogs, "image/jpeg")}
        warm = httpx.post(f"{url}/v3/classify", params=VERSION, files=files, timeout=300)  # loads the backbone
        assert warm.status_code == 200, warm.text
        for _ in range(IDLE_SOCKETS):
            sock = connect(url)
            sock.sendall(b"GET / HTTP/1.1\r\n")  # half a request: a slowloris socket
            idle.append(sock)
        answer = httpx.post(f"{url}/v3/classify", params=VERSION, files=files, timeout=120)
        assert answer.status_code == 200, answer.text
        assert answer.json()["images"][0]["classifiers"]
        assert server.poll() is None
    finally:
        for sock in idle:
            sock.close()
        server.terminate()
        server.wait(30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
