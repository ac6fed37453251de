"""Watson class dicts as the built-in models answer them: scores rounded to SCORE_DECIMALS, and their order.

Shared by the `default` model's hierarchy and colour entries and by the `food` model, so every built-in
answer rounds and sorts the same way: score descending, then leaves (with a `type_hierarchy`), then name.
"""

from __future__ import annotations

import numpy as np

from ..core.vocabulary import SCORE_DECIMALS


def watson_score(value: float) -> float:
    """A Watson score: a plain Python float rounded to SCORE_DECIMALS."""
    return round(float(value), SCORE_DECIMALS)


def by_score(entry: dict) -> tuple[float, int, str]:
    """Sort key: score descending, then leaves (with type_hierarchy) first, then name."""
    return (-entry["score"], 0 if "type_hierarchy" in entry else 1, entry["class"])


def rounded_scores(values: np.ndarray) -> list[float]:
    """`round(v, SCORE_DECIMALS)` of each value, as Python floats, vectorized: numpy's rounding equals Python's
    except within a hair of a half step, and those few values are rounded by Python."""
    scaled = values * 10**SCORE_DECIMALS
    result = (np.rint(scaled) / 10**SCORE_DECIMALS).tolist()
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6).tolist():
        result[i] = round(float(values[i]), SCORE_DECIMALS)
    return result
