"""The decode pool: every image decoded once, answers in input order, errors where they belong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.spec import lite0_spec, preprocess
from workbench.decode import backbone_input, prepared_batches
from workbench.errors import ImageUnreadable
from workbench.examples import decode_image
from workbench.limits import Limits

TUTORIAL = Path(__file__).resolve().parents[1] / "data" / "tutorial"


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
    for got, want in zip([t for b in batches for t in b], expected):
        np.testing.assert_array_equal(got, want)


def test_each_item_is_prepared_exactly_once() -> None:
    seen: list[int] = []
    batches = list(prepared_batches(range(50), lambda i: seen.append(i) or i, 8, workers=3))
    assert [i for b in batches for i in b] == list(range(50))
    assert sorted(seen) == list(range(50))


def test_an_unreadable_image_raises_at_its_batch() -> None:
    spec, blobs = lite0_spec(), _blobs(3) + [b"not an image"]
    batches = prepared_batches(blobs, lambda b: backbone_input(b, spec, Limits()), 3, workers=2)
    assert len(next(batches)) == 3
    with pytest.raises(ImageUnreadable):
        next(batches)
