"""Images read one at a time, for classifying any number of them in bounded memory (`Workbench.classify_iter`).

`image_entries` walks a folder lazily (one directory listing at a time, sorted) and reads each file
only when the consumer asks for it; `chunks` groups them for one backbone pass at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import TypeGuard, TypeVar

from ..core.limits import Limits
from .entries import FILE_TOO_LARGE, ImageInput, Skipped, sha256_hex, skip_reason

CHUNK_IMAGES = 64  # images held in memory at once (read, decoded and scored together)

NamedBytes = tuple[str, bytes | bytearray | memoryview]
NamedFile = tuple[str, os.PathLike]  # a file read under another name (its row's `path`)
StreamSource = str | os.PathLike | bytes | bytearray | memoryview | NamedBytes | NamedFile
Item = TypeVar("Item")


def folder_files(
    root: Path, relative: str = "", _above: frozenset[tuple[int, int]] = frozenset()
) -> Iterator[tuple[str, Path]]:
    """Every file under `root`, lazily, as (relative posix name, path), in name order (a sub-folder where its
    name sorts; one directory listed at a time). Links to directories are followed, under the link's name;
    a link back to a folder above it (a loop) is not."""
    try:
        folder = os.stat(root)
        with os.scandir(root) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError:
        return
    above = _above | {(folder.st_dev, folder.st_ino)}
    for entry in entries:
        name = f"{relative}{entry.name}"
        try:
            is_dir = entry.is_dir()  # follows a link: a folder of symlinked sub-folders is walked
        except OSError:
            is_dir = False
        if is_dir:
            target = entry.stat()
            if (target.st_dev, target.st_ino) not in above:
                yield from folder_files(Path(entry.path), f"{name}/", above)
        else:
            yield name, Path(entry.path)


def read_file(name: str, path: Path, limits: Limits) -> ImageInput | Skipped:
    """One image file's bytes (not decoded here); a file over the size limit or unreadable is Skipped."""
    try:
        with open(path, "rb") as file:
            data = file.read(limits.max_image_bytes + 1)
    except OSError as exc:
        return Skipped(name, f"cannot read the file ({exc.strerror or exc})")
    if len(data) > limits.max_image_bytes:
        return Skipped(name, FILE_TOO_LARGE)
    return ImageInput(name=name, data=data, sha256=sha256_hex(data))


def named_images(root: str | os.PathLike) -> Iterator[tuple[str, Path]]:
    """A folder's image files as (name, path), named "folder/relative/path" as `Workbench.classify` names them:
    the `path` of every batch output row (`classify-dir`, `workbench.spark`). Non-images are left out."""
    prefix = Path(root).resolve().name or "folder"
    for relative, path in folder_images(root):  # other files (.txt, hidden, pipes) are left out
        yield f"{prefix}/{relative}", path


def _folder_entries(root: Path, limits: Limits) -> Iterator[ImageInput | Skipped]:
    """A folder's image files, read one at a time."""
    for name, path in named_images(root):
        yield read_file(name, path, limits)


def _is_pair(item: object) -> TypeGuard[NamedBytes | NamedFile]:
    """A (name, bytes) or (name, file path) pair, as opposed to a tuple of sources."""
    return (
        isinstance(item, tuple)
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], (bytes, bytearray, memoryview, os.PathLike))
    )


def _one(item: StreamSource, position: int, limits: Limits) -> Iterator[ImageInput | Skipped]:
    """The entries of one source: a folder's images, one file, bytes ("image_N") or a (name, bytes) pair."""
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if path.is_dir():
            yield from _folder_entries(path, limits)
        elif path.is_file():
            yield read_file(path.name, path, limits)
        else:
            yield Skipped(str(item), "no such image file or folder")
        return
    given: object
    name, given = item if _is_pair(item) else (f"image_{position}", item)
    if isinstance(given, os.PathLike):  # a named file: read here, so a file over the limit is never loaded whole
        yield read_file(name, Path(given), limits)
        return
    if not isinstance(given, (bytes, bytearray, memoryview)):
        yield Skipped(name, f"not an image path, bytes or (name, bytes) pair: {type(given).__name__}")
        return
    data = bytes(given)
    yield (
        ImageInput(name, data, sha256_hex(data))
        if len(data) <= limits.max_image_bytes
        else Skipped(name, FILE_TOO_LARGE)
    )


def image_entries(
    images: StreamSource | Iterable[StreamSource],
    limits: Limits,
    skip: Container[str] = (),
    on_skip: Callable[[str], None] | None = None,
) -> Iterator[ImageInput | Skipped]:
    """Each image of `images`, read when asked for; images whose sha256 is in `skip` are left out
    (`on_skip(name)` hears of each)."""
    items: Iterable[StreamSource]
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview)) or _is_pair(images):
        items = [images]
    else:
        items = images
    for position, item in enumerate(items, start=1):
        for entry in _one(item, position, limits):
            if isinstance(entry, ImageInput) and entry.sha256 in skip:
                if on_skip is not None:
                    on_skip(entry.name)
                continue
            yield entry


def folder_images(root: str | os.PathLike) -> Iterator[tuple[str, Path]]:
    """The files under `root` that `classify_iter` reads as images: regular files with an image name
    (not hidden, not under __MACOSX), as (relative posix name, path)."""
    for relative, path in folder_files(Path(root)):
        if skip_reason(relative) is None and path.is_file():
            yield relative, path


def chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """Consecutive lists of at most `size` items, pulled from `items` one list at a time."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
