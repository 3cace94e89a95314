"""keep_freed_memory(): glibc thresholds applied once per process, an explicit environment wins."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_PROBE = "from storage_service._malloc import keep_freed_memory as k; print(k(), k())"
_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def _run(extra_env: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.update(extra_env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True, timeout=60).stdout.split()


def test_applied_once_on_glibc():
    assert _run({}) == ([str(_GLIBC)] * 2)


@pytest.mark.parametrize("var", ["MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"])
def test_explicit_environment_is_left_alone(var):
    assert _run({var: "131072"}) == ["False", "False"]


def test_client_applies_it_unless_told_not_to():
    probe = ("from storage_service.client import StorageClient; import storage_service._malloc as m; "
             "StorageClient('127.0.0.1:1', keep_freed_memory=False).close(); print(m._state); "
             "StorageClient('127.0.0.1:1').close(); print(m._state)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.update(PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True,
                         timeout=60).stdout.split()
    assert out == ["None", str(_GLIBC)]
