"""The RTL build cache is keyed by everything a build depends on (issue #19: a second checkout
reused a cached Verilator build that pointed into another virtual environment)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from sim.rtl_runner import REPO_ROOT, Simulator, build_key, rtl_sources, simulator_available, toolchain


def _key(tools=None, sources=None, **over):
    args = dict(toplevel="fl_lane", parameters={"SIM_W": 16}, waves=False, build_args=[])
    args.update(over)
    return build_key(args.pop("toplevel"), args.pop("parameters"), tools=tools or toolchain(Simulator.ICARUS),
                     sources=sources if sources is not None else rtl_sources(), **args)


def test_toolchain_names_simulator_cocotb_and_python():
    tools = toolchain(Simulator.ICARUS)
    assert tools["python"] == sys.executable
    import cocotb
    assert tools["cocotb"] == str(Path(cocotb.__file__).resolve().parent)
    assert tools["cocotb_version"] == cocotb.__version__
    if simulator_available(Simulator.ICARUS):
        assert "Icarus Verilog" in tools["simulator_version"]
        assert Path(tools["simulator_exe"]).name == "iverilog"


def test_key_is_stable_and_changes_with_each_input(tmp_path):
    base = _key()
    assert base == _key()
    assert _key(parameters={"SIM_W": 8}) != base
    assert _key(toplevel="fl_add_tree") != base
    assert _key(waves=True) != base
    assert _key(build_args=["-Wno-fatal"]) != base
    tools = toolchain(Simulator.ICARUS)
    for name, value in [("cocotb", "/other/venv/lib/site-packages/cocotb"), ("cocotb_version", "2.0.0"),
                        ("python", "/other/venv/bin/python"), ("simulator_version", "Icarus Verilog 12.0"),
                        ("simulator_exe", "/opt/iverilog/bin/iverilog")]:
        assert _key(tools={**tools, name: value}) != base, name
    # a changed source (same names, one byte different) and a checkout elsewhere both rebuild
    copies = []
    for src in rtl_sources():
        dst = tmp_path / "rtl" / src.name
        dst.parent.mkdir(exist_ok=True)
        shutil.copy2(src, dst)
        copies.append(dst)
    moved = _key(sources=copies)
    assert moved != base
    copies[0].write_text(copies[0].read_text() + "\n// edited\n")
    assert _key(sources=copies) != moved


def test_second_virtual_environment_gets_its_own_build(tmp_path):
    """A real second venv on the same machine (same packages reached through PYTHONPATH) keys apart."""
    venv = tmp_path / "venv2"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    code = ("import json; from sim.rtl_runner import Simulator, build_key, rtl_sources, toolchain; "
            "t = toolchain(Simulator.ICARUS); "
            "print(json.dumps([t['python'], build_key('fl_lane', {'SIM_W': 16}, waves=False, build_args=[], "
            "tools=t, sources=rtl_sources())]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), sysconfig.get_paths()["purelib"]])}
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True)
    other_python, other_key = json.loads(out.stdout)
    assert other_python == str(py)
    assert other_key != _key()
