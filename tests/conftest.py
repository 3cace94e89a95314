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


def _missing_prerequisites() -> list[str]:
    """What this machine lacks for the suite, each with the fix (empty: all there)."""
    import shutil

    missing = []
    for tools, package in ((("iverilog", "vvp"), "iverilog"), (("g++",), "g++"), (("make",), "make"), (("openssl",), "openssl"),
                           (("yosys",), "yosys")):
        if any(shutil.which(t) is None for t in tools):
            tool = "/".join(tools)
            missing.append(f"`{tool}` (Debian: apt-get install {package})")
    from storage_service import _native_channel

    if not _native_channel.available():
        missing.append("the data plane extension storage_service._native_stream (install libgrpc++-dev and g++, then reinstall: pip install -e '.[dev]')")
    try:
        find_fashion_mnist()
    except RuntimeError:
        missing.append("Fashion-MNIST (Debian: apt-get install dataset-fashion-mnist, or set NESSA_FASHION_MNIST)")
    return missing


def pytest_sessionstart(session):
    # One clear message instead of a hundred failures on a machine set up by hand: `bash .ci/run`
    # installs all of it.
    missing = _missing_prerequisites()
    if missing:
        pytest.exit("the test suite needs, and this machine lacks:\n  - " + "\n  - ".join(missing) + "\n`bash .ci/run` installs everything into a fresh virtual environment and runs the suite.", returncode=4)
