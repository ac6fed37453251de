"""Tests for workbench.images' readers (examples, classify_inputs, zip_reader, folders): safe reading of zips,
folders and images."""

from __future__ import annotations

import io
import os
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from conftest import encode
from workbench.core.errors import (
    ImageUnreadable,
    InvalidExamples,
    LimitExceeded,
    NoImages,
)
from workbench.core.limits import Limits
from workbench.images.classify_inputs import read_images
from workbench.images.entries import (
    FILE_TOO_LARGE,
    MACOS_METADATA,
    NESTED_ZIP,
    NOT_AN_IMAGE,
    SYMLINK_OUTSIDE,
    ImageInput,
    Skipped,
    sha256_hex,
)
from workbench.images.examples import ExampleSet, folder_sets, read_example_set

IMAGES = Path("/work/shared/reference/images")
BEAGLES = sorted(IMAGES.joinpath("beagle").iterdir())
HUSKIES = sorted(IMAGES.joinpath("husky").iterdir())
DOGS = IMAGES / "dogs.jpg"


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    """Write a zip holding `members` (name -> bytes) exactly as named."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def image_members(files: list[Path]) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in files}


# ---------------------------------------------------------------- training sets


def test_fifty_image_zip_reads_sorted_with_sha256(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "beagle.zip", image_members(BEAGLES))
    result = read_example_set(zpath, label="beagle")
    assert isinstance(result, ExampleSet)
    assert result.source == "beagle.zip"
    assert len(result.images) == 50
    assert result.skipped == ()
    names = [image.name for image in result.images]
    assert names == sorted(f"beagle.zip/{f.name}" for f in BEAGLES)
    for image, path in zip(result.images, BEAGLES, strict=True):
        assert image.data == path.read_bytes()
        assert image.sha256 == sha256_hex(path.read_bytes())


def test_zip_given_as_bytes_and_file_object(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "beagle.zip", image_members(BEAGLES[:10]))
    from_bytes = read_example_set(zpath.read_bytes(), label="beagle")
    assert from_bytes.source == "beagle.zip"
    with open(zpath, "rb") as fh:
        from_file = read_example_set(fh, label="x")
    assert from_file.source == "beagle.zip"
    assert [i.sha256 for i in from_bytes.images] == [i.sha256 for i in from_file.images]


def test_folder_reads_like_zip(tmp_path: Path) -> None:
    folder = tmp_path / "beagle"
    shutil.copytree(IMAGES / "beagle", folder)
    (folder / "notes.txt").write_text("hi")
    result = read_example_set(folder, label="beagle")
    assert result.source == "beagle"
    assert [i.name for i in result.images] == sorted(f"beagle/{f.name}" for f in BEAGLES)
    assert result.skipped == (Skipped("beagle/notes.txt", NOT_AN_IMAGE),)
    zipped = read_example_set(make_zip(tmp_path / "b.zip", image_members(BEAGLES)), label="b")
    assert [i.sha256 for i in result.images] == [i.sha256 for i in zipped.images]


def test_folder_links_read_inside_the_folder_and_are_skipped_outside_it(tmp_path: Path) -> None:
    """A linked file inside the folder is read; one that leads outside it, or to nothing, is not; a linked
    sub-folder is not entered. Sub-folders name their images by relative path."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(BEAGLES[0].read_bytes())
    folder = tmp_path / "set"
    (folder / "sub" / "deeper").mkdir(parents=True)
    for i, path in enumerate(BEAGLES[1:11]):
        shutil.copy(path, folder / ("sub/deeper" if i % 2 else "sub") / path.name)
    (folder / "inside-link.jpg").symlink_to(folder / "sub" / BEAGLES[1].name)
    (folder / "outside-link.jpg").symlink_to(outside / "secret.jpg")
    (folder / "dangling.jpg").symlink_to(folder / "gone.jpg")
    (folder / "linked-folder").symlink_to(outside, target_is_directory=True)
    entries = read_images([folder], limits=Limits())
    read = {e.name: e.data for e in entries if isinstance(e, ImageInput)}
    assert read["set/inside-link.jpg"] == BEAGLES[1].read_bytes()
    assert sorted(read) == sorted(
        ["set/inside-link.jpg"]
        + [f"set/{'sub/deeper' if i % 2 else 'sub'}/{p.name}" for i, p in enumerate(BEAGLES[1:11])]
    )
    skipped = {e.name: e.reason for e in entries if isinstance(e, Skipped)}
    assert skipped == {"set/outside-link.jpg": SYMLINK_OUTSIDE, "set/dangling.jpg": NOT_AN_IMAGE}


