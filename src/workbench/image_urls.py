"""Classify inputs by URL: file:// under the server's folder, http(s) under its allow-list (redirects too)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .errors import ImageUnreadable, InvalidRequest

if TYPE_CHECKING:  # server.py imports this module; the settings type is for annotations only
    from .server import ServerSettings

URL_TIMEOUT_SECONDS = 15.0


def _same_origin_prefix(url: str, prefix: str) -> bool:
    """Whether `url` lies under an allowed prefix: same scheme and host, path below the prefix's path."""
    a, b = urlsplit(url), urlsplit(prefix)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower()) and a.path.startswith(b.path or "/")


class _AllowListRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL that is itself on the allow-list."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not any(_same_origin_prefix(newurl, p) for p in self.prefixes):
            raise InvalidRequest(f"The image URL redirects to {newurl}, which is not on this server's allow-list")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_url(url: str, settings: ServerSettings, max_bytes: int) -> tuple[bytes, str]:
    """The bytes behind an allowed image URL and the URL they came from (after redirects)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        return _read_file_url(url, settings, max_bytes), url
    if scheme not in ("http", "https"):
        raise InvalidRequest(f"Only file:// and http(s):// image URLs are supported, got {url!r}")
    if not any(_same_origin_prefix(url, p) for p in settings.url_prefixes):
        raise InvalidRequest(
            f"Image URLs are allowed only under this server's allow-list (now: {list(settings.url_prefixes) or 'none'}); "
            "start it with --allow-url PREFIX"
        )
    opener = urllib.request.build_opener(_AllowListRedirects(settings.url_prefixes))
    try:
        with opener.open(url, timeout=URL_TIMEOUT_SECONDS) as answer:
            return answer.read(max_bytes + 1), answer.geturl()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ImageUnreadable(f"Could not download {url}: {exc}") from exc


def _read_file_url(url: str, settings: ServerSettings, max_bytes: int) -> bytes:
    if settings.file_url_root is None:
        raise InvalidRequest("file:// URLs are off on this server; start it with --allow-file-root FOLDER")
    root = settings.file_url_root.resolve()
    path = Path(unquote(urlsplit(url).path)).resolve()
    if not path.is_relative_to(root):
        raise InvalidRequest(f"{url} is outside the folder this server may read ({root})")
    if not path.is_file():
        raise ImageUnreadable(f"{url}: no such file")
    with open(path, "rb") as handle:
        return handle.read(max_bytes + 1)
