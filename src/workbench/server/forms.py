"""Watson v3 form bodies: multipart/urlencoded parsing, training sets and the legacy `parameters` field.

Uploads are parsed by python-multipart into spooled temporary files, on disk above SPOOL_MAX_BYTES (64 kB):
a large or slow upload holds no more than that of the server's memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import BinaryIO, cast

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from ..core.errors import InvalidExamples, InvalidRequest, InvalidThreshold, UnsupportedMediaType, echo
from ..core.vocabulary import NEGATIVE_FIELD, POSITIVE_SUFFIX

MAX_TEXT_PART_BYTES = 1024 * 1024  # a text field (name, classifier_ids, parameters)
MAX_FORM_PARTS = 1000  # files or fields in one form
SPOOL_MAX_BYTES = 64 * 1024  # an uploaded file above this goes to a temporary file (Starlette's default: 1 MB)
FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
THRESHOLD_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")  # ASCII digits only
PARAMETERS_SHAPE = 'parameters must be a JSON object, e.g. {"classifier_ids": ["default"]}'


class NamedUpload:
    """An uploaded file as the engine reads it: `.name` is the client's file name, `.read` its bytes."""

    def __init__(self, name: str, upload: UploadFile) -> None:
        self.name = name
        self.file = upload.file

    def read(self, size: int = -1) -> bytes:
        return self.file.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()


@dataclass
class FormParts:
    """A parsed form: file parts in order, text parts by name (JSON-encoded text parts decoded)."""

    files: list[tuple[str, UploadFile]]
    texts: dict[str, list[str]]

    def values(self, name: str) -> list[str]:
        return self.texts.get(name, [])

    def text(self, name: str) -> str | None:
        values = self.values(name)
        return values[-1] if values else None


def json_value(text: str, what: str) -> object:
    """`text` parsed as JSON; ValueError for text that is not JSON, InvalidRequest for nesting too deep to parse."""
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidRequest(f"{what} is nested too deeply to be read as JSON") from None


def _decoded(name: str, value: str) -> list[str]:
    """A text part's values: a JSON string or list (application/json parts) is decoded, else kept."""
    if value.lstrip()[:1] not in ('"', "["):
        return [value]
    try:
        data = json_value(value, name)
    except ValueError:
        return [value]
    if isinstance(data, str):
        return [data]
    if not isinstance(data, list) or name == "parameters":  # one JSON object: legacy_parameters judges its shape
        return [value]
    if any(isinstance(item, (list, dict)) for item in data):
        raise InvalidRequest(f"{echo(name)}: a JSON list may hold only strings (or numbers), not lists or objects")
    return [item if isinstance(item, str) else json.dumps(item) for item in data]


class MemoryFallbackSpool(SpooledTemporaryFile[bytes]):
    """An upload spooled to disk above its size, or kept in memory when the disk cannot take it (full, no
    temporary folder): classify reads on a full disk. The request's size limit bounds what stays in memory."""

    def rollover(self) -> None:
        memory = self._file
        try:
            super().rollover()
        except OSError:
            if self._file is not memory:
                self._file.close()  # the temporary file it could not fill
                self._file = memory
            self._max_size = 0  # never try again: this upload stays in memory


class SpoolingParser(MultiPartParser):
    """Starlette's multipart parser, spooling file parts to disk above SPOOL_MAX_BYTES (in memory on a full disk)."""

    spool_max_size = SPOOL_MAX_BYTES

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        upload = self._current_part.file
        if upload is not None:  # a file part: Starlette made it a SpooledTemporaryFile, still empty
            spool = MemoryFallbackSpool(max_size=self.spool_max_size)
            self._files_to_close_on_error[-1].close()
            self._files_to_close_on_error[-1] = spool
            upload.file = cast(BinaryIO, spool)  # as Starlette hands its own spooled file to UploadFile


async def _form(request: Request, media: str) -> FormData:
    """The parsed body: multipart through SpoolingParser (a malformed body is a 400, as in Starlette), else Starlette's
    own parser."""
    limits = {"max_files": MAX_FORM_PARTS, "max_fields": MAX_FORM_PARTS, "max_part_size": MAX_TEXT_PART_BYTES}
    if media != "multipart/form-data":
        return await request.form(**limits)
    try:
        async with aclosing(request.stream()) as stream:
            return await SpoolingParser(request.headers, stream, **limits).parse()
    except MultiPartException as exc:
        if "app" not in request.scope:
            raise
        raise HTTPException(status_code=400, detail=exc.message) from None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


