"""Shared fixtures: real data locations and a session-wide Fashion-MNIST store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_fashion_mnist() -> Path:
    """The Fashion-MNIST IDX folder: $NESSA_FASHION_MNIST, ../shared beside the checkout, or Debian's package."""
    candidates = [os.environ.get("NESSA_FASHION_MNIST"), REPO.parent / "shared/data/fashion-mnist", "/usr/share/datasets/fashion-mnist"]
    for c in candidates:
        if c and (Path(c) / "train-labels-idx1-ubyte.gz").exists() or (c and (Path(c) / "train-labels-idx1-ubyte").exists()):
            return Path(c)
    raise RuntimeError("Fashion-MNIST not found: set NESSA_FASHION_MNIST or install the Debian package dataset-fashion-mnist")


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    return find_fashion_mnist()


@pytest.fixture(scope="session")
def fm_store_root(tmp_path_factory, fashion_mnist_dir) -> Path:
    """A store root holding ``fm/train`` (60,000) and ``fm/test`` (10,000), ingested once per session."""
    from storage_service.ingest import ingest

    root = tmp_path_factory.mktemp("stores")
    ingest(fashion_mnist_dir, root / "fm", progress=False)
    return root
