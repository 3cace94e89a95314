"""README's test command on a machine that lacks the system tools: one clear message, not a hundred failures."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def test_missing_tools_stop_the_suite_with_one_message_naming_each(tmp_path):
    bare = tmp_path / "bin"  # a PATH holding nothing but this interpreter
    bare.mkdir()
    env = {**os.environ, "PATH": str(bare)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/cli/test_dispatch.py"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 4, out
    for name in ("iverilog", "g++", "make", "openssl", "bash .ci/run"):
        assert name in out
    assert "passed" not in out and "failed" not in out
