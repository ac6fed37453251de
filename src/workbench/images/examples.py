"""Reading zips, folders and files of images safely: limits, validation, hashing.

Everything here works on bytes in memory: zip members are read with `ZipFile.open`
and never extracted to disk by name, so a member called `../evil.jpg` cannot write
anywhere (and such a zip is rejected outright anyway).

Two entry points:

* `read_example_set` reads one training set (a zip or a folder of example images,
  like Watson's `beagle_positive_examples`), validates every image and enforces the
  per-set limits.
* `read_images` reads the inputs of a classify call (image paths, zips, folders,
  raw bytes, file objects) into raw bytes without decoding; decoding errors are
  reported later, per image, by whoever calls `decode.decode_image`.

Choices worth knowing:

* Zip and folder members are recognised as images by extension (`IMAGE_EXTENSIONS`),
  as Watson did; other members are skipped and reported, never fatal.
* A zip inside a zip is skipped (reason `NESTED_ZIP`), not read and not fatal.
* Folders are read recursively; images in sub-folders are named by their path
  relative to the folder ("folder/sub/x.jpg"); hidden files and `__MACOSX` are skipped,
  and symlinks that point outside the folder are skipped.
* A zip's members are counted from its central directory (`zip_directory`) before
  `zipfile` parses it, so a zip of a million members is refused without a million objects.
* One create or update reads at most `limits.max_request_bytes` of images across all its
  sets: `request_budget` refuses from what zip directories and file sizes state, before
  any image is read, and the `RequestBudget` it returns stops every read once past it.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol, TypeGuard

from workbench.core.errors import (
    ImageUnreadable,
    InvalidExamples,
    LimitExceeded,
    NoImages,
    WorkbenchError,
)
from workbench.core.limits import Limits
from workbench.core.vocabulary import POSITIVE_SUFFIX
from workbench.images import zip_directory
from workbench.images.decode import validate_image

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".tif", ".tiff", ".webp", ".bmp"})
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")

# Reasons for Skipped entries. The first group marks members that are not images at all.
DIRECTORY = "directory, not an image"
MACOS_METADATA = "macOS metadata (__MACOSX or ._ file), not an image"
HIDDEN_FILE = "hidden file, not an image"
NESTED_ZIP = "nested zip files are not read"
NOT_AN_IMAGE = "not an image file (unsupported extension)"
NON_IMAGE_REASONS = frozenset({DIRECTORY, MACOS_METADATA, HIDDEN_FILE, NESTED_ZIP, NOT_AN_IMAGE})
# ... and these mark images that could not be used.
FILE_TOO_LARGE = "File size limit exceeded"
ENCRYPTED = "encrypted zip member"
SYMLINK_OUTSIDE = "symbolic link pointing outside the folder"


class BinaryFile(Protocol):
    """A binary file object (an open file, an upload): what a source read from a stream needs."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


Source = str | os.PathLike | bytes | bytearray | memoryview | BinaryFile


@dataclass(frozen=True)
class ImageInput:
    """One image's raw bytes; `name` is what Watson reports as `image`."""

    name: str
    data: bytes
    sha256: str


@dataclass(frozen=True)
class Skipped:
    """An input member that was not used, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class ExampleSet:
    """The readable, de-duplicated images of one training set, sorted by name."""

    source: str
    images: tuple[ImageInput, ...]
    skipped: tuple[Skipped, ...]


Entry = ImageInput | Skipped


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of `data`: the identity of an image's bytes."""
    return hashlib.sha256(data).hexdigest()


def _image_input(name: str, data: bytes) -> ImageInput:
    return ImageInput(name=name, data=data, sha256=sha256_hex(data))


# ---------------------------------------------------------------- members


def _is_unsafe(member: str) -> bool:
    """True for absolute paths, drive letters or `..` components (zip-slip)."""
    norm = member.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return True
    return ".." in norm.split("/")


def skip_reason(member: str) -> str | None:
    """Why a member (zip or folder relative path) is not an image candidate; None if it is."""
    norm = member.replace("\\", "/")
    if norm.endswith("/"):
        return DIRECTORY
    parts = PurePosixPath(norm).parts
    base = parts[-1] if parts else ""
    if "__MACOSX" in parts or base.startswith("._"):
        return MACOS_METADATA
    if any(part.startswith(".") for part in parts):
        return HIDDEN_FILE
    ext = PurePosixPath(base).suffix.lower()
    if ext == ".zip":
        return NESTED_ZIP
    if ext not in IMAGE_EXTENSIONS:
        return NOT_AN_IMAGE
    return None


