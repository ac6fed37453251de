"""Fast unit tests of core.names: class and classifier names as stored."""

from __future__ import annotations

import unicodedata

import pytest

from workbench import InvalidClassName, InvalidRequest
from workbench.core.limits import FORBIDDEN_CLASS_CHARS, MAX_CLASS_NAME_CHARS, MAX_CLASSIFIER_NAME_CHARS
from workbench.core.names import check_class_name, check_classifier_name, shown_name


def test_composed_and_decomposed_spellings_are_one_name() -> None:
    composed, decomposed = "caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9")
    assert composed != decomposed
    assert check_class_name(composed) == check_class_name(decomposed) == composed
    assert check_classifier_name(decomposed) == composed


@pytest.mark.parametrize("char", sorted(FORBIDDEN_CLASS_CHARS))
def test_watsons_forbidden_characters_are_refused_by_name(char) -> None:
    with pytest.raises(InvalidClassName, match="forbidden characters"):
        check_class_name(f"golden{char}retriever")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("tab\there", "U\\+0009"),
        ("nul%00", "percent-escaped"),
        ("bidi\u202eevil", "U\\+202E"),
        ("   ", "must not be empty"),
        ("..", "path names"),
        (42, "must be a string"),
        ("x" * (MAX_CLASS_NAME_CHARS + 1), "the limit is"),
    ],
)
def test_bad_class_names_get_a_typed_error_saying_why(name, why) -> None:
    with pytest.raises(InvalidClassName, match=why):
        check_class_name(name)


def test_joiners_that_words_need_are_kept() -> None:
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # a zero-width non-joiner inside the word
    assert check_class_name(persian) == persian


def test_classifier_names_allow_watsons_class_characters_but_not_control_ones() -> None:
    assert check_classifier_name("dogs-v2/test") == "dogs-v2/test"
    with pytest.raises(InvalidRequest, match="the limit is"):
        check_classifier_name("d" * (MAX_CLASSIFIER_NAME_CHARS + 1))
    with pytest.raises(InvalidRequest, match="control character"):
        check_classifier_name("dogs\n")


def test_long_names_are_cut_in_messages() -> None:
    assert shown_name("n" * 100) == repr("n" * 40 + "...")
