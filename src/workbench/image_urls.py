"""Classify inputs by URL: file:// under the server's folder, http(s) under its allow-list (redirects too)."""

from __future__ import annotations

import errno
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .errors import ImageUnreadable, InvalidRequest, echo

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
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise InvalidRequest(f"The image URL {echo(url)} is malformed: {exc}") from None
    if scheme == "file":
        return _read_file_url(url, settings, max_bytes), url
    if scheme not in ("http", "https"):
        raise InvalidRequest(f"Only file:// and http(s):// image URLs are supported, got {echo(url)}")
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
        raise ImageUnreadable(f"Could not download {echo(url)}: {exc}") from exc


def _file_path(url: str) -> Path:
    """The absolute path a file:// URL names; a 400 for a NUL character or a name the system cannot hold."""
    text = unquote(urlsplit(url).path)
    if "\x00" in text:
        raise InvalidRequest(f"The file URL {echo(url)} holds a NUL character (%00), which no file name may hold")
    try:
        return Path(text).resolve()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise InvalidRequest(f"The file URL {echo(url)} is not a usable path: {exc.strerror}") from None
    except RuntimeError:  # pathlib's word for a symbolic link loop
        raise ImageUnreadable(f"{echo(url)}: a loop of symbolic links, not a file") from None


def _read_file_url(url: str, settings: ServerSettings, max_bytes: int) -> bytes:
    if settings.file_url_root is None:
        raise InvalidRequest("file:// URLs are off on this server; start it with --allow-file-root FOLDER")
    root = settings.file_url_root.resolve()
    path = _file_path(url)
    if not path.is_relative_to(root):
        raise InvalidRequest(f"{echo(url)} is outside the folder this server may read ({root})")
    try:
        if not path.is_file():  # a folder, a FIFO or nothing at all
            raise ImageUnreadable(f"{echo(url)}: no such file")
        with open(path, "rb") as handle:
            return handle.read(max_bytes + 1)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise InvalidRequest(f"The file URL {echo(url)} is not a usable path: {exc.strerror}") from None
        raise ImageUnreadable(f"{echo(url)}: cannot be read as a file ({exc.strerror})") from None
