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
    WaitTimeout,
    WorkbenchError,
)
from .jobs import ClassifierEvent
from .limits import Limits
from .service import Workbench
from .tracking import TrackingError

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
    "WaitTimeout",
    "Workbench",
    "WorkbenchError",
]
