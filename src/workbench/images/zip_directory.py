"""A zip's members from its end record and central directory, read with struct before `zipfile` reads them.

`zipfile.ZipFile` builds one ZipInfo per central-directory entry, walking the directory by the size the
end record gives, whatever count it states: a zip of a million empty members costs a million objects
(about 1 GB and a minute) before any limit on images can be checked. `members` walks the same bytes
the same way, 46-byte fixed header by header, and stops at the limit + 1, so such a zip is refused in
milliseconds; an end record whose count lies (low or high) changes nothing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from ..core.errors import LimitExceeded

EOCD = struct.Struct("<4s4H2LH")  # signature, disk, CD disk, entries here, entries, CD size, CD offset, comment length
EOCD_SIGNATURE = b"PK\x05\x06"
ZIP64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk, zip64 end record offset, disks
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")  # signature, size, versions, disks, entries here, entries, CD size, CD offset
ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # one central-directory entry's fixed 46 bytes
CENTRAL_SIGNATURE = b"PK\x01\x02"
MAX_COMMENT = 0xFFFF
ZIP64_SIZE = 0xFFFFFFFF  # a 32-bit size field that means "see the zip64 extra field"
ZIP64_EXTRA_ID = 0x0001
UTF8_NAME_FLAG = 0x800
CHUNK_BYTES = 1024 * 1024  # the directory is read in chunks this size: few reads, bounded memory


class Seekable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


class Member(NamedTuple):
    """One central-directory entry: its name as `zipfile` gives it, and the uncompressed size it states."""

    name: str
    file_size: int


@dataclass(frozen=True)
class _Directory:
    start: int  # where the central directory begins in the file
    size: int  # its bytes, as the end record states them
    entries: int  # the count the end record states (not trusted: zipfile ignores it too)


def _end_record(file: Seekable) -> _Directory | None:
    """The central directory's place, found as `zipfile._EndRecData` finds it; None when there is no end record."""
    length = file.seek(0, 2)
    if length < EOCD.size:
        return None
    tail_start = max(0, length - EOCD.size - MAX_COMMENT)
    file.seek(tail_start)
    tail = file.read(length - tail_start)
    if tail[-EOCD.size : -EOCD.size + 4] == EOCD_SIGNATURE and tail[-2:] == b"\0\0":
        at = len(tail) - EOCD.size
    else:
        at = tail.rfind(EOCD_SIGNATURE)
        if at < 0 or len(tail) - at < EOCD.size:
            return None
    fields = EOCD.unpack_from(tail, at)
    entries, size = fields[4], fields[5]
    location = tail_start + at
    zip64 = _zip64_record(file, location)
    if zip64 is not None:
        entries, size = zip64
        location -= ZIP64_EOCD.size + ZIP64_LOCATOR.size
    # as zipfile has it: the directory ends where the end records begin, whatever offset they state
    # (a self-extractor prepends code to a zip and shifts every offset alike)
    start = location - size
    return _Directory(start, size, entries) if start >= 0 else None


def _zip64_record(file: Seekable, eocd_at: int) -> tuple[int, int] | None:
    """(entries, CD size) from the zip64 end record before the end record, if there is one."""
    if eocd_at < ZIP64_LOCATOR.size + ZIP64_EOCD.size:
        return None
    file.seek(eocd_at - ZIP64_LOCATOR.size - ZIP64_EOCD.size)
    data = file.read(ZIP64_EOCD.size + ZIP64_LOCATOR.size)
    if len(data) != ZIP64_EOCD.size + ZIP64_LOCATOR.size:
        return None
    if ZIP64_LOCATOR.unpack_from(data, ZIP64_EOCD.size)[0] != ZIP64_LOCATOR_SIGNATURE:
        return None
    record = ZIP64_EOCD.unpack_from(data)
    if record[0] != ZIP64_EOCD_SIGNATURE:
        return None
    return record[7], record[8]


def _zip64_file_size(extra: bytes) -> int | None:
    """The uncompressed size in a zip64 extra field (its first 8 bytes when the 32-bit field is 0xFFFFFFFF)."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<2H", extra, at)
        if kind == ZIP64_EXTRA_ID and length >= 8 and at + 12 <= len(extra):
            return int(struct.unpack_from("<Q", extra, at + 4)[0])
        at += 4 + length
    return None


def _name(raw: bytes, flags: int) -> str:
    """The member's name as ZipInfo makes it: UTF-8 or cp437 by the flag (ASCII either way), cut at a NUL."""
    if raw.isascii():
        name = raw.decode("ascii")
    else:
        name = raw.decode("utf-8" if flags & UTF8_NAME_FLAG else "cp437", "replace")
    return name.split("\0", 1)[0] if "\0" in name else name


def _more(file: Seekable, data: bytes, at: int, unread: int, needed: int) -> tuple[bytes, int, int]:
    """The chunk from `at` on, extended by a read of at least `needed` bytes (CHUNK_BYTES when more is left)."""
    more = file.read(min(max(needed, CHUNK_BYTES), unread))
    return data[at:] + more, 0, unread - len(more)


def members(file: Seekable, max_members: int, where: str) -> list[Member] | None:
    """The members a zip's central directory lists, walked with struct as zipfile walks it (by the directory's size).

    Raises LimitExceeded as soon as the end record states, or the directory holds, more than `max_members`
    entries, having read at most `max_members` + 1 of them. Returns None when `file` has no end record or
    its directory is cut short or malformed: `zipfile` then says what is wrong. The position is restored.
    """
    position = file.tell()
    try:
        directory = _end_record(file)
        if directory is None:
            return None
        if directory.entries > max_members:
            raise LimitExceeded(
                f"{where} declares {directory.entries} members (files and folders); the limit is {max_members}"
            )
        file.seek(directory.start)
        found: list[Member] = []
        data, at, unread = b"", 0, directory.size  # a chunk of the directory, where we are in it, what is left
        walked = 0
        while walked < directory.size:
            if len(data) - at < CENTRAL.size:
                data, at, unread = _more(file, data, at, unread, CENTRAL.size)
                if len(data) < CENTRAL.size:
                    return None
            fields = CENTRAL.unpack_from(data, at)
            if fields[0] != CENTRAL_SIGNATURE:
                return None
            if len(found) == max_members:
                raise LimitExceeded(
                    f"{where} holds more than {max_members} members (files and folders); the limit is {max_members}"
                )
            length = CENTRAL.size + fields[12] + fields[13] + fields[14]  # with its name, extra field and comment
            if len(data) - at < length:
                data, at, unread = _more(file, data, at, unread, length)
                if len(data) < length:
                    return None
            name_end = at + CENTRAL.size + fields[12]
            file_size = fields[11]
            if file_size == ZIP64_SIZE:
                real = _zip64_file_size(data[name_end : name_end + fields[13]])
                file_size = ZIP64_SIZE if real is None else real
            found.append(Member(_name(data[at + CENTRAL.size : name_end], fields[5]), file_size))
            at += length
            walked += length
        return found
    finally:
        file.seek(position)