def test_nine_images_is_too_few(tmp_path: Path) -> None:
    members = image_members(BEAGLES[:9])
    members["broken.jpg"] = b"not a jpeg"
    zpath = make_zip(tmp_path / "beagle.zip", members)
    with pytest.raises(InvalidExamples) as info:
        read_example_set(zpath, label="beagle")
    message = info.value.message
    assert "beagle" in message and "9 readable" in message and "1 skipped" in message


@pytest.mark.parametrize("evil", ["../evil.jpg", "/abs.jpg", "a/../../evil.jpg", "..\\evil.jpg"])
def test_unsafe_members_reject_the_zip(tmp_path: Path, evil: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    members = image_members(BEAGLES[:10])
    members[evil] = BEAGLES[10].read_bytes()
    zpath = make_zip(work / "beagle.zip", members)
    before = sorted(p for p in tmp_path.rglob("*"))
    cwd = os.getcwd()
    os.chdir(work)
    try:
        with pytest.raises(InvalidExamples, match="unsafe"):
            read_example_set(zpath, label="beagle")
        with pytest.raises(ImageUnreadable, match="unsafe"):
            read_images(zpath)
    finally:
        os.chdir(cwd)
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not Path("/abs.jpg").exists()


def test_text_and_macosx_members_are_skipped_and_counted(tmp_path: Path) -> None:
    members = image_members(BEAGLES[:10])
    members["readme.txt"] = b"hello"
    members["__MACOSX/._" + BEAGLES[0].name] = b"\x00\x05\x16\x07resource fork"
    members["pics/"] = b""
    zpath = make_zip(tmp_path / "beagle.zip", members)
    result = read_example_set(zpath, label="beagle")
    assert len(result.images) == 10
    reasons = {s.name: s.reason for s in result.skipped}
    assert reasons["beagle.zip/readme.txt"] == NOT_AN_IMAGE
    assert reasons["beagle.zip/__MACOSX/._" + BEAGLES[0].name] == MACOS_METADATA
    assert "beagle.zip/pics/" in reasons
    assert len(result.skipped) == 3


def test_nested_zip_is_skipped(tmp_path: Path) -> None:
    inner = make_zip(tmp_path / "inner.zip", image_members(HUSKIES[:10])).read_bytes()
    members = image_members(BEAGLES[:10])
    members["more/inner.zip"] = inner
    result = read_example_set(make_zip(tmp_path / "beagle.zip", members), label="beagle")
    assert len(result.images) == 10
    assert result.skipped == (Skipped("beagle.zip/more/inner.zip", NESTED_ZIP),)


def test_truncated_zip_is_invalid(tmp_path: Path) -> None:
    data = make_zip(tmp_path / "full.zip", image_members(BEAGLES[:12])).read_bytes()
    cut = tmp_path / "beagle.zip"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidExamples, match=r"beagle\.zip"):
        read_example_set(cut, label="beagle")


def test_crc_error_is_invalid(tmp_path: Path) -> None:
    members = image_members(BEAGLES[:10])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    data = bytearray(buf.getvalue())
    data[200] ^= 0xFF  # inside the first stored member's data
    with pytest.raises(InvalidExamples, match="corrupt"):
        read_example_set(bytes(data), label="beagle")


def test_non_zip_file_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidExamples, match="not a zip"):
        read_example_set(DOGS, label="dogs")
    with pytest.raises(InvalidExamples, match="does not exist"):
        read_example_set(tmp_path / "missing.zip", label="dogs")


def test_duplicates_are_kept_once(tmp_path: Path) -> None:
    members = image_members(BEAGLES[:10])
    members["zz_copy.jpg"] = BEAGLES[0].read_bytes()
    result = read_example_set(make_zip(tmp_path / "b.zip", members), label="b")
    assert len(result.images) == 10
    assert result.skipped == (Skipped("b.zip/zz_copy.jpg", f"duplicate of b.zip/{BEAGLES[0].name}"),)


