"""Reading training sets: a zip or a folder of example images per class, validated, de-duplicated, limited.

`read_example_set` reads one training set (a zip or a folder of example images, like Watson's
`beagle_positive_examples`), validates every image and enforces the per-set limits. One create or
update reads at most `limits.max_request_bytes` of images across all its sets: `request_budget`
refuses from what zip directories and file sizes state, before any image is read, and the
`RequestBudget` it returns stops every read once past it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from workbench.core.errors import ImageUnreadable, InvalidExamples, LimitExceeded
from workbench.core.limits import Limits
from workbench.core.vocabulary import POSITIVE_SUFFIX
from workbench.images import folder_reader, zip_directory
from workbench.images.decode import validate_image
from workbench.images.entries import (
    BinaryFile,
    Entry,
    ImageInput,
    Skipped,
    Source,
    file_object_name,
    is_path,
    looks_like_zip,
    skip_reason,
)
from workbench.images.read_limits import RequestBudget, check_total_bytes, request_too_large
from workbench.images.zip_reader import zip_entries


@dataclass(frozen=True)
class ExampleSet:
    """The readable, de-duplicated images of one training set, sorted by name."""

    source: str
    images: tuple[ImageInput, ...]
    skipped: tuple[Skipped, ...]


def _example_entries(source: Source, label: str, limits: Limits, budget: RequestBudget) -> tuple[str, list[Entry]]:
    """Resolve a training source to (its name, its raw entries)."""
    if is_path(source):
        path = Path(source)
        name = path.resolve().name if path.is_dir() else path.name
        if path.is_dir():
            return name, folder_reader.folder_entries(path, limits, per_image_cap=False, budget=budget)
        if not path.is_file():
            raise InvalidExamples(f"{name} for class '{label}' does not exist")
        check_total_bytes(path.stat().st_size, name, limits)
        data = folder_reader.read_capped(path, limits.max_zip_bytes)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        name, data = f"{label}.zip", bytes(source)
    elif hasattr(source, "read"):
        name = file_object_name(source, f"{label}.zip")
        data = source.read(limits.max_zip_bytes + 1)
    else:
        raise InvalidExamples(f"examples for class '{label}' must be a zip file or a folder")
    if not looks_like_zip(data, name):
        raise InvalidExamples(f"{name} for class '{label}' is not a zip file or a folder of images")
    return name, zip_entries(data, name, limits, InvalidExamples, per_image_cap=False, budget=budget)


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
                return sum(size for _, _, size in folder_reader.folder_scan(path)[1])
            if not path.is_file():
                return 0
            with open(path, "rb") as fh:
                return _declared_in_zip(fh, path.name, limits)
        if isinstance(source, (bytes, bytearray, memoryview)):
            return _declared_in_zip(io.BytesIO(source), f"{label}.zip", limits)
        if hasattr(source, "read") and hasattr(source, "seek"):
            return _declared_in_zip(source, file_object_name(source, f"{label}.zip"), limits)
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
