"""Class and classifier names as stored: Watson's rules, no control characters, NFC, bounded length.

Composed and decomposed spellings ("café") are one name; a name a front could not show or MLflow
could not key (control characters, "..", percent-escaped NUL) is refused with a typed error.
"""

from __future__ import annotations

import re
import unicodedata

from .errors import InvalidClassifierName, InvalidClassName, InvalidRequest
from .limits import FORBIDDEN_CLASS_CHARS, MAX_CLASS_NAME_CHARS, MAX_CLASSIFIER_NAME_CHARS

JOINERS = frozenset("\u200c\u200d")  # zero-width (non-)joiners: needed in Persian and Indic words and emoji
PERCENT_CONTROL = re.compile(
    r"%(?:[01][0-9A-Fa-f]|7[Ff])"
)  # how browsers and httpx send a control character in a form field name
PATH_NAMES = frozenset({".", ".."})  # "precision/.." is not a valid MLflow key


def shown_name(name: str) -> str:
    """A name for an error message: repr (control characters visible), long names cut."""
    return repr(name if len(name) <= 40 else name[:40] + "...")


def _control_character(name: str) -> str | None:
    """The first control, format, surrogate, private or unassigned character (Unicode C*), described; else None."""
    for char in name:
        if unicodedata.category(char).startswith("C") and char not in JOINERS:
            label = unicodedata.name(char, unicodedata.category(char))
            return f"U+{ord(char):04X} {label}"
    return None


def _checked_text(name: object, what: str, max_chars: int, error: type[InvalidRequest]) -> str:
    """The rules class and classifier names share: a string, no control characters, NFC, 1..max_chars."""
    if not isinstance(name, str):
        raise error(f"A {what} must be a string; got {type(name).__name__} {name!r}")
    control = _control_character(name)
    if control:
        raise error(
            f"{what.capitalize()} {shown_name(name)} contains a control character ({control}); "
            f"control and invisible format characters are not allowed in {what}s"
        )
    name = unicodedata.normalize("NFC", name)
    if not name.strip():
        raise error(f"{what.capitalize()}s must not be empty")
    if len(name) > max_chars:
        raise error(f"{what.capitalize()} {shown_name(name)} is {len(name)} characters long; the limit is {max_chars}")
    return name


def check_class_name(name: object) -> str:
    """A class name as stored: Watson's rules, no control characters, at most MAX_CLASS_NAME_CHARS, NFC.

    Returns the NFC form, so composed and decomposed spellings ("café") are one class.
    Raises InvalidClassName for anything else, including a non-string key.
    """
    name = _checked_text(name, "class name", MAX_CLASS_NAME_CHARS, InvalidClassName)
    escaped = PERCENT_CONTROL.search(name)
    if escaped:
        raise InvalidClassName(
            f"Class name {shown_name(name)} contains {escaped.group()}, a percent-escaped control character "
            "(as HTTP clients send one in a form field name); control characters are not allowed in class names"
        )
    bad = sorted(set(name) & FORBIDDEN_CLASS_CHARS)
    if bad:
        raise InvalidClassName(f"Class name {shown_name(name)} contains forbidden characters: {' '.join(bad)}")
    if name in PATH_NAMES:
        raise InvalidClassName(f"Class name {name!r} is not allowed: '.' and '..' are path names")
    return name


def check_classifier_name(name: object) -> str:
    """A classifier name as stored: 1 to MAX_CLASSIFIER_NAME_CHARS characters, no control characters, NFC."""
    return _checked_text(name, "classifier name", MAX_CLASSIFIER_NAME_CHARS, InvalidClassifierName)
