"""Campaign part (issue 22): legitimate classify while 50 slow URL hosts and 500 slowloris connections run at once.

The URL part (bench/campaign_urls_keys.py) and the connections part (bench/campaign_connections.py) each
measure one attack alone; here both run together on one `workbench serve`, started at the common soft
open-file limit of 1,024 like the connections part:

- 50 hosts on 127.0.0.1 that each trickle 1 byte every 10 s, each fetched by classify-by-URL again as soon
  as its previous fetch is answered, so all 50 are in flight for the whole window;
- 500 slowloris connections (a request line, then a header line every 5 s, reopened when closed);
- meanwhile, for 30 s, a classify of dogs.jpg and a classifier list, each on a new connection, every 0.5 s.

Figures: the legitimate classify's (and list's) p50/p99 and failures (and the same for 10 s before any attack,
what the machine's load alone costs), the slow fetches' answers, and how many
slowloris sockets the server closed.

    PYTHONPATH=src python -m bench.campaign_together
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from pathlib import Path

from bench.campaign_common import DOGS_JPG, VERSION, Server
from bench.campaign_connections import (
    LEGIT_EVERY_S,
    SERVER_SOFT_FILES,
    SLOWLORIS,
    SLOWLORIS_EVERY_S,
    SLOWLORIS_S,
    Holders,
    closes,
    legit_classifies,
    soft_open_files,
)
from bench.campaign_urls_keys import OK_IMAGE, SECRET_IMAGE, SLOW_HOSTS, HostileSite, get

QUIET_S = 10


def slow_fetches(
    server: Server, urls: list[str], stop: threading.Event
) -> tuple[list[threading.Thread], dict[str, int]]:
    """One thread per URL, classifying it by URL again and again until `stop`; the answers counted by status."""
    answers: dict[str, int] = {}
    lock = threading.Lock()

    def fetch_until_stopped(url: str) -> None:
        with server.client("alice") as client:
            while not stop.is_set():
                began = time.monotonic()
                answer = get(client, url, 120.0)
                stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))  # a quick refusal is not retried in a busy loop
                key = str(answer.status_code) if not isinstance(answer, Exception) else type(answer).__name__
                with lock:
                    answers[key] = answers.get(key, 0) + 1

    threads = [threading.Thread(target=fetch_until_stopped, args=(url,), daemon=True) for url in urls]
    for thread in threads:
        thread.start()
    return threads, answers


def run_together(folder: Path) -> dict:
    home = folder / "home"
    home.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        sites = [
            stack.enter_context(HostileSite(folder / f"slow{i}", OK_IMAGE, SECRET_IMAGE)) for i in range(SLOW_HOSTS)
        ]
        server = Server(home, extra_args=tuple(arg for site in sites for arg in ("--allow-url", site.prefix)))
        with soft_open_files(SERVER_SOFT_FILES):
            server.start()
        stack.callback(server.stop)
        with server.client("alice") as client:  # loads the backbone before anything is timed
            client.post(
                "/v3/classify", params=VERSION, files={"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")}
            )
        quiet = legit_classifies(
            server.url, QUIET_S, LEGIT_EVERY_S
        )  # the same requests with no attack: what the load costs
        first = f"POST /v3/classify?version={VERSION['version']} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
        holders = Holders(
            ("127.0.0.1", server.port),
            SLOWLORIS,
            first,
            trickle=b"X-Slow: 1\r\n",
            every_s=SLOWLORIS_EVERY_S,
            reopen=True,
        )
        holders.start()
        holders.ready.wait()
        stop = threading.Event()
        threads, answers = slow_fetches(
            server, [f"{site.url}/images/trickle.jpg?bytes=1&every=10" for site in sites], stop
        )
        try:
            time.sleep(2.0)  # the slow fetches are at their hosts before the legitimate requests start
            legit = legit_classifies(server.url, SLOWLORIS_S, LEGIT_EVERY_S)
            open_at_end = holders.open_now()
        finally:
            stop.set()
            holders.finish()
        for thread in threads:
            thread.join(130.0)
        alive = server.process is not None and server.process.poll() is None
    return {
        "slow_hosts": SLOW_HOSTS,
        "slowloris": SLOWLORIS,
        "window_s": SLOWLORIS_S,
        "quiet": quiet,
        "legit": legit,
        "slow_answers": answers,
        "slow_fetches_unanswered": sum(t.is_alive() for t in threads),
        "slowloris_open_at_end": open_at_end,
        **{"slowloris_" + k: v for k, v in closes(holders).items()},
        "server_alive": alive,
    }


def describe(result: dict) -> list[str]:
    """Table lines for the combined part."""
    legit, quiet = result["legit"], result["quiet"]
    beside = (
        f"beside {result['slow_hosts']} slow URL hosts + {result['slowloris']} slowloris, {int(result['window_s'])} s"
    )
    return [
        f"{'no attack, ' + str(QUIET_S) + ' s':<58} classify p50 / p99 {quiet['p50_ms']} / {quiet['p99_ms']} ms; "
        f"list {quiet['list_p50_ms']} / {quiet['list_p99_ms']} ms; {quiet['failures']} of {quiet['requests']} failed",
        f"{beside:<58} classify p50 / p99 {legit['p50_ms']} / {legit['p99_ms']} ms; "
        f"list {legit['list_p50_ms']} / {legit['list_p99_ms']} ms; {legit['failures']} of {legit['requests']} failed",
        f"{'  slow fetch answers / unanswered at the end':<58} "
        f"{result['slow_answers']} / {result['slow_fetches_unanswered']}",
        f"{'  slowloris opened / closed by server / open at end':<58} "
        f"{result['slowloris_opened']} / {result['slowloris_closed_by_server']} / {result['slowloris_open_at_end']}",
    ]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="together-") as tmp:
        outcome = run_together(Path(tmp))
    print(json.dumps(outcome, indent=2))
    print("\n".join(describe(outcome)))
