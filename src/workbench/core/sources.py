"""What classify reads besides paths, bytes and files: an image URL, fetched by the caller's fetcher.

A leaf module, so that fronts can name a URL source without reaching into the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Fetcher = Callable[[str], "tuple[bytes, str]"]  # url -> (bytes, the URL they came from after redirects)


@dataclass(frozen=True)
class ImageURL:
    """An image to classify by URL; the answer names it by `source_url` and `resolved_url`, as Watson did.

    The engine fetches it only after the call's threshold, classifiers and image count are checked,
    with the `fetch_url` the caller passes to `Workbench.classify` (the HTTP front's allow-list).
    """

    url: str