def test_too_many_images_in_zip(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "b.zip", image_members(BEAGLES[:10]))
    with pytest.raises(LimitExceeded, match="10 images"):
        read_example_set(zpath, label="b", limits=Limits(max_zip_images=5))


def test_zip_bomb_is_refused_before_reading(tmp_path: Path) -> None:
    members = image_members(BEAGLES[:10])
    members["huge.jpg"] = b"\x00" * (5 * 1024 * 1024)  # compresses to a few KB
    zpath = make_zip(tmp_path / "bomb.zip", members)
    assert zpath.stat().st_size < 1024 * 1024
    with pytest.raises(LimitExceeded, match="bytes"):
        read_example_set(zpath, label="b", limits=Limits(max_zip_bytes=2 * 1024 * 1024))


def test_zip_file_over_byte_limit(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "b.zip", image_members(BEAGLES[:10]))
    with pytest.raises(LimitExceeded):
        read_example_set(zpath, label="b", limits=Limits(max_zip_bytes=1000))


def test_unreadable_image_in_set_is_skipped(tmp_path: Path) -> None:
    members = image_members(BEAGLES[:10])
    members["tiny.png"] = encode(Image.new("RGB", (20, 20)), "PNG")
    members["cut.jpg"] = BEAGLES[11].read_bytes()[:2000]
    result = read_example_set(make_zip(tmp_path / "b.zip", members), label="b")
    assert len(result.images) == 10
    assert {s.name for s in result.skipped} == {"b.zip/tiny.png", "b.zip/cut.jpg"}


# ---------------------------------------------------------------- single images


# ---------------------------------------------------------------- classify inputs


def test_read_images_names_every_kind_of_input(tmp_path: Path) -> None:
    three = make_zip(tmp_path / "three.zip", {**image_members(BEAGLES[:3]), "x.txt": b"x"})
    folder = tmp_path / "pics"
    folder.mkdir()
    shutil.copy(HUSKIES[0], folder / HUSKIES[0].name)
    shutil.copy(HUSKIES[1], folder / HUSKIES[1].name)
    raw = HUSKIES[2].read_bytes()
    result = read_images([str(DOGS), raw, three, folder])
    names = [entry.name for entry in result]
    assert names == [
        "dogs.jpg",
        "image_2",
        *sorted(f"three.zip/{f.name}" for f in [*BEAGLES[:3], Path("x.txt")]),
        *sorted(f"pics/{f.name}" for f in HUSKIES[:2]),
    ]
    by_name = {entry.name: entry for entry in result}
    assert by_name["three.zip/x.txt"] == Skipped("three.zip/x.txt", NOT_AN_IMAGE)
    assert isinstance(by_name["image_2"], ImageInput)
    assert by_name["image_2"].sha256 == sha256_hex(raw)
    assert by_name["dogs.jpg"].data == DOGS.read_bytes()


def test_read_images_single_item_bytes_zip_and_file_object(tmp_path: Path) -> None:
    assert [e.name for e in read_images(DOGS)] == ["dogs.jpg"]
    zdata = make_zip(tmp_path / "z.zip", image_members(BEAGLES[:2])).read_bytes()
    assert [e.name for e in read_images(zdata)] == sorted(f"image_1.zip/{f.name}" for f in BEAGLES[:2])
    with open(DOGS, "rb") as fh:
        assert [e.name for e in read_images([fh])] == ["dogs.jpg"]


def test_read_images_does_not_decode() -> None:
    result = read_images([b"not an image at all"])
    assert result == [ImageInput("image_1", b"not an image at all", sha256_hex(b"not an image at all"))]


def test_read_images_size_cap_is_per_image(tmp_path: Path) -> None:
    limits = Limits(max_image_bytes=1000)
    zpath = make_zip(tmp_path / "z.zip", image_members(BEAGLES[:2]))
    result = read_images([DOGS, zpath, DOGS.read_bytes()], limits=limits)
    assert all(isinstance(e, Skipped) and e.reason == FILE_TOO_LARGE for e in result)
    assert len(result) == 4


