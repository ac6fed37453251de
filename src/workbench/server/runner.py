"""Running the app with uvicorn: `serve` (the `workbench serve` process) and `ServerThread` (tests, notebooks).

Both pass uvicorn the connection options of the app's ServerSettings (`connection_options`): the
header timeout protocol, the keep-alive timeout and the listen backlog. `serve` first refuses an
exposure it should not make (`check_exposure`), tunes malloc and raises the open-file limit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import threading
from typing import TypedDict

import uvicorn
from fastapi import FastAPI

from ..core.errors import InvalidRequest
from ..core.limits import HTTP_BACKLOG
from ..service.workbench import Workbench
from .app import create_app
from .connection_limits import HeaderTimeoutProtocol, raise_open_file_limit
from .front import Front
from .keys import KeyRing
from .process_memory import tune_malloc
from .settings import ServerSettings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

logger = logging.getLogger(__name__)


def check_exposure(host: str, settings: ServerSettings, keys: KeyRing | None, allow_remote_no_auth: bool) -> None:
    """Refuses to serve without keys off loopback (unless asked), with a corrupt key file, or with no key configured."""
    if keys is not None:
        keys.check()
    if not settings.auth and host not in LOOPBACK_HOSTS and not allow_remote_no_auth:
        raise InvalidRequest(
            f"--no-auth serves only on loopback (127.0.0.1, ::1, localhost), not {host!r}; "
            "add --allow-remote-no-auth to expose it anyway"
        )
    if settings.auth and (keys is None or len(keys) == 0):
        raise InvalidRequest(
            "No API keys are configured: run `workbench keys add me`, set WORKBENCH_API_KEYS, or serve with --no-auth"
        )


def serve(
    workbench: Workbench,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    settings: ServerSettings | None = None,
    allow_remote_no_auth: bool = False,
    log_level: str = "info",
    listen_fd: int | None = None,
) -> None:
    """Runs the Watson v3 server until interrupted (`workbench serve`); on an inherited socket with `listen_fd`.

    A worker of `workbench serve --workers N` gets its parent's listening socket (`serve_workers`).
    """
    settings = dataclasses.replace(settings or ServerSettings(), bind_host=host)
    tune_malloc()  # before the request, decode and training threads open arenas of their own
    keys = KeyRing(workbench.home) if settings.auth else None
    check_exposure(host, settings, keys, allow_remote_no_auth)
    before, after = raise_open_file_limit()
    if after != before:
        logger.info("Open-file limit raised from %d to %d (one per connection)", before, after)
    app = create_app(workbench, keys=keys, settings=settings)
    if listen_fd is None:
        uvicorn.run(app, host=host, port=port, log_level=log_level, **connection_options(app))
        return
    config = uvicorn.Config(app, log_level=log_level, **connection_options(app))
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=listen_fd)])


class ConnectionOptions(TypedDict):
    http: type[asyncio.Protocol]
    timeout_keep_alive: int
    backlog: int


def connection_options(app: FastAPI) -> ConnectionOptions:
    """uvicorn's options for the connection timeouts of the ServerSettings `app` was created with.

    No `limit_concurrency`: uvicorn counts every open connection against it, idle ones included, so
    clients holding sockets open would turn each legitimate request into a 503; the header and
    keep-alive timeouts close such sockets instead, and BodyDeadline slow bodies.
    """
    front = getattr(app.state, "front", None)
    settings = front.settings if isinstance(front, Front) else ServerSettings()
    return ConnectionOptions(
        http=HeaderTimeoutProtocol.with_timeout(settings.http_header_timeout_s),
        timeout_keep_alive=settings.http_keep_alive_s,
        backlog=HTTP_BACKLOG,
    )


class ServerThread:
    """Runs an app with uvicorn on a background thread (tests, notebooks): `with ServerThread(app) as url:`."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def __enter__(self) -> str:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", **connection_options(self.app)))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread stopped before it started")
            self.thread.join(0.02)
        return f"http://{self.host}:{self.port}"

    def __exit__(self, *exc_info: object) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(10)
