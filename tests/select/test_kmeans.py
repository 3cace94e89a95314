"""host.kmeans: seeded, recovers well-separated clusters, errors name the option."""

import numpy as np
import pytest

from host.kmeans import check_embeddings, kmeans_labels


def _blobs(seed=0, n=600, k=4, d=16, noise=0.05):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    truth = rng.integers(0, k, n)
    return (centres[truth] + noise * rng.normal(size=(n, d))).astype(np.float32), truth


def test_recovers_separated_clusters_and_is_seeded():
    x, truth = _blobs()
    a = kmeans_labels(x, 4, seed=3)
    assert a.dtype == np.int64 and a.shape == truth.shape and set(np.unique(a)) <= set(range(4))
    # same partition up to relabelling: each true cluster maps to exactly one k-means class
    for c in range(4):
        assert np.unique(a[truth == c]).size == 1
    assert np.unique(a).size == 4
    assert np.array_equal(a, kmeans_labels(x, 4, seed=3))


@pytest.mark.parametrize("k", [0, 601, -1, 2.5, True])
def test_bad_k_names_the_option(k):
    x, _ = _blobs()
    with pytest.raises(ValueError, match="latent_classes"):
        kmeans_labels(x, k)


def test_non_finite_names_the_column():
    x, _ = _blobs(n=50)
    x[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"emb/proxy contains NaN.*row 7"):
        check_embeddings(x, option="emb/proxy")
    with pytest.raises(ValueError, match="embeddings contains NaN"):
        kmeans_labels(x, 2)
