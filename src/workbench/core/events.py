"""What listeners hear: a `ClassifierEvent` at each training stage, on delete and on promote.

A leaf module, so every front can subscribe (`Workbench.subscribe`) without importing the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .vocabulary import Stage


@dataclass(frozen=True)
class ClassifierEvent:
    """Something that happened to a classifier; listeners get one at each training stage, on delete and on promote.

    `version`: the serving version (on "ready" and "promoted").
    """

    classifier_id: str
    stage: Stage
    version: int | None = None
    done: int = 0
    total: int = 0
    explanation: str | None = None


Listener = Callable[[ClassifierEvent], None]
