"""Zips made to attack a reader: zero-padded JPEGs that deflate a thousandfold, and directories written by hand
(a million members, an end record that lies about its count, zip64 sizes). Shared by tests and bench/."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path


def padded_zip(images: list[Path], size: int) -> bytes:
    """A deflated zip of real JPEGs, each padded with zeros after its end marker to `size` bytes (10 MB: 10 KB)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for image in images:
            data = image.read_bytes()
            archive.writestr(image.name, data + bytes(size - len(data)))
    return buffer.getvalue()


LOCAL = struct.Struct("<4s5H3L2H")  # a local header's fixed 30 bytes: signature, versions, flags, sizes, lengths
DOS_DATE_1980 = 0x21


def local_header(name: bytes) -> bytes:
    """The local header of an empty stored member."""
    return LOCAL.pack(b"PK\x03\x04", 20, 0, 0, 0, DOS_DATE_1980, 0, 0, 0, len(name), 0) + name


def central_entry(name: bytes, file_size: int = 0, extra: bytes = b"", offset: int = 0) -> bytes:
    """One central-directory entry (46 bytes, then the name and extra field) of a stored member at `offset`."""
    return (
        struct.pack(
            "<4s4B4HL2L5H2L",
            b"PK\x01\x02",
            20,
            3,
            20,
            0,
            0,
            0,
            0,
            DOS_DATE_1980,
            0,
            0,
            file_size,
            len(name),
            len(extra),
            0,
            0,
            0,
            0,
            offset,
        )
        + name
        + extra
    )


def hand_zip(entries: bytes, count: int, stated: int | None = None, members: bytes | None = None) -> bytes:
    """A zip written by hand: `members` (by default one empty local header, so it starts with the zip magic), the
    central-directory `entries` (`count` of them), then the end records (zip64 ones when a count is over 65,535).
    zipfile reads local headers only when a member is opened. `stated` is the count the end records give: a lie
    when it is not `count`."""
    members = local_header(b"0") if members is None else members
    stated = count if stated is None else stated
    end = b""
    if stated > 0xFFFF:
        zip64_at = len(members) + len(entries)
        end += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, stated, stated, len(entries), len(members))
        end += struct.pack("<4sLQL", b"PK\x06\x07", 0, zip64_at, 1)
    short = min(stated, 0xFFFF)
    end += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, short, short, len(entries), len(members), 0)
    return members + entries + end


def member_flood(count: int, stated: int | None = None, *, whole: bool = False) -> bytes:
    """A zip of `count` empty members named in hex: about 51 bytes each (a million: 51 MB) with only the directory,
    about 86 with `whole`, where every member also has its local header (a zip any tool reads)."""
    names = [b"%x" % i for i in range(count)]
    if not whole:
        return hand_zip(b"".join(central_entry(name) for name in names), count, stated)
    headers = [local_header(name) for name in names]
    offsets = [0]
    for header in headers[:-1]:
        offsets.append(offsets[-1] + len(header))
    entries = b"".join(central_entry(name, offset=offset) for name, offset in zip(names, offsets, strict=True))
    return hand_zip(entries, count, stated, members=b"".join(headers))


def restated(data: bytes, stated: int) -> bytes:
    """`data` (a zip with no comment and no zip64 records, as zipfile writes a small one) with its end records
    rewritten to state `stated` members: the same members, the same directory, a count that lies."""
    eocd = struct.Struct("<4s4H2LH")
    signature, _, _, count, _, size, offset, comment = eocd.unpack(data[-eocd.size :])
    assert signature == b"PK\x05\x06" and comment == 0 and offset + size == len(data) - eocd.size
    return hand_zip(data[offset : offset + size], count, stated, members=data[:offset])
