"""Watson v3 classify: `POST /v3/classify` (uploads, URLs, or both) and `GET /v3/classify?url=...`.

A request becomes one `ClassifyRequest` and one `Workbench.classify` call. Calls that fetch URLs run
on their own bounded thread pool (`Front.url_threads`), so a slow host cannot hold the threads every
other request runs on; one that waits too long for a thread answers 503.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..core.errors import InvalidRequest, NoImages, UrlFetchBusy, echo
from ..core.sources import ImageURL
from ..service.workbench import Workbench
from .forms import FormParts, NamedUpload, legacy_parameters, parsed_form, threshold_value, upload_file_name
from .front import Front
from .parameters import AcceptLanguage, Caller, Version
from .schemas import CLASSIFY_BODY, ClassifiedImages, error_responses, form_body

router = APIRouter(prefix="/v3")


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
