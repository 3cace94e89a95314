"""``nessa synthetic-captions`` and ``nessa ingest --kind captions`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def nessa(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "nessa", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"nessa {args} failed: {proc.stderr}")
    return proc


def test_synthetic_captions_ingest_info_verify(tmp_path, fashion_mnist_dir):
    out = nessa("synthetic-captions", fashion_mnist_dir, tmp_path / "cap", "--split", "test", "--limit", "200",
                "--mismatch", "0.2", "--seed", "1").stdout
    assert "200 SYNTHETIC" in out
    nessa("ingest", tmp_path / "cap", tmp_path / "st", "--kind", "captions", "--quiet")
    info = json.loads(nessa("info", tmp_path / "st", "--json").stdout)
    assert info["format_version"] == 2 and info["num_samples"] == 200 and info["sample_shape"] == [28, 28]
    assert info["columns"] == [{"name": "text", "kind": "text", "dtype": "", "dim": 0, "max_bytes": 1024, "source": "ingest"}]
    assert "column text" in nessa("info", tmp_path / "st").stdout
    assert "OK" in nessa("verify", tmp_path / "st").stdout


def test_embedding_columns_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((30, 4))
    pq.write_table(pa.table({"image": [list(map(int, r)) for r in rng.integers(0, 255, (30, 16))],
                             "caption": [f"c{i}" for i in range(30)], "e": [list(r) for r in emb]}), tmp_path / "a.parquet")
    out = nessa("ingest", tmp_path / "a.parquet", tmp_path / "st", "--caption-column", "caption",
                "--embedding-column", "e=emb/proxy", "--embedding-dtype", "float32", "--quiet").stdout
    assert "columns text, emb/proxy" in out
    info = json.loads(nessa("info", tmp_path / "st", "--json").stdout)
    assert {c["name"]: (c["dtype"], c["dim"]) for c in info["columns"]} == {"text": ("", 0), "emb/proxy": ("float32", 4)}
    bad = nessa("ingest", tmp_path / "a.parquet", tmp_path / "s2", "--caption-column", "caption",
                "--embedding-column", "e=proxy", check=False)
    assert bad.returncode == 2 and "e=proxy" in bad.stderr and not (tmp_path / "s2").exists()
    bad = nessa("ingest", tmp_path / "a.parquet", tmp_path / "s2", "--caption-column", "caption",
                "--max-caption-bytes", "1", check=False)
    assert bad.returncode == 2 and "max_bytes=1" in bad.stderr and "'text'" in bad.stderr
    bad = nessa("synthetic-captions", tmp_path, tmp_path / "x", "--mismatch", "2", check=False)
    assert bad.returncode == 2 and "--mismatch" in bad.stderr
