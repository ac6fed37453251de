"""Campaign part (issue 22, item 4): a real `workbench serve` on a full disk and under a foreign SQLite lock.

Three faults, each while a retraining is under way (an update of fresh images sent just before):

* full disk, RLIMIT_FSIZE 0 on the server process (`prlimit`): no file may grow, each write fails
  with EFBIG as with ENOSPC; always available;
* full disk, a real one: the home on a 64 MiB tmpfs filled to the last byte by a file, then the file
  removed; only where this process may mount a tmpfs (root), otherwise reported as skipped;
* a foreign lock: another process holds `BEGIN IMMEDIATE` on workbench.db for 60 s (the server's
  busy timeout set to 2 s, so every write answers within it).

During each: READS classify, get and list calls and EXPORTS downloads of an already-built Core ML
file (each must answer 200), and WRITES creates, updates and deletes (each must answer a Watson 503
naming the cause: "disk is full", "locked"). Then the fault clears and the retraining must end
`ready`, not `failed`. The server's stderr is a pipe (no file limit applies to it): its retry
warnings say whether the training met the fault.

    PYTHONPATH=src .venv/bin/python -m bench.campaign_storage [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.campaign_common import (
    DOGS_JPG,
    ROOT,
    SERVER_START_S,
    VERSION,
    Server,
    cli,
    percentile,
    tutorial_images,
    variant_jpeg,
    verdict,
    wait_settled,
    zip_bytes,
)

sys.path.insert(0, str(ROOT / "tests"))  # the fault helpers the tests use: one copy for both
from reliability.full_disk import Lines, clear, fill, ignore_sigxfsz

READS = 20  # of each: classify, get, list
EXPORTS = 5
WRITES = 3  # of each: create, update, delete
LOCK_S = 60.0
BUSY_TIMEOUT_S = "2"  # a write under the lock answers 503 after 2 s, so all of them fit in the 60 s
TMPFS_MIB = 64
TRAINING_IMAGES = 40  # fresh images in the update that trains across the fault (nothing cached)
SETTLE_S = 300.0  # a retraining of 40 new images takes well under a minute once the fault is gone
MEET_S = 60.0  # longest a fault is held waiting for the training to meet it
RETRY_TEXT = "store unavailable at the"
HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))  # the fault's length, not a synchronisation
db.execute("ROLLBACK")
print("released", flush=True)
"""


@dataclass
class PipedServer(Server):
    """`workbench serve` with its stderr on a pipe read by `Lines`, and SIGXFSZ ignored (EFBIG, not death)."""

    preexec: Callable[[], None] = ignore_sigxfsz
    stderr: Lines | None = field(default=None, init=False)

    def start(self) -> PipedServer:
        keys = ",".join(f"{owner}:{key}" for owner, key in self.keys.items())
        env = {**os.environ, "WORKBENCH_API_KEYS": keys, "PYTHONDONTWRITEBYTECODE": "1", **self.env}
        if env.get("PYTHONPATH"):  # `PYTHONPATH=src`: the server runs in another folder, so made absolute
            env["PYTHONPATH"] = os.pathsep.join(
                str(Path(entry).resolve()) for entry in env["PYTHONPATH"].split(os.pathsep)
            )
        command = cli(self.home, "serve", "--port", str(self.port), "--log-level", "warning", *self.extra_args)
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.home.parent,
            preexec_fn=self.preexec,
        )
        assert self.process.stderr is not None
        self.stderr = Lines(self.process.stderr)
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                httpx.get(f"{self.url}/openapi.json", timeout=5).raise_for_status()
                return self
            except httpx.TransportError:
                time.sleep(0.3)
        self.stop()
        raise SystemExit(f"the server did not start:\n{self.stderr.tail()}")

    def retries(self, cid: str, since: int) -> int:
        """Retry warnings of `cid`'s training printed from line `since` on."""
        assert self.stderr is not None
        return sum(RETRY_TEXT in line and cid in line for line in self.stderr.lines[since:])


