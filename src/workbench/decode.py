"""Decoding and preprocessing in a thread pool that runs ahead of the backbone.

PIL's JPEG decoder and resize release the GIL, so while the backbone runs one batch a few
threads decode the next ones. Results come back in input order, at most LOOKAHEAD_BATCHES
batches ahead, so memory stays bounded however many images a call holds.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np
from PIL import Image

from .backbone import available_cpus
from .examples import decode_image
from .limits import Limits
from .spec import BackboneSpec, preprocess

LOOKAHEAD_BATCHES = 2  # batches decoded ahead of the one the backbone runs

Item = TypeVar("Item")
Result = TypeVar("Result")


def backbone_input(data: bytes, spec: BackboneSpec, limits: Limits, name: str = "") -> tuple[np.ndarray, Image.Image]:
    """Image bytes -> (backbone tensor, decoded image), decoding once; JPEGs at reduced size (draft mode)."""
    image = decode_image(data, limits=limits, name=name, draft_size=spec.input_size_px)
    return preprocess(image, spec), image


def prepared_batches(
    items: Iterable[Item],
    prepare: Callable[[Item], Result],
    batch_size: int,
    workers: int | None = None,
) -> Iterator[list[Result]]:
    """Yields `prepare(item)` for every item, in order and in batches, prepared ahead in a thread pool.

    An exception from `prepare` comes out of the iteration at that item's batch.
    """
    pending = list(items)
    workers = workers or available_cpus()
    if len(pending) <= 1 or workers <= 1:  # one image: a pool would only add latency
        for start in range(0, len(pending), batch_size):
            yield [prepare(item) for item in pending[start : start + batch_size]]
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="decode")
    try:
        source = iter(pending)
        futures: deque[Future] = deque()
        for item in _take(source, batch_size * (LOOKAHEAD_BATCHES + 1)):
            futures.append(pool.submit(prepare, item))
        while futures:
            batch = [futures.popleft().result() for _ in range(min(batch_size, len(futures)))]
            for item in _take(source, len(batch)):
                futures.append(pool.submit(prepare, item))
            yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _take(source: Iterator[Item], count: int) -> list[Item]:
    return [item for _, item in zip(range(count), source)]