def _check_image_count(count: int, where: str, limits: Limits) -> None:
    if count > limits.max_zip_images:
        raise LimitExceeded(f"{where} holds {count} images; the limit is {limits.max_zip_images}")


def _check_total_bytes(total: int, where: str, limits: Limits) -> None:
    if total > limits.max_zip_bytes:
        raise LimitExceeded(f"{where} holds {total} bytes of images; the limit is {limits.max_zip_bytes}")


class RequestBudget:
    """The image bytes one create or update may still read, across all its example sets."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)

    def take(self, size: int, where: str) -> None:
        """Counts `size` bytes read from `where`; LimitExceeded once the request is past its limit."""
        self.used += size
        if self.used > self.limit:
            raise request_too_large(f"more than {self.limit}", self.limit, where)


def request_too_large(held: str, limit: int, where: str | None = None) -> LimitExceeded:
    """The error of a create or update whose example sets hold too many bytes of images."""
    past = f" ({where} goes past it)" if where else ""
    return LimitExceeded(
        f"The example sets of this request hold {held} bytes of images{past}; "
        f"one create or update may hold at most {limit} bytes"
    )


def _looks_like_zip(head: bytes, name: str) -> bool:
    return head[:4] in ZIP_MAGICS or name.lower().endswith(".zip")


ZIP_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
)


def _zip_entries(
    data: bytes,
    zip_name: str,
    limits: Limits,
    error: type[WorkbenchError],
    per_image_cap: bool,
    budget: RequestBudget | None = None,
) -> list[Entry]:
    """Read a zip's members into ImageInputs (undecoded) and Skipped, sorted by name.

    Raises `error` for a corrupt or unsafe zip, LimitExceeded for too many members or images, or
    too many (declared or actual) uncompressed bytes, in the zip or past the request's `budget`.
    With `per_image_cap`, images over limits.max_image_bytes are skipped unread.
    """
    _check_total_bytes(len(data), zip_name, limits)
    zip_directory.members(io.BytesIO(data), limits.max_zip_members, zip_name)  # before zipfile builds them all
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except ZIP_READ_ERRORS as exc:
        raise error(f"{zip_name} is not a valid zip file (corrupt or truncated): {exc}") from exc
    with zf:
        infos = sorted(zf.infolist(), key=lambda info: info.filename)
        unsafe = [info.filename for info in infos if _is_unsafe(info.filename)]
        if unsafe:
            raise error(f"{zip_name} is an unsafe zip: member {unsafe[0]!r} escapes the archive")
        entries: list[Entry] = []
        images: list[zipfile.ZipInfo] = []
        for info in infos:
            reason = skip_reason(info.filename)  # not info.is_dir(): it fails on a name zipfile cut to "" at a NUL
            if reason is None:
                images.append(info)
            else:
                entries.append(Skipped(f"{zip_name}/{info.filename}", reason))
        _check_image_count(len(images), zip_name, limits)
        declared = sum(info.file_size for info in images)
        _check_total_bytes(declared, zip_name, limits)
        if budget is not None and declared > budget.left:
            raise request_too_large(f"more than {budget.limit}", budget.limit, zip_name)
        entries.extend(_read_zip_images(zf, images, zip_name, limits, error, per_image_cap, budget))
    return sorted(entries, key=lambda entry: entry.name)


def _read_zip_images(
    zf: zipfile.ZipFile,
    images: list[zipfile.ZipInfo],
    zip_name: str,
    limits: Limits,
    error: type[WorkbenchError],
    per_image_cap: bool,
    budget: RequestBudget | None,
) -> list[Entry]:
    """Read image members with every read capped, so a lying header cannot inflate memory."""
    zip_left = limits.max_zip_bytes
    entries: list[Entry] = []
    for info in images:
        name = f"{zip_name}/{info.filename}"
        if info.flag_bits & 0x1:
            entries.append(Skipped(name, ENCRYPTED))
            continue
        if per_image_cap and info.file_size > limits.max_image_bytes:
            entries.append(Skipped(name, FILE_TOO_LARGE))
            continue
        cap = zip_left if budget is None else min(zip_left, budget.left)
        try:
            with zf.open(info) as member:
                blob = member.read(cap + 1)
        except ZIP_READ_ERRORS as exc:
            raise error(f"{zip_name} is corrupt: cannot read {info.filename!r}: {exc}") from exc
        if len(blob) > zip_left:
            _check_total_bytes(limits.max_zip_bytes + 1, zip_name, limits)
        if budget is not None:
            budget.take(len(blob), zip_name)
        zip_left -= len(blob)
        if per_image_cap and len(blob) > limits.max_image_bytes:
            entries.append(Skipped(name, FILE_TOO_LARGE))
            continue
        entries.append(_image_input(name, blob))
    return entries


def _read_capped(path: Path, cap: int) -> bytes:
    """Read at most cap + 1 bytes of `path` (the + 1 shows the file is over the cap)."""
    with open(path, "rb") as fh:
        return fh.read(cap + 1)


def _folder_files(root: Path) -> list[tuple[str, Path]]:
    """Every file under `root` (recursive, not following directory links), by relative name."""
    found: list[tuple[str, Path]] = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            path = Path(dirpath) / filename
            found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def _folder_scan(root: Path) -> tuple[list[Entry], list[tuple[str, Path, int]]]:
    """A folder's files, unread: those skipped, and the images as (name, path, size) named "folder/relative/path"."""
    prefix = root.resolve().name or "folder"
    real_root = root.resolve()
    entries: list[Entry] = []
    images: list[tuple[str, Path, int]] = []
    for rel, path in _folder_files(root):
        name = f"{prefix}/{rel}"
        reason = skip_reason(rel)
        if reason is None and not path.resolve().is_relative_to(real_root):
            reason = SYMLINK_OUTSIDE
        if reason is None and not path.is_file():
            reason = NOT_AN_IMAGE
        if reason is not None:
            entries.append(Skipped(name, reason))
        else:
            images.append((name, path, path.stat().st_size))
    return entries, images