def images_zip(name: str, count: int, tag: int) -> bytes:
    """`count` new images (never seen, so never cached) made from the tutorial's `name` photos."""
    photos = tutorial_images(name)
    return zip_bytes({f"{name}{tag + i}.jpg": variant_jpeg(photos[i % len(photos)], tag + i) for i in range(count)})


def create(client: httpx.Client, name: str, tag: int) -> httpx.Response:
    files = {
        f"{cls}_positive_examples": (f"{cls}.zip", images_zip(cls, 10, tag + 1000 * k), "application/zip")
        for k, cls in enumerate(("beagle", "husky"))
    }
    return client.post("/v3/classifiers", params=VERSION, data={"name": name}, files=files)


def populate(server: Server) -> tuple[str, str]:
    """Two ready classifiers of alice: `kept` (its Core ML file built) and `retrained` (retrained across each fault)."""
    ids = []
    with server.client() as client:
        for number, name in enumerate(("kept", "retrained")):
            answer = create(client, name, 100_000 * (number + 1))
            answer.raise_for_status()
            ids.append(answer.json()["classifier_id"])
        for cid in ids:
            assert wait_settled(client, cid, SETTLE_S)["status"] == "ready", cid
        client.get(f"/v3/classifiers/{ids[0]}/core_ml_model", params=VERSION).raise_for_status()  # built once
        client.post(
            "/v3/classify", params=VERSION, files={"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")}
        )
    return ids[0], ids[1]


def watson_503(answer: httpx.Response | Exception, cause: str) -> bool:
    return (
        verdict(answer) == "5xx"
        and isinstance(answer, httpx.Response)
        and answer.status_code == 503
        and cause in answer.json().get("error", "")
    )


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response | Exception, float]:
    started = time.perf_counter()
    try:
        answer: httpx.Response | Exception = call()
    except httpx.HTTPError as exc:
        answer = exc
    return answer, (time.perf_counter() - started) * 1000


def exercise(server: Server, kept: str, cause: str, tag: int) -> dict:
    """READS of each read, EXPORTS downloads and WRITES of each write, while the fault lasts."""
    reads: dict[str, list[tuple[httpx.Response | Exception, float]]] = {
        "classify": [],
        "get": [],
        "list": [],
        "export": [],
    }
    image = DOGS_JPG.read_bytes()
    with server.client() as client:
        for _ in range(READS):
            reads["classify"].append(
                timed(
                    lambda: client.post(
                        "/v3/classify",
                        params=VERSION,
                        data={"classifier_ids": kept},
                        files={"images_file": ("dogs.jpg", image, "image/jpeg")},
                    )
                )
            )
            reads["get"].append(timed(lambda: client.get(f"/v3/classifiers/{kept}", params=VERSION)))
            reads["list"].append(timed(lambda: client.get("/v3/classifiers", params=VERSION)))
        for _ in range(EXPORTS):
            reads["export"].append(timed(lambda: client.get(f"/v3/classifiers/{kept}/core_ml_model", params=VERSION)))
        more = {"dalmatian_positive_examples": ("dalmatian.zip", images_zip("dalmatian", 10, tag), "application/zip")}
        writes: dict[str, list[httpx.Response | Exception]] = {"create": [], "update": [], "delete": []}
        for i in range(WRITES):
            writes["create"].append(timed(lambda i=i: create(client, "refused", tag + 10 * i))[0])
            writes["update"].append(
                timed(lambda: client.post(f"/v3/classifiers/{kept}", params=VERSION, files=more))[0]
            )
            writes["delete"].append(timed(lambda: client.delete(f"/v3/classifiers/{kept}", params=VERSION))[0])
        record = client.get(f"/v3/classifiers/{kept}", params=VERSION).json()
    first_error = next(
        (
            a.json()["error"]
            for got in writes.values()
            for a in got
            if isinstance(a, httpx.Response) and a.status_code == 503
        ),
        None,
    )
    return {
        "reads_ok": {
            kind: sum(isinstance(a, httpx.Response) and a.status_code == 200 for a, _ in got)
            for kind, got in reads.items()
        },
        "reads": {kind: len(got) for kind, got in reads.items()},
        "read_statuses": sorted({verdict(a) for got in reads.values() for a, _ in got}),
        "read_p50_ms": {kind: round(percentile([ms for _, ms in got], 0.5), 1) for kind, got in reads.items()},
        "read_p99_ms": {kind: round(percentile([ms for _, ms in got], 0.99), 1) for kind, got in reads.items()},
        "writes_503": {kind: sum(watson_503(a, cause) for a in got) for kind, got in writes.items()},
        "writes": {kind: len(got) for kind, got in writes.items()},
        "write_error": first_error,
        "kept_unchanged": record.get("status") == "ready" and len(record.get("classes", [])) == 2,
    }


