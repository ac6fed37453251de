"""workbench: IBM Watson Visual Recognition v3 custom classifiers, local and Jupyter-first.

`Workbench` and the names that need the engine (numpy, scikit-learn, MLflow, ...) load on first
use (PEP 562), so `import workbench.cli` and `workbench --help` stay fast.
"""

from typing import TYPE_CHECKING

from .errors import (
    ClassifierNotFound,
    ExampleNotFound,
    ImageTooSmall,
    ImageUnreadable,
    InvalidClassName,
    InvalidExamples,
    InvalidRequest,
    InvalidThreshold,
    LimitExceeded,
    ModelNotInstalled,
    NoImages,
    StoreUnavailable,
    TooFewExamples,
    TrackingError,
    Unauthorized,
    UnsupportedLanguage,
    UnsupportedMediaType,
    VersionNotFound,
    WaitTimeout,
    WorkbenchError,
)
from .events import ClassifierEvent
from .limits import Limits
from .sources import ImageURL

if TYPE_CHECKING:
    from .curation import Curation, TrainingExample, examples_frame
    from .examples import folder_sets, image_paths, set_name
    from .interpretation import Interpretation, label_from_name, parse_labels
    from .service import Workbench
    from .streaming import folder_images, named_images
    from .tracking import tracking_uri
    from .training import OutOfFold

_LAZY = {  # public name -> the module that defines it, imported on first access
    "Curation": "curation",
    "TrainingExample": "curation",
    "examples_frame": "curation",
    "folder_images": "streaming",
    "named_images": "streaming",  # a folder's images as (row path "folder/relative", file): the batch paths' names
    "folder_sets": "examples",
    "image_paths": "examples",
    "set_name": "examples",
    "Workbench": "service",
    "Interpretation": "interpretation",
    "label_from_name": "interpretation",
    "parse_labels": "interpretation",
    "OutOfFold": "training",
    "tracking_uri": "tracking",
}


def __getattr__(name: str) -> object:
    """Imports a lazy public name's module on first access and keeps the name here."""
    if name not in _LAZY:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ClassifierEvent",
    "ClassifierNotFound",
    "Curation",
    "ExampleNotFound",
    "ImageTooSmall",
    "ImageURL",
    "ImageUnreadable",
    "Interpretation",
    "InvalidClassName",
    "InvalidExamples",
    "InvalidRequest",
    "InvalidThreshold",
    "LimitExceeded",
    "Limits",
    "ModelNotInstalled",
    "NoImages",
    "OutOfFold",
    "StoreUnavailable",
    "TooFewExamples",
    "TrackingError",
    "TrainingExample",
    "Unauthorized",
    "UnsupportedLanguage",
    "UnsupportedMediaType",
    "VersionNotFound",
    "WaitTimeout",
    "Workbench",
    "WorkbenchError",
    "examples_frame",
    "folder_images",
    "folder_sets",
    "image_paths",
    "label_from_name",
    "named_images",
    "parse_labels",
    "set_name",
    "tracking_uri",
]
