"""What one slow or idle connection may hold on the HTTP front: a header deadline, a body deadline, open files.

uvicorn closes a connection that stays silent after an answer (`timeout_keep_alive`), but nothing
closes one that connects and sends nothing, or sends its headers a byte at a time, and nothing bounds
how slowly a body may arrive: each such connection holds a socket, a file descriptor and (for a
body) a spooled upload for as long as the client likes. Here:

- `HeaderTimeoutProtocol`: uvicorn's h11 protocol, closing a connection whose request line and
  headers are not complete within `header_timeout_s` of connecting or of its previous answer.
- `BodyDeadline`: ASGI middleware that answers Watson's 408 and closes the connection when a body
  stalls for `idle_s`, or falls below `min_bytes_per_s` on average once `grace_s` have passed.
- `raise_open_file_limit`: the soft RLIMIT_NOFILE up to the hard one, so sockets left open by
  clients do not make `accept` fail (EMFILE) for the next client.

The values are in limits.py; `ServerSettings` (settings.py) changes them.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, ClassVar

from starlette.responses import JSONResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..core.errors import BodyTooSlow
from ..core.limits import HTTP_HEADER_TIMEOUT_S

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]
OPEN_FILES_WHEN_UNLIMITED = 65536  # the soft limit asked for when the hard one is "unlimited" (macOS)
CLOSE = (b"connection", b"close")

logger = logging.getLogger(__name__)


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline: no complete request within `header_timeout_s`, no connection.

    The timer starts when the connection is made and again after each answer, and is not moved by
    the bytes that arrive, so a client trickling its headers is closed as surely as a silent one.
    When it fires while a request is with the app (its headers complete), it does nothing: the body
    has `BodyDeadline`, and the next answer starts the timer again. After an answer, uvicorn's own
    keep-alive timer still closes a connection that sends nothing at all sooner.
    """

    header_timeout_s: ClassVar[float] = HTTP_HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    @classmethod
    def with_timeout(cls, header_timeout_s: float) -> type[HeaderTimeoutProtocol]:
        """This protocol with another deadline (uvicorn builds each connection's protocol from a class)."""
        return type(cls.__name__, (cls,), {"header_timeout_s": header_timeout_s})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request: the timer then finds it with the app
        self._start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        self._stop_header_timer()
        if not self.transport.is_closing():
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_deadline)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is with the app
        if not self.transport.is_closing():
            self.transport.close()


class BodyDeadline:
    """Cuts off a request body that stalls or crawls: Watson's 408 `{"code": 408, "error": ...}`; the connection closes.

    A body may send nothing for at most `idle_s` at a time, and once `grace_s` have passed it must
    have averaged at least `min_bytes_per_s`. Time counts only while the app waits for the client
    (in `receive`), so a server busy elsewhere never makes a client look slow. Once the body is
    complete, `receive` is passed through untouched.
    """

    def __init__(self, app: ASGIApp, *, min_bytes_per_s: float, grace_s: float, idle_s: float) -> None:
        self.app = app
        self.min_bytes_per_s, self.grace_s, self.idle_s = min_bytes_per_s, grace_s, idle_s

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        received, waited = 0, 0.0
        body_done = False
        cut_off: BodyTooSlow | None = None
        answer_started = False

        async def paced() -> Message:
            nonlocal received, waited, body_done, cut_off
            if body_done:
                return await receive()
            if cut_off is not None:
                raise cut_off
            # waiting past `need_by` would leave the average under the minimum
            need_by = max(self.grace_s, received / self.min_bytes_per_s) if self.min_bytes_per_s > 0 else float("inf")
            allowed = min(self.idle_s, need_by - waited)
            began = time.monotonic()
            try:
                async with asyncio.timeout(max(allowed, 0.0)):
                    message = await receive()
            except TimeoutError:
                waited += time.monotonic() - began
                cut_off = self._too_slow(received, waited, stalled=allowed == self.idle_s)
                raise cut_off from None
            waited += time.monotonic() - began
            received += len(message.get("body", b""))
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def closing(message: Message) -> None:
            nonlocal answer_started
            if message["type"] == "http.response.start":
                answer_started = True
                if cut_off is not None:  # the rest of the body is still on its way: only closing ends it
                    message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            await send(message)

        try:
            await self.app(scope, paced, closing)
        except BodyTooSlow as exc:  # a handler inside answers it as Watson JSON; this is the last resort
            if answer_started:
                raise
            response = JSONResponse({"code": exc.code, "error": exc.message}, status_code=exc.code)
            await response(scope, receive, closing)

    def _too_slow(self, received: int, waited_s: float, stalled: bool) -> BodyTooSlow:
        if stalled:
            why = f"sent nothing for {self.idle_s:g} s"
        else:
            why = (
                f"arrived at {received / max(waited_s, 1e-9):.0f} bytes/s, under this server's minimum of "
                f"{self.min_bytes_per_s:g} bytes/s after {self.grace_s:g} s"
            )
        return BodyTooSlow(f"The request body {why} ({received} bytes received); the connection is closed")


def raise_open_file_limit() -> tuple[int, int]:
    """Raises the soft open-file limit to the hard one (each connection is a file); (before, after).

    At the common soft limit of 1,024, a thousand sockets held open by clients make `accept` fail
    with EMFILE and the next client waits in the backlog; the hard limit is often far higher.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = OPEN_FILES_WHEN_UNLIMITED if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            logger.warning("Could not raise the open-file limit from %d to %d: %s", soft, target, exc)
            return soft, soft
        return soft, target
    return soft, soft
