"""The public façade and the entry points: ``import nessa`` is light, names resolve, every
sub-command is listed by both ``nessa --help`` and ``python -m nessa --help``."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

import nessa

COMMANDS = ("ingest", "info", "verify", "serve", "select", "export", "train", "demo", "simulate")


def test_import_is_light_and_names_resolve():
    code = ("import sys, nessa; assert 'torch' not in sys.modules and 'grpc' not in sys.modules; "
            "nessa.select, nessa.Store, nessa.StorageClient, nessa.train, nessa.gradient_features, nessa.ingest, "
            "nessa.serve, nessa.TrainConfig; print('ok')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "ok"


def test_facade_is_the_libraries_own_objects():
    import host.selection
    import storage_service.client
    import storage_service.server
    import storage_service.store
    import trainer.loop

    assert nessa.select is host.selection.select and nessa.Store is storage_service.store.Store
    assert nessa.StorageClient is storage_service.client.StorageClient and nessa.train is trainer.loop.train
    assert nessa.serve is storage_service.server.create_server
    assert set(nessa.__all__) <= set(dir(nessa))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nessa.nope  # noqa: B018


@pytest.mark.parametrize("argv", [["-m", "nessa"], ["console"]], ids=["python -m nessa", "nessa"])
def test_help_lists_every_command(argv):
    if argv == ["console"]:
        exe = shutil.which("nessa", path=str(__import__("pathlib").Path(sys.executable).parent))
        assert exe, "the nessa console script is not installed beside this python"
        cmd = [exe, "--help"]
    else:
        cmd = [sys.executable, *argv, "--help"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for name in COMMANDS:
        assert f"    {name} " in out or f"    {name}\n" in out, f"{name} missing from {' '.join(cmd)}"
