"""Watson timestamps: ISO 8601 UTC with milliseconds, e.g. 2018-03-17T19:01:30.536Z."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """The current time as Watson writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
