"""``nessa ingest / info / verify`` as a user runs them (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np


def nessa(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "nessa", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"nessa {args} failed: {proc.stderr}")
    return proc


def test_fashion_mnist_ingest_info_verify(tmp_path, fashion_mnist_dir):
    nessa("ingest", fashion_mnist_dir, tmp_path / "fm", "--quiet")
    info = json.loads(nessa("info", tmp_path / "fm" / "train", "--json").stdout)
    assert info["num_samples"] == 60000 and info["num_classes"] == 10
    assert info["class_counts"] == [6000] * 10
    assert info["sample_shape"] == [28, 28] and info["dtype"] == "uint8" and info["format_version"] == 1
    assert "OK" in nessa("verify", tmp_path / "fm" / "test").stdout


def test_cli_errors_exit_nonzero(tmp_path):
    proc = nessa("ingest", tmp_path / "missing", tmp_path / "out", check=False)
    assert proc.returncode == 2 and "missing: no such file" in proc.stderr
    proc = nessa("info", tmp_path, check=False)
    assert proc.returncode == 2 and "no manifest.json" in proc.stderr
    proc = nessa("ingest", tmp_path / "missing", tmp_path / "out", "--shard-mb", "nan", check=False)
    assert proc.returncode == 2 and "--shard-mb must be positive, got nan" in proc.stderr
    (tmp_path / "model.safetensors").write_bytes(b"x")  # a file given where a store folder belongs
    proc = nessa("info", tmp_path / "model.safetensors", check=False)
    assert proc.returncode == 2 and "no manifest.json" in proc.stderr and "Traceback" not in proc.stderr
    proc = nessa("verify", tmp_path / "model.safetensors", check=False)
    assert proc.returncode == 1 and "no manifest.json" in proc.stderr and "Traceback" not in proc.stderr


def test_verify_nonzero_on_corruption(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.arange(400, dtype=np.uint8).reshape(100, 4), y=np.arange(100) % 3)
    nessa("ingest", tmp_path / "d.npz", tmp_path / "s", "--quiet")
    shard = next((tmp_path / "s").glob("shard-*.arrow"))
    raw = bytearray(shard.read_bytes())
    raw[-100] ^= 1
    shard.write_bytes(bytes(raw))
    proc = nessa("verify", tmp_path / "s", check=False)
    assert proc.returncode == 1 and "sha256 mismatch" in proc.stderr
