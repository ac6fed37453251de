"""Classify inputs by URL: file:// under the server's folder, http(s) under its allow-list (redirects too).

A URL is checked in the form the host will read it: its path percent-decoded and its dot segments
removed (RFC 3986 5.2.4) before the prefix check, and then sent in that form, so `/images/%2e%2e/x`
asks the host for `/x` and is refused. Each redirect hop is checked the same way. file:// URLs are
opened below the root one name at a time with O_NOFOLLOW, and only a regular file is read, so no
symbolic link (swapped in or not) leads out of the root and no FIFO or device blocks a thread.
A download has a total deadline, a minimum rate and a per-host cap (see limits.py).
"""

from __future__ import annotations

import errno
import http.client
import os
import re
import socket
import ssl
import stat
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote, unquote, urljoin, urlsplit

from ..core.errors import ImageUnreadable, InvalidRequest, UrlFetchBusy, echo
from ..core.limits import URL_MAX_REDIRECTS
from .settings import ServerSettings

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar without escapes: sent as they are, all else percent-encoded
REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
READ_CHUNK_BYTES = 64 * 1024
USER_AGENT = "workbench-url-classify"


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4: `/a/b/../c/./d` is `/a/c/d`; never climbs above `/`."""
    kept: list[str] = []
    segments = path.split("/")
    for segment in segments[1:] if path.startswith("/") else segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    trailing = segments[-1] in (".", "..")  # `/a/b/..` names the folder `/a/`
    return "/" + "/".join(kept) + ("/" if trailing and kept else "")


def _refuse_control_characters(url: str, text: str) -> None:
    if CONTROL_CHARS.search(text):
        raise InvalidRequest(f"The image URL {echo(url)} holds a control character (a newline, tab, NUL, ...)")


@dataclass(frozen=True)
class HttpTarget:
    """An http(s) URL as the host will read it: lower-case scheme and host, explicit port, decoded dot-free path."""

    scheme: str
    host: str
    port: int
    path: str  # percent-decoded, dot segments removed
    query: str  # as given (control characters already refused)

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + ("" if DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}")

    @property
    def request_target(self) -> str:
        return quote(self.path, safe=PATH_SAFE) + (f"?{self.query}" if self.query else "")

    @property
    def url(self) -> str:
        return self.origin + self.request_target

    def is_under(self, prefix: HttpTarget) -> bool:
        """Same origin, and the path is the prefix's path or below it, whole segments only."""
        if (self.scheme, self.host, self.port) != (prefix.scheme, prefix.host, prefix.port):
            return False
        folder = prefix.path if prefix.path.endswith("/") else prefix.path + "/"
        return self.path == prefix.path or self.path.startswith(folder)


