"""Campaign part (issue 22, item 2): decompression amplification against a real `workbench serve`.

As owner alice, in this order (the create that a server without the limits accepts goes last, so its training
does not weigh on the others):

* a create with a zip of a million empty members (a whole zip, every member with its local header) and one
  ordinary class, then a classify of the same zip;
* the same million members, with an end record that states 3 (the directory is walked, not trusted);
* a create of 20 classes, each a zip of 10 distinct JPEGs zero-padded to 10 MB after their end marker: a few MB
  uploaded, 2,000 MB of images once decompressed;
* a create of 3 such classes padded to 8.5 MB (255 MB of images), just under the limit: accepted, and the
  server's peak while it reads and stores them is the most an accepted create costs.

For each: the answer's status and first words, seconds to answer, the server's peak RSS during the request
(VmHWM from /proc after `clear_refs` set it back to the current RSS) and how much the home grew on disk.

    PYTHONPATH=src python -m bench.campaign_amplification
"""

from __future__ import annotations

import io
import os
import struct
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

from bench.campaign_common import ROOT, TUTORIAL, VERSION, Server, memory_mb, variant_jpeg

sys.path.insert(0, str(ROOT / "tests"))  # the zips the tests attack with: one copy for both
from reliability.hand_zips import member_flood, restated

CLASSES = 20
IMAGES_PER_CLASS = 10
PADDED_BYTES = 10_000_000  # ten per zip: 100 MB, under Watson's 100 MB (104,857,600 bytes) per zip
UNDER_CLASSES, UNDER_PADDED_BYTES = 3, 8_500_000  # 255,000,000 bytes: under 256 MB (268,435,456 bytes)
MEMBERS = 1_000_000
MB = 1024 * 1024


