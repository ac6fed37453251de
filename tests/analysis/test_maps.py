"""Class activation maps (`analysis.maps`): each head applied to every feature cell."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.analysis.maps import cell_logits


@pytest.mark.parametrize("heads", [1, 2, 3, 7])
def test_cell_logits_apply_each_head_to_each_cell(heads: int) -> None:
    rng = np.random.default_rng(heads)
    features = np.maximum(rng.normal(size=(1280, 7, 5)), 0).astype(np.float32)  # not square: rows stay rows
    weights, bias = rng.normal(size=(heads, 1280)).astype(np.float32), rng.normal(size=heads).astype(np.float32)
    got = cell_logits(features, weights, bias)
    assert got.shape == (heads, 7, 5)
    for k in range(heads):
        for y, x in ((0, 0), (6, 4), (3, 1)):
            assert got[k, y, x] == pytest.approx(float(weights[k] @ features[:, y, x] + bias[k]), rel=1e-5, abs=1e-4)
    np.testing.assert_allclose(
        got, np.einsum("kc,chw->khw", weights, features) + bias[:, None, None], rtol=1e-5, atol=1e-4
    )
