"""A hostile image host on 127.0.0.1 (a real http.server in a thread): files, redirects out of a prefix, trickles.

It serves `images/ok.jpg` and, outside the `/images/` prefix a server would allow, `secret.jpg`, both
real tutorial photos. Like most hosts it resolves `..` and `%2e%2e` itself, so a request for
`/images/../secret.jpg` reaches the secret: every path asked for is noted, and `escapes()` lists
those that left the prefix. Used by tests/reliability/test_hostile_urls.py and bench/campaign_urls_keys.py.
"""

from __future__ import annotations

import functools
import http.server
import posixpath
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX_PATH = "/images/"
TRICKLE_MAX_S = 60.0  # a trickle ends by itself after this, so a client that never gives up is not held forever


class HostileSite:
    """`with HostileSite(folder, ok_image, secret_image) as site:` serves on `site.url` until the block ends."""

    def __init__(self, folder: Path, ok_image: Path, secret_image: Path) -> None:
        (folder / "images").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ok_image, folder / "images" / "ok.jpg")
        shutil.copyfile(secret_image, folder / "secret.jpg")
        self.folder = folder
        self.paths: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        handler = functools.partial(_Handler, self, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def prefix(self) -> str:
        return self.url + PREFIX_PATH

    def note(self, path: str) -> None:
        with self._lock:
            self.paths.append(path)

    def escapes(self) -> list[str]:
        """Paths asked for that this host resolved to a file outside `/images/`."""
        with self._lock:
            return [p for p in self.paths if not served_path(p).startswith(PREFIX_PATH)]

    def __enter__(self) -> HostileSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()  # ends every trickle
        self.server.shutdown()
        self.server.server_close()


def served_path(raw: str) -> str:
    """The path SimpleHTTPRequestHandler reads for a request path: decoded, dot segments resolved."""
    path = posixpath.normpath(unquote(urlsplit(raw).path))
    return path + "/" if raw.rstrip("?").endswith("/") and path != "/" else path


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, site: HostileSite, *args, **kwargs) -> None:
        self.site = site
        super().__init__(*args, **kwargs)

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.site.note(self.path)
        path = urlsplit(self.path).path
        if path == "/images/redirect-out":  # an absolute Location whose raw path starts with the prefix
            return self._redirect(f"{self.site.url}/images/../secret.jpg")
        if path == "/images/redirect-in":
            return self._redirect(f"{self.site.url}/images/ok.jpg")
        if path == "/images/trickle.jpg":  # ?bytes=N&every=S: N bytes every S seconds of a 10 MB body
            query = parse_qs(urlsplit(self.path).query)
            return self._trickle(int(query.get("bytes", ["1"])[0]), float(query.get("every", ["1"])[0]))
        super().do_GET()

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _trickle(self, size: int, every_s: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(10 * 1024 * 1024))
        self.end_headers()
        ends = time.monotonic() + TRICKLE_MAX_S
        try:
            while time.monotonic() < ends and not self.site.stop.wait(every_s):
                self.wfile.write(b"\xff" * size)
                self.wfile.flush()
        except OSError:  # the client gave up: what a fixed server does
            pass
        self.close_connection = True
