"""The Watson v3 JSON shapes the server documents in /openapi.json: models, error responses, form bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .limits import MAX_CLASSIFIER_NAME_CHARS
from .vocabulary import NEGATIVE_FIELD, OWNER_IBM, OWNER_ME


class ErrorResponse(BaseModel):
    code: int
    error: str


class ErrorInfo(BaseModel):
    code: int
    description: str
    error_id: str


class ClassResult(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    class_: str = Field(alias="class")
    score: float = Field(ge=0, le=1)
    type_hierarchy: str = None  # type: ignore[assignment]  # omitted, never null


class ClassifierResult(BaseModel):
    name: str
    classifier_id: str
    classes: list[ClassResult]


class ClassifiedImage(BaseModel):
    classifiers: list[ClassifierResult]
    image: str = None  # type: ignore[assignment]
    source_url: str = None  # type: ignore[assignment]
    resolved_url: str = None  # type: ignore[assignment]
    error: ErrorInfo = None  # type: ignore[assignment]


class WarningInfo(BaseModel):
    warning_id: str
    description: str


class ClassifiedImages(BaseModel):
    images: list[ClassifiedImage]
    images_processed: int
    custom_classes: int
    warnings: list[WarningInfo] = None  # type: ignore[assignment]


class ClassName(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    class_: str = Field(alias="class")


class Classifier(BaseModel):
    classifier_id: str
    name: str
    status: Literal["ready", "training", "retraining", "failed"]
    owner: str = None  # type: ignore[assignment]
    core_ml_enabled: bool = None  # type: ignore[assignment]
    explanation: str = None  # type: ignore[assignment]
    created: str = None  # type: ignore[assignment]
    updated: str = None  # type: ignore[assignment]
    retrained: str = None  # type: ignore[assignment]
    classes: list[ClassName] = None  # type: ignore[assignment]


class Classifiers(BaseModel):
    classifiers: list[Classifier]


class Empty(BaseModel):
    pass


def error_responses(*codes: int) -> dict:
    return {code: {"model": ErrorResponse, "description": "Watson ErrorResponse"} for code in codes}


BINARY = {"type": "string", "format": "binary"}
CLASSIFY_BODY = {
    "type": "object",
    "properties": {
        "images_file": {**BINARY, "description": "An image (.gif .jpg .png .tif) or a .zip of up to 20 images"},
        "url": {"type": "string", "description": "file:// or http(s) URL of an image, if the server allows it"},
        "threshold": {"type": "number", "minimum": 0, "maximum": 1, "description": "Minimum score (default 0.5)"},
        "owners": {"type": "string", "enum": [OWNER_IBM, OWNER_ME, f"{OWNER_IBM},{OWNER_ME}", f"{OWNER_ME},{OWNER_IBM}"], "description": f"{OWNER_IBM} and/or {OWNER_ME}"},
        "classifier_ids": {"type": "string", "description": "Classifier ids, comma-separated or repeated; "
                                                            "`default` and `food` are built in"},
        "parameters": {"type": "string", "description": "Legacy JSON: classifier_ids, owners, threshold"},
    },
}
TRAINING_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {NEGATIVE_FIELD: {**BINARY, "description": "A .zip of images of none of the classes"}},
    "additionalProperties": {**BINARY, "description": "{class}_positive_examples: a .zip of the class's images"},
}
CREATE_BODY = {
    **TRAINING_BODY,
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": MAX_CLASSIFIER_NAME_CHARS}, **TRAINING_BODY["properties"]},
}


def form_body(schema: dict, required: bool = True) -> dict:
    return {"requestBody": {"required": required, "content": {"multipart/form-data": {"schema": schema}}}}
