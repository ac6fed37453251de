"""Campaign part 5 (issue 22): classify-by-URL attacks on a real `workbench serve`, and racing `workbench keys`.

URLs: a hostile image host on 127.0.0.1 (tests/reliability/hostile_site.py, which resolves `..`
itself) and a file root are attacked with dot segments, encoded dots, redirects, control characters,
a host in a file URL, a symlink swapped in and out while requests run, and a FIFO swapped in. An
escape is an answer that classified the secret image outside the prefix or root, or a request the
host received for a path outside the prefix. A hung thread is a request with no answer in 30 s.
Then 50 hosts that each trickle 1 byte every 10 s are fetched at once while uploads are classified
and classifiers listed: their latency is the figure.

Keys: 100 rounds of one `keys remove` racing four `keys add`, each in its own forked process running
the CLI's main (the real flock and file; a fork skips the 2 s interpreter start); a lost key is a
printed key that does not work, or a removed key that works again.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path

import httpx

from bench.campaign_common import DOGS_JPG, ROOT, TUTORIAL, VERSION, Server, percentile, verdict

sys.path.insert(0, str(ROOT / "tests"))  # the hostile host the tests use: one copy for both
from reliability.hostile_site import HostileSite

OK_IMAGE = sorted((TUTORIAL / "beagle").iterdir())[0]
SECRET_IMAGE = sorted((TUTORIAL / "husky").iterdir())[0]
HUNG_S = 30.0
SLOW_HOSTS = 50
LEGIT_REQUESTS = 40  # half upload classify, half GET /v3/classifiers, while the slow hosts run
LEGIT_TIMEOUT_S = 10.0
SWAP_REQUESTS = 600
FIFO_REQUESTS = 600
CLIENTS = 8
KEY_ROUNDS = 100
ADDS_PER_ROUND = 4


# URLs ---------------------------------------------------------------------------------------------
def classified_an_image(answer: httpx.Response | Exception) -> bool:
    """A 200 whose every image has classes: the bytes behind the URL were read and scored."""
    if isinstance(answer, Exception) or answer.status_code != 200:
        return False
    images = answer.json().get("images", [])
    return bool(images) and all("error" not in image for image in images)


def get(client: httpx.Client, url: str, timeout: float = HUNG_S) -> httpx.Response | Exception:
    try:
        return client.get("/v3/classify", params={**VERSION, "url": url}, timeout=timeout)
    except httpx.HTTPError as exc:
        return exc


def prefix_attacks(site: HostileSite, root: Path) -> dict[str, str]:
    """Attack name -> URL; each aims at the secret image outside the prefix or root, except the three marked."""
    return {
        "dot segments /images/../secret.jpg": f"{site.url}/images/../secret.jpg",
        "encoded dots %2e%2e": f"{site.url}/images/%2e%2e/secret.jpg",
        "encoded dots %2E%2E": f"{site.url}/images/%2E%2E/secret.jpg",
        "./.. segments": f"{site.url}/images/./../secret.jpg",
        "encoded slash ..%2f": f"{site.url}/images/..%2fsecret.jpg",
        "redirect to /images/../secret.jpg": f"{site.url}/images/redirect-out",
        "newline in url": f"{site.url}/images/ok\n.jpg",  # aims at a 500, not the secret
        "CRLF header injection in url": f"{site.url}/images/ok.jpg\r\nX-Injected: 1",  # aims at a 500
        "file URL with a host (file://evil.com)": f"file://evil.com{root}/ok.jpg",  # aims at being accepted
        "file URL ../ escape": f"file://{root}/../secret.jpg",
        "file URL through a symlink to outside": f"file://{root}/outside.jpg",
    }


def run_prefix_attacks(server: Server, site: HostileSite, root: Path) -> list[dict]:
    rows = []
    with server.client("alice") as client:
        for name, url in prefix_attacks(site, root).items():
            asked = len(site.paths)
            answer = get(client, url)
            host_escapes = [p for p in site.paths[asked:] if p in site.escapes()]
            aims_at_secret = "secret" in url or "redirect-out" in url or "outside" in url
            rows.append(
                {
                    "attack": name,
                    "verdict": verdict(answer),
                    "status": answer.status_code if isinstance(answer, httpx.Response) else repr(answer)[:120],
                    "escaped": (aims_at_secret and classified_an_image(answer)) or bool(host_escapes),
                    "accepted": classified_an_image(answer),
                    "host_asked_outside": host_escapes,
                }
            )
    return rows


def swapping(stop: threading.Event, path: Path, make_other) -> None:
    """Swaps `path` between a non-image regular file and what `make_other(tmp)` makes, atomically, until stopped."""
    regular, other = path.with_name(".regular"), path.with_name(".other")
    while not stop.is_set():
        regular.write_bytes(b"not an image\n")
        os.replace(regular, path)
        make_other(other)
        os.replace(other, path)


def run_swap(server: Server, root: Path, name: str, make_other, requests: int) -> dict:
    """`requests` classify calls of file://root/name while it is swapped; escapes, hung threads, statuses."""
    stop = threading.Event()
    swapper = threading.Thread(target=swapping, args=(stop, root / name, make_other), daemon=True)
    swapper.start()
    url = f"file://{root}/{name}"
    try:
        with server.client("alice") as client, concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(lambda _: get(client, url), range(requests)))
    finally:
        stop.set()
        swapper.join()
    statuses: dict[str, int] = {}
    for answer in answers:
        key = str(answer.status_code) if isinstance(answer, httpx.Response) else type(answer).__name__
        statuses[key] = statuses.get(key, 0) + 1
    return {
        "requests": requests,
        "escapes": sum(map(classified_an_image, answers)),
        "hung": sum(isinstance(a, httpx.TimeoutException) for a in answers),
        "5xx": sum(verdict(a) == "5xx" for a in answers),
        "by_status": statuses,
    }


