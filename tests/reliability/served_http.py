"""A real server on 127.0.0.1 for the HTTP-front reliability tests, and which TCP connection carried an answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI

from workbench import Workbench
from workbench.server.app import create_app
from workbench.server.runner import ServerThread
from workbench.server.settings import ServerSettings

VERSION = {"version": "2018-03-19"}


def open_app(workbench: Workbench, **settings) -> FastAPI:
    """The Watson app over `workbench` without API keys (loopback only), with these ServerSettings."""
    return create_app(workbench, settings=ServerSettings(auth=False, **settings))


@contextmanager
def served(app: FastAPI) -> Iterator[httpx.Client]:
    """`app` on a uvicorn server on 127.0.0.1, and one keep-alive client to it."""
    hooks = {"response": [_note_connection]}
    with ServerThread(app) as url, httpx.Client(base_url=url, timeout=120, event_hooks=hooks) as client:
        yield client


def _note_connection(response: httpx.Response) -> None:
    """Notes the connection's client address as the headers arrive, before the server could close it."""
    try:
        response.extensions["client_addr"] = response.extensions["network_stream"].get_extra_info("client_addr")
    except OSError:  # already closed
        response.extensions["client_addr"] = None


def connection_of(response: httpx.Response) -> tuple[str, int] | None:
    """The client side (host, port) of the TCP connection that carried `response` (None: closed at once)."""
    return response.extensions["client_addr"]


def assert_connection_kept(client: httpx.Client, answer: httpx.Response) -> None:
    """A following request on the same client succeeds over the very connection `answer` came on."""
    follow = client.get("/v3/classifiers", params=VERSION)
    assert follow.status_code == 200, follow.text
    assert connection_of(follow) == connection_of(answer), "the server closed the keep-alive connection"
