"""The one error hierarchy: every failure a user can cause, with its Watson HTTP code."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error workbench raises on purpose; `code` is the Watson HTTP status."""

    code: int = 500
    error_id: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(WorkbenchError):
    """The request itself is malformed (bad argument, bad value)."""

    code = 400
    error_id = "invalid_request"


class InvalidExamples(InvalidRequest):
    """Training examples that cannot train a classifier: too few, wrong kind, unsafe zip."""

    error_id = "invalid_examples"


class InvalidClassName(InvalidExamples):
    """A class name that is not a string, empty, too long, or holds a character Watson or workbench forbids."""

    error_id = "invalid_class_name"


class TooFewExamples(InvalidExamples):
    """A curation that would leave a class (or the negatives) with fewer images than a set needs, or under two sets."""

    error_id = "too_few_examples"


class InvalidClassifierName(InvalidRequest):
    """A classifier name that is not a string, empty, too long, or holds a control character."""

    error_id = "invalid_classifier_name"


class InvalidThreshold(InvalidRequest):
    """A threshold outside 0..1."""

    error_id = "invalid_threshold"


class UnsupportedLanguage(InvalidRequest):
    """An Accept-Language that names none of Watson's languages, or is not a language list at all."""

    error_id = "invalid_language"


class NoImages(InvalidRequest):
    """A classify call that names no image."""

    error_id = "no_images"


class ImageUnreadable(InvalidRequest):
    """Bytes that do not decode as a supported image (or a truncated one)."""

    error_id = "input_error"


class ImageTooSmall(ImageUnreadable):
    """An image under the minimum side length."""

    error_id = "image_too_small"


class LimitExceeded(WorkbenchError):
    """An input over a configured limit (bytes, image count, pixels)."""

    code = 413
    error_id = "limit_exceeded"


class ClassifierNotFound(WorkbenchError):
    """No classifier with this id (or not visible to this owner)."""

    code = 404
    error_id = "not_found"


class ModelNotInstalled(ClassifierNotFound):
    """A built-in classifier whose model is an optional extra that is not installed here (`explicit`)."""

    error_id = "model_not_installed"


class ExampleNotFound(WorkbenchError):
    """No example with this id among the classifier's current training examples."""

    code = 404
    error_id = "example_not_found"


class VersionNotFound(ClassifierNotFound):
    """A version of a classifier that was never trained (a failed training makes no version)."""

    error_id = "version_not_found"


class WaitTimeout(WorkbenchError):
    """`wait` ran out of time before the classifier settled."""

    code = 408
    error_id = "timeout"


class BodyTooSlow(WorkbenchError):
    """A request body that arrived below the server's minimum rate or stalled (HTTP front); the connection is closed."""

    code = 408
    error_id = "request_timeout"


class Unauthorized(WorkbenchError):
    """No API key, or one that no configured key matches (HTTP front)."""

    code = 401
    error_id = "unauthorized"


class UnsupportedMediaType(WorkbenchError):
    """A request body that is not a form: multipart/form-data or urlencoded (HTTP front)."""

    code = 415
    error_id = "unsupported_media_type"


class TrackingError(WorkbenchError):
    """MLflow could not be reached or answered with an error (the training itself is unaffected)."""

    code = 503
    error_id = "tracking_unavailable"


class UrlFetchBusy(WorkbenchError):
    """Classify by URL is at its limit: the host already has its fetches in flight, or the URL threads are all busy."""

    code = 503
    error_id = "url_fetch_busy"


class StoreUnavailable(WorkbenchError):
    """The store cannot take this write now: another process holds its lock past the busy timeout, or the disk is full.

    Nothing was changed; the same request may succeed later. Reads keep working meanwhile.
    """

    code = 503
    error_id = "store_unavailable"


class KeyFileCorrupt(WorkbenchError):
    """`api_keys.json` is not what `workbench keys` writes: the server does not start, the keys verbs stop."""

    code = 500
    error_id = "key_file_corrupt"


MAX_ECHO_CHARS = 200  # of one user-given string in an error message
MAX_ECHO_ITEMS = 10  # of a user-given list in an error message


def echo(value: object, max_chars: int = MAX_ECHO_CHARS) -> str:
    """`repr(value)` for an error message, cut to `max_chars` so a huge input is not sent back whole."""
    text = repr(value)
    return text if len(text) <= max_chars else f"{text[:max_chars]}... ({len(text)} characters)"


def echo_list(values: list, max_items: int = MAX_ECHO_ITEMS) -> str:
    """The first `max_items` of a user-given list for an error message, each cut by `echo`, and the count."""
    shown = ", ".join(echo(value) for value in values[:max_items])
    return f"[{shown}]" if len(values) <= max_items else f"[{shown}, ...] ({len(values)} in all)"
