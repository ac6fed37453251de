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
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, AsyncIterator
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

from .errors import (
    InvalidRequest,
    LimitExceeded,
    NoImages,
    Unauthorized,
    UrlFetchBusy,
    WorkbenchError,
    echo,
)
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
from .limits import (
    MAX_CLASSIFY_IMAGES_HTTP,
    URL_FETCH_DEADLINE_S,
    URL_FETCH_THREADS,
    URL_FETCHES_PER_HOST,
    URL_MIN_BYTES_PER_S,
    URL_QUEUE_WAIT_S,
    URL_RATE_GRACE_S,
)
from .schemas import (
    BINARY,
    CLASSIFY_BODY,
    CREATE_BODY,
    TRAINING_BODY,
    Classifier,
    ClassifiedImages,
    Classifiers,
    Empty,
    error_responses,
    form_body,
)
from .service import DEFAULT_OWNER, Workbench
from .sources import ImageURL

MAX_BODY_BYTES = 257 * 1024 * 1024  # Watson: 256 MB per call, plus room for the multipart framing
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
ANY_HOST = "*"  # --allowed-host '*': answer every Host header (behind a proxy that checks it)
VERSION_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
MAX_ERROR_CHARS = 1000  # an error message is cut here, whatever it echoes
CUSTOMER_ID_PATTERN = re.compile(r"^\w+$")  # Watson: letters, digits and _ (any script)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSettings:
    """What this server accepts: body size, images per classify call, URL sources, and whether keys are needed."""

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
        where, name = (list(error.get("loc", ())) + ["", ""])[:2]
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
        name = value[1:value.find("]")] if "]" in value else value
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
    key = presented_key(request.headers.get("authorization"))
    owner = front.keys.owner_for(key) if key and front.keys else None
    if owner is None:
        raise Unauthorized("Unauthorized: send an API key as -u \"apikey:{key}\" or Authorization: Bearer {key}")
    return front.view(owner)


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
        sources, classifier_ids=request.classifier_ids, owners=request.owners, threshold=request.threshold,
        max_images=front.settings.max_classify_images, accept_language=request.accept_language,
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
        threshold=threshold_value(form.text("threshold") if form.text("threshold") is not None else legacy.get("threshold")),
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
AcceptLanguage = Annotated[str | None, Header(
    alias="Accept-Language",
    description="Language of the built-in classes' names: en (default), ar, de, es, fr, it, ja, ko, pt-br, zh-cn, "
                "zh-tw, or an HTTP language list (ja-JP, zh-Hant, fr-CH, fr;q=0.9), mapped to the nearest; another "
                "language is a 400. Custom class names are never translated.",
)]


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
        record = await run_in_threadpool(workbench.update_classifier, classifier_id, positive_examples=positives, negative_examples=negatives)
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
    responses={202: {"description": "Accepted: the classifiers holding this customer's data are deleted"},
               **error_responses(400, 401)},
)
async def delete_user_data(
    version: Version,
    workbench: Caller,
    customer_id: Annotated[str, Query(pattern=CUSTOMER_ID_PATTERN.pattern, description="letters, digits and _")],
) -> Response:
    await run_in_threadpool(workbench.delete_user_data, customer_id)
    return Response(status_code=202)


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
        }
        schema["security"] = [{"basicAuth": []}, {"bearerAuth": []}]
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(
    workbench: Workbench, *, keys: KeyRing | None = None, settings: ServerSettings | None = None
) -> FastAPI:
    """The Watson v3 app over `workbench`; API keys from `keys` (default: env and `{home}/api_keys.json`)."""
    settings = settings or ServerSettings()
    if settings.auth and keys is None:
        keys = KeyRing(workbench.home)
    if keys is not None:
        keys.check()  # a corrupt key file stops the server here, not with a 500 on every request
    front = Front(workbench, keys, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(lambda: workbench.store)  # opens the store and resumes unfinished trainings
        yield
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
    app.add_middleware(UnexpectedErrors)  # added last, so it wraps BodyLimit too
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
) -> None:
    """Runs the Watson v3 server until interrupted (`workbench serve`)."""
    settings = dataclasses.replace(settings or ServerSettings(), bind_host=host)
    keys = KeyRing(workbench.home) if settings.auth else None
    check_exposure(host, settings, keys, allow_remote_no_auth)
    uvicorn.run(create_app(workbench, keys=keys, settings=settings), host=host, port=port, log_level=log_level)


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
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
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
