"""Reading a zip's members safely, in memory: never extracted by name, every read capped.

Members are read with `ZipFile.open` and never extracted to disk by name, so a member called
`../evil.jpg` cannot write anywhere (and such a zip is rejected outright anyway). A zip's members
are counted from its central directory (`zip_directory`) before `zipfile` parses it, so a zip of a
million members is refused without a million objects; each read is capped, so a lying header
cannot inflate memory.
"""

from __future__ import annotations

import io
import lzma
import zipfile
import zlib

from workbench.core.errors import WorkbenchError
from workbench.core.limits import Limits
from workbench.images import zip_directory
from workbench.images.entries import ENCRYPTED, FILE_TOO_LARGE, Entry, Skipped, image_input, skip_reason
from workbench.images.read_limits import RequestBudget, check_image_count, check_total_bytes, request_too_large

ZIP_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
)


def _is_unsafe(member: str) -> bool:
    """True for absolute paths, drive letters or `..` components (zip-slip)."""
    norm = member.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return True
    return ".." in norm.split("/")


def zip_entries(
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
    check_total_bytes(len(data), zip_name, limits)
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
        check_image_count(len(images), zip_name, limits)
        declared = sum(info.file_size for info in images)
        check_total_bytes(declared, zip_name, limits)
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
            check_total_bytes(limits.max_zip_bytes + 1, zip_name, limits)
        if budget is not None:
            budget.take(len(blob), zip_name)
        zip_left -= len(blob)
        if per_image_cap and len(blob) > limits.max_image_bytes:
            entries.append(Skipped(name, FILE_TOO_LARGE))
            continue
        entries.append(image_input(name, blob))
    return entries
