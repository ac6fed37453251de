"""Campaign part (issue 22, item 2): idle, slowloris and slow-body connections against a real `workbench serve`.

The server starts with the common soft open-file limit of 1,024 (its hard limit left as it is), as a
service started from a login shell would. Then, one after the other:

- 500 slowloris connections: each sends a request line and then one header line every 5 s, and is
  opened again when the server closes it, for 30 s; meanwhile a legitimate classify (dogs.jpg) and
  a classifier list, each on a new connection, every 0.5 s. Figures: their p50/p99, how many
  slowloris sockets the server closed, and how long after connecting.
- 1,100 idle sockets (connected, nothing sent) held for 20 s, with a legitimate classify and list
  every second meanwhile: past 1,024 files `accept` fails (EMFILE) unless the server raised its limit.
- one 50 MB classify body sent at 8 KiB/s: its outcome within 60 s.

    PYTHONPATH=src python -m bench.campaign_connections [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import selectors
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.campaign_common import DOGS_JPG, KEYS, VERSION, Server, percentile

SERVER_SOFT_FILES = 1024  # the common default soft limit the campaign found EMFILE at
SLOWLORIS = 500
SLOWLORIS_EVERY_S = 5.0  # one more header line per socket this often: under most servers' idle timeouts
SLOWLORIS_S = 30.0
LEGIT_EVERY_S = 0.5
LEGIT_TIMEOUT_S = 10.0
IDLE_SOCKETS = 1100
IDLE_S = 20.0
SLOW_BODY_BYTES = 50 * 1024 * 1024
SLOW_BODY_BYTES_PER_S = 8 * 1024
SLOW_BODY_BOUND_S = 60.0
BOUNDARY = "campaignconnectionsboundary"


@contextlib.contextmanager
def soft_open_files(limit: int) -> Iterator[None]:
    """This process's soft RLIMIT_NOFILE lowered to `limit` (children started meanwhile inherit it), then restored."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_files_limit(pid: int) -> str:
    """`soft/hard` open files of a process, from /proc/<pid>/limits."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return f"{soft}/{hard}"
    return "?"


class Holders(threading.Thread):
    """`count` sockets held open on the server: each sends `first`, then `trickle` every `every_s` (if any).

    Notes when the server closes each one (recv gives b"" or a reset), and opens another in its place if `reopen`.
    """

    def __init__(
        self,
        address: tuple[str, int],
        count: int,
        first: bytes,
        trickle: bytes = b"",
        every_s: float = 0.0,
        reopen: bool = False,
    ) -> None:
        super().__init__(daemon=True)
        self.address, self.count, self.first, self.trickle, self.every_s, self.reopen = (
            address,
            count,
            first,
            trickle,
            every_s,
            reopen,
        )
        self.selector = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.opened, self.connect_failures = 0, 0
        self.closed_after_s: list[float] = []
        self.ready = threading.Event()

    def _open(self) -> None:
        try:
            sock = socket.create_connection(self.address, timeout=5)
            if self.first:
                sock.sendall(self.first)
        except OSError:
            self.connect_failures += 1
            return
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, time.monotonic())
        self.opened += 1

    def _closed(self, key: selectors.SelectorKey) -> None:
        self.closed_after_s.append(time.monotonic() - key.data)
        self.selector.unregister(key.fileobj)
        key.fileobj.close()  # type: ignore[union-attr]
        if self.reopen and not self.stop.is_set():
            self._open()

    def run(self) -> None:
        for _ in range(self.count):
            self._open()
        self.ready.set()
        next_trickle = time.monotonic() + self.every_s
        while not self.stop.is_set():
            for key, _ in self.selector.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(4096)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._closed(key)
            if self.trickle and time.monotonic() >= next_trickle:
                next_trickle += self.every_s
                for key in list(self.selector.get_map().values()):
                    try:
                        key.fileobj.send(self.trickle)  # type: ignore[union-attr]
                    except OSError:
                        self._closed(key)

    def open_now(self) -> int:
        return len(self.selector.get_map())

    def finish(self) -> None:
        self.stop.set()
        self.join()
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()


def legit_classifies(url: str, seconds: float, every_s: float) -> dict:
    """A classify of dogs.jpg, then a classifier list, each on a new connection, every `every_s` for `seconds`.

    The list costs the server almost nothing, so its latency is the connection handling's alone;
    the classify's includes the backbone, whose time depends on how busy the cores are.
    """
    dogs = DOGS_JPG.read_bytes()
    latencies: dict[str, list[float]] = {"classify": [], "list": []}
    failures = []
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection for every request, through accept
    end = time.monotonic() + seconds
    with httpx.Client(base_url=url, auth=("apikey", KEYS["alice"]), timeout=LEGIT_TIMEOUT_S, limits=fresh) as client:
        while time.monotonic() < end:
            began = time.monotonic()
            for kind in ("classify", "list"):
                started = time.monotonic()
                try:
                    if kind == "classify":
                        answer = client.post(
                            "/v3/classify", params=VERSION, files={"images_file": ("dogs.jpg", dogs, "image/jpeg")}
                        )
                    else:
                        answer = client.get("/v3/classifiers", params=VERSION)
                    ok, why = answer.status_code == 200, f"{kind} {answer.status_code}"
                except httpx.HTTPError as exc:
                    ok, why = False, f"{kind} {type(exc).__name__}"
                latencies[kind].append(time.monotonic() - started)
                if not ok:
                    failures.append(why)
            time.sleep(max(0.0, every_s - (time.monotonic() - began)))
    classify, listing = latencies["classify"], latencies["list"]
    return {
        "requests": len(classify) + len(listing),
        "failures": len(failures),
        "failure_kinds": sorted(set(failures)),
        "p50_ms": round(1000 * percentile(classify, 0.5)),
        "p99_ms": round(1000 * percentile(classify, 0.99)),
        "list_p50_ms": round(1000 * percentile(listing, 0.5)),
        "list_p99_ms": round(1000 * percentile(listing, 0.99)),
    }


def closes(holders: Holders) -> dict:
    after = sorted(holders.closed_after_s)
    return {
        "opened": holders.opened,
        "connect_failures": holders.connect_failures,
        "closed_by_server": len(after),
        "close_after_s_min": round(after[0], 1) if after else None,
        "close_after_s_median": round(percentile(after, 0.5), 1) if after else None,
        "close_after_s_max": round(after[-1], 1) if after else None,
    }


def run_slowloris(server: Server) -> dict:
    first = f"POST /v3/classify?version={VERSION['version']} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
    holders = Holders(
        ("127.0.0.1", server.port), SLOWLORIS, first, trickle=b"X-Slow: 1\r\n", every_s=SLOWLORIS_EVERY_S, reopen=True
    )
    holders.start()
    holders.ready.wait()
    try:
        legit = legit_classifies(server.url, SLOWLORIS_S, LEGIT_EVERY_S)
        open_at_end = holders.open_now()
    finally:
        holders.finish()
    return {
        "slowloris": SLOWLORIS,
        "seconds": SLOWLORIS_S,
        "legit": legit,
        "open_at_end": open_at_end,
        **closes(holders),
    }


def run_idle(server: Server) -> dict:
    holders = Holders(("127.0.0.1", server.port), IDLE_SOCKETS, b"")
    holders.start()
    holders.ready.wait()
    try:
        legit = legit_classifies(server.url, IDLE_S, 1.0)
        open_at_end = holders.open_now()
    finally:
        holders.finish()
    return {
        "idle_sockets": IDLE_SOCKETS,
        "seconds": IDLE_S,
        "legit": legit,
        "open_at_end": open_at_end,
        **closes(holders),
    }


def run_slow_body(server: Server) -> dict:
    """A 50 MB classify body at 8 KiB/s: the server's answer and when (or that it was still reading at the bound)."""
    part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="images_file"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    head = (
        f"POST /v3/classify?version={VERSION['version']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {KEYS['alice']}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {SLOW_BODY_BYTES}\r\n\r\n"
    ).encode()
    chunk = b"\xff" * (SLOW_BODY_BYTES_PER_S // 10)
    sent, answer, closed = len(part), b"", False
    memory_before = server.memory()["rss_mb"]
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head + part)
        sock.settimeout(0.1)
        while time.monotonic() - started < SLOW_BODY_BOUND_S:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if not answer:
                    try:
                        sock.sendall(chunk)
                        sent += len(chunk)
                    except OSError:
                        closed = True
                        break
                continue
            except OSError:
                closed = True
                break
            if not data:
                closed = True
                break
            answer += data
        seconds = time.monotonic() - started
    status_line, _, rest = answer.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return {
        "body_bytes": SLOW_BODY_BYTES,
        "bytes_per_s": SLOW_BODY_BYTES_PER_S,
        "sent_bytes": sent,
        "status": status_line.decode("latin-1") or None,
        "error": body.decode("utf-8", "replace")[:300] or None,
        "closed_by_server": closed,
        "seconds": round(seconds, 1),
        "server_rss_mb_before_after": [memory_before, server.memory()["rss_mb"]],
    }


