"""What one server accepts, as one frozen value: `ServerSettings`, filled from `workbench serve`'s flags.

Body size, images per classify call, the URL allow-lists and their fetch limits, connection
timeouts, keys or not, and the names a Host header may carry. The defaults are in core/limits.py;
the middleware, the URL fetcher and uvicorn's options read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.limits import (
    HTTP_BODY_IDLE_S,
    HTTP_BODY_MIN_BYTES_PER_S,
    HTTP_BODY_RATE_GRACE_S,
    HTTP_HEADER_TIMEOUT_S,
    HTTP_KEEP_ALIVE_S,
    MAX_CLASSIFY_IMAGES_HTTP,
    URL_FETCH_DEADLINE_S,
    URL_FETCH_THREADS,
    URL_FETCHES_PER_HOST,
    URL_MIN_BYTES_PER_S,
    URL_QUEUE_WAIT_S,
    URL_RATE_GRACE_S,
)

MAX_BODY_BYTES = 257 * 1024 * 1024  # Watson: 256 MB per call, plus room for the multipart framing


@dataclass(frozen=True)
class ServerSettings:
    """What this server accepts: body size, images per classify call, URL sources, connection timeouts, keys or not."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_classify_images: int = MAX_CLASSIFY_IMAGES_HTTP
    file_url_root: Path | None = None  # file:// URLs are allowed under this folder only
    url_prefixes: tuple[str, ...] = ()  # http(s) URLs are allowed under these prefixes only
    auth: bool = True
    url_fetch_deadline_s: float = URL_FETCH_DEADLINE_S
    url_min_bytes_per_s: float = URL_MIN_BYTES_PER_S
    url_rate_grace_s: float = URL_RATE_GRACE_S
    url_fetches_per_host: int = URL_FETCHES_PER_HOST
    url_fetch_threads: int = URL_FETCH_THREADS
    url_queue_wait_s: float = URL_QUEUE_WAIT_S
    http_header_timeout_s: float = HTTP_HEADER_TIMEOUT_S  # request line + headers, from connecting or the last answer
    http_keep_alive_s: int = HTTP_KEEP_ALIVE_S  # silence after an answer (uvicorn's timeout_keep_alive)
    body_min_bytes_per_s: float = HTTP_BODY_MIN_BYTES_PER_S  # 0: no minimum rate
    body_rate_grace_s: float = HTTP_BODY_RATE_GRACE_S
    body_idle_s: float = HTTP_BODY_IDLE_S
    bind_host: str | None = None  # the address served on (serve() fills it in); a Host header may name it
    allowed_hosts: tuple[str, ...] = ()  # more names a Host header may carry (--allowed-host); "*" for any
