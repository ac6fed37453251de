"""workbench: IBM Watson Visual Recognition v3 custom classifiers, local and Jupyter-first."""

from .errors import (
    ClassifierNotFound,
    ImageTooSmall,
    ImageUnreadable,
    InvalidClassName,
    InvalidExamples,
    InvalidRequest,
    InvalidThreshold,
    LimitExceeded,
    NoImages,
    TrackingError,
    Unauthorized,
    UnsupportedMediaType,
    WaitTimeout,
    WorkbenchError,
)
from .jobs import ClassifierEvent
from .limits import Limits
from .service import Workbench

__all__ = [
    "ClassifierNotFound",
    "ImageTooSmall",
    "ImageUnreadable",
    "InvalidClassName",
    "InvalidExamples",
    "InvalidRequest",
    "InvalidThreshold",
    "LimitExceeded",
    "Limits",
    "NoImages",
    "ClassifierEvent",
    "TrackingError",
    "Unauthorized",
    "UnsupportedMediaType",
    "WaitTimeout",
    "Workbench",
    "WorkbenchError",
]
