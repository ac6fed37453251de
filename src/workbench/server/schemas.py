"""The Watson v3 JSON shapes the server documents in /openapi.json: models, error responses, form bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core.limits import MAX_CLASSIFIER_NAME_CHARS
from ..core.vocabulary import NEGATIVE_FIELD, OWNER_IBM, OWNER_ME


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
    serving_version: int = Field(None, ge=1, description="workbench: the version classify uses")  # type: ignore[assignment]
    pinned_version: int = Field(None, ge=1, description="workbench: set while `POST .../serving` pins a version")  # type: ignore[assignment]


class Classifiers(BaseModel):
    classifiers: list[Classifier]


class Empty(BaseModel):
    pass


# curating the examples (not Watson's: workbench's own paths under /v3/classifiers/{id}/examples)
MAX_EXAMPLE_ID = 2**62  # SQLite's integers are 64-bit: a larger id is a 400, not an overflow
ExampleId = Annotated[int, Field(strict=True, ge=1, le=MAX_EXAMPLE_ID)]


class TrainingExample(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    example_id: int
    class_: str | None = Field(alias="class", description="null for a negative example")
    negative: bool
    sha256: str
    source: str
    version: int | None = Field(description="the version whose out-of-fold scores these are")
    in_version: bool = Field(description="whether that version trained on this example")
    score: float | None = Field(description="its own class's out-of-fold score")
    top_other_class: str | None
    top_other_score: float | None
    removed: bool


class TrainingExamples(BaseModel):
    examples: list[TrainingExample]


class RemoveExamples(BaseModel):
    model_config = ConfigDict(extra="forbid")
    example_ids: list[ExampleId] = Field(min_length=1, description="the examples to take out of training")


class NewLabel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    example_id: ExampleId
    class_: str | None = Field(alias="class", description="the new class (existing or new); null: a negative example")


class RelabelExamples(BaseModel):
    model_config = ConfigDict(extra="forbid")
    examples: list[NewLabel] = Field(min_length=1)


class Relabelled(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    example_id: int
    new_example_id: int
    previous_class: str | None
    class_: str | None = Field(alias="class")


class Curation(BaseModel):
    classifier_id: str
    status: Literal["ready", "training", "retraining", "failed"]
    curation_id: int | None = Field(description="null when the call changed nothing")
    removed: list[int]
    relabelled: list[Relabelled]


def error_responses(*codes: int) -> dict:
    return {code: {"model": ErrorResponse, "description": "Watson ErrorResponse"} for code in codes}


BINARY = {"type": "string", "format": "binary"}
CLASSIFY_BODY = {
    "type": "object",
    "properties": {
        "images_file": {**BINARY, "description": "An image (.gif .jpg .png .tif) or a .zip of up to 20 images"},
        "url": {"type": "string", "description": "file:// or http(s) URL of an image, if the server allows it"},
        "threshold": {"type": "number", "minimum": 0, "maximum": 1, "description": "Minimum score (default 0.5)"},
        "owners": {
            "type": "string",
            "enum": [OWNER_IBM, OWNER_ME, f"{OWNER_IBM},{OWNER_ME}", f"{OWNER_ME},{OWNER_IBM}"],
            "description": f"{OWNER_IBM} and/or {OWNER_ME}",
        },
        "classifier_ids": {
            "type": "string",
            "description": "Classifier ids, comma-separated or repeated; "
            "`default`, `food` and `explicit` (an optional extra) are built in",
        },
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
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_CLASSIFIER_NAME_CHARS},
        **TRAINING_BODY["properties"],
    },
}


SERVING_BODY = {
    "type": "object",
    "required": ["serving_version"],
    "properties": {
        "serving_version": {
            "type": "string",
            "examples": ["1", "latest"],
            "description": "a version number to serve and pin, or latest to follow the newest",
        }
    },
}


def form_body(schema: dict, required: bool = True) -> dict:
    return {"requestBody": {"required": required, "content": {"multipart/form-data": {"schema": schema}}}}