def across(
    server: PipedServer,
    retrained: str,
    tag: int,
    fault: Callable[[], contextlib.AbstractContextManager],
    kept: str,
    cause: str,
) -> dict:
    """Starts a retraining, then the fault; exercises the server during it; then waits for the training to settle."""
    with server.client() as client:
        assert server.stderr is not None
        since = len(server.stderr.lines)
        files = {
            "dalmatian_positive_examples": (
                "dalmatian.zip",
                images_zip("dalmatian", TRAINING_IMAGES, tag),
                "application/zip",
            )
        }
        updated = client.post(f"/v3/classifiers/{retrained}", params=VERSION, files=files)
        updated.raise_for_status()
        with fault():
            exercised = time.monotonic()
            result = exercise(server, kept, cause, tag + 500)
            result["exercise_s"] = round(time.monotonic() - exercised, 1)
            during = client.get(f"/v3/classifiers/{retrained}", params=VERSION).json().get("status")
            # the fault lasts until the training has met it (its first retry warning), at most MEET_S
            met = server.stderr.wait_for(f"of {retrained}'s training (try", timeout_s=MEET_S, start=since)
            result["fault_s"] = round(time.monotonic() - exercised, 1)
        cleared = time.monotonic()
        record = wait_settled(client, retrained, SETTLE_S)
    result["training"] = {
        "status_during": during,
        "met_fault": met is not None,
        "retries": server.retries(retrained, since),
        "final": record.get("status"),
        "classes": sorted(c["class"] for c in record.get("classes", [])),
        "settled_s_after_clear": round(time.monotonic() - cleared, 1),
        "explanation": record.get("explanation"),
    }
    return result


@contextlib.contextmanager
def prlimit_full(pid: int) -> Iterator[None]:
    fill(pid)
    try:
        yield
    finally:
        clear(pid)


