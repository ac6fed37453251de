"""Curating a classifier's training examples (workbench's own paths): list them, remove some, relabel some.

Listing shows each example's out-of-fold score, so the mislabelled ones can be sorted first; a
removal or relabelling is one commit that queues a retraining (`Workbench.remove_examples`, ...).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..core.errors import InvalidRequest
from .parameters import Caller, Version
from .schemas import Curation, RelabelExamples, RemoveExamples, TrainingExamples, error_responses

router = APIRouter(prefix="/v3")


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
