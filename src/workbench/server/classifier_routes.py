"""Watson v3 classifiers: create, list, get, update (more examples), delete; `DELETE /v3/user_data`.

Also workbench's own paths on a classifier: choosing the serving version (`/serving`) and its
Core ML model. Each route parses its form and calls one `Workbench` method off the event loop;
`X-Watson-Metadata: customer_id=...` labels the classifier with the customer's data.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..core.errors import InvalidRequest
from .forms import parsed_form, training_sets
from .parameters import CUSTOMER_ID_PATTERN, Caller, Metadata, Version, customer_id
from .schemas import (
    BINARY,
    CREATE_BODY,
    SERVING_BODY,
    TRAINING_BODY,
    Classifier,
    Classifiers,
    Empty,
    error_responses,
    form_body,
)

router = APIRouter(prefix="/v3")


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
