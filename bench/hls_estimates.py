"""Resource and II estimates of the HLS kernels as written, against the SmartSSD's dynamic region.

Nothing here is a synthesis result (no Vitis in this environment): every figure is derived from
the kernel parameters (the ``#define`` s of ``fpga_kernels/include/nessa_pe.h`` and the kernel
sources, read at run time) with the per-unit costs below, so a changed parameter changes the
table. A ``v++ -c`` csynth report replaces these numbers once a Vitis install runs the build.

Per-unit costs (UltraScale+, UG574 / UG573 / UG579):

* DSP48E2: a 27 x 18 signed multiplier; a 17 x 17 square or an int8 x int8 MAC is one DSP, a
  32 x 32 product four (2 x 2 tiles). Multipliers bound to fabric (``BIND_OP impl=fabric``) cost
  ``a * b / 2`` LUTs instead.
* A w-bit adder / subtractor / comparator: w LUTs (carry chain); an N:1 multiplexer: N / 4 LUTs
  per bit (LUT6 + F7/F8 muxes); a w-bit array divider: w * w LUTs; a dynamic w-bit shift by up to
  s positions: w * ceil(log2 s) / 2 LUTs.
* BRAM36: 36 Kbit as 512 x 72 ... 32K x 1 (an array maps to ceil(width / port width) x
  ceil(depth / port depth) blocks at the best aspect ratio); BRAM18 is half. URAM: 4K x 72.
* An ``m_axi`` adapter: 512-bit with 64-beat bursts = 8 BRAM36 per direction (the burst buffer)
  and ~3,000 LUTs; a narrow one 1 BRAM36 and ~1,500 LUTs (Vitis' adapter, typical reports).
* Control, FSMs, loop counters: 15 % on top of the datapath LUTs.

Budget: the dynamic region of ``xilinx_u2_gen3x4_xdma_gc_2_202110_1``. No authoritative figure
was found (the platform's ``platforminfo`` resource report is not public; UG1702 shows the report
format for other platforms). Assumed: 1,344 DSPs (a public SmartSSD project that built on this
shell reports the dynamic region's DSP pblock at 1,344 placeable DSPs) and, for the rest, the same
share (68 %) of the XCKU15P (DS890: 522,720 LUTs, 984 BRAM36, 128 URAM, 1,968 DSPs). Design
target: at most 80 % of that budget (routability; UG949).

``python bench/hls_estimates.py [--write]`` prints the table (``--write`` puts it into
BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "fpga_kernels"

#: XCKU15P (DS890).
DEVICE = {"LUT": 522_720, "BRAM36": 984, "URAM": 128, "DSP": 1_968}
#: Share of the device assumed to be the dynamic region (1,344 / 1,968 DSPs; see the docstring).
DYNAMIC_SHARE = 1344 / 1968
#: Design target as a share of the budget.
TARGET = 0.80
#: The RTL engine as Yosys maps its shipped build (fpga_kernels/rtl/README.md, bench/synth.py).
RTL_ENGINE = {"LUT": 6_600, "BRAM36": 15, "URAM": 0, "DSP": 11}


def budget() -> dict[str, int]:
    return {k: int(v * DYNAMIC_SHARE) if k != "DSP" else 1344 for k, v in DEVICE.items()}


def _defines(path: Path) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^#define (\w+) \(?(\d+)", path.read_text(), re.M)}


def params() -> dict[str, int]:
    p = _defines(KERNELS / "include" / "nessa_pe.h")
    p.update(_defines(KERNELS / "hls" / "nessa_greedy.cpp"))
    f = _defines(KERNELS / "hls" / "nessa_features.cpp")
    p.update({k: v for k, v in f.items() if k.startswith("NF_")})
    return p


# ---- unit costs -------------------------------------------------------------------------
def bram36(width: int, depth: int) -> float:
    """Blocks for a width x depth array at the best BRAM36 aspect ratio (BRAM18 = 0.5)."""
    best = math.inf
    for pw, pd in ((72, 512), (36, 1024), (18, 2048), (9, 4096), (4, 8192), (2, 16384), (1, 32768)):
        best = min(best, math.ceil(width / pw) * math.ceil(depth / pd))
    half = min(math.ceil(width / pw) * math.ceil(depth / (pd // 2)) for pw, pd in
               ((36, 1024), (18, 2048), (9, 4096), (4, 8192), (2, 16384), (1, 32768)))  # BRAM18 shapes
    return min(best, half * 0.5)


def uram(width: int, depth: int) -> int:
    return math.ceil(width / 72) * math.ceil(depth / 4096)


def mux(n: int, bits: int) -> int:
    return math.ceil(n / 4) * bits


@dataclass
class Part:
    name: str
    dsp: float = 0
    bram: float = 0
    uram: float = 0
    lut: float = 0
    ii: str = ""
    how: str = ""


def greedy_parts(p: dict[str, int]) -> list[Part]:
    blk, dvec, beat, nmax, dmax = (p["NESSA_GREEDY_BLK"], p["NESSA_GREEDY_DVEC"], p["NESSA_GREEDY_WBEAT"],
                                   p["NESSA_GREEDY_NMAX"], p["NESSA_GREEDY_MAX_DIM"])
    lanes = blk * dvec
    sqrt_lut = beat * 16 * (33 + 16)  # 16 compare-subtract stages of <= 33 bits + the root mux
    return [
        Part("distance lanes [DIST_COLS]", dsp=lanes, lut=blk * ((dvec - 1) * 34 + 45),
             ii="1", how=f"{blk} rows x {dvec} cols = {lanes} 17x17 squares (1 DSP each); adder tree + 45-bit accumulators"),
        Part("isqrt units [SQRT_LANES]", lut=sqrt_lut, ii="1",
             how=f"{beat} digit-by-digit units, 16 stages of a 33-bit compare-subtract, no multiplier"),
        Part("feature gearbox [READ_BEATS]", bram=8, lut=mux(40, 16) * dvec + 3000, ii="1",
             how=f"{dvec} lanes x 40:1 mux of 16 bits over two 512-bit words; m_axi gmem read buffer"),
        Part("sim write [WRITE_BEATS]", bram=8, ii="1", how="one aligned 512-bit beat per cycle; m_axi gmem write buffer"),
        Part("block on chip (blk)", bram=blk * bram36(16 * dvec, dmax // dvec),
             how=f"{blk} x {dmax} int16, dim 1 complete, dim 2 reshaped by {dvec}: {blk} arrays of {dmax // dvec} x {16 * dvec} bit"),
        Part("gain / cover / assign lanes [GAIN_ROW]", lut=beat * (17 + 17 + 20) + (beat - 1) * 24, ii="1",
             how=f"{beat} lanes: max(0, s - c), cover max, best/arg compare; adder tree of {beat}"),
        Part("cover, best (uint16, cyclic 32)", bram=2 * beat * bram36(16, nmax // beat),
             how=f"2 x {beat} banks of {nmax // beat} x 16 bit"),
        Part("arg (uint16, cyclic 32)", bram=beat * bram36(16, nmax // beat), how=f"{beat} banks of {nmax // beat} x 16 bit"),
        Part("fresh, count (uint16), selected (bool)", bram=2 * bram36(16, nmax) + bram36(1, nmax),
             ii="COUNT: 3 (read-modify-write)", how=f"{nmax} deep each"),
        Part("ub, pool (URAM)", uram=uram(64, nmax) + uram(32, nmax),
             ii="LAZY_SCAN 1; SAMPLE ~4", how=f"{nmax} x 64 and {nmax} x 32 bit"),
        Part("streams fs / ds / ts", lut=(16 * 128 + 4 * 1024 + 4 * 512) // 32, how="SRL FIFOs: 16 x 128, 4 x 1024, 4 x 512 bit"),
        Part("outputs (m_axi gmem1, 32/64-bit)", bram=1, lut=1500, how="ids, weights, gains, stats"),
        Part("isqrt64 (phase 0, once per class)", lut=32 * 65, how="32 stages of a 65-bit compare-subtract, not replicated"),
    ]


def features_parts(p: dict[str, int]) -> list[Part]:
    oc, px, banks, wt, wl, lin = (p["NF_TILE_OC"], p["NF_TILE_PX"], p["NF_XBANKS"], p["NF_WT_TAPS"],
                                  p["NF_WLOAD_BYTES"], p["NF_LIN_LANES"])
    slots, elems = p["NF_MAX_SLOTS"], p["NF_MAX_SLOT_ELEMS"]
    return [
        Part("conv PE array [CONV_TAPS]", dsp=oc * px, lut=px * mux(banks + 2 * (px - 1), 16), ii="1 (stride <= 4)",
             how=f"{oc} x {px} int8 x int16 MACs (1 DSP each, no WP486 packing claimed); window = two 1024-bit slot "
                 f"words (both BRAM ports) + a {px}-lane shifter"),
        Part("requant [REQUANT_TILE]", lut=px * (32 * 32 // 2 + 64 * 6 // 2 + 16) + 2 * banks * mux(px + 1, 16),
             ii="2 (read-modify-write of two words)",
             how=f"{px} lanes x int32*int32 in fabric (BIND_OP) + 64-bit rounding shift; {px} lanes merged into 128"),
        Part("linear lanes [LIN_CIN]", lut=lin * (8 * 16 // 2) + (lin - 1) * 24, ii="1",
             how=f"{lin} int8 x int16 products in fabric (BIND_OP) + adder tree"),
        Part("residual add [ADD_ELEMS]", lut=px * (2 * 16 * 32 // 2 + 64 * 6 // 2) + 3 * px * mux(banks // px, 16), ii="1",
             how=f"{px} lanes x 2 int16*int32 products in fabric + rounding shift; one word of a, b, y per beat"),
        Part("pools / GAP", lut=px * (32 * 32 + 32) + 32 * 32 + lin * 20 + lin * mux(banks, 16) + 2 * banks * mux(px + 1, 16),
             ii="1 per tap; POOL_STORE / GAP_E 1",
             how=f"{px} 32-bit dividers (div_round32) + one for GAP; {lin}-lane GAP adder tree and 128:64 shifter"),
        Part("softmax", dsp=3, lut=64 * 64 + 2000, ii="SM_DIV: one 64-bit divide per class",
             how="exp2 LUT (257 x 17 bit ROM), one 64-bit divider"),
        Part("activation slots", bram=slots * bram36(16 * banks, elems // banks),
             how=f"{slots} x {elems} int16 reshaped cyclic {banks}: {slots} arrays of {elems // banks} x {16 * banks} bit"),
        Part("program buffer (pbuf)", bram=bram36(32, p["NF_PROG_MAX"]), how=f"{p['NF_PROG_MAX']} x 32 bit"),
        Part("weight store (wbuf, URAM)", uram=uram(512, p["NF_WEIGHTS_MAX"] // 64), bram=8, lut=3000, ii="LOAD_WEIGHTS 1",
             how=f"{p['NF_WEIGHTS_MAX'] / 2**20:g} MiB as 512-bit words; m_axi gmem 512-bit read buffer"),
        Part("weight tile (wtile)", bram=oc * bram36(8 * wl, wt // wl),
             how=f"{oc} rows (complete) x {wt} int8 reshaped by {wl}: {oc} arrays of {wt // wl} x {8 * wl} bit"),
        Part("logits, exp (1024 x 32 / 64 bit)", bram=bram36(32, 1024) + bram36(64, 1024)),
        Part("streams + narrow m_axi (gmem1)", bram=1, lut=1500 + (64 * 16 * 2) // 32, how="pixels / outputs 64 x 16 bit SRL FIFOs"),
    ]


def _total(parts: list[Part]) -> dict[str, float]:
    lut = sum(x.lut for x in parts)
    return {"DSP": sum(x.dsp for x in parts), "BRAM36": sum(x.bram for x in parts), "URAM": sum(x.uram for x in parts),
            "LUT": lut * 1.15}


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v == int(v) or v >= 10 else f"{v:,.1f}"


def table() -> str:
    p = params()
    kernels = {"nessa_greedy": greedy_parts(p), "nessa_features": features_parts(p)}
    rows = ["| kernel | part | DSP | BRAM36 | URAM | LUT | II | derived from |", "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |"]
    totals = {}
    for k, parts in kernels.items():
        for x in parts:
            rows.append(f"| {k} | {x.name} | {_fmt(x.dsp)} | {_fmt(x.bram)} | {_fmt(x.uram)} | {_fmt(x.lut)} | {x.ii} | {x.how} |")
        t = _total(parts)
        totals[k] = t
        rows.append(f"| **{k}** | **total** (LUT + 15 % control) | **{_fmt(t['DSP'])}** | **{_fmt(t['BRAM36'])}** | "
                    f"**{_fmt(t['URAM'])}** | **{_fmt(t['LUT'])}** | | |")
    totals["nessa_fl_rtl"] = {k: float(v) for k, v in RTL_ENGINE.items()}
    b = budget()
    all_ = {r: sum(t[r] for t in totals.values()) for r in ("DSP", "BRAM36", "URAM", "LUT")}
    rows += ["", "| | DSP | BRAM36 | URAM | LUT |", "| --- | ---: | ---: | ---: | ---: |"]
    for k, t in totals.items():
        rows.append(f"| {k} | {_fmt(t['DSP'])} | {_fmt(t['BRAM36'])} | {_fmt(t['URAM'])} | {_fmt(t['LUT'])} |")
    rows.append(f"| **all three kernels** | **{_fmt(all_['DSP'])}** | **{_fmt(all_['BRAM36'])}** | **{_fmt(all_['URAM'])}** | "
                f"**{_fmt(all_['LUT'])}** |")
    rows.append(f"| budget: dynamic region (assumed) | {b['DSP']:,} | {b['BRAM36']:,} | {b['URAM']:,} | {b['LUT']:,} |")
    rows.append("| share of the budget | " + " | ".join(f"{100 * all_[r] / b[r]:.0f} %" for r in ("DSP", "BRAM36", "URAM", "LUT"))
                + " |")
    rows.append(f"| design target ({int(TARGET * 100)} % of the budget) | " +
                " | ".join(("within" if all_[r] <= TARGET * b[r] else "**over**") for r in ("DSP", "BRAM36", "URAM", "LUT")) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="put the table into BENCHMARKS.md")
    args = ap.parse_args(argv)
    t = table()
    print(t)
    if args.write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _markdown import replace_section

        heading = "## HLS kernels: resource and II estimates (unsynthesised)"
        text = (f"{heading}\n\n`python bench/hls_estimates.py --write` -- derived from the kernel parameters "
                "(`include/nessa_pe.h`, the kernels' `#define`s) with the per-unit costs in the script's docstring; "
                "not a csynth report (no Vitis here). Budget: the SmartSSD shell's dynamic region, **assumed** -- no "
                "authoritative figure for `xilinx_u2_gen3x4_xdma_gc_2_202110_1` was found; 1,344 DSPs is what a public "
                "SmartSSD project reports as the dynamic region's placeable DSPs, and the same 68 % share of the "
                "XCKU15P is assumed for LUTs, BRAM and URAM (fpga_kernels/README.md). The RTL engine's row is Yosys' "
                "mapping of its shipped build (bench/synth.py).\n\n" + t + "\n")
        replace_section(ROOT / "BENCHMARKS.md", heading, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
