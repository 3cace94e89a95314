"""The ``nessa`` entry point: every sub-command is registered and ``--help`` stays light."""

from __future__ import annotations

import subprocess
import sys

from nessa import cli

EXPECTED = {"ingest", "info", "verify", "select", "serve", "train", "demo", "simulate"}


def test_every_command_module_imports_and_registers():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert EXPECTED <= set(sub.choices)
    for name in cli._COMMAND_MODULES:  # none may be silently skipped in a full checkout
        __import__(name)


def test_help_does_not_import_torch_or_grpc():
    code = "import sys; from nessa.cli import build_parser; build_parser(); print('torch' in sys.modules, 'grpc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_no_command_is_an_error():
    proc = subprocess.run([sys.executable, "-m", "nessa"], capture_output=True, text=True)
    assert proc.returncode == 2 and "required" in proc.stderr
