"""A storage service over scikit-learn's digits on a loopback port, shared by a test module."""

from __future__ import annotations

import pytest

from nessa.demo import prepare_store
from storage_service.server import serve_local
from storage_service.store import Store


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """``(HOST:PORT, Store of digits/train)``."""
    root = tmp_path_factory.mktemp("store")
    prepare_store(root, None, progress=False)
    with serve_local(root) as target:
        yield target, Store(root / "digits" / "train")
