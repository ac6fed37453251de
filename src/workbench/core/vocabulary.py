"""Watson v3's vocabulary, in one place: ids, owners, form suffixes, statuses, training stages, score format.

A leaf module: fronts and engine alike read these names here, so a word means one thing everywhere.
"""

from __future__ import annotations

from typing import Literal, get_args

GENERAL_CLASSIFIER_ID = "default"  # the built-in general model
FOOD_CLASSIFIER_ID = "food"  # the built-in food model: ImageNet's food leaves, or `non-food`
EXPLICIT_CLASSIFIER_ID = "explicit"  # the built-in explicit model: an optional extra (`explicit.py`)
BUILT_IN_CLASSIFIER_IDS = (GENERAL_CLASSIFIER_ID, FOOD_CLASSIFIER_ID, EXPLICIT_CLASSIFIER_ID)  # owned by no one
NON_FOOD_CLASS = "non-food"  # the food model's class for an image without food
EXPLICIT_CLASS, NOT_EXPLICIT_CLASS = "explicit", "not explicit"  # the explicit model's two classes
OWNER_ME = "me"  # owners=me: every custom classifier of the caller; also the default owner
OWNER_IBM = "IBM"  # owners=IBM: the built-in `default` classifier (Watson: the same as no owners nor ids)
# Accept-Language: the languages Watson answered built-in class names in (custom names are never translated)
LANGUAGES = ("en", "ar", "de", "es", "fr", "it", "ja", "ko", "pt-br", "zh-cn", "zh-tw")
DEFAULT_LANGUAGE = "en"  # no Accept-Language header
POSITIVE_SUFFIX = "_positive_examples"  # {class}_positive_examples form fields and zip names
NEGATIVE_FIELD = "negative_examples"
THRESHOLD = 0.5  # classify's default: classes scoring below it are left out
SCORE_DECIMALS = 6  # scores are plain floats; 6 decimals keep answers short and stable

Status = Literal["training", "retraining", "ready", "failed"]
STATUSES: tuple[Status, ...] = get_args(Status)
SETTLED_STATUSES: tuple[Status, ...] = ("ready", "failed")
BUSY_STATUSES: tuple[Status, ...] = ("training", "retraining")  # a training is queued, running, or to be adopted

Stage = Literal[
    "started", "embedding", "fitting", "ready", "failed", "deleted", "promoted"
]  # a ClassifierEvent's stage
STAGES: tuple[Stage, ...] = get_args(Stage)
