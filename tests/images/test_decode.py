"""Decoding: safe checks before any pixel is decoded, RGB and orientation, the pool decoding ahead of the backbone."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from conftest import encode, png_bomb
from workbench.core.errors import ImageTooSmall, ImageUnreadable, LimitExceeded
from workbench.core.limits import Limits
from workbench.core.spec import lite0_spec, preprocess
from workbench.images.decode import backbone_input, decode_image, prepared_batches, validate_image

TUTORIAL = Path(__file__).resolve().parents[2] / "data" / "tutorial"
IMAGES = Path("/work/shared/reference/images")
DOGS = IMAGES / "dogs.jpg"


def _blobs(count: int) -> list[bytes]:
    return [p.read_bytes() for p in sorted((TUTORIAL / "husky").iterdir())[:count]]


def test_backbone_input_is_the_preprocessed_draft_decode() -> None:
    spec = lite0_spec()
    data = (TUTORIAL / "dogs.jpg").read_bytes()
    tensor, image = backbone_input(data, spec, Limits())
    assert min(image.size) >= spec.input_size_px
    np.testing.assert_array_equal(tensor, preprocess(decode_image(data, draft_size=spec.input_size_px), spec))


def test_pool_keeps_input_order_in_batches_of_the_given_size() -> None:
    spec, blobs = lite0_spec(), _blobs(11)
    batches = list(prepared_batches(blobs, lambda b: backbone_input(b, spec, Limits())[0], 4, workers=2))
    assert [len(b) for b in batches] == [4, 4, 3]
    expected = [backbone_input(b, spec, Limits())[0] for b in blobs]
    for got, want in zip([t for b in batches for t in b], expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_each_item_is_prepared_exactly_once() -> None:
    seen: list[int] = []
    batches = list(prepared_batches(range(50), lambda i: seen.append(i) or i, 8, workers=3))
    assert [i for b in batches for i in b] == list(range(50))
    assert sorted(seen) == list(range(50))


def test_an_unreadable_image_raises_at_its_batch() -> None:
    spec, blobs = lite0_spec(), [*_blobs(3), b"not an image"]
    batches = prepared_batches(blobs, lambda b: backbone_input(b, spec, Limits()), 3, workers=2)
    assert len(next(batches)) == 3
    with pytest.raises(ImageUnreadable):
        next(batches)


# ---------------------------------------------------------------- one image


def test_validate_image_returns_size() -> None:
    with Image.open(DOGS) as img:
        expected = img.size
    assert validate_image(DOGS.read_bytes()) == expected


@pytest.mark.parametrize("kept", [0.5, 0.9, 0.98])
def test_truncated_jpeg_is_unreadable(kept: float) -> None:
    data = DOGS.read_bytes()
    cut = data[: int(len(data) * kept)]
    with pytest.raises(ImageUnreadable):
        decode_image(cut, name="dogs.jpg")
    with pytest.raises(ImageUnreadable):
        validate_image(cut)  # validation decodes at 1/8 scale, which still reads every byte


def test_garbage_and_unsupported_formats_are_unreadable() -> None:
    with pytest.raises(ImageUnreadable):
        validate_image(b"hello world")
    with pytest.raises(ImageUnreadable):
        validate_image(encode(Image.new("RGB", (64, 64)), "PPM"))


def test_small_image_is_too_small() -> None:
    with pytest.raises(ImageTooSmall):
        validate_image(encode(Image.new("RGB", (20, 20), "red"), "PNG"))
    with pytest.raises(ImageTooSmall):
        decode_image(encode(Image.new("RGB", (200, 20), "red"), "JPEG"))


def test_decompression_bomb_is_refused_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = png_bomb(20_000)
    assert len(bomb) < 200_000

    def no_decoding(self: Image.Image) -> None:
        raise AssertionError("a bomb must not be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(LimitExceeded):
        validate_image(bomb, limits=Limits(max_image_pixels=10_000_000))
    with pytest.raises(LimitExceeded):
        decode_image(bomb, limits=Limits(max_image_pixels=10_000_000))
    with pytest.raises(LimitExceeded):  # over PIL's own bomb limit as well
        validate_image(bomb)
    under_pil_limit = png_bomb(5_000)  # 25M pixels: only our limit catches it
    with pytest.raises(LimitExceeded, match="5000x5000"):
        decode_image(under_pil_limit, limits=Limits(max_image_pixels=10_000_000))


def test_rgba_png_is_composited_on_white() -> None:
    img = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (0, 0, 32, 64))
    out = decode_image(encode(img, "PNG"))
    assert out.mode == "RGB"
    assert out.getpixel((50, 10)) == (255, 255, 255)
    assert out.getpixel((10, 10)) == (0, 0, 255)


def test_two_frame_gif_gives_first_frame() -> None:
    red = Image.new("RGB", (64, 48), (255, 0, 0)).convert("P")
    blue = Image.new("RGB", (64, 48), (0, 0, 255)).convert("P")
    data = encode(red, "GIF", save_all=True, append_images=[blue])
    with Image.open(io.BytesIO(data)) as check:
        assert check.n_frames == 2
    out = decode_image(data)
    assert out.mode == "RGB" and out.size == (64, 48)
    assert out.getpixel((5, 5)) == (255, 0, 0)


def test_cmyk_jpeg_and_grayscale_decode_to_rgb() -> None:
    cmyk = decode_image(encode(Image.new("CMYK", (64, 40), (0, 255, 255, 0)), "JPEG"))
    assert cmyk.mode == "RGB" and cmyk.size == (64, 40)
    r, g, b = cmyk.getpixel((10, 10))
    assert r > 200 and g < 60 and b < 60
    gray = decode_image(encode(Image.new("L", (64, 40), 128), "PNG"))
    assert gray.mode == "RGB" and gray.getpixel((1, 1)) == (128, 128, 128)
    deep = decode_image(encode(Image.new("I;16", (64, 40), 65535), "PNG"))
    assert deep.mode == "RGB" and deep.getpixel((1, 1))[0] >= 250
    mono = decode_image(encode(Image.new("1", (64, 40), 1), "BMP"))
    assert mono.mode == "RGB" and mono.getpixel((1, 1)) == (255, 255, 255)


def test_palette_png_with_transparency() -> None:
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0)).convert("P")
    out = decode_image(encode(img, "PNG", transparency=0))
    assert out.mode == "RGB" and out.getpixel((3, 3)) == (255, 255, 255)


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (64, 40), (0, 128, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 clockwise to view
    data = encode(img, "JPEG", exif=exif.tobytes())
    out = decode_image(data)
    assert out.size == (40, 64)
    assert out.mode == "RGB"


def test_draft_decodes_large_jpeg_smaller() -> None:
    data = encode(Image.new("RGB", (2000, 1000), (10, 20, 30)), "JPEG")
    full = decode_image(data)
    assert full.size == (2000, 1000)
    small = decode_image(data, draft_size=224)
    assert min(small.size) >= 224
    assert small.size[0] < 2000
    png = decode_image(encode(Image.new("RGB", (400, 300)), "PNG"), draft_size=100)
    assert png.size == (400, 300)


def test_real_png_with_alpha_decodes() -> None:
    out = decode_image((IMAGES / "goldenretriever" / "pexels-photo.png").read_bytes())
    assert out.mode == "RGB" and out.size == (360, 360)