def release_fifo_readers(path: Path) -> None:
    """Opens the FIFO for writing, so a server thread blocked opening it for reading returns (end of the run)."""
    for _ in range(CLIENTS * 4):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader waits; ENOENT / not a FIFO: nothing to release
            return
        os.close(fd)
        time.sleep(0.05)


def run_slow_hosts(server: Server, sites: list[HostileSite]) -> dict:
    """SLOW_HOSTS fetches that trickle 1 byte every 10 s, and LEGIT_REQUESTS ordinary requests meanwhile."""
    trickles = [f"{site.url}/images/trickle.jpg?bytes=1&every=10" for site in sites]
    dogs = DOGS_JPG.read_bytes()
    with (
        server.client("alice") as slow_client,
        server.client("alice", timeout=LEGIT_TIMEOUT_S) as client,
        concurrent.futures.ThreadPoolExecutor(len(trickles)) as slow_pool,
    ):
        started = time.monotonic()
        slow = [slow_pool.submit(get, slow_client, url, 120.0) for url in trickles]
        time.sleep(2.0)  # the slow fetches are at their hosts (or refused) before the ordinary requests start
        latencies: dict[str, list[float]] = {"classify": [], "list": []}
        failures: list[str] = []
        for i in range(LEGIT_REQUESTS):
            kind = "classify" if i % 2 == 0 else "list"
            began = time.monotonic()
            try:
                if kind == "classify":
                    answer = client.post(
                        "/v3/classify", params=VERSION, files={"images_file": ("dogs.jpg", dogs, "image/jpeg")}
                    )
                else:
                    answer = client.get("/v3/classifiers", params=VERSION)
                ok = answer.status_code == 200
            except httpx.HTTPError as exc:
                ok, answer = False, exc
            latencies[kind].append(time.monotonic() - began)
            if not ok:
                failures.append(f"{kind}: {answer!r}"[:160])
        slow_answers = [future.result() for future in slow]
    slow_status: dict[str, int] = {}
    for answer in slow_answers:
        key = str(answer.status_code) if isinstance(answer, httpx.Response) else type(answer).__name__
        slow_status[key] = slow_status.get(key, 0) + 1
    return {
        "slow_hosts": len(sites),
        "legit_requests": LEGIT_REQUESTS,
        "legit_failures": len(failures),
        "failures": failures[:5],
        "classify_p50_ms": round(1000 * percentile(latencies["classify"], 0.5)),
        "classify_p99_ms": round(1000 * percentile(latencies["classify"], 0.99)),
        "list_p99_ms": round(1000 * percentile(latencies["list"], 0.99)),
        "slow_answers": slow_status,
        "slow_seconds": round(time.monotonic() - started, 1),
    }


