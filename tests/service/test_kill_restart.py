"""kill -9 of a serving process mid-stream, restart on the same port: the client's stream carries
on from the next undelivered row, with no id lost or repeated (real processes, real sockets)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import numpy as np

from tests.conftest import REPO
from storage_service.client import StorageClient
from storage_service.ingest import write_store


def _serve(root, port: int) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "nessa", "serve", str(root), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    line = proc.stdout.readline()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise AssertionError(line + proc.stderr.read())
    return proc, int(m.group(1))


def test_kill_9_mid_stream_then_restart_loses_and_repeats_no_id(tmp_path):
    # 8 MiB: more than the sockets and gRPC's flow-control window hold, so the kill really cuts
    # the stream (a smaller set would already sit whole in the client's buffers)
    rng = np.random.default_rng(0)
    write_store(tmp_path / "a", rng.integers(0, 256, (2048, 4096), dtype=np.uint8), rng.integers(0, 4, 2048), name="a")
    root = tmp_path
    first, port = _serve(root, 0)
    procs = [first]
    try:
        with StorageClient(f"127.0.0.1:{port}", retries=10, backoff=0.1, max_backoff=1.0) as c:
            want = np.concatenate([b.ids for b in c.stream_samples("a", selection="full", seed=3, epoch=1, batch_bytes=64 << 10)])
            opened = []
            real_open = c._open_stream
            c._open_stream = lambda request: opened.append(request.start_offset) or real_open(request)
            got = []
            for i, batch in enumerate(c.stream_samples("a", selection="full", seed=3, epoch=1, batch_bytes=64 << 10)):
                got.append(batch.ids)
                if i == 10:  # a third of the way: the server dies without a word, a new one takes its port
                    first.send_signal(signal.SIGKILL)
                    first.wait(30)
                    procs.append(_serve(root, port)[0])
            got = np.concatenate(got)
        assert len(want) == 2048 and np.array_equal(got, want)
        assert len(opened) >= 2 and 0 < opened[-1] < 2048  # it did resume mid-way, from where it was
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(30)
