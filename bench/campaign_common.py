"""Shared pieces of the reliability campaign: a real `workbench serve` subprocess, verdicts on answers, images.

Everything here talks to real processes: the server is `python -m workbench serve` on 127.0.0.1 with
two owners' keys in WORKBENCH_API_KEYS, its memory is read from /proc, and test images are made from
the tutorial's photos at run time.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "data" / "tutorial"
# servers and CLI processes run from other folders: a relative PYTHONPATH=src would silently reach the
# installed package instead of this checkout's, so every child gets this checkout's src first
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT / "src"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
)
DOGS_JPG = TUTORIAL / "dogs.jpg"
VERSION = {"version": "2018-03-19"}
KEYS = {"alice": "campaign-key-alice-0001", "bob": "campaign-key-bob-0002"}
SERVER_START_S = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak so far) of a process, in MB, from /proc/<pid>/status."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": figures.get("VmRSS", 0.0), "hwm_mb": figures.get("VmHWM", 0.0)}


def cli(home: Path, *args: str) -> list[str]:
    """A `workbench` CLI command line on `home`, run by this interpreter."""
    return [sys.executable, "-m", "workbench", "--home", str(home), *args]


@dataclass
class Server:
    """`workbench serve` on 127.0.0.1 as its own process, with the campaign's two owners' keys."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    keys: dict[str, str] = field(default_factory=lambda: dict(KEYS))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Server:
        keys = ",".join(f"{owner}:{key}" for owner, key in self.keys.items())
        env = {**os.environ, "WORKBENCH_API_KEYS": keys, **self.env}
        command = cli(self.home, "serve", "--port", str(self.port), "--log-level", "warning", *self.extra_args)
        log = (self.home.parent / f"server-{self.port}.log").open("ab")
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.home.parent)
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited with {self.process.returncode}; see {log.name}")
            try:
                httpx.get(f"{self.url}/openapi.json", timeout=5).raise_for_status()
                return self
            except httpx.TransportError:
                time.sleep(0.3)
        self.stop()
        raise SystemExit(f"the server did not start within {SERVER_START_S} s")

    def client(self, owner: str = "alice", timeout: float = 300) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=("apikey", self.keys[owner]), timeout=timeout)

    def async_client(self, owner: str, timeout: float = 300) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, auth=("apikey", self.keys[owner]), timeout=timeout)

    def memory(self) -> dict[str, float]:
        return memory_mb(self.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def is_watson_error(answer: httpx.Response) -> bool:
    """Watson's error shape: a JSON object with `code` equal to the HTTP status and a string `error`."""
    try:
        body = answer.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("code") == answer.status_code and isinstance(body.get("error"), str)


def verdict(answer: httpx.Response | Exception) -> str:
    """`2xx`, `4xx` (with Watson JSON), `4xx-not-watson`, `5xx` or `transport` (no answer at all)."""
    if isinstance(answer, Exception):
        return "transport"
    if answer.status_code >= 500:
        return "5xx"
    if answer.status_code >= 400:
        return "4xx" if is_watson_error(answer) else "4xx-not-watson"
    return f"{answer.status_code // 100}xx"


def wait_settled(client: httpx.Client, cid: str, timeout_s: float) -> dict:
    """GETs a classifier until it is `ready` or `failed` (or the timeout passes: the last record)."""
    deadline = time.monotonic() + timeout_s
    while True:
        record = client.get(f"/v3/classifiers/{cid}", params=VERSION).json()
        if record.get("status") in ("ready", "failed") or time.monotonic() > deadline:
            return record
        time.sleep(0.5)


def tutorial_images(name: str, count: int | None = None) -> list[Path]:
    return sorted((TUTORIAL / name).iterdir())[:count]


def variant_jpeg(source: Path, tag: int, side: int = 256) -> bytes:
    """`source` shrunk to `side` px with `tag`'s 24 bits drawn as black/white 8 px blocks: new bytes, new sha256.

    Blocks, not one pixel: JPEG quantisation can make two images that differ by one pixel's colour identical.
    """
    with Image.open(source) as img:
        img = img.convert("RGB")
        img.thumbnail((side, side))
        for bit in range(24):
            colour = (255, 255, 255) if tag >> bit & 1 else (0, 0, 0)
            x, y = 8 * (bit % 12), 8 * (bit // 12)
            img.paste(colour, (x, y, x + 8, y + 8))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        return buf.getvalue()


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite file (its backup API: safe under WAL)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def dump(obj) -> str:
    return json.dumps(obj, indent=2, default=str)
