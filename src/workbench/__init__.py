"""workbench: IBM Watson Visual Recognition v3 custom classifiers, local and Jupyter-first.

`Workbench` and the names that need the engine (numpy, scikit-learn, MLflow, ...) load on first
use (PEP 562), so `import workbench.cli.entry` and `workbench --help` stay fast.
"""

from typing import TYPE_CHECKING

from .core.errors import (
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
from .core.events import ClassifierEvent
from .core.limits import Limits
from .core.sources import ImageURL

if TYPE_CHECKING:
    from .analysis.interpretation import Interpretation, label_from_name, parse_labels
    from .analysis.training import OutOfFold
    from .images.examples import folder_sets, set_name
    from .images.folder_reader import image_paths
    from .images.streaming import folder_images, named_images
    from .service.workbench import Workbench
    from .store.curation import Curation, TrainingExample, examples_frame
    from .tracking.target import tracking_uri

_LAZY = {  # public name -> the module that defines it, imported on first access
    "Curation": "store.curation",
    "TrainingExample": "store.curation",
    "examples_frame": "store.curation",
    "folder_images": "images.streaming",
    "named_images": "images.streaming",  # a folder's images as (row path "folder/relative", file)
    "folder_sets": "images.examples",
    "image_paths": "images.folder_reader",
    "set_name": "images.examples",
    "Workbench": "service.workbench",
    "Interpretation": "analysis.interpretation",
    "label_from_name": "analysis.interpretation",
    "parse_labels": "analysis.interpretation",
    "OutOfFold": "analysis.training",
    "tracking_uri": "tracking.target",
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
