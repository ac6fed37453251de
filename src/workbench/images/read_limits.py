"""The limits on what one set and one request may read: image counts, bytes per set, bytes per request.

A zip's or folder's images are counted and their bytes summed against `limits.max_zip_images` and
`limits.max_zip_bytes`. One create or update reads at most `limits.max_request_bytes` of images across
all its sets: the `RequestBudget` that `examples.request_budget` returns stops every read once past it.
"""

from __future__ import annotations

from workbench.core.errors import LimitExceeded
from workbench.core.limits import Limits


def check_image_count(count: int, where: str, limits: Limits) -> None:
    """LimitExceeded when one zip or folder (`where`) holds more than limits.max_zip_images images."""
    if count > limits.max_zip_images:
        raise LimitExceeded(f"{where} holds {count} images; the limit is {limits.max_zip_images}")


def check_total_bytes(total: int, where: str, limits: Limits) -> None:
    """LimitExceeded when one zip or folder (`where`) holds more than limits.max_zip_bytes bytes of images."""
    if total > limits.max_zip_bytes:
        raise LimitExceeded(f"{where} holds {total} bytes of images; the limit is {limits.max_zip_bytes}")


class RequestBudget:
    """The image bytes one create or update may still read, across all its example sets."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)

    def take(self, size: int, where: str) -> None:
        """Counts `size` bytes read from `where`; LimitExceeded once the request is past its limit."""
        self.used += size
        if self.used > self.limit:
            raise request_too_large(f"more than {self.limit}", self.limit, where)


def request_too_large(held: str, limit: int, where: str | None = None) -> LimitExceeded:
    """The error of a create or update whose example sets hold too many bytes of images."""
    past = f" ({where} goes past it)" if where else ""
    return LimitExceeded(
        f"The example sets of this request hold {held} bytes of images{past}; "
        f"one create or update may hold at most {limit} bytes"
    )
