"""The C kernels' binding (host/_fl_kernels.py over host/_fl_native.c): argument checks, errors,
and agreement with plain numpy on what each kernel computes."""

import numpy as np
import pytest

from host import _fl_kernels as K


def _dist(x):
    return np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)).astype(np.float32)


def test_library_is_built_next_to_the_module():
    assert K.native_path() is not None and K.native_path().parent.name == "host"


def test_direct_block_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 5)).astype(np.float32)
    block = np.full((10, 37), -1, np.float32)
    K.direct_block(block, x[12:22].copy(), np.ascontiguousarray(x.T), 12)
    np.testing.assert_allclose(block[:, 12:], _dist(x)[12:22, 12:], rtol=1e-5, atol=1e-6)
    assert (block[:, :12] == -1).all()  # the lower part is mirror_lower's job
    assert (block[np.arange(10), 12 + np.arange(10)] == 0).all()


def test_mirror_lower_makes_the_matrix_symmetric():
    rng = np.random.default_rng(4)
    upper = rng.random((150, 150)).astype(np.float32)
    d = upper.copy()
    d[np.tril_indices(150, -1)] = -1
    for r0 in range(0, 150, 64):  # row blocks, as pairwise_distances calls it
        K.mirror_lower(d, r0, min(150, r0 + 64))
    assert (d == np.triu(upper) + np.triu(upper, 1).T).all()
    with pytest.raises(ValueError, match=r"rows \[140, 160\) out of range"):
        K.mirror_lower(d, 140, 160)


def test_distance_block_refines_near_duplicates():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 20)).astype(np.float32)
    x[7] = x[3] + 1e-4  # a near-duplicate: the Gram expansion cancels there
    sq = np.einsum("ij,ij->i", x, x, dtype=np.float32)
    block = x @ x.T
    fixed = K.distance_block(block, x, x, sq, sq, np.float32(2.0**-8), 0)
    ref = _dist(x)
    assert fixed >= 2  # (3, 7) and (7, 3)
    assert block[3, 7] == pytest.approx(ref[3, 7], rel=1e-3)
    np.testing.assert_allclose(block, ref, rtol=1e-3, atol=1e-3)


def test_greedy_weights_counts_and_modes_agree():
    rng = np.random.default_rng(2)
    d = _dist(rng.normal(size=(60, 3)).astype(np.float32))
    runs = {}
    for mode in (K.NAIVE, K.LAZY):
        dc = np.full(60, d.max(), np.float32)
        runs[mode] = K.greedy_weights(d, 6, dc, np.ones(1), False, mode, 60, 0)
    assert (runs[K.NAIVE][0] == runs[K.LAZY][0]).all() and (runs[K.NAIVE][1] == runs[K.LAZY][1]).all()
    ids, _, evals, weights = runs[K.LAZY]
    assert weights.sum() == 60 and evals < runs[K.NAIVE][2]
    owner = ids[np.argmin(d[ids], axis=0)]  # nearest pick of each member (ids distinct, ties rare here)
    assert [int((owner == j).sum()) for j in ids] == weights.astype(int).tolist()


def test_stochastic_is_seeded():
    rng = np.random.default_rng(3)
    d = _dist(rng.normal(size=(80, 4)).astype(np.float32))
    picks = [K.greedy_weights(d, 8, np.full(80, d.max(), np.float32), np.ones(1), False, K.STOCHASTIC, 9, s)[0]
             for s in (5, 5, 6)]
    assert (picks[0] == picks[1]).all() and not (picks[0] == picks[2]).all()


@pytest.mark.parametrize("bad, match", [
    (dict(D=np.zeros((4, 4), np.float64)), "D must be a C-contiguous float32"),
    (dict(D=np.zeros((4, 8), np.float32)[:, ::2]), "D must be a C-contiguous"),
    (dict(dc=np.zeros(3, np.float32)), r"dc must be .* shape \(4,\)"),
    (dict(w=np.ones(4, np.float32), weighted=True), "w must be a C-contiguous float64"),
    (dict(k=5), "invalid arguments"),
    (dict(mode=7), "invalid arguments"),
])
def test_greedy_rejects_bad_arguments(bad, match):
    args = dict(D=np.zeros((4, 4), np.float32), k=2, dc=np.ones(4, np.float32), w=np.ones(1), weighted=False,
                mode=K.LAZY, sample_size=4, seed=0)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        K.greedy_weights(**args)


def test_block_rows_must_fit():
    with pytest.raises(ValueError, match="row0=3 out of range"):
        K.direct_block(np.zeros((2, 4), np.float32), np.zeros((2, 1), np.float32), np.zeros((1, 4), np.float32), 3)


def test_missing_library_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(K, "_lib", None)
    monkeypatch.setattr(K, "native_path", lambda: None)
    with pytest.raises(RuntimeError, match="not built: install a C compiler"):
        K.direct_block(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), 0)
