"""What reading images yields, whatever the container: `ImageInput` (raw bytes, hashed) or `Skipped` (and why).

Zip and folder members are recognised as images by extension (`IMAGE_EXTENSIONS`), as Watson did;
other members are skipped and reported, never fatal (`skip_reason`). A zip inside a zip is skipped
(reason `NESTED_ZIP`), not read and not fatal. An image's identity is the SHA-256 of its bytes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol, TypeGuard

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


Entry = ImageInput | Skipped


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of `data`: the identity of an image's bytes."""
    return hashlib.sha256(data).hexdigest()


def image_input(name: str, data: bytes) -> ImageInput:
    """An ImageInput of `data`, hashed once here so every reader names the same bytes the same way."""
    return ImageInput(name=name, data=data, sha256=sha256_hex(data))


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


def looks_like_zip(head: bytes, name: str) -> bool:
    """True for a zip by its magic bytes (`head`: at least its first 4) or by a `.zip` name."""
    return head[:4] in ZIP_MAGICS or name.lower().endswith(".zip")


def is_path(source: object) -> TypeGuard[str | os.PathLike[str]]:
    """True for a source given as a path (str or path-like) rather than bytes or a file object."""
    return isinstance(source, (str, os.PathLike))


def file_object_name(fileobj: object, default: str) -> str:
    """A file object's base name (an open file's `.name`), or `default` for one without a name (an upload)."""
    name = getattr(fileobj, "name", None)
    return os.path.basename(name) if isinstance(name, str) and name else default
