"""48-megapixel phone photos (8000x6000 JPEGs) train and classify; real pixel bombs stay refused.

Before the fix the 40 MP cap refused them (skipped as examples, an error object in classify),
although a JPEG decodes at 1/2, 1/4 or 1/8 scale (PIL draft mode) well within the budget.
The photos are made at test time from tutorial photos, never committed.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from conftest import TUTORIAL
from workbench.core.errors import LimitExceeded
from workbench.core.limits import Limits
from workbench.images.decode import decode_image, validate_image
from workbench.images.entries import sha256_hex
from workbench.images.examples import read_example_set

PHONE_SIZE = (8000, 6000)
BEAGLE_PHOTO = TUTORIAL / "beagle" / "1024px-Beagle_1.jpg"
BEAGLE_TEST = TUTORIAL / "test" / "4.jpg"  # a beagle the classifier never saw
MAX_DECODE_RSS_MB = 64  # a full 48 MP RGB decode alone needs 144 MB


def phone_jpeg(source: Path, target: Path) -> Path:
    """`source` resized up to 8000x6000 and saved as a quality-90 JPEG, as a 48 MP phone camera writes it."""
    with Image.open(source) as img:
        img.convert("RGB").resize(PHONE_SIZE, Image.Resampling.BICUBIC).save(target, "JPEG", quality=90)
    return target


def png_of_zeros(width: int, height: int) -> bytes:
    """A 1-bit PNG of zeros: tiny on disk, width x height pixels when decoded (a pixel bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row, comp = b"\x00" * (1 + (width + 7) // 8), zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_claiming(data: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF) claims another size: what a hostile upload does."""
    at = next(data.index(marker) for marker in (b"\xff\xc0", b"\xff\xc2") if marker in data)
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]


@pytest.fixture(scope="module")
def phone_photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("phone")
    return {
        "beagle": phone_jpeg(BEAGLE_PHOTO, folder / "beagle-48mp.jpg"),
        "test": phone_jpeg(BEAGLE_TEST, folder / "test-48mp.jpg"),
    }


def test_a_48_megapixel_photo_passes_the_checks(phone_photos) -> None:
    data = phone_photos["beagle"].read_bytes()
    assert len(data) < Limits().max_image_bytes
    assert validate_image(data) == PHONE_SIZE
    image = decode_image(data, draft_size=224)
    assert min(image.size) >= 224 and image.size[0] * image.size[1] <= Limits().max_image_pixels
    full = decode_image(data)  # no draft size asked: decoded at the least reduction within the cap
    assert full.size == (4000, 3000)


def test_it_trains_as_an_example_and_classifies(make_workbench, phone_photos, tmp_path: Path) -> None:
    beagles = tmp_path / "beagle"
    shutil.copytree(TUTORIAL / "beagle", beagles)
    shutil.copy(phone_photos["beagle"], beagles / "phone.jpg")
    example_set = read_example_set(beagles, label="beagle")
    assert not [s for s in example_set.skipped if "phone.jpg" in s.name]
    wb = make_workbench()
    created = wb.create_classifier(
        "phones", {"beagle": beagles, "husky": TUTORIAL / "husky"}, negative_examples=TUTORIAL / "cats"
    )
    cid = created["classifier_id"]
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    phone_sha = sha256_hex(phone_photos["beagle"].read_bytes())
    assert phone_sha in {row.sha256 for row in wb.store.examples(cid)}
    answer = wb.classify(phone_photos["test"], classifier_ids=[cid], threshold=0.0)
    image = answer["images"][0]
    assert "error" not in image, image
    scores = {c["class"]: c["score"] for c in image["classifiers"][0]["classes"]}
    assert max(scores, key=scores.get) == "beagle"
    assert scores["beagle"] >= 0.5


DECODE_PEAK = """
import json, sys
from workbench.images.decode import decode_image, validate_image
from workbench.core.limits import Limits

def kb(field):
    return int(next(l for l in open("/proc/self/status") if l.startswith(field)).split()[1])

data = open(sys.argv[1], "rb").read()
limits = Limits(max_image_pixels=int(sys.argv[2]))
open("/proc/self/clear_refs", "w").write("5")  # resets the peak RSS (VmHWM) to the current RSS
before = kb("VmRSS:")
validate_image(data, limits=limits)
image = decode_image(data, limits=limits, draft_size=int(sys.argv[3]) or None)
print(json.dumps({"peak_growth_kb": kb("VmHWM:") - before, "size": image.size}))
"""


def decode_peak_mb(path: Path, max_pixels: int, draft_size: int) -> float:
    """Peak RSS growth (MB) of validating and decoding `path` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", DECODE_PEAK, str(path), str(max_pixels), str(draft_size)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["peak_growth_kb"] / 1024


def test_decoding_it_keeps_memory_modest(phone_photos) -> None:
    drafted = decode_peak_mb(phone_photos["beagle"], Limits().max_image_pixels, 224)
    whole = decode_peak_mb(phone_photos["beagle"], 50_000_000, 0)  # the control: a cap that lets it decode whole
    print(f"peak RSS growth for an 8000x6000 JPEG: {drafted:.1f} MB drafted, {whole:.1f} MB decoded whole")
    assert whole > 100  # the measurement sees a full decode (8000 x 6000 x 3 bytes = 144 MB)
    assert drafted < MAX_DECODE_RSS_MB


def test_real_pixel_bombs_are_still_refused(phone_photos, monkeypatch: pytest.MonkeyPatch) -> None:
    png_bomb = png_of_zeros(20_000, 20_000)
    phone_png = png_of_zeros(*PHONE_SIZE)  # PNG has no draft mode: 48 MP would be decoded whole
    jpeg = phone_photos["beagle"].read_bytes()
    huge_jpeg = jpeg_claiming(jpeg, 65_000, 65_000)  # even at 1/8 scale 66 MP

    def no_decoding(self: Image.Image) -> None:
        raise AssertionError("a refused image must not be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for bomb in (png_bomb, phone_png, huge_jpeg):
        with pytest.raises(LimitExceeded, match="pixels"):
            validate_image(bomb)
        with pytest.raises(LimitExceeded, match="pixels"):
            decode_image(bomb, draft_size=224)
    tight = Limits(max_image_pixels=500_000)  # 8000x6000 at 1/8 is 750,000 pixels
    with pytest.raises(LimitExceeded, match="1/8"):
        decode_image(jpeg, limits=tight, draft_size=224)