def _folder_entries(
    root: Path, limits: Limits, per_image_cap: bool, budget: RequestBudget | None = None
) -> list[Entry]:
    """Read a folder's images like a zip's members; names are "folder/relative/path"."""
    prefix = root.resolve().name or "folder"
    entries, images = _folder_scan(root)
    _check_image_count(len(images), prefix, limits)
    declared = sum(size for _, _, size in images)
    _check_total_bytes(declared, prefix, limits)
    if budget is not None and declared > budget.left:
        raise request_too_large(f"more than {budget.limit}", budget.limit, prefix)
    folder_left = limits.max_zip_bytes
    for name, path, size in images:
        if per_image_cap and size > limits.max_image_bytes:
            entries.append(Skipped(name, FILE_TOO_LARGE))
            continue
        blob = _read_capped(path, folder_left if budget is None else min(folder_left, budget.left))
        if len(blob) > folder_left:
            _check_total_bytes(limits.max_zip_bytes + 1, prefix, limits)
        if budget is not None:
            budget.take(len(blob), prefix)
        folder_left -= len(blob)
        entries.append(_image_input(name, blob))
    return sorted(entries, key=lambda entry: entry.name)


# ---------------------------------------------------------------- training sets


def _is_path(source: object) -> TypeGuard[str | os.PathLike[str]]:
    return isinstance(source, (str, os.PathLike))


def _file_object_name(fileobj: object, default: str) -> str:
    name = getattr(fileobj, "name", None)
    return os.path.basename(name) if isinstance(name, str) and name else default


def _example_entries(source: Source, label: str, limits: Limits, budget: RequestBudget) -> tuple[str, list[Entry]]:
    """Resolve a training source to (its name, its raw entries)."""
    if _is_path(source):
        path = Path(source)
        name = path.resolve().name if path.is_dir() else path.name
        if path.is_dir():
            return name, _folder_entries(path, limits, per_image_cap=False, budget=budget)
        if not path.is_file():
            raise InvalidExamples(f"{name} for class '{label}' does not exist")
        _check_total_bytes(path.stat().st_size, name, limits)
        data = _read_capped(path, limits.max_zip_bytes)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        name, data = f"{label}.zip", bytes(source)
    elif hasattr(source, "read"):
        name = _file_object_name(source, f"{label}.zip")
        data = source.read(limits.max_zip_bytes + 1)
    else:
        raise InvalidExamples(f"examples for class '{label}' must be a zip file or a folder")
    if not _looks_like_zip(data, name):
        raise InvalidExamples(f"{name} for class '{label}' is not a zip file or a folder of images")
    return name, _zip_entries(data, name, limits, InvalidExamples, per_image_cap=False, budget=budget)


