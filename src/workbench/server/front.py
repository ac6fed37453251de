"""What every route of one app shares: `Front`, kept on `app.state.front`.

The engine, the API keys, the settings, one engine view per owner (made once, then reused), the URL
fetcher, and the thread pool that classify calls with URLs run on, apart from all other requests.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..service.workbench import Workbench
from .image_urls import UrlFetcher
from .keys import KeyRing
from .settings import ServerSettings


@dataclass
class Front:
    """What the routes share: the engine, the keys, the settings, and one engine view per owner."""

    workbench: Workbench
    keys: KeyRing | None
    settings: ServerSettings
    views: dict[str, Workbench] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fetcher: UrlFetcher = field(init=False)
    url_threads: ThreadPoolExecutor = field(init=False)  # classify calls with URLs, apart from all other requests

    def __post_init__(self) -> None:
        self.fetcher = UrlFetcher(self.settings)
        self.url_threads = ThreadPoolExecutor(self.settings.url_fetch_threads, thread_name_prefix="workbench-url")

    def view(self, owner: str) -> Workbench:
        with self.lock:
            if owner not in self.views:
                self.views[owner] = self.workbench.as_owner(owner)
            return self.views[owner]