@contextlib.contextmanager
def foreign_lock(home: Path, seconds: float) -> Iterator[None]:
    """Another process holds workbench.db's write lock for `seconds`; the block waits until it lets go."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home / "workbench.db"), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
        assert holder.stdout.readline().strip() == "released"
        holder.wait(30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


@contextlib.contextmanager
def filled(mount: Path) -> Iterator[int]:
    """Fills a file system with one file until it refuses a single byte; removes the file after the block."""
    path = mount / "filler"
    written = 0
    with open(path, "wb", buffering=0) as filler:
        for size in (1 << 20, 1 << 12, 1):
            chunk = bytes(size)
            while True:
                try:
                    written += filler.write(chunk) or 0
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    try:
        yield written
    finally:
        path.unlink()


def mount_tmpfs(mount: Path) -> str | None:
    """Mounts a TMPFS_MIB tmpfs at `mount`; None if done, else why not (not root, no mount permission)."""
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MIB}m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount exited {done.returncode}")


def run_storage(folder: Path) -> dict:
    """The three faults on real servers; figures per fault, and the trainings any of them left failed."""
    folder.mkdir(parents=True, exist_ok=True)
    home = folder / "home"
    home.mkdir()
    results: dict = {"reads_each": READS, "exports": EXPORTS, "writes_each": WRITES, "lock_s": LOCK_S}
    started = time.monotonic()
    with PipedServer(
        home, env={"WORKBENCH_TRACKING_URI": "none", "WORKBENCH_STORE_BUSY_TIMEOUT_S": BUSY_TIMEOUT_S}
    ) as server:
        kept, retrained = populate(server)
        results["full_disk_rlimit"] = across(
            server, retrained, 200_000, lambda: prlimit_full(server.pid), kept, "disk is full"
        )
        results["foreign_lock"] = across(server, retrained, 300_000, lambda: foreign_lock(home, LOCK_S), kept, "locked")
    results["full_disk_tmpfs"] = run_tmpfs(folder, home, kept, retrained)
    faults = [results[k] for k in ("full_disk_rlimit", "foreign_lock", "full_disk_tmpfs") if "training" in results[k]]
    results["trainings_left_failed"] = sum(f["training"]["final"] != "ready" for f in faults)
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


def run_tmpfs(folder: Path, home: Path, kept: str, retrained: str) -> dict:
    """The home copied onto a 64 MiB tmpfs, served, the tmpfs filled by a file during the fault."""
    mount = folder / "tmpfs"
    why_not = mount_tmpfs(mount)
    if why_not is not None:
        return {"skipped": f"no tmpfs: {why_not}"}
    try:
        subprocess.run(["cp", "-a", str(home), str(mount / "home")], check=True)
        with PipedServer(
            mount / "home", env={"WORKBENCH_TRACKING_URI": "none", "WORKBENCH_STORE_BUSY_TIMEOUT_S": BUSY_TIMEOUT_S}
        ) as server:
            sizes: dict = {}

            @contextlib.contextmanager
            def full() -> Iterator[None]:
                with filled(mount) as written:
                    sizes["filler_mib"] = round(written / (1 << 20), 1)
                    yield

            result = across(server, retrained, 400_000, full, kept, "disk is full")
        result.update(sizes, tmpfs_mib=TMPFS_MIB)
        return result
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def describe(results: dict) -> list[str]:
    """Table lines for the storage part."""
    lines = []
    names = {
        "full_disk_rlimit": "full disk (RLIMIT_FSIZE 0)",
        "full_disk_tmpfs": f"full disk ({TMPFS_MIB} MiB tmpfs, filled)",
        "foreign_lock": f"foreign lock held {results.get('lock_s', LOCK_S):g} s",
    }
    for key, name in names.items():
        fault = results.get(key)
        if fault is None:
            continue
        if "skipped" in fault:
            lines.append(f"{name + ': skipped':<58} {fault['skipped']}")
            continue
        ok, n = fault["reads_ok"], fault["reads"]
        refused, tried = fault["writes_503"], fault["writes"]
        training = fault["training"]
        lines += [
            f"{name + ': reads 200 (classify/get/list/export)':<58} "
            + ", ".join(f"{ok[k]}/{n[k]}" for k in ("classify", "get", "list", "export")),
            f"{'  read p99 ms (classify/get/list/export)':<58} "
            + ", ".join(f"{fault['read_p99_ms'][k]:g}" for k in ("classify", "get", "list", "export")),
            f"{'  writes Watson 503 naming it (create/update/delete)':<58} "
            + ", ".join(f"{refused[k]}/{tried[k]}" for k in ("create", "update", "delete")),
            f"{'  training across it: retries / final / s after clear':<58} "
            f"{training['retries']} / {training['final']} / {training['settled_s_after_clear']}"
            + ("" if training.get("met_fault") else "  (never met the fault)"),
        ]
    if "trainings_left_failed" in results:
        lines.append(
            f"{'trainings a transient fault left not ready (failed, stuck)':<58} {results['trainings_left_failed']}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="campaign-storage-") as tmp:
        results = run_storage(Path(tmp))
    print("\n".join(describe(results)))
    print(json.dumps(results, indent=2, default=str))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