def test_read_images_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageUnreadable):
        read_images(tmp_path / "missing.jpg")
    with pytest.raises(NoImages):
        read_images([])
    with pytest.raises(NoImages):
        read_images(make_zip(tmp_path / "t.zip", {"a.txt": b"a"}))
    cut = make_zip(tmp_path / "c.zip", image_members(BEAGLES[:4])).read_bytes()
    with pytest.raises(ImageUnreadable, match="zip"):
        read_images(cut[: len(cut) // 2])
    with pytest.raises(LimitExceeded):
        read_images(make_zip(tmp_path / "many.zip", image_members(BEAGLES[:6])), limits=Limits(max_zip_images=5))


def test_folder_sets_names_zips_and_image_folders(tmp_path, tutorial_zips):
    (tmp_path / "husky").mkdir()
    (tmp_path / "beagle_positive_examples.zip").write_bytes(tutorial_zips["beagle"].read_bytes())
    (tmp_path / "notes.txt").write_text("not a set")
    assert list(folder_sets(tmp_path)) == ["beagle", "husky"]
    with pytest.raises(InvalidExamples):
        folder_sets(tmp_path / "missing")


# ---------------------------------------------------------------- central directories, walked with struct


def _written(members: dict[str, bytes], *, comment: bytes = b"", prefix: bytes = b"", zip64: bool = False) -> bytes:
    buffer = io.BytesIO(prefix)
    buffer.seek(len(prefix))
    with zipfile.ZipFile(buffer, "a" if prefix else "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            with zf.open(name, "w", force_zip64=zip64) as member:
                member.write(data)
        zf.comment = comment
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        _written({"a.jpg": b"x" * 100, "dir/": b"", "__MACOSX/._a.jpg": b"y"}),
        _written({"a.jpg": b"x" * 100}, comment=b"a comment " * 100),
        _written({"a.jpg": b"x" * 100}, prefix=b"#!/bin/sh\nexit 0\n" * 50),  # a self-extractor's stub before it
        _written({"a.jpg": b"x" * 100, "b.jpg": b"y"}, zip64=True),
        _written({"café.jpg": b"x", "cut\0here.jpg": b"y"}),
        _written({}),
    ],
    ids=["plain", "comment", "prefixed", "zip64-headers", "names", "empty"],
)
@pytest.mark.parametrize("chunk_bytes", [1024 * 1024, 7])  # 7: entries cut across the chunks read
def test_the_struct_walk_lists_what_zipfile_lists(
    data: bytes, chunk_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.images import zip_directory
    from workbench.images.zip_directory import Member, members

    monkeypatch.setattr(zip_directory, "CHUNK_BYTES", chunk_bytes)
    expected = [Member(info.filename, info.file_size) for info in zipfile.ZipFile(io.BytesIO(data)).infolist()]
    stream = io.BytesIO(data)
    stream.seek(7)
    assert members(stream, 100, "z.zip") == expected
    assert stream.tell() == 7  # left where it was


def test_a_zip64_size_is_read_from_the_extra_field() -> None:
    """A 32-bit size of 0xFFFFFFFF means "see the zip64 extra field": the walk reads the size there, as zipfile does."""
    from reliability.hand_zips import central_entry, hand_zip
    from workbench.images.zip_directory import members

    extra = (
        struct.pack("<2H", 0x7075, 3) + b"abc" + struct.pack("<2HQ", 0x0001, 8, 5_000_000_000)
    )  # after another field
    data = hand_zip(central_entry(b"big.jpg", 0xFFFFFFFF, extra) + central_entry(b"small.jpg", 3), 2)
    expected = [info.file_size for info in zipfile.ZipFile(io.BytesIO(data)).infolist()]
    assert (
        [member.file_size for member in members(io.BytesIO(data), 10, "z.zip") or []] == expected == [5_000_000_000, 3]
    )


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 cut short", b"PK\x05\x06" + b"\0" * 10])
def test_no_directory_is_left_to_zipfile(data: bytes) -> None:
    from workbench.images.zip_directory import members

    assert members(io.BytesIO(data), 10, "z.zip") is None
