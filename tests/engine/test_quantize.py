"""The INT8 calibration set: real, varied photos shipped in the package, licensed, none of them a tutorial image.

Calibrating on the tutorial's own images flattered every agreement measured on them; these photos
leave the tutorial held out, and they load from the installed package with no network.
"""

from __future__ import annotations

import hashlib
import re
import socket
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TUTORIAL
from workbench.core.spec import lite0_spec
from workbench.engine import quantize

ROOT = Path(__file__).resolve().parents[2]
SOURCES = quantize.CALIBRATION_DIR / "SOURCES.md"


def _digests(paths: list[Path]) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_the_calibration_photos_ship_in_the_package_with_their_licence() -> None:
    photos = quantize.calibration_images()
    assert len(photos) == 24 and all(p.parent == quantize.CALIBRATION_DIR for p in photos)
    notes = SOURCES.read_text()
    assert "unrestricted usage" in notes and "Eastman Kodak" in notes  # the licence
    assert re.search(r"commit\s+`[0-9a-f]{40}`", notes)  # where they came from, exactly
    named = {f"kodim{n:02d}.jpg" for n in range(1, 25)}
    assert {p.name for p in photos} == named and "kodim01" in notes and "kodim24" in notes
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert {"data/calibration/*.jpg", "data/calibration/SOURCES.md"} <= set(package_data["workbench"])
    assert sum(p.stat().st_size for p in photos) < 1_500_000  # reduced: the package stays small


def test_no_calibration_photo_is_a_tutorial_image() -> None:
    tutorial = [p for p in TUTORIAL.rglob("*") if p.suffix.lower() in quantize.IMAGE_SUFFIXES]
    assert len(tutorial) >= 257
    assert not _digests(tutorial) & _digests(quantize.calibration_images())


def test_the_photos_are_real_and_varied_and_load_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("calibration must not reach the network")

    monkeypatch.setattr(socket, "socket", refuse)
    spec = lite0_spec()
    photos = quantize.calibration_images()
    tensors = [quantize._tensors(p, spec) for p in photos]
    assert all(len(views) == quantize.CALIBRATION_VIEWS for views in tensors)  # each photo's three squares
    assert all(t.shape == (3, spec.input_size_px, spec.input_size_px) for views in tensors for t in views)
    means = []
    for path in photos:
        with Image.open(path) as image:
            assert image.mode == "RGB" and min(image.size) == 256 and max(image.size) == 384
            pixels = np.asarray(image, np.float32)
        assert pixels.std() > 20  # a photo, not a flat colour
        means.append(pixels.reshape(-1, 3).mean(0))
    assert np.ptp(np.array(means), axis=0).min() > 50  # scenes of different colours, not one scene 24 times


def test_an_empty_calibration_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no photos here")
    with pytest.raises(quantize.CalibrationUnavailable, match="photos shipped with the package"):
        quantize.calibration_images(tmp_path)


def test_ranges_merge_without_losing_the_last_batches() -> None:
    """onnxruntime raises "No data is collected" when its last merge leaves nothing: never a divisor."""
    for images in range(1, 300):
        batches = -(-images // quantize.CALIBRATION_BATCH) * 2
        assert batches % quantize._merge_every(images)
