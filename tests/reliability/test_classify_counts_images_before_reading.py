"""A classify call over the image cap is refused with 413 from the zips' central directories, before any upload
is read into memory (three such requests once took the server from 457 MB to 1.2 GB only to answer 413).

The server is a `workbench serve` process of its own: the test process's threads (other tests' servers and
trainings) cannot move the peak RSS measured."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from conftest import TUTORIAL, zip_bytes
from reliability.served_http import VERSION
from support.servers import running_server
from workbench import NoImages
from workbench.images.classify_inputs import read_images
from workbench.scoring.classify import split_non_images

PADDED_IMAGE_BYTES = 2_500_000  # a real JPEG, then zeros after its end marker (decoders stop there)
IMAGES_PER_ZIP = 12  # two zips: 24 images, over the HTTP cap of 20, neither zip over it alone
NO_TRACKING = {"WORKBENCH_TRACKING_URI": "none"}  # no MLflow worker in the measured server, as before the move


def padded_zip(path: Path, images: list[Path], size: int) -> Path:
    """A stored (uncompressed) zip of real JPEGs, each padded with zeros to `size` bytes, written member by member."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for image in images:
            data = image.read_bytes()
            archive.writestr(image.name, data + bytes(max(0, size - len(data))))
    return path


def status_kib(field: str, pid: int | str = "self") -> int:
    """A VmRSS/VmHWM line of process `pid` (this one by default), in KiB."""
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M).group(1))


def reset_peak_rss(pid: int | str = "self") -> None:
    """Sets process `pid`'s VmHWM back to its current VmRSS (Linux: `echo 5 > /proc/PID/clear_refs`)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def test_a_classify_over_the_cap_is_refused_without_reading_the_uploads(tmp_path: Path) -> None:
    beagles = sorted((TUTORIAL / "beagle").glob("*.jpg"))[: 2 * IMAGES_PER_ZIP]
    small = [padded_zip(tmp_path / f"small{i}.zip", beagles[i::2], 0) for i in range(2)]
    large = [padded_zip(tmp_path / f"large{i}.zip", beagles[i::2], PADDED_IMAGE_BYTES) for i in range(2)]
    body_kib = sum(path.stat().st_size for path in large) // 1024
    with (
        running_server(tmp_path / "home", tmp_path / "serve.log", env=NO_TRACKING) as (server, url),
        httpx.Client(base_url=url, timeout=120) as client,
    ):

        def post(zips: list[Path]) -> int:
            with open(zips[0], "rb") as first, open(zips[1], "rb") as second:
                files: list[tuple[str, tuple[str, BinaryIO, str]]] = [
                    ("images_file", ("part0.zip", first, "application/zip")),
                    ("images_file", ("part1.zip", second, "application/zip")),
                ]
                answer = client.post("/v3/classify", params=VERSION, files=files)
            assert "at most 20 images; got 24" in answer.json()["error"]
            return answer.status_code

        assert post(small) == 413  # what any first request loads is loaded before the measure
        reset_peak_rss(server.pid)
        before = status_kib("VmRSS", server.pid)
        assert [post(large) for _ in range(3)] == [413, 413, 413]
        growth = status_kib("VmHWM", server.pid) - before
    print(f"body {body_kib} KiB; server peak RSS growth over 3 requests {growth} KiB")
    assert growth < body_kib // 10, f"peak RSS grew {growth} KiB for a {body_kib} KiB body refused by its count"


@pytest.mark.parametrize(
    "members",
    [
        {
            "a.jpg": b"x",
            "b.JPEG": b"x",
            "sub/c.png": b"x",
            "notes.txt": b"x",
            "__MACOSX/._a.jpg": b"x",
            ".hidden/d.jpg": b"x",
            "inner.zip": b"x",
            "dir/": b"",
            "e.webp": b"x",
            "f": b"x",
            "g.tiff": b"x",
        },
        {"only.txt": b"x"},
        {},
    ],
    ids=["mixed", "no-images", "empty"],
)
def test_the_count_is_what_the_engine_reads_as_images(members) -> None:
    from workbench.scoring.classify import count_images

    data = zip_bytes(members)
    try:
        engine_count = len(split_non_images(read_images([io.BytesIO(data)]))[0])
    except NoImages:
        engine_count = 0
    assert count_images([io.BytesIO(data), io.BytesIO(b"\xff\xd8 one image, unread")]) == engine_count + 1