def _validated(entries: list[Entry], limits: Limits) -> tuple[list[ImageInput], list[Skipped]]:
    """Decode-check each image and drop duplicates (same sha256; the first name is kept)."""
    images: list[ImageInput] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, Skipped):
            skipped.append(entry)
            continue
        try:
            validate_image(entry.data, limits=limits, name=entry.name)
        except (ImageUnreadable, LimitExceeded) as exc:
            skipped.append(Skipped(entry.name, exc.message))
            continue
        if entry.sha256 in seen:
            skipped.append(Skipped(entry.name, f"duplicate of {seen[entry.sha256]}"))
            continue
        seen[entry.sha256] = entry.name
        images.append(entry)
    return images, skipped


def read_example_set(
    source: Source, *, limits: Limits = Limits(), label: str, budget: RequestBudget | None = None
) -> ExampleSet:
    """Read and validate one training set: a .zip (path, bytes or binary file) or a folder.

    `label` (the class name, or "negative") only words the errors and names a set given
    as bytes ("<label>.zip"). `budget` is what the request's sets may still read (by default
    limits.max_request_bytes for this set alone; see `request_budget`). Raises InvalidExamples
    (not a zip or folder, corrupt or unsafe zip, too few readable images) or LimitExceeded
    (too many members, images or bytes).
    """
    budget = budget if budget is not None else RequestBudget(limits.max_request_bytes)
    name, entries = _example_entries(source, label, limits, budget)
    images, skipped = _validated(entries, limits)
    if len(images) < limits.min_images_per_set:
        raise InvalidExamples(
            f"Class '{label}' needs at least {limits.min_images_per_set} readable images; "
            f"{name} has {len(images)} readable and {len(skipped)} skipped"
        )
    return ExampleSet(
        source=name,
        images=tuple(sorted(images, key=lambda image: image.name)),
        skipped=tuple(sorted(skipped, key=lambda skip: skip.name)),
    )


def _declared_in_zip(file: BinaryFile, name: str, limits: Limits) -> int:
    """The uncompressed bytes a zip's image members state, from its central directory (0: no readable directory)."""
    found = zip_directory.members(file, limits.max_zip_members, name)
    return sum(member.file_size for member in found or () if skip_reason(member.name) is None)


def declared_image_bytes(source: Source, label: str, limits: Limits) -> int:
    """The bytes of images a training source states, unread: zip directories (a zip over the member limit is
    refused here) or a folder's file sizes. 0 for what is neither: the reader then says what is wrong with it."""
    try:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if path.is_dir():
                return sum(size for _, _, size in _folder_scan(path)[1])
            if not path.is_file():
                return 0
            with open(path, "rb") as fh:
                return _declared_in_zip(fh, path.name, limits)
        if isinstance(source, (bytes, bytearray, memoryview)):
            return _declared_in_zip(io.BytesIO(source), f"{label}.zip", limits)
        if hasattr(source, "read") and hasattr(source, "seek"):
            return _declared_in_zip(source, _file_object_name(source, f"{label}.zip"), limits)
    except OSError:  # an unseekable stream, a file gone: the reader reports it
        return 0
    return 0  # not a source at all: the reader refuses it


def request_budget(sources: Iterable[tuple[str, Source]], limits: Limits) -> RequestBudget:
    """What one create or update may read: refuses with LimitExceeded when its sets (label, source) state more
    than limits.max_request_bytes of images, or a zip more than limits.max_zip_members members, before any
    image is read; the budget returned stops the reads themselves once past the limit (a folder that grew)."""
    declared = sum(declared_image_bytes(source, label, limits) for label, source in sources)
    if declared > limits.max_request_bytes:
        raise request_too_large(str(declared), limits.max_request_bytes)
    return RequestBudget(limits.max_request_bytes)


# ---------------------------------------------------------------- classify inputs


