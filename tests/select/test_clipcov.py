"""host.clipcov: exact per-class budgets, matched pairs over mismatched ones, errors name columns."""

import numpy as np
import pytest

from host.budget import class_budget
from host.clipcov import clipcov_select


def _pairs(seed=0, n=400, k=4, d=16, noise=0.2):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    y = rng.integers(0, k, n)
    img = centres[y] + noise * rng.normal(size=(n, d))
    txt = img + noise * rng.normal(size=(n, d))
    return img.astype(np.float32), txt.astype(np.float32), y


def test_budget_per_latent_class_is_exact_and_no_duplicates():
    img, txt, y = _pairs()
    for kw in (dict(labels=y), dict(latent=3)):
        r = clipcov_select(img, txt, 0.1, seed=1, pool_size=50, **kw)
        assert np.unique(r.ids).size == r.ids.size
        for c in np.unique(r.classes):
            m = np.flatnonzero(r.classes == c)
            assert np.isin(r.ids, m).sum() == class_budget(m.size, 0.1)


def test_prefers_matched_pairs_over_mismatched():
    img, txt, y = _pairs(seed=1, n=200)
    rng = np.random.default_rng(1)
    bad = rng.choice(200, 100, replace=False)
    txt = txt.copy()
    txt[bad] = txt[rng.permutation(bad)]  # captions shuffled among half the pairs (some cross-class)
    txt[bad] = -txt[bad]  # and made clearly dissimilar to their images
    r = clipcov_select(img, txt, 0.2, labels=y, seed=0)
    assert np.isin(r.ids, bad).sum() <= 0.1 * r.ids.size  # a random 20 % would be half mismatched


def test_errors_name_the_columns():
    img, txt, y = _pairs(n=40)
    with pytest.raises(ValueError, match="text_embedding_column has width 8 but embedding_column has width 16"):
        clipcov_select(img, txt[:, :8], 0.1)
    with pytest.raises(ValueError, match="text_embedding_column has 39 rows"):
        clipcov_select(img, txt[:39], 0.1)
    t = txt.copy()
    t[5, 5] = np.nan
    with pytest.raises(ValueError, match="text_embedding_column contains NaN"):
        clipcov_select(img, t, 0.1)
    with pytest.raises(ValueError, match="latent_classes"):
        clipcov_select(img, txt, 0.1, latent=41)
