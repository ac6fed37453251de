"""Notebook front: ipywidgets to create or update a classifier, watch it train, classify images, review training images.

Widgets hold no logic of their own: they call the `Workbench` and draw with `workbench.plots`.
Each also works undisplayed (headless papermill runs read the same values a person sees).
Only `Workbench` and public types are used here (no store, jobs or tracking internals).
`workbench.widgets` is the documented name: each widget lives in a module of this package, re-exported here.
"""

from .classify import ClassifyWidget as ClassifyWidget
from .classify import score_rows as score_rows
from .debounce import Debounced as Debounced
from .display import IMAGE_WIDTH_PX as IMAGE_WIDTH_PX
from .display import thumbnail as thumbnail
from .examples import LAB_UPLOAD_ENV as LAB_UPLOAD_ENV
from .examples import NEW_CLASSIFIER as NEW_CLASSIFIER
from .examples import NO_NEGATIVES as NO_NEGATIVES
from .examples import ExamplesWidget as ExamplesWidget
from .gallery import Gallery as Gallery
from .overlays import ExplainView as ExplainView
from .overlays import OverlayGallery as OverlayGallery
from .results_grid import TOP_CLASSES as TOP_CLASSES
from .results_grid import ResultsGrid as ResultsGrid
from .status import LATEST as LATEST
from .status import LATEST_LABEL as LATEST_LABEL
from .status import ServingPicker as ServingPicker
from .status import StatusWidget as StatusWidget
from .threshold_plots import ThresholdPlots as ThresholdPlots

__all__ = [
    "ClassifyWidget",
    "Debounced",
    "ExamplesWidget",
    "ExplainView",
    "Gallery",
    "OverlayGallery",
    "ResultsGrid",
    "ServingPicker",
    "StatusWidget",
    "ThresholdPlots",
    "score_rows",
]
