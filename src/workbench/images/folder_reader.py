"""Reading a folder of images like a zip's members, and listing the images of a folder.

Folders are read recursively; images in sub-folders are named by their path relative to the folder
("folder/sub/x.jpg"); hidden files and `__MACOSX` are skipped, and symlinks that point outside the
folder are skipped. Each file read is capped, so a file that grew since it was sized cannot inflate memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from workbench.core.limits import Limits
from workbench.images.entries import (
    FILE_TOO_LARGE,
    IMAGE_EXTENSIONS,
    NOT_AN_IMAGE,
    SYMLINK_OUTSIDE,
    Entry,
    Skipped,
    image_input,
    skip_reason,
)
from workbench.images.read_limits import RequestBudget, check_image_count, check_total_bytes, request_too_large


def read_capped(path: Path, cap: int) -> bytes:
    """Read at most cap + 1 bytes of `path` (the + 1 shows the file is over the cap)."""
    with open(path, "rb") as fh:
        return fh.read(cap + 1)


def _folder_files(root: Path) -> list[tuple[str, Path]]:
    """Every file under `root` (recursive, not following directory links), by relative name."""
    found: list[tuple[str, Path]] = []
    for dirpath, _dirnames, filenames in os.walk(root):
        folder = Path(dirpath)
        prefix = folder.relative_to(root).as_posix() + "/" if folder != root else ""
        found.extend((prefix + filename, folder / filename) for filename in filenames)
    return sorted(found)


def folder_scan(root: Path) -> tuple[list[Entry], list[tuple[str, Path, int]]]:
    """A folder's files, unread: those skipped, and the images as (name, path, size) named "folder/relative/path".

    The walk enters no linked folder, so only a file that is itself a link can lead outside `root`; only links
    are resolved (resolving every file took a third of reading a 250-image folder).
    """
    real_root = root.resolve()
    prefix = real_root.name or "folder"
    entries: list[Entry] = []
    images: list[tuple[str, Path, int]] = []
    for rel, path in _folder_files(root):
        name = f"{prefix}/{rel}"
        reason = skip_reason(rel)
        if reason is None and path.is_symlink() and not path.resolve().is_relative_to(real_root):
            reason = SYMLINK_OUTSIDE
        if reason is None and not path.is_file():
            reason = NOT_AN_IMAGE
        if reason is not None:
            entries.append(Skipped(name, reason))
        else:
            images.append((name, path, path.stat().st_size))
    return entries, images


def folder_entries(root: Path, limits: Limits, per_image_cap: bool, budget: RequestBudget | None = None) -> list[Entry]:
    """Read a folder's images like a zip's members; names are "folder/relative/path"."""
    prefix = root.resolve().name or "folder"
    entries, images = folder_scan(root)
    check_image_count(len(images), prefix, limits)
    declared = sum(size for _, _, size in images)
    check_total_bytes(declared, prefix, limits)
    if budget is not None and declared > budget.left:
        raise request_too_large(f"more than {budget.limit}", budget.limit, prefix)
    folder_left = limits.max_zip_bytes
    for name, path, size in images:
        if per_image_cap and size > limits.max_image_bytes:
            entries.append(Skipped(name, FILE_TOO_LARGE))
            continue
        blob = read_capped(path, folder_left if budget is None else min(folder_left, budget.left))
        if len(blob) > folder_left:
            check_total_bytes(limits.max_zip_bytes + 1, prefix, limits)
        if budget is not None:
            budget.take(len(blob), prefix)
        folder_left -= len(blob)
        entries.append(image_input(name, blob))
    return sorted(entries, key=lambda entry: entry.name)


def image_paths(images: str | Path | Iterable[str | Path]) -> list[Path]:
    """The images of a folder (sorted, by extension; LABELS.txt and the like are left out) or the given paths."""
    if isinstance(images, (str, Path)) and Path(images).is_dir():
        return sorted(
            p for p in Path(images).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
    return [Path(images)] if isinstance(images, (str, Path)) else [Path(p) for p in images]
