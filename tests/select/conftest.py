"""Fixtures of the distillation tests: real 8x8 digits, and one torch thread for a module."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread: on 2 shared cores OpenMP's spin-waits make two threads ~10x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 1,797 8x8 digits as uint8 images [N, 8, 8] and int64 labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images * 255 / 16).round().astype(np.uint8), d.target.astype(np.int64)