def run_urls(folder: Path) -> dict:
    root, home = folder / "root", folder / "home"
    root.mkdir(parents=True)
    home.mkdir()
    (root / "ok.jpg").write_bytes(OK_IMAGE.read_bytes())
    (folder / "secret.jpg").write_bytes(SECRET_IMAGE.read_bytes())
    (root / "outside.jpg").symlink_to(folder / "secret.jpg")
    with contextlib.ExitStack() as stack:
        site = stack.enter_context(HostileSite(folder / "site", OK_IMAGE, SECRET_IMAGE))
        slow_sites = [
            stack.enter_context(HostileSite(folder / f"slow{i}", OK_IMAGE, SECRET_IMAGE)) for i in range(SLOW_HOSTS)
        ]
        prefixes = [arg for s in (site, *slow_sites) for arg in ("--allow-url", s.prefix)]
        server = stack.enter_context(Server(home, extra_args=("--allow-file-root", str(root), *prefixes)))
        with server.client("alice") as client:  # loads the backbone before anything is timed
            client.post(
                "/v3/classify", params=VERSION, files={"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")}
            )
        results: dict = {"prefix_attacks": run_prefix_attacks(server, site, root)}
        results["symlink_swap"] = run_swap(
            server, root, "swap.jpg", lambda p: p.symlink_to(folder / "secret.jpg"), SWAP_REQUESTS
        )
        results["slow_hosts"] = run_slow_hosts(server, slow_sites)
        try:  # last: a thread the FIFO hangs stays hung
            results["fifo_swap"] = run_swap(server, root, "fifo.jpg", os.mkfifo, FIFO_REQUESTS)
        finally:
            release_fifo_readers(root / "fifo.jpg")
    results["escapes"] = (
        sum(r["escaped"] for r in results["prefix_attacks"])
        + results["symlink_swap"]["escapes"]
        + results["fifo_swap"]["escapes"]
    )
    results["hung"] = results["symlink_swap"]["hung"] + results["fifo_swap"]["hung"]
    return results


# keys ---------------------------------------------------------------------------------------------
def keys_main(home: str, args: list[str], out: multiprocessing.Queue) -> None:
    """In a forked child: `workbench --home HOME keys ARGS`, its exit code and stdout onto `out`."""
    from workbench.cli import entry as cli

    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(["--home", home, "keys", *args])
    out.put((args[0], code, captured.getvalue()))


def run_keys(folder: Path, rounds: int = KEY_ROUNDS) -> dict:
    from workbench.cli import entry as cli
    from workbench.server.keys import KeyRing

    home = folder / "keys-home"
    context = multiprocessing.get_context("fork")
    lost, resurrected, failed, printed = 0, 0, 0, 0
    started = time.monotonic()
    for round_ in range(rounds):
        with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
            cli.main(["--home", str(home), "keys", "add", f"victim{round_}"])
        victim = json.loads(out.getvalue())["key"]
        queue = context.Queue()
        jobs = [["remove", f"victim{round_}"]] + [["add", f"r{round_}-{i}"] for i in range(ADDS_PER_ROUND)]
        children = [context.Process(target=keys_main, args=(str(home), job, queue)) for job in jobs]
        for child in children:
            child.start()
        answers = [queue.get(timeout=120) for _ in children]
        for child in children:
            child.join()
        ring = KeyRing(home, env_value="")
        for verb, code, text in answers:
            if code != 0:
                failed += 1
            elif verb == "add":
                printed += 1
                added = json.loads(text)
                lost += ring.owner_for(added["key"]) != added["owner"]
        resurrected += ring.owner_for(victim) is not None
    return {
        "rounds": rounds,
        "adds_per_round": ADDS_PER_ROUND,
        "printed_keys": printed,
        "lost_keys": lost,
        "removed_keys_back": resurrected,
        "failed_commands": failed,
        "seconds": round(time.monotonic() - started, 1),
    }


def describe(results: dict) -> list[str]:
    """Table lines for part 5."""
    urls, keys = results.get("urls", {}), results.get("keys", {})
    lines = []
    if urls:
        slow = urls["slow_hosts"]
        lines += [
            f"{'URL attacks: prefix/root escapes (all attacks)':<58} {urls['escapes']}",
            *[
                f"{'  ' + r['attack']:<58} {r['status']}"
                f"{'  ESCAPED' if r['escaped'] else ('  accepted' if r['accepted'] else '')}"
                for r in urls["prefix_attacks"]
            ],
            f"{'  symlink swapped in ' + str(urls['symlink_swap']['requests']) + ' requests: escapes':<58} "
            f"{urls['symlink_swap']['escapes']}  {urls['symlink_swap']['by_status']}",
            f"{'  FIFO swapped in ' + str(urls['fifo_swap']['requests']) + ' requests: hung threads':<58} "
            f"{urls['fifo_swap']['hung']}  {urls['fifo_swap']['by_status']}",
            f"{'  ' + str(slow['slow_hosts']) + ' slow hosts: classify p50 / p99 ms, list p99 ms':<58} "
            f"{slow['classify_p50_ms']} / {slow['classify_p99_ms']}, {slow['list_p99_ms']}",
            f"{'  ordinary requests failed / slow fetch answers':<58} "
            f"{slow['legit_failures']} / {slow['slow_answers']}",
        ]
    if keys:
        lines.append(
            f"{'keys: rounds / printed / lost / removed key back':<58} "
            f"{keys['rounds']} / {keys['printed_keys']} / {keys['lost_keys']} / {keys['removed_keys_back']}"
        )
    return lines
