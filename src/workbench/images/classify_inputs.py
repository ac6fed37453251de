"""Reading the inputs of a classify call into raw bytes: image paths, zips, folders, raw bytes, file objects.

Images are not decoded here; decoding errors are reported later, per image, by whoever calls
`decode.decode_image`. Images over `limits.max_image_bytes` and non-image members come back as `Skipped`.
"""

from __future__ import annotations

from pathlib import Path

from workbench.core.errors import ImageUnreadable, NoImages
from workbench.core.limits import Limits
from workbench.images.entries import (
    FILE_TOO_LARGE,
    NON_IMAGE_REASONS,
    ZIP_MAGICS,
    Entry,
    ImageInput,
    Skipped,
    Source,
    file_object_name,
    image_input,
    is_path,
    looks_like_zip,
)
from workbench.images.folder_reader import folder_entries, read_capped
from workbench.images.read_limits import check_total_bytes
from workbench.images.zip_reader import zip_entries


def _one_blob(data: bytes, name: str, limits: Limits) -> list[Entry]:
    """A blob from bytes or a file: a zip (by magic) or one image (not decoded here)."""
    if data[:4] in ZIP_MAGICS:
        return zip_entries(data, name, limits, ImageUnreadable, per_image_cap=True)
    if len(data) > limits.max_image_bytes:
        return [Skipped(name, FILE_TOO_LARGE)]
    return [image_input(name, data)]


def _one_path(path: Path, limits: Limits) -> list[Entry]:
    """A path: a folder, a zip (by magic or .zip), or one image file."""
    if path.is_dir():
        return folder_entries(path, limits, per_image_cap=True)
    if not path.is_file():
        raise ImageUnreadable(f"{path}: no such image file, zip or folder")
    with open(path, "rb") as fh:
        head = fh.read(4)
    size = path.stat().st_size
    if looks_like_zip(head, path.name):
        check_total_bytes(size, path.name, limits)
        data = read_capped(path, limits.max_zip_bytes)
        return zip_entries(data, path.name, limits, ImageUnreadable, per_image_cap=True)
    if size > limits.max_image_bytes:
        return [Skipped(path.name, FILE_TOO_LARGE)]
    return _one_blob(read_capped(path, limits.max_image_bytes), path.name, limits)


def _one_source(item: Source, position: int, limits: Limits) -> list[Entry]:
    """Entries of one classify input; unnamed inputs are called "image_<position>"."""
    unnamed = f"image_{position}"
    if is_path(item):
        return _one_path(Path(item), limits)
    if isinstance(item, (bytes, bytearray, memoryview)):
        data = bytes(item)
    elif hasattr(item, "read"):
        unnamed = file_object_name(item, unnamed)
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