def class_zip(tag: int, padded_to: int = 0) -> bytes:
    """A deflated zip of IMAGES_PER_CLASS distinct JPEGs (tutorial photos, marked with their tag), zero-padded to
    `padded_to` bytes each after their end marker (decoders stop there; deflate makes 10 MB of zeros 10 KB)."""
    sources = sorted(
        p
        for folder in ("beagle", "husky", "goldenretriever", "dalmatian", "cats")
        for p in (TUTORIAL / folder).glob("*.jpg")
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(IMAGES_PER_CLASS):
            number = tag * IMAGES_PER_CLASS + i
            data = variant_jpeg(sources[number % len(sources)], number)
            archive.writestr(f"{number:04d}.jpg", data + bytes(max(0, padded_to - len(data))))
    return buffer.getvalue()


def disk_bytes(folder: Path) -> int:
    """Bytes of every file under `folder` (the home: database, WAL, blobs)."""
    return sum(os.path.getsize(Path(root) / name) for root, _, names in os.walk(folder) for name in names)


def measured(server: Server, home: Path, send) -> dict:
    """Sends one request; its status, error's first words, seconds, the server's peak RSS and the home's growth."""
    Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM back to VmRSS: the peak is this request's
    rss_before = memory_mb(server.pid)["rss_mb"]
    disk_before = disk_bytes(home)
    started = time.monotonic()
    try:
        answer = send()
        status, text = answer.status_code, answer.text
    except httpx.HTTPError as exc:
        status, text = 0, repr(exc)
    seconds = time.monotonic() - started
    memory = memory_mb(server.pid)
    return {
        "status": status,
        "answer": text[:160],
        "seconds": round(seconds, 2),
        "rss_before_mb": rss_before,
        "peak_rss_mb": memory["hwm_mb"],
        "disk_growth_mb": round((disk_bytes(home) - disk_before) / MB, 1),
    }


def restated_flood(flood: bytes) -> bytes:
    """The million-member zip with end records that state 3 members (zip64 records dropped: 3 needs none)."""
    eocd_at = flood.rindex(b"PK\x05\x06")
    size, offset = struct.unpack_from("<2L", flood, eocd_at + 12)  # the directory's size and offset
    plain = flood[: offset + size] + flood[eocd_at:]  # the zip64 end records cut out; the 32-bit fields still fit
    return restated(plain, 3)


def post_sets(client: httpx.Client, name: str, sets: dict[str, bytes]) -> httpx.Response:
    files = [(f"{label}_positive_examples", (f"{label}.zip", data, "application/zip")) for label, data in sets.items()]
    return client.post("/v3/classifiers", params=VERSION, data={"name": name}, files=files)


def walk_ms(data: bytes) -> float | None:
    """Milliseconds this process takes to refuse `data` from its directory alone: the server's share of the answer.

    None on a tree from before the member limit (run against an older `src`, for the figures before the fix).
    """
    try:
        from workbench.core.errors import LimitExceeded
        from workbench.core.limits import MAX_ZIP_MEMBERS
        from workbench.images.zip_directory import members
    except ImportError:
        return None

    started = time.monotonic()
    try:
        members(io.BytesIO(data), MAX_ZIP_MEMBERS, "zip")
    except LimitExceeded:
        pass
    return round((time.monotonic() - started) * 1000, 1)


def run_amplification(folder: Path) -> dict:
    home = folder / "amplification-home"
    home.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    flood = member_flood(MEMBERS, whole=True)
    ordinary = class_zip(CLASSES)
    liar = restated_flood(flood)
    padded = {f"class{tag:02d}": class_zip(tag, PADDED_BYTES) for tag in range(CLASSES)}
    under = {f"under{tag}": class_zip(CLASSES + 1 + tag, UNDER_PADDED_BYTES) for tag in range(UNDER_CLASSES)}
    built_s = time.monotonic() - started
    rows: dict[str, dict] = {}
    # the server runs this checkout's workbench: its cwd is elsewhere, so a relative PYTHONPATH=src would not reach it
    paths = [
        str(ROOT / "src"),
        *(str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p),
    ]
    with (
        Server(home, env={"PYTHONPATH": os.pathsep.join(paths)}) as server,
        server.client("alice", timeout=600) as client,
    ):
        client.get("/v3/classifiers", params=VERSION).raise_for_status()
        rows["million_members_create"] = measured(
            server,
            home,
            lambda: client.post(
                "/v3/classifiers",
                params=VERSION,
                data={"name": "flood"},
                files=[
                    ("flood_positive_examples", ("flood.zip", flood, "application/zip")),
                    ("other_positive_examples", ("other.zip", ordinary, "application/zip")),
                ],
            ),
        )
        rows["million_members_classify"] = measured(
            server,
            home,
            lambda: client.post(
                "/v3/classify", params=VERSION, files={"images_file": ("flood.zip", flood, "application/zip")}
            ),
        )
        rows["lying_count_create"] = measured(
            server,
            home,
            lambda: client.post(
                "/v3/classifiers",
                params=VERSION,
                data={"name": "liar"},
                files=[
                    ("liar_positive_examples", ("liar.zip", liar, "application/zip")),
                    ("other_positive_examples", ("other.zip", ordinary, "application/zip")),
                ],
            ),
        )
        rows["padded_classes_create"] = measured(server, home, lambda: post_sets(client, "amplified", padded))
        rows["under_limit_create"] = measured(server, home, lambda: post_sets(client, "under", under))
        baseline = server.memory()
    return {
        "million_members": {
            "members": MEMBERS,
            "upload_mb": round(len(flood) / MB, 1),
            "walk_ms": walk_ms(flood),
            "lying_walk_ms": walk_ms(liar),
        },
        "padded_classes": {
            "classes": CLASSES,
            "images": CLASSES * IMAGES_PER_CLASS,
            "upload_mb": round(sum(map(len, padded.values())) / MB, 1),
            "images_mb": round(CLASSES * IMAGES_PER_CLASS * PADDED_BYTES / MB, 1),
        },
        "under_limit": {
            "classes": UNDER_CLASSES,
            "upload_mb": round(sum(map(len, under.values())) / MB, 1),
            "images_mb": round(UNDER_CLASSES * IMAGES_PER_CLASS * UNDER_PADDED_BYTES / MB, 1),
        },
        "rows": rows,
        "server_rss_after_mb": baseline["rss_mb"],
        "build_seconds": round(built_s, 1),
    }


def describe(result: dict) -> list[str]:
    """Table lines: one per request (status, seconds, server peak RSS, disk growth of the home)."""
    flood, padded, under, rows = (
        result["million_members"],
        result["padded_classes"],
        result["under_limit"],
        result["rows"],
    )
    labels = {
        "million_members_create": f"create: zip of {flood['members']:,} members ({flood['upload_mb']} MB up)",
        "million_members_classify": "classify: the same zip",
        "lying_count_create": "create: the same zip, its end record stating 3 members",
        "padded_classes_create": f"create: {padded['classes']} classes, zero-padded JPEGs "
        f"({padded['upload_mb']} MB up, {padded['images_mb']:,.0f} MB images)",
        "under_limit_create": f"create: {under['classes']} classes, zero-padded, just under the limit "
        f"({under['images_mb']:,.0f} MB images)",
    }
    lines = [f"{'amplification request':<72} {'status':>6} {'s':>7} {'peak RSS MB':>12} {'disk MB':>8}"]
    for key, label in labels.items():
        row = rows[key]
        lines.append(
            f"{label:<72} {row['status']:>6} {row['seconds']:>7} {row['peak_rss_mb']:>12} {row['disk_growth_mb']:>8}"
        )
    lines.append(
        f"  the directory walk alone, in process: {flood['walk_ms']} ms (count stated), "
        f"{flood['lying_walk_ms']} ms (count lying: 30,001 entries walked); the rest is the upload"
    )
    lines += [f"  {key}: {rows[key]['answer']}" for key in labels]
    return lines


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="amplification-") as tmp:
        for line in describe(run_amplification(Path(tmp))):
            print(line)