def _one_blob(data: bytes, name: str, limits: Limits) -> list[Entry]:
    """A blob from bytes or a file: a zip (by magic) or one image (not decoded here)."""
    if data[:4] in ZIP_MAGICS:
        return _zip_entries(data, name, limits, ImageUnreadable, per_image_cap=True)
    if len(data) > limits.max_image_bytes:
        return [Skipped(name, FILE_TOO_LARGE)]
    return [_image_input(name, data)]


def _one_path(path: Path, limits: Limits) -> list[Entry]:
    """A path: a folder, a zip (by magic or .zip), or one image file."""
    if path.is_dir():
        return _folder_entries(path, limits, per_image_cap=True)
    if not path.is_file():
        raise ImageUnreadable(f"{path}: no such image file, zip or folder")
    with open(path, "rb") as fh:
        head = fh.read(4)
    size = path.stat().st_size
    if _looks_like_zip(head, path.name):
        _check_total_bytes(size, path.name, limits)
        data = _read_capped(path, limits.max_zip_bytes)
        return _zip_entries(data, path.name, limits, ImageUnreadable, per_image_cap=True)
    if size > limits.max_image_bytes:
        return [Skipped(path.name, FILE_TOO_LARGE)]
    return _one_blob(_read_capped(path, limits.max_image_bytes), path.name, limits)


def _one_source(item: Source, position: int, limits: Limits) -> list[Entry]:
    """Entries of one classify input; unnamed inputs are called "image_<position>"."""
    unnamed = f"image_{position}"
    if _is_path(item):
        return _one_path(Path(item), limits)
    if isinstance(item, (bytes, bytearray, memoryview)):
        data = bytes(item)
    elif hasattr(item, "read"):
        unnamed = _file_object_name(item, unnamed)
        data = item.read(max(limits.max_zip_bytes, limits.max_image_bytes) + 1)
    else:
        raise ImageUnreadable(f"input {position} is not an image path, zip, folder or bytes")
    if data[:4] in ZIP_MAGICS and not unnamed.lower().endswith(".zip"):
        unnamed += ".zip"
    return _one_blob(data, unnamed, limits)


def read_images(
    sources: Source | list[Source] | tuple[Source, ...], *, limits: Limits = Limits(), first_position: int = 1
) -> list[Entry]:
    """Read the images of a classify call, in input order (zip/folder members sorted).

    Each source is an image path, a .zip path ("x.zip/member.jpg"), a folder
    ("folder/x.jpg", recursive), raw bytes of an image ("image_N", N the 1-based input
    position, counted from `first_position`) or of a zip ("image_N.zip/member.jpg"), or a binary file object (named
    by its `.name` when it has one). Images are NOT decoded here; images over
    limits.max_image_bytes and non-image members come back as Skipped.
    Raises ImageUnreadable for a missing path or a corrupt/unsafe zip, LimitExceeded
    for an oversized zip, and NoImages when no image at all was found.
    """
    items = list(sources) if isinstance(sources, (list, tuple)) else [sources]
    entries: list[Entry] = []
    for position, item in enumerate(items, start=first_position):
        entries.extend(_one_source(item, position, limits))
    has_image = any(isinstance(entry, ImageInput) or entry.reason not in NON_IMAGE_REASONS for entry in entries)
    if not has_image:
        raise NoImages("No images were found in the request")
    return entries


def set_name(file_name: str) -> str:
    """The class an example set stands for: its file or folder name without `.zip` and `_positive_examples`."""
    return Path(file_name).name.removesuffix(".zip").removesuffix(POSITIVE_SUFFIX)


def folder_sets(folder: str | Path) -> dict[str, Path]:
    """Example sets in a folder: each `.zip` file and each sub-folder is one set, named after it."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InvalidExamples(f"{str(root)!r} is not a folder")
    entries = sorted(p for p in root.iterdir() if p.is_dir() or p.suffix.lower() == ".zip")
    return {set_name(p.name): p for p in entries if not p.name.startswith(".")}


def image_paths(images: str | Path | Iterable[str | Path]) -> list[Path]:
    """The images of a folder (sorted, by extension; LABELS.txt and the like are left out) or the given paths."""
    if isinstance(images, (str, Path)) and Path(images).is_dir():
        return sorted(
            p for p in Path(images).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
    return [Path(images)] if isinstance(images, (str, Path)) else [Path(p) for p in images]
