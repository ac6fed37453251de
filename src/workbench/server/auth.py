"""Who a request acts for: the API key it presents (Basic, Bearer or the legacy `api_key` query parameter).

`caller` is the dependency every route takes: the engine acting for the key's owner, or a 401.
The key in the query string must never reach a log, so `redact_access_log` blanks it in uvicorn's.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re

from fastapi import Request

from ..core.errors import Unauthorized
from ..service.workbench import DEFAULT_OWNER, Workbench
from .front import Front

LEGACY_KEY_PARAM = "api_key"  # Watson before IAM (2018): the key in the query string, as older SDKs still send it


def presented_key(authorization: str | None) -> str | None:
    """The API key in `Authorization: Basic base64(apikey:KEY)` or `Authorization: Bearer KEY`."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, key = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return key if sep and user == "apikey" and key else None


def caller(request: Request) -> Workbench:
    """The engine acting for the owner of the request's API key (401 without a valid one)."""
    front: Front = request.app.state.front
    if not front.settings.auth:
        return front.view(DEFAULT_OWNER)
    key = presented_key(request.headers.get("authorization")) or request.query_params.get(LEGACY_KEY_PARAM) or None
    owner = front.keys.owner_for(key) if key and front.keys else None
    if owner is None:
        raise Unauthorized(
            'Unauthorized: send an API key as -u "apikey:{key}", Authorization: Bearer {key} '
            f"or the {LEGACY_KEY_PARAM} query parameter"
        )
    return front.view(owner)


class RedactKeys(logging.Filter):
    """Blanks the `api_key` query parameter's value in uvicorn's access log lines (a key must never reach a log)."""

    PATTERN = re.compile(rf"((?:^|[?&]){LEGACY_KEY_PARAM}=)[^&\s]*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.PATTERN.sub(r"\1REDACTED", a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_access_log() -> None:
    """Adds RedactKeys to uvicorn's access logger once per process."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactKeys) for f in access.filters):
        access.addFilter(RedactKeys())