def http_target(url: str) -> HttpTarget:
    """`url` normalised; a 400 for control characters, user info, a bad port or a malformed URL."""
    _refuse_control_characters(url, url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket, a port that is not a number
        raise InvalidRequest(f"The image URL {echo(url)} is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidRequest(f"The image URL {echo(url)} is not an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest(
            f"The image URL {echo(url)} holds a user name or password, which this server does not send"
        )
    path = unquote(parts.path or "/")
    _refuse_control_characters(url, path)
    return HttpTarget(
        scheme,
        parts.hostname.lower().rstrip("."),
        port or DEFAULT_PORTS[scheme],
        remove_dot_segments(path),
        parts.query,
    )


def allowed_target(url: str, prefixes: tuple[str, ...]) -> HttpTarget:
    """The normalised target of `url` if it lies under one of `prefixes` (normalised the same way), else a 400."""
    target = http_target(url)
    if not any(target.is_under(http_target(prefix)) for prefix in prefixes):
        raise InvalidRequest(
            f"Image URLs are allowed only under this server's allow-list (now: {list(prefixes) or 'none'}); "
            f"{echo(url)} reads {echo(target.url)}, which is not under it; start the server with --allow-url PREFIX"
        )
    return target


class UrlFetcher:
    """Fetches image URLs for one server: allow-lists, deadline, minimum rate, and a cap on fetches per host."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()

    def fetch(self, url: str, max_bytes: int) -> tuple[bytes, str]:
        """The bytes behind an allowed image URL and the URL they came from (after redirects)."""
        if not isinstance(url, str):
            raise InvalidRequest(f"An image URL must be a string, got {echo(url)}")
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as exc:  # e.g. an unclosed IPv6 bracket
            raise InvalidRequest(f"The image URL {echo(url)} is malformed: {exc}") from None
        if scheme == "file":
            return read_file_url(url, self.settings, max_bytes), url
        if scheme not in DEFAULT_PORTS:
            raise InvalidRequest(f"Only file:// and http(s):// image URLs are supported, got {echo(url)}")
        return self._download(url, allowed_target(url, self.settings.url_prefixes), max_bytes)

    @contextmanager
    def _slot(self, origin: str) -> Iterator[None]:
        """One of the host's URL_FETCHES_PER_HOST slots, or a 503 at once when all are taken."""
        with self._lock:
            if self._in_flight[origin] >= self.settings.url_fetches_per_host:
                raise UrlFetchBusy(
                    f"{origin} already has {self.settings.url_fetches_per_host} image downloads in flight from this "
                    "server (its per-host cap); try again shortly"
                )
            self._in_flight[origin] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[origin] -= 1
                if not self._in_flight[origin]:
                    del self._in_flight[origin]

    def _download(self, url: str, target: HttpTarget, max_bytes: int) -> tuple[bytes, str]:
        started, resolved = time.monotonic(), url
        for _ in range(URL_MAX_REDIRECTS + 1):
            with self._slot(target.origin):
                status, location, body = self._get(url, target, started, max_bytes)
            if status in REDIRECTS and location is not None:
                hop = urljoin(target.url, location)
                try:
                    target = allowed_target(hop, self.settings.url_prefixes)
                except InvalidRequest as exc:
                    raise InvalidRequest(f"The image URL {echo(url)} redirects to {echo(hop)}: {exc.message}") from None
                resolved = target.url
                continue
            if status != 200:
                raise ImageUnreadable(f"Could not download {echo(url)}: HTTP {status} from {echo(target.url)}")
            return body, resolved
        raise ImageUnreadable(f"Could not download {echo(url)}: more than {URL_MAX_REDIRECTS} redirects")

    def _get(self, url: str, target: HttpTarget, started: float, max_bytes: int) -> tuple[int, str | None, bytes]:
        """One GET of `target`: status, Location, body; cut at the deadline by a timer that shuts the socket."""
        deadline = started + self.settings.url_fetch_deadline_s
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._too_slow(url, "deadline")
        if target.scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                target.host, target.port, timeout=remaining, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(target.host, target.port, timeout=remaining)
        cut = threading.Event()

        def cut_at_deadline() -> None:
            cut.set()
            sock = connection.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # a recv blocked in the fetching thread returns at once
                except OSError:
                    pass

        timer = threading.Timer(remaining, cut_at_deadline)
        timer.daemon = True
        timer.start()
        try:
            connection.request(
                "GET",
                target.request_target,
                headers={"User-Agent": USER_AGENT, "Accept": "image/*", "Connection": "close"},
            )
            sock = connection.sock  # kept: the response owns the socket once the connection lets go of it
            answer = connection.getresponse()
            if answer.status != 200:
                return answer.status, answer.getheader("Location"), b""
            body = self._read_body(url, answer, sock, started, deadline, max_bytes)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if cut.is_set():
                raise self._too_slow(url, "deadline") from None
            raise ImageUnreadable(f"Could not download {echo(url)}: {exc}") from None
        finally:
            timer.cancel()
            connection.close()
        if cut.is_set():  # the socket was shut: what came may be cut short
            raise self._too_slow(url, "deadline")
        return 200, None, body

    def _read_body(
        self,
        url: str,
        answer: http.client.HTTPResponse,
        sock: socket.socket | None,
        started: float,
        deadline: float,
        max_bytes: int,
    ) -> bytes:
        """The body, up to max_bytes + 1 (the engine reports the limit); a 400 below the minimum rate."""
        grace, rate = self.settings.url_rate_grace_s, self.settings.url_min_bytes_per_s
        chunks, received = [], 0
        while received <= max_bytes:
            now = time.monotonic()
            need_more_by = max(started + grace, started + received / rate)  # after it the average rate is too low
            wait = min(deadline, need_more_by) - now
            if wait <= 0:
                raise self._too_slow(url, "deadline" if now >= deadline else "rate")
            if sock is not None:
                sock.settimeout(wait)
            try:
                chunk = answer.read1(READ_CHUNK_BYTES)
            except TimeoutError:
                raise self._too_slow(url, "deadline" if time.monotonic() >= deadline else "rate") from None
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
        return b"".join(chunks)[: max_bytes + 1]

    def _too_slow(self, url: str, why: str) -> ImageUnreadable:
        s = self.settings
        if why == "rate":
            return ImageUnreadable(
                f"Could not download {echo(url)}: slower than {s.url_min_bytes_per_s} bytes/s "
                f"after {s.url_rate_grace_s:g} s (this server's minimum rate)"
            )
        return ImageUnreadable(
            f"Could not download {echo(url)}: not done within {s.url_fetch_deadline_s:g} s "
            "(this server's deadline for one image URL)"
        )


# ------------------------------------------------------------------ file:// URLs


def _file_url_path(url: str) -> PurePosixPath:
    """The absolute, dot-free path a file:// URL names; a 400 for a host, a NUL or another control character."""
    _refuse_control_characters(url, url.replace("%00", ""))  # %00 gets its own message below
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InvalidRequest(
            f"The file URL {echo(url)} names the host {echo(parts.netloc)}; "
            "file URLs on this server name none (file:///path)"
        )
    text = unquote(parts.path)
    if "\x00" in text:
        raise InvalidRequest(f"The file URL {echo(url)} holds a NUL character (%00), which no file name may hold")
    _refuse_control_characters(url, text)
    return PurePosixPath(remove_dot_segments(text or "/"))


def _names_below_root(url: str, path: PurePosixPath, root: os.PathLike) -> tuple[str, tuple[str, ...]]:
    """The root folder to open (as configured, or resolved) and the names below it that `path` walks."""
    configured = os.path.abspath(root)
    for candidate in dict.fromkeys((configured, os.path.realpath(root))):
        if path.is_relative_to(candidate):
            return candidate, path.relative_to(candidate).parts
    raise InvalidRequest(f"{echo(url)} is outside the folder this server may read ({configured})")


def read_file_url(url: str, settings: ServerSettings, max_bytes: int) -> bytes:
    """Up to max_bytes + 1 bytes of a regular file under the file root, opened with no symbolic link followed."""
    if settings.file_url_root is None:
        raise InvalidRequest("file:// URLs are off on this server; start it with --allow-file-root FOLDER")
    root, names = _names_below_root(url, _file_url_path(url), settings.file_url_root)
    if not names:
        raise ImageUnreadable(f"{echo(url)}: a folder, not a file")
    fds: list[int] = []
    try:
        fds.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        for name in names[:-1]:
            fds.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fds[-1]))
        # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer; fstat then refuses it
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        fds.append(os.open(names[-1], flags, dir_fd=fds[-1]))
        if not stat.S_ISREG(os.fstat(fds[-1]).st_mode):
            raise ImageUnreadable(f"{echo(url)}: not a regular file (a folder, FIFO, socket or device)")
        return _read_up_to(fds[-1], max_bytes + 1)
    except OSError as exc:
        if fds and exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(fds[-1], names[len(fds) - 1]):
            raise ImageUnreadable(f"{echo(url)}: a symbolic link (or a loop of them); file URLs follow none") from None
        if exc.errno == errno.ENAMETOOLONG:
            raise InvalidRequest(f"The file URL {echo(url)} is not a usable path: {exc.strerror}") from None
        if exc.errno == errno.ENOENT:
            raise ImageUnreadable(f"{echo(url)}: no such file") from None
        raise ImageUnreadable(f"{echo(url)}: cannot be read as a file ({exc.strerror})") from None
    finally:
        for fd in fds:
            os.close(fd)


def _is_link(folder_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks, received = [], 0
    while received < limit:
        chunk = os.read(fd, min(READ_CHUNK_BYTES, limit - received))
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)