def run_connections(folder: Path) -> dict:
    home = folder / "home"
    home.mkdir(parents=True)
    server = Server(home)
    with soft_open_files(SERVER_SOFT_FILES):
        server.start()
    try:
        with server.client("alice") as client:  # loads the backbone before anything is timed
            client.post(
                "/v3/classify", params=VERSION, files={"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")}
            )
        results: dict = {
            "bench_open_files": "/".join(map(str, resource.getrlimit(resource.RLIMIT_NOFILE))),
            "server_started_with_soft_files": SERVER_SOFT_FILES,
            "server_open_files": open_files_limit(server.pid),
            "quiet": legit_classifies(server.url, 10.0, LEGIT_EVERY_S),
        }
        results["slowloris"] = run_slowloris(server)
        results["idle"] = run_idle(server)
        results["slow_body"] = run_slow_body(server)
        results["server_alive"] = server.process is not None and server.process.poll() is None
    finally:
        server.stop()
    log = home.parent / f"server-{server.port}.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    results["server_log_emfile_lines"] = text.count("Too many open files")
    return results


def describe(result: dict) -> list[str]:
    """Table lines for the connections part."""
    loris, idle, body = result["slowloris"], result["idle"], result["slow_body"]
    loris_label = f"  beside {loris['slowloris']} slowloris for {int(loris['seconds'])} s: p50 / p99"
    idle_label = f"  beside {idle['idle_sockets']} idle sockets for {int(idle['seconds'])} s: p50 / p99"

    def legit(row: dict) -> str:
        return (
            f"{row['p50_ms']} / {row['p99_ms']} ms; list {row['list_p50_ms']} / {row['list_p99_ms']} ms; "
            f"{row['failures']} of {row['requests']} failed {' '.join(row['failure_kinds'])}"
        ).rstrip()

    return [
        f"{'open files: server (started at soft ' + str(result['server_started_with_soft_files']) + ') / bench':<58} "
        f"{result['server_open_files']} / {result['bench_open_files']}",
        f"{'classify (and list) alone: p50 / p99':<58} {legit(result['quiet'])}",
        f"{loris_label:<58} {legit(loris['legit'])}",
        f"{'  slowloris opened / closed by server / open at end':<58} "
        f"{loris['opened']} / {loris['closed_by_server']} / {loris['open_at_end']}",
        f"{'  closed after s (min / median / max)':<58} "
        f"{loris['close_after_s_min']} / {loris['close_after_s_median']} / {loris['close_after_s_max']}",
        f"{idle_label:<58} {legit(idle['legit'])}",
        f"{'  idle opened / closed by server (median s) / open at end':<58} "
        f"{idle['opened']} / {idle['closed_by_server']} ({idle['close_after_s_median']}) / {idle['open_at_end']}",
        f"{'  server log lines with EMFILE':<58} {result['server_log_emfile_lines']}",
        f"{'  50 MB body at 8 KiB/s: answer, after s, closed':<58} "
        f"{body['status'] or 'none'}, {body['seconds']}, {body['closed_by_server']} ({body['sent_bytes']} bytes sent)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the results here as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="campaign-connections-") as folder:
        result = run_connections(Path(folder))
    print(json.dumps(result, indent=2))
    print("\n".join(describe(result)))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
