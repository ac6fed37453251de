"""The HTTP front: Watson Visual Recognition v3 paths over the Workbench engine (FastAPI + uvicorn).

It parses requests, checks API keys and maps errors to Watson JSON (in `error_response`, the one
place); every decision about classifiers, examples and scores is the engine's. Form parsing lives
in forms.py, image URLs in image_urls.py, the documented JSON shapes in schemas.py.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import functools
import ipaddress
import logging
import re
import socket
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Literal, TypedDict
from urllib.parse import unquote

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from ..core.errors import (
    InvalidRequest,
    LimitExceeded,
    NoImages,
    Unauthorized,
    UrlFetchBusy,
    WorkbenchError,
    echo,
)
from ..core.limits import (
    HTTP_BACKLOG,
    HTTP_BODY_IDLE_S,
    HTTP_BODY_MIN_BYTES_PER_S,
    HTTP_BODY_RATE_GRACE_S,
    HTTP_HEADER_TIMEOUT_S,
    HTTP_KEEP_ALIVE_S,
    MAX_CLASSIFY_IMAGES_HTTP,
    URL_FETCH_DEADLINE_S,
    URL_FETCH_THREADS,
    URL_FETCHES_PER_HOST,
    URL_MIN_BYTES_PER_S,
    URL_QUEUE_WAIT_S,
    URL_RATE_GRACE_S,
)
from ..core.sources import ImageURL
from ..service.workbench import DEFAULT_OWNER, Workbench
from .connection_limits import BodyDeadline, HeaderTimeoutProtocol, raise_open_file_limit
from .forms import (
    FormParts,
    NamedUpload,
    legacy_parameters,
    parsed_form,
    threshold_value,
    training_sets,
    upload_file_name,
)
from .image_urls import UrlFetcher
from .keys import KeyRing
from .process_memory import MemoryTrimmer, tune_malloc
from .schemas import (
    BINARY,
    CLASSIFY_BODY,
    CREATE_BODY,
    SERVING_BODY,
    TRAINING_BODY,
    ClassifiedImages,
    Classifier,
    Classifiers,
    Curation,
    Empty,
    RelabelExamples,
    RemoveExamples,
    TrainingExamples,
    error_responses,
    form_body,
)

MAX_BODY_BYTES = 257 * 1024 * 1024  # Watson: 256 MB per call, plus room for the multipart framing
LEGACY_KEY_PARAM = "api_key"  # Watson before IAM (2018): the key in the query string, as older SDKs still send it
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
ANY_HOST = "*"  # --allowed-host '*': answer every Host header (behind a proxy that checks it)
VERSION_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
MAX_ERROR_CHARS = 1000  # an error message is cut here, whatever it echoes
CUSTOMER_ID_PATTERN = re.compile(r"^\w+$")  # Watson: letters, digits and _ (any script)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSettings:
    """What this server accepts: body size, images per classify call, URL sources, connection timeouts, keys or not."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_classify_images: int = MAX_CLASSIFY_IMAGES_HTTP
    file_url_root: Path | None = None  # file:// URLs are allowed under this folder only
    url_prefixes: tuple[str, ...] = ()  # http(s) URLs are allowed under these prefixes only
    auth: bool = True
    url_fetch_deadline_s: float = URL_FETCH_DEADLINE_S
    url_min_bytes_per_s: float = URL_MIN_BYTES_PER_S
    url_rate_grace_s: float = URL_RATE_GRACE_S
    url_fetches_per_host: int = URL_FETCHES_PER_HOST
    url_fetch_threads: int = URL_FETCH_THREADS
    url_queue_wait_s: float = URL_QUEUE_WAIT_S
    http_header_timeout_s: float = HTTP_HEADER_TIMEOUT_S  # request line + headers, from connecting or the last answer
    http_keep_alive_s: int = HTTP_KEEP_ALIVE_S  # silence after an answer (uvicorn's timeout_keep_alive)
    body_min_bytes_per_s: float = HTTP_BODY_MIN_BYTES_PER_S  # 0: no minimum rate
    body_rate_grace_s: float = HTTP_BODY_RATE_GRACE_S
    body_idle_s: float = HTTP_BODY_IDLE_S
    bind_host: str | None = None  # the address served on (serve() fills it in); a Host header may name it
    allowed_hosts: tuple[str, ...] = ()  # more names a Host header may carry (--allowed-host); "*" for any


