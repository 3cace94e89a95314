"""cocotb bench of fl_arg_check (combinational): every status bit 0-6 and the part descriptor
check against a Python statement of the contract (fl_engine.v's header), on edge values and
random 32/64-bit registers, with and without parts."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import Timer

from sim.tb.common import params

M32 = 0xFFFFFFFF


def _want(a: dict, lanes: int, n_max: int) -> tuple[int, int]:
    parts = a["parts"] != 0
    n, k, ld, mode, ss = a["n"], a["k"], a["ld"], a["mode"], a["ss"]
    bits = [not parts and (n == 0 or n > n_max),
            not parts and (k == 0 or k > n),
            (not parts and ld < n) or ld % lanes != 0 or ld >= 1 << 24 or ld == 0,
            a["sim"] % (2 * lanes) != 0 or (parts and a["pp"] % 16 != 0),
            any(a[p] % 4 for p in ("ids", "gains", "weights", "stats")),
            mode > 2,
            not parts and mode == 1 and ss == 0]
    dn, dk, dss = a["desc"][0], a["desc"][1], a["desc"][3]
    bad = dn == 0 or dn > n_max or dn > ld or dk == 0 or dk > dn or (mode == 1 and dss == 0)
    return sum(int(b) << i for i, b in enumerate(bits)), int(bad)


def _random(rng: random.Random, lanes: int, n_max: int) -> dict:
    def v32(edge):
        return rng.choice(edge + [rng.randrange(1 << 32), rng.randrange(n_max + 2)])

    def ptr():
        return rng.choice([0, 4, 2, 1, 2 * lanes, 2 * lanes + 2, 16, 0x1_0000_0000, rng.randrange(1 << 64)])
    n = v32([0, 1, n_max, n_max + 1, M32])
    edges = [0, 1, n, n + 1, max(n - 1, 0), lanes, n_max, M32]
    return {"n": n, "k": v32(edges) & M32, "ld": v32([x & M32 for x in [0, lanes, 2 * lanes, n, (1 << 24) - lanes,
                                                                      1 << 24, n_max, n_max + 1]]),
            "sim": ptr(), "ids": ptr(), "gains": ptr(), "weights": ptr(), "stats": ptr(),
            "mode": v32([0, 1, 2, 3, M32]), "ss": v32([0, 1, M32]), "parts": v32([0, 0, 1, 5]), "pp": ptr(),
            "desc": [v32([0, 1, n_max, n_max + 1]), v32([0, 1, 2, M32]), rng.randrange(1 << 32), v32([0, 1, 47])]}


@cocotb.test()
async def test_checks(dut):
    p = params()
    lanes, n_max = int(p["LANES"]), int(p["N_MAX"])
    rng = random.Random(lanes * 1000 + n_max)
    seen = set()
    for i in range(3000):
        a = _random(rng, lanes, n_max)
        if i % 7 == 0:  # a descriptor that fits this ld, so d_bad's other clauses decide
            a["desc"][0] = rng.randint(1, max(1, min(n_max, a["ld"])))
        for name, sig in (("n", "n_arg"), ("k", "k_arg"), ("ld", "ld_arg"), ("sim", "sim_ptr"), ("ids", "ids_ptr"),
                          ("gains", "gains_ptr"), ("weights", "weights_ptr"), ("stats", "stats_ptr"),
                          ("mode", "mode_arg"), ("ss", "ssize_arg"), ("parts", "parts_arg"), ("pp", "parts_ptr")):
            getattr(dut, sig).value = a[name]
        d = a["desc"]
        dut.desc.value = d[0] | d[1] << 32 | d[2] << 64 | d[3] << 96
        await Timer(1, unit="ns")
        err, bad = _want(a, lanes, n_max)
        assert int(dut.arg_err.value) == err, f"{a}: arg_err {int(dut.arg_err.value):#x} != {err:#x}"
        assert int(dut.d_bad.value) == bad, f"{a}: d_bad {int(dut.d_bad.value)} != {bad}"
        assert [int(dut.d_n.value), int(dut.d_k.value), int(dut.d_seed.value), int(dut.d_ss.value)] == d
        seen |= {b for b in range(7) if err >> b & 1} | ({7} if bad else set()) | ({8} if err == 0 else set())
    assert seen == set(range(9)), f"not every outcome was exercised: {sorted(seen)}"
