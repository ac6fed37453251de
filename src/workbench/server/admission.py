"""Which requests reach a route at all: bodies within the size limit (413), Host headers naming this server (400).

Both are ASGI middleware that answer before the body is read where they can. The Host check stops
DNS rebinding: a web page reaches a local server only under its own DNS name, which is not one of ours.
"""

from __future__ import annotations

import ipaddress

from ..core.errors import InvalidRequest, LimitExceeded, echo
from .errors import error_response
from .settings import ServerSettings

ANY_HOST = "*"  # --allowed-host '*': answer every Host header (behind a proxy that checks it)


class BodyLimit:
    """Refuses bodies over `max_bytes` with 413: at once from Content-Length, else while they stream."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> LimitExceeded:
        return LimitExceeded(f"The request body is larger than this server's limit of {self.max_bytes} bytes")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await error_response(self._too_large())(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise self._too_large()
            return message

        await self.app(scope, counted, send)


def host_allowed(host_header: str, settings: ServerSettings) -> bool:
    """Whether a Host header names this server: an IP address, `localhost`, the bind address or an --allowed-host.

    A web page reaches a local server through DNS rebinding only under its own DNS name, which it
    cannot make one of these; an IP address in Host is no rebinding.
    """
    if ANY_HOST in settings.allowed_hosts:
        return True
    value = host_header.strip().lower()
    if value.startswith("["):
        name = value[1 : value.find("]")] if "]" in value else value
    else:
        name = value.rpartition(":")[0] if value.count(":") == 1 else value
    name = name.rstrip(".")
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    names = {"localhost", *(h.lower().rstrip(".") for h in settings.allowed_hosts)}
    if settings.bind_host:
        names.add(settings.bind_host.lower().strip("[]").rstrip("."))
    return name in names


class HostCheck:
    """Refuses a request whose Host header names none of this server's names with Watson's 400."""

    def __init__(self, app, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        if not host_allowed(host, self.settings):
            refused = InvalidRequest(
                f"The Host header {echo(host)} names none of this server's names (an IP address, localhost, "
                f"{self.settings.bind_host or 'its bind address'} or one given with --allowed-host NAME)"
            )
            return await error_response(refused)(scope, receive, send)
        await self.app(scope, receive, send)