@asynccontextmanager
async def parsed_form(request: Request) -> AsyncIterator[FormParts]:
    """Parses a form body (files spooled to disk); an empty body is an empty form, other types are 415."""
    media = _media_type(request)
    if media not in FORM_MEDIA_TYPES:
        empty = request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers
        if empty:
            yield FormParts([], {})
            return
        raise UnsupportedMediaType(f"Content-Type {media or '(none)'} is not supported: send multipart/form-data")
    form = await _form(request, media)
    try:
        files: list[tuple[str, UploadFile]] = []
        texts: dict[str, list[str]] = {}
        for name, value in form.multi_items():
            if isinstance(value, str):
                texts.setdefault(name, []).extend(_decoded(name, value))
            else:
                files.append((name, value))
        yield FormParts(files, texts)
    finally:
        await form.close()


def upload_file_name(part: str, upload: UploadFile, default_suffix: str) -> str:
    return Path(upload.filename or "").name or f"{part}{default_suffix}"


def training_sets(form: FormParts) -> tuple[dict[str, NamedUpload], NamedUpload | None]:
    """`{class}_positive_examples` and `negative_examples` files from a create/update form."""
    positives: dict[str, NamedUpload] = {}
    negatives = None
    for part, upload in form.files:
        named = NamedUpload(upload_file_name(part, upload, ".zip"), upload)
        if part == NEGATIVE_FIELD:
            if negatives is not None:
                raise InvalidExamples("Only one negative_examples file may be sent per request")
            negatives = named
        elif part.endswith(POSITIVE_SUFFIX):
            class_name = part[: -len(POSITIVE_SUFFIX)]
            if class_name in positives:
                raise InvalidExamples(f"Class {echo(class_name)} is given twice in one request")
            positives[class_name] = named
        elif part != "parameters":
            raise InvalidExamples(
                f"Unexpected file field {echo(part)}: "
                "training files are {class}_positive_examples or negative_examples"
            )
    stray = [name for name in form.texts if name.endswith(POSITIVE_SUFFIX) or name == NEGATIVE_FIELD]
    if stray:
        raise InvalidExamples(f"{echo(stray[0])} must be a file upload (a .zip), not a text field")
    return positives, negatives


def _string_list(data: dict, key: str) -> str | list[str] | None:
    """A `parameters` list field: absent, one string, or a list of strings; anything else is a 400."""
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise InvalidRequest(f"parameters.{key} must be a string or a list of strings, got {type(value).__name__}")


def legacy_parameters(form: FormParts) -> dict:
    """The pre-2018 `parameters` JSON field (text or file), as classify arguments."""
    raw = form.text("parameters")
    for part, upload in form.files:
        if part == "parameters":
            upload.file.seek(0)
            raw = upload.file.read(MAX_TEXT_PART_BYTES).decode("utf-8", "replace")
    if raw is None:
        return {}
    try:
        data = json_value(raw, "parameters")
    except ValueError:
        raise InvalidRequest(PARAMETERS_SHAPE) from None
    if isinstance(data, dict) and set(data) == {"parameters"}:
        data = data["parameters"]
    if not isinstance(data, dict):
        raise InvalidRequest(PARAMETERS_SHAPE)
    url = data.get("url")
    if url is not None and not isinstance(url, str):
        raise InvalidRequest(f"parameters.url must be a string (one image URL), got {type(url).__name__}")
    return {
        "classifier_ids": _string_list(data, "classifier_ids"),
        "owners": _string_list(data, "owners") if "owners" in data else _string_list(data, "owner"),
        "threshold": data.get("threshold"),
        "urls": [url] if url is not None else [],
    }


def threshold_value(raw: object) -> float | None:
    """A sent threshold (form text or `parameters` JSON) as a number: ASCII decimal text or a JSON number.

    Python's float() also reads Arabic-Indic or fullwidth digits, and JSON true is a number to it; both are 400s here.
    Whether the number lies in 0..1 is the engine's check.
    """
    if raw is None:
        return None
    if isinstance(raw, str) and THRESHOLD_TEXT.fullmatch(raw.strip()):
        return float(raw)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    raise InvalidThreshold(
        f"threshold must be a decimal number between 0 and 1 in ASCII digits (e.g. 0.6), got {echo(raw)}"
    )
