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
from .examples import folder_sets, image_paths, set_name
from .service import Workbench
from .sources import ImageURL
from .tracking import tracking_uri
from .training import OutOfFold

__all__ = [
    "ClassifierNotFound",
    "ImageTooSmall",
    "ImageURL",
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
    "OutOfFold",
    "folder_sets",
    "image_paths",
    "set_name",
    "tracking_uri",
]
