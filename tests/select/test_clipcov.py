"""host.clipcov: the reference's score and global greedy, its refresh, sizes, errors naming columns."""

import numpy as np
import pytest

from host._sim_sums import mean_clipped_similarity
from host.budget import class_budget
from host.clipcov import clipcov_select


def _pairs(seed=0, n=400, k=4, d=16, noise=0.2):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    y = rng.integers(0, k, n)
    img = centres[y] + noise * rng.normal(size=(n, d))
    txt = img + noise * rng.normal(size=(n, d))
    return img.astype(np.float32), txt.astype(np.float32), y


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_total_is_the_class_balanced_size_and_no_duplicates():
    img, txt, y = _pairs()
    for kw in (dict(labels=y), dict(latent=3)):
        r = clipcov_select(img, txt, 0.1, seed=1, **kw)
        assert np.unique(r.ids).size == r.ids.size
        want = sum(class_budget(int((r.classes == c).sum()), 0.1) for c in np.unique(r.classes))
        assert r.ids.size == want


def test_without_refresh_it_takes_the_reference_score_in_order():
    img, txt, y = _pairs(seed=3, n=120, k=2)
    I, T = _unit(img.astype(np.float64)), _unit(txt.astype(np.float64))
    score = np.empty(len(y))
    for c in np.unique(y):
        m = y == c
        Ic, Tc = I[m], T[m]
        cross = np.maximum(Ic @ Tc.T, 0).mean(1) + np.maximum(Tc @ Ic.T, 0).mean(1)
        cI, cT = _unit(Ic.mean(0)[None])[0], _unit(Tc.mean(0)[None])[0]
        score[m] = cross + 2 * (Ic * Tc).sum(1) + 0.5 * (Tc @ cT) - (Ic @ cT + Tc @ cI)
    r = clipcov_select(img, txt, 0.25, labels=y, refresh=10**6)
    k = r.ids.size
    assert np.array_equal(r.ids, np.sort(np.argsort(-score, kind="stable")[:k]))


def test_refresh_lowers_what_the_chosen_pairs_already_cover():
    # One latent class of two tight clusters: A's pairs match exactly, B's a little less, so A's
    # pairs mostly outscore B's. With refresh, each round of A picks lowers A's scores (they
    # cover A), not B's (orthogonal), and B gets more turns.
    rng = np.random.default_rng(2)
    d = 16
    a = np.eye(d)[0] + 0.05 * rng.normal(size=(150, d))
    b = np.eye(d)[1] + 0.05 * rng.normal(size=(150, d))
    img = np.vstack([a, b]).astype(np.float32)
    txt = img.copy()
    txt[150:] += 0.05 * rng.normal(size=(150, d)).astype(np.float32)
    y = np.zeros(300, np.int64)
    once = clipcov_select(img, txt, 0.2, labels=y, latent=1, refresh=10**6)
    often = clipcov_select(img, txt, 0.2, labels=y, latent=1, refresh=5)
    from_a = [int(np.isin(r.ids, np.arange(150)).sum()) for r in (once, often)]
    assert from_a[0] >= 45 and from_a[1] <= from_a[0] - 10, from_a


def test_prefers_matched_pairs_over_mismatched():
    img, txt, y = _pairs(seed=1, n=200)
    rng = np.random.default_rng(1)
    bad = rng.choice(200, 100, replace=False)
    txt = txt.copy()
    txt[bad] = txt[rng.permutation(bad)]  # captions shuffled among half the pairs (some cross-class)
    txt[bad] = -txt[bad]  # and made clearly dissimilar to their images
    r = clipcov_select(img, txt, 0.2, labels=y, seed=0)
    assert np.isin(r.ids, bad).sum() <= 0.1 * r.ids.size  # a random 20 % would be half mismatched


def test_sampled_mean_similarity_is_close_to_the_exact_one():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8))
    a = _unit(centres[rng.choice(3, 3000, p=[0.6, 0.3, 0.1])] + 0.8 * rng.normal(size=(3000, 8))).astype(np.float32)
    exact = mean_clipped_similarity(a, a)
    est = mean_clipped_similarity(a, a, sample=1000, rng=rng)
    assert np.abs(exact - est).max() < 0.03
    assert np.corrcoef(exact, est)[0, 1] > 0.9


def test_errors_name_the_columns_and_options():
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
    with pytest.raises(ValueError, match="refresh"):
        clipcov_select(img, txt, 0.1, refresh=0)
