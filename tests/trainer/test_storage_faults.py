"""The trainer and a storage host that hangs (``kill -STOP``, real processes and sockets): failed
streams and selections are retried within --storage-retries, then ``nessa train`` stops with a
checkpoint and a message saying how to --resume, and the resumed run trains every sample id of
every epoch exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest

import trainer.loop
from tests.conftest import REPO
from nessa.cli import main
from storage_service.client import StorageClient, StorageError
from storage_service.ingest import write_store
from trainer.config import ConfigError, TrainConfig
from trainer.dataset import SampleStream
from trainer.retry import RetryPolicy, StorageGaveUp, retrying

N = 2048  # 16x16 samples: 0.5 MB an epoch (the server may stop mid-epoch or between epochs: both are tested ends)

_SERVE = ("import sys, threading\n"
          "from storage_service.server import create_server\n"
          "server, port = create_server('127.0.0.1:0', sys.argv[1])\n"
          "print(port, flush=True)\n"
          "threading.Event().wait()\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``(process, HOST:PORT)`` of a storage server in its own process over ``a`` (N x 1x16x16)."""
    root = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(0)
    labels = np.arange(N) % 4
    # class-dependent images, so the model has something to learn
    images = (rng.integers(0, 64, (N, 1, 16, 16)) + 48 * labels[:, None, None, None]).astype(np.uint8)
    write_store(root / "a", images, labels, name="a")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        raise AssertionError(proc.stderr.read())
    try:
        with StorageClient(f"127.0.0.1:{line}") as c:  # warm: the server's first stream pays its imports
            assert sum(b.count for b in c.stream_samples("a", selection="full")) == N
        yield proc, f"127.0.0.1:{line}"
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(30)


def _argv(target: str, out_dir, *extra: str) -> list[str]:
    return ["train", "--server", target, "--dataset", "a", "--strategy", "full", "--epochs", "3",
            "--batch-size", "64", "--batch-bytes", "4096", "--prefetch", "1", "--arch", "small_cnn",
            "--out-dir", str(out_dir), "--no-progress", "--threads", "1", "--timeout", "5",
            "--stream-idle-timeout", "0.5", "--storage-retries", "2", "--retry-backoff", "0.05", *extra]


def test_a_hung_server_ends_the_run_with_a_resume_hint_and_resume_misses_and_repeats_no_id(server, tmp_path, monkeypatch, capsys):
    proc, target = server
    seen: list[tuple[int, np.ndarray]] = []  # (epoch, ids) of every mini-batch trained
    stop_at = {"epoch": 1}

    class Recording(SampleStream):
        def __iter__(self):
            for batch in super().__iter__():
                seen.append((self.epoch, batch.ids.numpy().copy()))
                if stop_at and self.epoch == stop_at["epoch"]:  # the first batch of epoch 2: hang the server
                    stop_at.clear()
                    proc.send_signal(signal.SIGSTOP)
                yield batch

    monkeypatch.setattr(trainer.loop, "SampleStream", Recording)
    try:
        t0 = time.monotonic()
        rc = main(_argv(target, tmp_path))
        took = time.monotonic() - t0
    finally:
        proc.send_signal(signal.SIGCONT)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "retry 1/2" in err and "retry 2/2" in err  # it did retry, within the bound
    assert "failed 3 times in a row (last: DEADLINE_EXCEEDED" in err and "stream_idle_timeout" in err
    assert "gave up after --storage-retries 2" in err
    assert "run the same command with --resume" in err and str(tmp_path / "checkpoint.pt") in err
    assert took < 60
    done_before = sum(len(ids) for _, ids in seen)
    assert N < done_before < 3 * N  # it stopped in the middle of the run

    rc = main(_argv(target, tmp_path, "--resume"))
    assert rc == 0, capsys.readouterr().err
    for epoch in range(3):
        ids = np.concatenate([ids for e, ids in seen if e == epoch])
        assert np.array_equal(np.sort(ids), np.arange(N)), f"epoch {epoch}: ids lost or repeated"
    assert sum(len(ids) for _, ids in seen) == 3 * N


def test_selection_retries_within_the_bound_then_gives_up(server):
    proc, target = server
    with StorageClient(target, timeout=0.3, retries=0) as c:
        c.get_dataset("a")  # connected
        calls = []

        def select():
            calls.append(time.monotonic())
            return c.select("a", "random", 0.1, seed=len(calls))

        proc.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(StorageGaveUp, match=r"selection x failed 3 times in a row \(last: DEADLINE_EXCEEDED") as err:
                retrying(select, RetryPolicy(retries=2, backoff=0.05), "selection x")
        finally:
            proc.send_signal(signal.SIGCONT)
        assert len(calls) == 3 and err.value.error.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert calls[2] - calls[1] >= 0.3 + 0.1  # the call's timeout, then the doubled back-off
        # a server that answers: the retried call succeeds
        assert retrying(lambda: c.select("a", "random", 0.1), RetryPolicy(retries=2, backoff=0.05), "s").num_selected > 0
        # an error no retry can fix is raised at once, as it is
        calls.clear()
        with pytest.raises(StorageError) as bad:
            retrying(lambda: calls.append(1) or c.select("a", "random", 1.5), RetryPolicy(retries=2, backoff=0.05), "s")
        assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT and not isinstance(bad.value, StorageGaveUp)
        assert len(calls) == 1


@pytest.mark.parametrize("change, message", [
    (dict(storage_retries=-1), "--storage-retries: must be an integer >= 0"),
    (dict(storage_retries=1.5), "--storage-retries: must be an integer >= 0"),
    (dict(retry_backoff=-0.1), "--retry-backoff"),
    (dict(retry_backoff=float("inf")), "--retry-backoff"),
    (dict(stream_idle_timeout=0), "--stream-idle-timeout"),
    (dict(stream_idle_timeout=float("nan")), "--stream-idle-timeout"),
])
def test_fault_options_are_checked_at_construction(change, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(servers="127.0.0.1:1", dataset="a", **change)
