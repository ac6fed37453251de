"""Form parsing as the server does it: uploads above SPOOL_MAX_BYTES lie on disk, not in memory."""

from __future__ import annotations

import asyncio
import platform
import tempfile

import httpx
import pytest
from starlette.requests import Request

from conftest import DOGS_JPG
from workbench.server.forms import SPOOL_MAX_BYTES, FormParts, parsed_form
from workbench.server.process_memory import release_free_memory, tune_malloc


def parse(files: dict, data: dict | None = None) -> list[tuple[str, bool, bytes]]:
    """Each file part of a real multipart body, parsed by `parsed_form`: (field, spooled to disk, content)."""
    built = httpx.Request("POST", "http://127.0.0.1/v3/classify", files=files, data=data)
    body = built.read()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v3/classify",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in built.headers.items()],
    }
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def run() -> list[tuple[str, bool, bytes]]:
        async with parsed_form(Request(scope, receive)) as form:
            assert isinstance(form, FormParts)
            return [(name, upload.file._rolled, upload.file.read()) for name, upload in form.files]  # type: ignore[attr-defined]

    return asyncio.run(run())


def test_an_upload_above_the_spool_size_lies_on_disk_and_a_small_one_in_memory() -> None:
    photo = DOGS_JPG.read_bytes()
    big = photo * (SPOOL_MAX_BYTES // len(photo) + 2)
    small = photo[: SPOOL_MAX_BYTES // 2]
    parts = parse(
        {"images_file": ("big.jpg", big, "image/jpeg"), "negative_examples": ("small.zip", small)},
        {"classifier_ids": "default"},
    )
    assert parts == [("images_file", True, big), ("negative_examples", False, small)]


def test_an_upload_stays_in_memory_when_no_temporary_file_can_be_made(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))  # as on a full disk: TemporaryFile fails
    photo = DOGS_JPG.read_bytes()
    big = photo * (SPOOL_MAX_BYTES // len(photo) + 2)
    parts = parse({"images_file": ("big.jpg", big, "image/jpeg")}, {"classifier_ids": "default"})
    assert parts == [("images_file", False, big)]  # every byte, read back from memory


def test_the_spool_size_is_well_under_starlettes_megabyte() -> None:
    assert SPOOL_MAX_BYTES <= 64 * 1024  # a slow 50 MB upload holds at most this much of the server's memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim and mallopt are glibc's")
def test_freed_memory_is_handed_back_on_glibc() -> None:
    assert tune_malloc()
    blocks = [bytearray(4096) for _ in range(20_000)]  # 80 MB of small blocks on the heap, then freed
    del blocks
    assert release_free_memory()  # 1: glibc had free pages to give back
