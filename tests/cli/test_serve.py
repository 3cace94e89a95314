"""``nessa serve``: starts, serves, stops cleanly on SIGTERM; bad options exit 2 with a message."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys

import pytest

from tests.service.helpers import make_root
from nessa.cli import main
from storage_service.client import StorageClient

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_serve_runs_and_stops_on_sigterm(tmp_path):
    root = make_root(tmp_path / "root")
    (tmp_path / "tok").write_text("t0ken\n")
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nessa", "serve", str(root), "--port", "0", "--token-file", str(tmp_path / "tok")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        line = proc.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+) \(plaintext, token\), data plane on port (\d+), 2 data set\(s\): a, img/b", line)
        assert m, line + proc.stderr.read() if proc.poll() is not None else line
        with StorageClient(f"127.0.0.1:{m.group(1)}", token="t0ken") as c:
            assert c.get_dataset("img/b").num_samples == 90
            assert c.server_info()[0] == int(m.group(2)) and c._data_plane_channel() is not None
            assert sum(b.count for b in c.stream_samples("img/b")) == 90
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0  # generous: a loaded 2-core CI host once took > 30 s
        assert "shutting down" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--tls-cert", "c.pem"], "go together"),
        (["--token-file", "/nonexistent/tok"], "cannot read token file"),
        (["--backend", "gpu"], None),
        (["--port", "70000"], None),
        (["--data-port", "-1"], None),
        (["--max-model-mb", "0"], "must be positive"),
        (["--max-model-mb", "nan"], "must be positive"),
        (["--grace", "-1"], "--grace must be >= 0"),
        (["--grace", "nan"], "--grace must be >= 0"),
    ],
)
def test_bad_options(tmp_path, capsys, extra, message):
    make_root(tmp_path)
    with pytest.raises(SystemExit) if message is None else contextlib.nullcontext():
        assert main(["serve", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    if message:
        assert message in err


def test_missing_root(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "absent")]) == 2
    assert "not a directory" in capsys.readouterr().err



@pytest.mark.parametrize(
    "option, message",
    [("--port", "cannot bind 127.0.0.1:{port} (port in use"), ("--data-port", "cannot bind the data plane on 127.0.0.1:{port}")],
)
def test_port_in_use(tmp_path, capsys, option, message):
    import socket

    make_root(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", str(tmp_path), "--port", "0", option, str(port)]) == 2
    assert message.format(port=port) in capsys.readouterr().err


def test_xrt_backend_without_xrt_fails_at_start(tmp_path, capsys, monkeypatch):
    import host.device.loader as loader

    def no_xrt():
        raise RuntimeError("pyxrt is not importable (install XRT)")

    monkeypatch.setattr(loader, "import_pyxrt", no_xrt)  # as on any host without XRT, even one that has it
    make_root(tmp_path)
    assert main(["serve", str(tmp_path), "--port", "0", "--backend", "xrt"]) == 2
    assert "--backend xrt: pyxrt is not importable" in capsys.readouterr().err
