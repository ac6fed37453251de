"""`workbench.pyfunc`: the loader module every logged MLflow model names (`LOADER_MODULE`). It never moves.

The flavor itself lives in `tracking.pyfunc`; MLflow calls `_load_pyfunc` here."""

from .tracking.pyfunc import HEADS_FILE as HEADS_FILE
from .tracking.pyfunc import INFO_FILE as INFO_FILE
from .tracking.pyfunc import LOADER_MODULE as LOADER_MODULE
from .tracking.pyfunc import MIN_EXAMPLE_SIDE_PX as MIN_EXAMPLE_SIDE_PX
from .tracking.pyfunc import NO_ERROR as NO_ERROR
from .tracking.pyfunc import PREDICT_CHUNK_IMAGES as PREDICT_CHUNK_IMAGES
from .tracking.pyfunc import SCORING_REQUIREMENTS as SCORING_REQUIREMENTS
from .tracking.pyfunc import ClassifierModel as ClassifierModel
from .tracking.pyfunc import _load_pyfunc as _load_pyfunc
from .tracking.pyfunc import example_image_base64 as example_image_base64
from .tracking.pyfunc import image_bytes as image_bytes
from .tracking.pyfunc import model_requirements as model_requirements
from .tracking.pyfunc import model_signature as model_signature
from .tracking.pyfunc import save_pyfunc as save_pyfunc