# ------------------------------------------------------------------ errors: the one mapping


def error_response(exc: Exception) -> JSONResponse:
    """Every failure as Watson's `{"code": N, "error": "..."}` with status N."""
    headers = None
    if isinstance(exc, WorkbenchError):
        code, message = exc.code, exc.message
    elif isinstance(exc, HTTPException):
        code, message, headers = exc.status_code, str(exc.detail), exc.headers
    elif isinstance(exc, RequestValidationError):
        code, message = 400, _validation_message(exc)
    elif isinstance(exc, ClientDisconnect):
        code, message = 400, "The client disconnected before the request was complete"
    else:
        code, message = 500, f"Internal error: {type(exc).__name__}"
    if len(message) > MAX_ERROR_CHARS:
        message = f"{message[:MAX_ERROR_CHARS]}... (cut from {len(message)} characters)"
    return JSONResponse({"code": code, "error": message}, status_code=code, headers=headers)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    response = error_response(exc)
    if response.status_code == 405:
        response.headers["Allow"] = ", ".join(_allowed_methods(request))
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    probe = {**request.scope, "method": ""}
    methods: set[str] = set()
    for route in router.routes:
        if route.matches(probe)[0] != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _validation_message(exc: RequestValidationError) -> str:
    """A readable sentence from FastAPI's validation errors (missing `version`, a bad boolean, ...)."""
    parts = []
    for error in exc.errors():
        where, name = [*error.get("loc", ()), "", ""][:2]
        if name == "version":
            parts.append("query parameter 'version' (YYYY-MM-DD, e.g. 2018-03-19) is missing or malformed")
        else:
            parts.append(f"{where} parameter {name!r}: {error.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


class UnexpectedErrors:
    """Answers an exception no handler mapped with Watson's JSON 500 and logs it, keeping the connection.

    Starlette's own last-resort handler re-raises after answering, and uvicorn then closes the
    keep-alive connection; this middleware sits inside it, so only a half-sent answer gets that far.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watched(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # part of an answer is out: only closing the connection can end it
                raise
            logger.exception("Unexpected error answering %s %s", scope.get("method"), scope.get("path"))
            await error_response(exc)(scope, receive, send)


# ------------------------------------------------------------------ body size


class BodyLimit:
    """Refuses bodies over `max_bytes` with 413: at once from Content-Length, else while they stream."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> LimitExceeded:
        return LimitExceeded(f"The request body is larger than this server's limit of {self.max_bytes} bytes")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await error_response(self._too_large())(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise self._too_large()
            return message

        await self.app(scope, counted, send)


# ------------------------------------------------------------------ Host header (DNS rebinding)


def host_allowed(host_header: str, settings: ServerSettings) -> bool:
    """Whether a Host header names this server: an IP address, `localhost`, the bind address or an --allowed-host.

    A web page reaches a local server through DNS rebinding only under its own DNS name, which it
    cannot make one of these; an IP address in Host is no rebinding.
    """
    if ANY_HOST in settings.allowed_hosts:
        return True
    value = host_header.strip().lower()
    if value.startswith("["):
        name = value[1 : value.find("]")] if "]" in value else value
    else:
        name = value.rpartition(":")[0] if value.count(":") == 1 else value
    name = name.rstrip(".")
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    names = {"localhost", *(h.lower().rstrip(".") for h in settings.allowed_hosts)}
    if settings.bind_host:
        names.add(settings.bind_host.lower().strip("[]").rstrip("."))
    return name in names


class HostCheck:
    """Refuses a request whose Host header names none of this server's names with Watson's 400."""

    def __init__(self, app, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        if not host_allowed(host, self.settings):
            refused = InvalidRequest(
                f"The Host header {echo(host)} names none of this server's names (an IP address, localhost, "
                f"{self.settings.bind_host or 'its bind address'} or one given with --allowed-host NAME)"
            )
            return await error_response(refused)(scope, receive, send)
        await self.app(scope, receive, send)


# ------------------------------------------------------------------ auth


def presented_key(authorization: str | None) -> str | None:
    """The API key in `Authorization: Basic base64(apikey:KEY)` or `Authorization: Bearer KEY`."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, key = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return key if sep and user == "apikey" and key else None


@dataclass
class Front:
    """What the routes share: the engine, the keys, the settings, and one engine view per owner."""

    workbench: Workbench
    keys: KeyRing | None
    settings: ServerSettings
    views: dict[str, Workbench] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fetcher: UrlFetcher = field(init=False)
    url_threads: ThreadPoolExecutor = field(init=False)  # classify calls with URLs, apart from all other requests

    def __post_init__(self) -> None:
        self.fetcher = UrlFetcher(self.settings)
        self.url_threads = ThreadPoolExecutor(self.settings.url_fetch_threads, thread_name_prefix="workbench-url")

    def view(self, owner: str) -> Workbench:
        with self.lock:
            if owner not in self.views:
                self.views[owner] = self.workbench.as_owner(owner)
            return self.views[owner]


def caller(request: Request) -> Workbench:
    """The engine acting for the owner of the request's API key (401 without a valid one)."""
    front: Front = request.app.state.front
    if not front.settings.auth:
        return front.view(DEFAULT_OWNER)
    key = presented_key(request.headers.get("authorization")) or request.query_params.get(LEGACY_KEY_PARAM) or None
    owner = front.keys.owner_for(key) if key and front.keys else None
    if owner is None:
        raise Unauthorized(
            'Unauthorized: send an API key as -u "apikey:{key}", Authorization: Bearer {key} '
            f"or the {LEGACY_KEY_PARAM} query parameter"
        )
    return front.view(owner)


class RedactKeys(logging.Filter):
    """Blanks the `api_key` query parameter's value in uvicorn's access log lines (a key must never reach a log)."""

    PATTERN = re.compile(rf"((?:^|[?&]){LEGACY_KEY_PARAM}=)[^&\s]*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.PATTERN.sub(r"\1REDACTED", a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_access_log() -> None:
    """Adds RedactKeys to uvicorn's access logger once per process."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactKeys) for f in access.filters):
        access.addFilter(RedactKeys())


def customer_id(metadata: str | None) -> str | None:
    """`customer_id` from an `X-Watson-Metadata: customer_id=...` header (URL-encoded), checked."""
    for item in (metadata or "").split(";"):
        name, sep, value = item.strip().partition("=")
        if sep and name.strip() == "customer_id":
            value = unquote(value.strip())
            if not CUSTOMER_ID_PATTERN.match(value):
                raise InvalidRequest("customer_id may hold only letters, digits and underscores")
            return value
    return None


# ------------------------------------------------------------------ classify inputs


@dataclass(frozen=True)
class ClassifyRequest:
    """A classify call's inputs, parsed: uploads, URLs, and the classifier choice."""

    uploads: list[NamedUpload]
    urls: list[str]
    classifier_ids: list[str]
    owners: list[str]
    threshold: float | None
    accept_language: str | None = None  # the Accept-Language header: names of built-in classes (Workbench.classify)


def run_classify(workbench: Workbench, request: ClassifyRequest, front: Front) -> dict:
    """Classifies the uploads and URLs of one request in one engine call; URLs are fetched under the allow-lists."""
    if not request.uploads and not request.urls:
        raise NoImages("No images were given: send images_file (an image or a .zip) or url")
    sources: tuple[NamedUpload | ImageURL, ...] = (*request.uploads, *(ImageURL(url) for url in request.urls))
    return workbench.classify(
        sources,
        classifier_ids=request.classifier_ids,
        owners=request.owners,
        threshold=request.threshold,
        max_images=front.settings.max_classify_images,
        accept_language=request.accept_language,
        fetch_url=functools.partial(front.fetcher.fetch, max_bytes=workbench.limits.max_image_bytes),
    )


async def classified(workbench: Workbench, request: ClassifyRequest, front: Front) -> dict:
    """run_classify off the event loop: on the URL threads when it fetches URLs, so slow hosts starve no other request.

    A call that finds no URL thread free within url_queue_wait_s answers 503; one that started is
    bounded by the fetch deadline of each of its URLs.
    """
    if not request.urls:
        return await run_in_threadpool(run_classify, workbench, request, front)
    job = front.url_threads.submit(run_classify, workbench, request, front)
    answer = asyncio.wrap_future(job)
    done, _ = await asyncio.wait({answer}, timeout=front.settings.url_queue_wait_s)
    if not done and job.cancel():  # still queued: never started
        raise UrlFetchBusy(
            f"Every one of this server's {front.settings.url_fetch_threads} threads for classify by URL stayed busy "
            f"for {front.settings.url_queue_wait_s:g} s; try again shortly"
        )
    return await answer


def classify_request(form: FormParts, accept_language: str | None = None) -> ClassifyRequest:
    """A POST /v3/classify form as a ClassifyRequest; explicit fields win over legacy `parameters`."""
    legacy = legacy_parameters(form)
    uploads = [
        NamedUpload(upload_file_name(part, upload, ""), upload) for part, upload in form.files if part == "images_file"
    ]
    stray = [part for part, _ in form.files if part not in ("images_file", "parameters")]
    if stray:
        raise InvalidRequest(f"Unexpected file field {echo(stray[0])}: send images in images_file")
    return ClassifyRequest(
        uploads=uploads,
        urls=form.values("url") or legacy.get("urls", []),
        classifier_ids=form.values("classifier_ids") or legacy.get("classifier_ids") or [],
        owners=form.values("owners") or legacy.get("owners") or [],
        threshold=threshold_value(
            form.text("threshold") if form.text("threshold") is not None else legacy.get("threshold")
        ),
        accept_language=accept_language,
    )


# ------------------------------------------------------------------ routes

router = APIRouter(prefix="/v3")


def calendar_date(version: str) -> str:
    """A `version` that is a real date (2018-03-19), not only shaped like one (9999-99-99): else a 400."""
    date.fromisoformat(version)
    return version


Version = Annotated[
    str,
    Query(pattern=VERSION_PATTERN, description="API version date, YYYY-MM-DD (e.g. 2018-03-19)"),
    AfterValidator(calendar_date),
]
Caller = Annotated[Workbench, Depends(caller)]
Metadata = Annotated[str | None, Header(alias="X-Watson-Metadata", description="customer_id={id}")]
AcceptLanguage = Annotated[
    str | None,
    Header(
        alias="Accept-Language",
        description="Language of the built-in classes' names: en (default), ar, de, es, fr, it, ja, ko, pt-br, zh-cn, "
        "zh-tw, or an HTTP language list (ja-JP, zh-Hant, fr-CH, fr;q=0.9), mapped to the nearest; another "
        "language is a 400. Custom class names are never translated.",
    ),
]


@router.post(
    "/classify",
    summary="Classify images",
    operation_id="classify",
    response_model=None,
    responses={200: {"model": ClassifiedImages}, **error_responses(400, 401, 404, 413, 415)},
    openapi_extra=form_body(CLASSIFY_BODY, required=False),
)
async def classify(
    request: Request, version: Version, workbench: Caller, accept_language: AcceptLanguage = None
) -> JSONResponse:
    async with parsed_form(request) as form:
        parsed = classify_request(form, accept_language)
        answer = await classified(workbench, parsed, request.app.state.front)
    return JSONResponse(answer)


@router.get(
    "/classify",
    summary="Classify an image by URL",
    operation_id="getClassify",
    response_model=None,
    responses={200: {"model": ClassifiedImages}, **error_responses(400, 401, 404, 413)},
)
async def classify_url(
    request: Request,
    version: Version,
    workbench: Caller,
    url: Annotated[str, Query(description="file:// or http(s) URL of an image, if the server allows it")],
    classifier_ids: Annotated[list[str] | None, Query()] = None,
    owners: Annotated[list[str] | None, Query()] = None,
    threshold: Annotated[float | None, Query()] = None,
    accept_language: AcceptLanguage = None,
) -> JSONResponse:
    parsed = ClassifyRequest([], [url], classifier_ids or [], owners or [], threshold, accept_language)
    answer = await classified(workbench, parsed, request.app.state.front)
    return JSONResponse(answer)


@router.post(
    "/classifiers",
    summary="Create a classifier",
    operation_id="createClassifier",
    response_model=None,
    responses={200: {"model": Classifier}, **error_responses(400, 401, 413, 415)},
    openapi_extra=form_body(CREATE_BODY),
)
async def create_classifier(
    request: Request, version: Version, workbench: Caller, metadata: Metadata = None
) -> JSONResponse:
    customer = customer_id(metadata)
    async with parsed_form(request) as form:
        positives, negatives = training_sets(form)
        name = form.text("name")
        if name is None:
            raise InvalidRequest("name is required: the name of the new classifier")
        record = await run_in_threadpool(workbench.create_classifier, name, positives, negative_examples=negatives)
    if customer:
        await run_in_threadpool(workbench.label_user_data, customer, record["classifier_id"])
    return JSONResponse(record)


@router.get(
    "/classifiers",
    summary="Retrieve a list of classifiers",
    operation_id="listClassifiers",
    response_model=None,
    responses={200: {"model": Classifiers}, **error_responses(400, 401)},
)
async def list_classifiers(version: Version, workbench: Caller, verbose: bool = False) -> JSONResponse:
    return JSONResponse(await run_in_threadpool(workbench.list_classifiers, verbose=verbose))


@router.get(
    "/classifiers/{classifier_id}",
    summary="Retrieve classifier details",
    operation_id="getClassifier",
    response_model=None,
    responses={200: {"model": Classifier}, **error_responses(400, 401, 404)},
)
async def get_classifier(classifier_id: str, version: Version, workbench: Caller) -> JSONResponse:
    return JSONResponse(await run_in_threadpool(workbench.get_classifier, classifier_id))


@router.post(
    "/classifiers/{classifier_id}",
    summary="Update a classifier",
    operation_id="updateClassifier",
    response_model=None,
    responses={200: {"model": Classifier}, **error_responses(400, 401, 404, 413, 415)},
    openapi_extra=form_body(TRAINING_BODY),
)
async def update_classifier(
    classifier_id: str, request: Request, version: Version, workbench: Caller, metadata: Metadata = None
) -> JSONResponse:
    customer = customer_id(metadata)
    async with parsed_form(request) as form:
        positives, negatives = training_sets(form)
        record = await run_in_threadpool(
            workbench.update_classifier, classifier_id, positive_examples=positives, negative_examples=negatives
        )
    if customer:
        await run_in_threadpool(workbench.label_user_data, customer, classifier_id)
    return JSONResponse(record)


@router.delete(
    "/classifiers/{classifier_id}",
    summary="Delete a classifier",
    operation_id="deleteClassifier",
    response_model=None,
    responses={200: {"model": Empty}, **error_responses(400, 401, 404)},
)
async def delete_classifier(classifier_id: str, version: Version, workbench: Caller) -> JSONResponse:
    await run_in_threadpool(workbench.delete_classifier, classifier_id)
    return JSONResponse({})


@router.post(
    "/classifiers/{classifier_id}/serving",
    summary="Choose the version that serves (workbench extension)",
    description="`serving_version=N` makes version N serve and pins it (a later training does not move it); "
    "`serving_version=latest` lifts the pin. Answers the classifier, with `serving_version` and `pinned_version`.",
    operation_id="promoteClassifier",
    response_model=None,
    responses={200: {"model": Classifier}, **error_responses(400, 401, 404, 415)},
    openapi_extra=form_body(SERVING_BODY),
)
async def promote_classifier(classifier_id: str, request: Request, version: Version, workbench: Caller) -> JSONResponse:
    async with parsed_form(request) as form:
        wanted = form.text("serving_version")
    if wanted is None:
        raise InvalidRequest("serving_version is required: a version number (1, 2, ...) or latest")
    return JSONResponse(await run_in_threadpool(workbench.promote, classifier_id, wanted))


@router.get(
    "/classifiers/{classifier_id}/core_ml_model",
    summary="Retrieve a Core ML model of a classifier",
    description="The serving version as a Core ML `.mlmodel` (built on first request, then cached).",
    operation_id="getCoreMlModel",
    response_model=None,
    responses={200: {"content": {"application/octet-stream": {"schema": BINARY}}}, **error_responses(400, 401, 404)},
)
async def core_ml_model(classifier_id: str, version: Version, workbench: Caller) -> Response:
    model = await run_in_threadpool(workbench.core_ml_model, classifier_id)  # a build waits here, not the server
    disposition = f'attachment; filename="{classifier_id}.mlmodel"'
    return Response(model, media_type="application/octet-stream", headers={"Content-Disposition": disposition})


@router.delete(
    "/user_data",
    summary="Delete labeled data",
    operation_id="deleteUserData",
    status_code=202,
    response_model=None,
    response_class=Response,
    responses={
        202: {"description": "Accepted: the classifiers holding this customer's data are deleted"},
        **error_responses(400, 401),
    },
)
async def delete_user_data(
    version: Version,
    workbench: Caller,
    customer_id: Annotated[str, Query(pattern=CUSTOMER_ID_PATTERN.pattern, description="letters, digits and _")],
) -> Response:
    await run_in_threadpool(workbench.delete_user_data, customer_id)
    return Response(status_code=202)


# ------------------------------------------------------------------ curating the examples (workbench's own paths)


@router.get(
    "/classifiers/{classifier_id}/examples",
    summary="List a classifier's training examples with their out-of-fold scores",
    operation_id="listExamples",
    response_model=None,
    responses={200: {"model": TrainingExamples}, **error_responses(400, 401, 404)},
)
async def list_examples(
    classifier_id: str,
    version: Version,
    workbench: Caller,
    sort: Annotated[Literal["id", "oof"], Query(description="oof: those another class outscored first")] = "id",
    include_removed: bool = False,
    classifier_version: Annotated[int | None, Query(ge=1, le=2**31, description="default: the newest")] = None,
) -> JSONResponse:
    found = await run_in_threadpool(
        workbench.examples, classifier_id, version=classifier_version, sort=sort, include_removed=include_removed
    )
    return JSONResponse({"examples": [example.to_dict() for example in found]})


@router.post(
    "/classifiers/{classifier_id}/examples/remove",
    summary="Remove training examples (one commit; queues a retraining)",
    operation_id="removeExamples",
    response_model=None,
    responses={200: {"model": Curation}, **error_responses(400, 401, 404)},
)
async def remove_examples(
    classifier_id: str, body: RemoveExamples, version: Version, workbench: Caller
) -> JSONResponse:
    change = await run_in_threadpool(workbench.remove_examples, classifier_id, body.example_ids)
    return JSONResponse(change.to_dict())


@router.post(
    "/classifiers/{classifier_id}/examples/relabel",
    summary="Relabel training examples (one commit; queues a retraining)",
    operation_id="relabelExamples",
    response_model=None,
    responses={200: {"model": Curation}, **error_responses(400, 401, 404)},
)
async def relabel_examples(
    classifier_id: str, body: RelabelExamples, version: Version, workbench: Caller
) -> JSONResponse:
    labels = {item.example_id: item.class_ for item in body.examples}
    if len(labels) < len(body.examples):
        raise InvalidRequest("An example is given twice in one relabelling: name each example once")
    change = await run_in_threadpool(workbench.relabel_examples, classifier_id, labels)
    return JSONResponse(change.to_dict())


# ------------------------------------------------------------------ the app


def watson_openapi(app: FastAPI) -> dict:
    """The OpenAPI document: our routes, Watson's auth schemes, 400 (not FastAPI's 422) for bad parameters."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path in schema["paths"].values():
            for operation in path.values():
                operation["responses"].pop("422", None)
        components = schema.setdefault("components", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(unused, None)
        components["securitySchemes"] = {
            "basicAuth": {"type": "http", "scheme": "basic", "description": "username apikey, password the key"},
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "the API key as the token"},
            "legacyApiKey": {
                "type": "apiKey",
                "in": "query",
                "name": LEGACY_KEY_PARAM,
                "description": "the API key in the query string, as Watson took it before IAM",
            },
        }
        schema["security"] = [{"basicAuth": []}, {"bearerAuth": []}, {"legacyApiKey": []}]
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(workbench: Workbench, *, keys: KeyRing | None = None, settings: ServerSettings | None = None) -> FastAPI:
    """The Watson v3 app over `workbench`; API keys from `keys` (default: env and `{home}/api_keys.json`)."""
    settings = settings or ServerSettings()
    if settings.auth and keys is None:
        keys = KeyRing(workbench.home)
    if keys is not None:
        keys.check()  # a corrupt key file stops the server here, not with a 500 on every request
    front = Front(workbench, keys, settings)
    redact_access_log()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(lambda: workbench.store)  # opens the store and resumes unfinished trainings
        trimmer = MemoryTrimmer().start()  # freed memory goes back to the system: RSS follows the load down
        yield
        trimmer.stop()
        front.url_threads.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="workbench: Watson Visual Recognition v3",
        version="3.0",
        description="IBM Watson Visual Recognition v3 custom classifiers, served locally by workbench.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.front = front
    app.include_router(router)
    for exc_type in (WorkbenchError, HTTPException, RequestValidationError, ClientDisconnect):
        app.add_exception_handler(exc_type, _handle)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(HostCheck, settings=settings)  # before the body is read
    app.add_middleware(UnexpectedErrors)  # wraps BodyLimit too
    app.add_middleware(  # outermost: it adds `Connection: close` to whatever answers a body it cut off
        BodyDeadline,
        min_bytes_per_s=settings.body_min_bytes_per_s,
        grace_s=settings.body_rate_grace_s,
        idle_s=settings.body_idle_s,
    )
    app.openapi = lambda: watson_openapi(app)  # type: ignore[method-assign]  # FastAPI's documented override
    return app


def check_exposure(host: str, settings: ServerSettings, keys: KeyRing | None, allow_remote_no_auth: bool) -> None:
    """Refuses to serve without keys off loopback (unless asked), with a corrupt key file, or with no key configured."""
    if keys is not None:
        keys.check()
    if not settings.auth and host not in LOOPBACK_HOSTS and not allow_remote_no_auth:
        raise InvalidRequest(
            f"--no-auth serves only on loopback (127.0.0.1, ::1, localhost), not {host!r}; "
            "add --allow-remote-no-auth to expose it anyway"
        )
    if settings.auth and (keys is None or len(keys) == 0):
        raise InvalidRequest(
            "No API keys are configured: run `workbench keys add me`, set WORKBENCH_API_KEYS, or serve with --no-auth"
        )


def serve(
    workbench: Workbench,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    settings: ServerSettings | None = None,
    allow_remote_no_auth: bool = False,
    log_level: str = "info",
    listen_fd: int | None = None,
) -> None:
    """Runs the Watson v3 server until interrupted (`workbench serve`); on an inherited socket with `listen_fd`.

    A worker of `workbench serve --workers N` gets its parent's listening socket (`serve_workers`).
    """
    settings = dataclasses.replace(settings or ServerSettings(), bind_host=host)
    tune_malloc()  # before the request, decode and training threads open arenas of their own
    keys = KeyRing(workbench.home) if settings.auth else None
    check_exposure(host, settings, keys, allow_remote_no_auth)
    before, after = raise_open_file_limit()
    if after != before:
        logger.info("Open-file limit raised from %d to %d (one per connection)", before, after)
    app = create_app(workbench, keys=keys, settings=settings)
    if listen_fd is None:
        uvicorn.run(app, host=host, port=port, log_level=log_level, **connection_options(app))
        return
    config = uvicorn.Config(app, log_level=log_level, **connection_options(app))
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=listen_fd)])


class ConnectionOptions(TypedDict):
    http: type[asyncio.Protocol]
    timeout_keep_alive: int
    backlog: int


def connection_options(app: FastAPI) -> ConnectionOptions:
    """uvicorn's options for the connection timeouts of the ServerSettings `app` was created with.

    No `limit_concurrency`: uvicorn counts every open connection against it, idle ones included, so
    clients holding sockets open would turn each legitimate request into a 503; the header and
    keep-alive timeouts close such sockets instead, and BodyDeadline slow bodies.
    """
    front = getattr(app.state, "front", None)
    settings = front.settings if isinstance(front, Front) else ServerSettings()
    return ConnectionOptions(
        http=HeaderTimeoutProtocol.with_timeout(settings.http_header_timeout_s),
        timeout_keep_alive=settings.http_keep_alive_s,
        backlog=HTTP_BACKLOG,
    )


class ServerThread:
    """Runs an app with uvicorn on a background thread (tests, notebooks): `with ServerThread(app) as url:`."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def __enter__(self) -> str:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", **connection_options(self.app)))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread stopped before it started")
            self.thread.join(0.02)
        return f"http://{self.host}:{self.port}"

    def __exit__(self, *exc_info: object) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(10)
