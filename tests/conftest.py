"""Shared fixtures: the tutorial zips built once, a shared embedding cache, a trained `dogs` classifier."""

from __future__ import annotations

import io
import os
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

# MLflow tracking off for every Workbench (and CLI subprocess) that does not name a tracking_uri itself
os.environ.setdefault("WORKBENCH_TRACKING_URI", "none")

from workbench import ClassifierEvent, Workbench
from workbench.cli import zip_folder

TUTORIAL = Path(__file__).resolve().parents[1] / "data" / "tutorial"
DOGS_JPG = TUTORIAL / "dogs.jpg"
CREATE_CLASSES = ("beagle", "husky", "goldenretriever")


@pytest.fixture(scope="session")
def tutorial_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """beagle.zip, husky.zip, goldenretriever.zip, dalmatian.zip, cats.zip, more-cats.zip."""
    folder = tmp_path_factory.mktemp("zips")
    names = [*CREATE_CLASSES, "dalmatian", "cats", "more-cats"]
    return {name: zip_folder(TUTORIAL / name, folder / f"{name}.zip") for name in names}


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the whole session, so each test home does not re-embed the same images."""
    return tmp_path_factory.mktemp("cache") / "embeddings.db"


@pytest.fixture
def make_workbench(tmp_path: Path, embedding_cache: Path) -> Callable[..., Workbench]:
    """Builds a Workbench on a fresh home in this test's tmp_path."""

    def make(**kwargs) -> Workbench:
        kwargs.setdefault("embedding_cache", embedding_cache)
        kwargs.setdefault("tracking_uri", False)  # MLflow tracking off unless a test asks for it
        return Workbench(kwargs.pop("home", tmp_path / "home"), **kwargs)

    return make


@pytest.fixture(scope="session")
def dogs(tmp_path_factory: pytest.TempPathFactory, tutorial_zips: dict[str, Path]) -> tuple[Workbench, str]:
    """The tutorial's classifier after Step 3 (create, then add dalmatian and more-cats), ready. Read-only.

    It has an embedding cache of its own: a delete in another home forgets that home's embeddings in a
    shared cache, and tests read this classifier's embeddings from its cache whenever they run.
    """
    cache = tmp_path_factory.mktemp("dogs-cache") / "embeddings.db"
    wb = Workbench(tmp_path_factory.mktemp("dogs-home"), embedding_cache=cache, tracking_uri=False)
    created = wb.create_classifier(
        "dogs", {c: tutorial_zips[c] for c in CREATE_CLASSES}, negative_examples=tutorial_zips["cats"]
    )
    cid = created["classifier_id"]
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    wb.update_classifier(
        cid, positive_examples={"dalmatian": tutorial_zips["dalmatian"]}, negative_examples=tutorial_zips["more-cats"]
    )
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    return wb, cid


class Gate:
    """A listener that holds a training at one stage until the test opens it.

    Events are emitted on the training thread, so holding there makes "during the training" states
    deterministic, with no sleeps.
    """

    def __init__(self, stage: str = "fitting", timeout_s: float = 120.0) -> None:
        self.stage = stage
        self.timeout_s = timeout_s
        self.reached = threading.Event()
        self.opened = threading.Event()

    def __call__(self, event: ClassifierEvent) -> None:
        if event.stage == self.stage and not self.opened.is_set():
            self.reached.set()
            assert self.opened.wait(self.timeout_s), "the test never opened the gate"


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def png_bomb(side: int) -> bytes:
    """A 1-bit PNG of side x side zeros: tens of KB on disk, side**2 pixels decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip, in memory, holding `members` (name -> bytes) as named."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()
