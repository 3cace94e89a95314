"""``nessa verify [STORE_OR_ROOT] [--repair]`` as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from storage_service.ingest import write_store
from storage_service.store import Store
from storage_service.store_integrity import RECORD_NAME


def nessa(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nessa", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def _root(tmp_path):
    rng = np.random.default_rng(0)
    write_store(tmp_path / "a", rng.integers(0, 256, (300, 16), dtype=np.uint8), np.arange(300) % 3, shard_bytes=1600)
    write_store(tmp_path / "b" / "train", rng.integers(0, 256, (40, 4), dtype=np.uint8), np.arange(40) % 2)
    return tmp_path


def test_verifies_every_store_under_a_root_and_records_it(tmp_path):
    root = _root(tmp_path)
    proc = nessa("verify", cwd=root)  # default: the current folder
    assert proc.returncode == 0, proc.stderr
    assert "a: OK" in proc.stdout and os.path.join("b", "train") + ": OK" in proc.stdout
    doc = json.loads((root / "a" / RECORD_NAME).read_text())
    assert doc["format_version"] == 1 and doc["ok"] and doc["by"] == "nessa verify" and len(doc["shards"]) == 3
    # the service trusts that record: nothing left to hash
    st = Store(root / "a")
    assert st.start_verification(sync_bytes=0).untrusted_bytes() == 0


def test_corruption_exits_1_naming_file_and_problem(tmp_path):
    root = _root(tmp_path)
    shard = root / "a" / "shard-00001.arrow"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    shard.write_bytes(bytes(raw))
    proc = nessa("verify", root)
    assert proc.returncode == 1
    assert "shard-00001.arrow: sha256 mismatch" in proc.stderr and "1 of 2 store(s) failed" in proc.stderr
    assert "b/train: OK" in proc.stdout.replace(os.sep, "/")
    assert not json.loads((root / "a" / RECORD_NAME).read_text())["ok"]


def test_repair_removes_leftovers_of_killed_writes(tmp_path):
    root = _root(tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()
    killed = root / f".c.tmp-{gone.pid}-1234abcd"  # a killed ingest's folder
    killed.mkdir()
    (killed / "shard-00000.arrow").write_bytes(b"\0" * 4096)
    half = root / "a" / f".{RECORD_NAME}.tmp{gone.pid}"
    half.write_text("{")
    proc = nessa("verify", root)
    assert proc.returncode == 0 and "--repair removes it" in proc.stderr and killed.exists()
    proc = nessa("verify", root, "--repair")
    assert proc.returncode == 0, proc.stderr
    assert f"removed {killed}" in proc.stdout and not killed.exists() and not half.exists()


def test_not_a_store_is_a_clear_error(tmp_path):
    proc = nessa("verify", tmp_path)
    assert proc.returncode == 1 and "no manifest.json and no store below it" in proc.stderr and "Traceback" not in proc.stderr


def test_a_killed_ingest_leaves_a_folder_that_repair_and_the_next_ingest_remove(tmp_path, fashion_mnist_dir):
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "nessa", "ingest", str(fashion_mnist_dir), str(tmp_path / "fm"), "--quiet"])
    deadline = time.monotonic() + 60
    left = []
    while not left and time.monotonic() < deadline and proc.poll() is None:
        left = [p for p in tmp_path.iterdir() if p.name.startswith(f".fm.tmp-{proc.pid}-")]
        time.sleep(0.005)
    time.sleep(0.2)  # let it write some of the shards
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(left) == 1 and left[0].exists() and not (tmp_path / "fm").exists()  # the leftover
    proc = nessa("verify", tmp_path, "--repair")
    assert f"removed {left[0]}" in proc.stdout and not left[0].exists()
    # and an ingest cleans what an earlier killed ingest of the same destination left
    left[0].mkdir()
    write_store(tmp_path / "fm", np.zeros((4, 2), np.uint8), [0, 1, 0, 1])
    assert not left[0].exists() and (tmp_path / "fm" / "manifest.json").exists()
