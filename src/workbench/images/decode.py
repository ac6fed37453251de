"""Decoding images safely (format, pixel and size checks before decoding; JPEGs in draft mode), and
decoding them in a thread pool that runs ahead of the backbone.

PIL's JPEG decoder and resize release the GIL, so while the backbone runs one batch a few
threads decode the next ones. Results come back in input order, at most LOOKAHEAD_BATCHES
batches ahead, so memory stays bounded however many images a call holds.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps

from ..core.errors import ImageTooSmall, ImageUnreadable, LimitExceeded
from ..core.limits import Limits
from ..core.spec import BackboneSpec, preprocess, preprocess_views
from ..engine.backbone import available_cpus

LOOKAHEAD_BATCHES = 2  # batches decoded ahead of the one the backbone runs
PIL_FORMATS = ("JPEG", "PNG", "GIF", "TIFF", "WEBP", "BMP")

Item = TypeVar("Item")
Result = TypeVar("Result")


# ---------------------------------------------------------------- one image


def _who(name: str) -> str:
    return name or "image"


JPEG_FORMATS = ("JPEG", "MPO")
DRAFT_SCALES = (1, 2, 4, 8)  # the reductions a JPEG decoder offers (libjpeg's DCT scaling)


def _pixels_at(size: tuple[int, int], scale: int) -> int:
    """Pixels of an image of `size` decoded at 1/scale (sides rounded up, as libjpeg does)."""
    return -(-size[0] // scale) * -(-size[1] // scale)


def _too_many_pixels(name: str, size: tuple[int, int], limits: Limits, jpeg: bool) -> LimitExceeded:
    width, height = size
    message = (
        f"{_who(name)}: image is {width}x{height} = {width * height} pixels; the limit is {limits.max_image_pixels}"
    )
    if jpeg:
        message += f" (a JPEG counts at 1/8 scale: {_pixels_at(size, DRAFT_SCALES[-1])} pixels)"
    return LimitExceeded(message)


def _open_checked(data: bytes, limits: Limits, name: str) -> Image.Image:
    """Open `data` lazily (header only) and check format and size before any decoding.

    A JPEG may be larger than `limits.max_image_pixels` as long as its 1/8-scale decode (draft
    mode) fits: a 48 MP phone photo is decoded smaller, never whole. PIL's own bomb check
    (`Image.MAX_IMAGE_PIXELS`) raises `DecompressionBombError` at twice its limit; that becomes
    LimitExceeded too. Our check on the header size runs before `load()`, so a bomb is never decoded.
    """
    try:
        img = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
    except Image.DecompressionBombError as exc:
        raise LimitExceeded(f"{_who(name)}: image has too many pixels ({exc})") from exc
    except Exception as exc:  # PIL raises many types on hostile input
        raise ImageUnreadable(f"{_who(name)}: not a readable JPEG, PNG, GIF, TIFF, WEBP or BMP image") from exc
    width, height = img.size
    jpeg = img.format in JPEG_FORMATS
    if _pixels_at(img.size, DRAFT_SCALES[-1] if jpeg else 1) > limits.max_image_pixels:
        img.close()
        raise _too_many_pixels(name, img.size, limits, jpeg)
    if min(width, height) < limits.min_image_side_px:
        img.close()
        side = limits.min_image_side_px
        raise ImageTooSmall(f"{_who(name)}: image is {width}x{height} pixels; the minimum is {side}x{side}")
    return img


def _draft_scale(size: tuple[int, int], limits: Limits, draft_size: int | None) -> int:
    """The JPEG reduction to decode at: the largest keeping the short side >= draft_size (1 without),
    raised until the decoded pixels fit `limits.max_image_pixels` (`_open_checked` made sure 1/8 does)."""
    wanted = [s for s in DRAFT_SCALES if draft_size and min(size) // s >= draft_size]
    scale = max(wanted, default=1)
    return next(s for s in DRAFT_SCALES if s >= scale and _pixels_at(size, s) <= limits.max_image_pixels)


def _draft(img: Image.Image, limits: Limits, draft_size: int | None) -> None:
    """Let a JPEG decode at reduced scale (PIL draft mode) per `_draft_scale`; other formats decode whole."""
    if img.format not in JPEG_FORMATS:
        return
    scale = _draft_scale(img.size, limits, draft_size)
    if scale > 1:
        img.draft("RGB", (img.size[0] // scale, img.size[1] // scale))


def _load(img: Image.Image, name: str) -> None:
    """Fully decode `img` (first frame) so truncated or corrupt data fails here."""
    try:
        img.load()
    except Image.DecompressionBombError as exc:
        raise LimitExceeded(f"{_who(name)}: image has too many pixels ({exc})") from exc
    except Exception as exc:
        raise ImageUnreadable(f"{_who(name)}: image data is truncated or corrupt ({exc})") from exc


def validate_image(data: bytes, *, limits: Limits = Limits(), name: str = "") -> tuple[int, int]:
    """Check that `data` is a supported, decodable image within limits; return its (width, height).

    Raises LimitExceeded (too many pixels, checked before decoding), ImageTooSmall,
    or ImageUnreadable (unsupported format, truncated or corrupt data). A JPEG is decoded at
    1/8 scale: that still reads every byte, so truncation shows.
    """
    img = _open_checked(data, limits, name)
    with img:
        size = img.size
        _draft(img, limits, draft_size=1)
        _load(img, name)
    return size


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a malformed EXIF block leaves the image as stored."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to 8-bit RGB; transparency is composited on white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale: scale to 8 bits instead of clipping everything to white.
        img = img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def decode_image(
    data: bytes,
    *,
    limits: Limits = Limits(),
    name: str = "",
    draft_size: int | None = None,
) -> Image.Image:
    """Decode `data` to an upright RGB image (first frame), with `validate_image`'s checks.

    With `draft_size`, a JPEG is decoded at a reduced scale whose short side stays
    >= draft_size (PIL `draft`), which makes large photos much cheaper to decode. A JPEG over
    `limits.max_image_pixels` is always decoded at the least reduction that fits.
    """
    img = _open_checked(data, limits, name)
    _draft(img, limits, draft_size)
    _load(img, name)
    try:
        return _to_rgb(_upright(img))
    except Exception as exc:
        raise ImageUnreadable(f"{_who(name)}: cannot convert {img.mode} image to RGB") from exc


# ---------------------------------------------------------------- ahead of the backbone


def backbone_input(data: bytes, spec: BackboneSpec, limits: Limits, name: str = "") -> tuple[np.ndarray, Image.Image]:
    """Image bytes -> (backbone tensor, decoded image), decoding once; JPEGs at reduced size (draft mode)."""
    image = decode_image(data, limits=limits, name=name, draft_size=spec.input_size_px)
    return preprocess(image, spec), image


def backbone_views(
    data: bytes, spec: BackboneSpec, limits: Limits, name: str = ""
) -> tuple[list[np.ndarray], Image.Image]:
    """Image bytes -> (a backbone tensor per view (`spec.view_boxes`), the centre square first; decoded image)."""
    image = decode_image(data, limits=limits, name=name, draft_size=spec.input_size_px)
    return preprocess_views(image, spec), image


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
    return [item for _, item in zip(range(count), source, strict=False)]
