"""The C++ model of the RTL kernel (fpga_kernels/rtl/cmodel/nessa_fl_rtl.cpp): bit-exact with the
golden model on the same classes the cocotb benches use (and larger ones), the RTL's status
word and cycle count (the schedule model the RTL matches in simulation), and callable through
the emulator's pyxrt-compatible API like any kernel."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from fpga_kernels.rtl.regmap import decode_status, pack_rows
from fpga_kernels.rtl.schedule import run_cycles
from host.golden.greedy import greedy_fixed
from sim.rtl_runner import RTL_DIR
from sim.tb.vectors import KINDS, make_class, random_cases

LANES, N_MAX = 32, 8192  # the shipping build the model defaults to

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is part of the build environment")


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = tmp_path_factory.mktemp("cmodel") / "libfl.so"
    subprocess.run(["g++", "-O2", "-std=c++17", "-Wall", "-Werror", "-Wno-unused-label", "-fPIC", "-shared",
                    "-o", str(so), str(RTL_DIR / "cmodel" / "nessa_fl_rtl.cpp")], check=True)
    dll = ctypes.CDLL(str(so))
    dll.nessa_fl_rtl.restype = None
    dll.nessa_fl_rtl.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
                                 ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    return dll


def _aligned(nbytes: int, align: int = 4096) -> np.ndarray:
    raw = np.zeros(nbytes + align, dtype=np.uint8)
    off = (-raw.ctypes.data) % align
    return raw[off:off + nbytes]


def _call(lib, sim: np.ndarray, k: int, ld: int | None = None, n: int | None = None):
    rows, ld0 = pack_rows(sim, LANES)
    ld = ld0 if ld is None else ld
    buf = _aligned(max(rows.nbytes, 2))
    buf[:rows.nbytes] = rows.view(np.uint8).ravel()
    kk = max(k, 1)
    ids, weights = np.full(kk, 0xFFFFFFFF, np.uint32), np.full(kk, 0xFFFFFFFF, np.uint32)
    gains, stats = np.full(kk, 2**64 - 1, np.uint64), np.full(2, 2**64 - 1, np.uint64)
    lib.nessa_fl_rtl(buf.ctypes.data, sim.shape[0] if n is None else n, k, ld, ids.ctypes.data, gains.ctypes.data,
                     weights.ctypes.data, stats.ctypes.data)
    return ids, gains, weights, stats, buf.ctypes.data, ld


@pytest.mark.parametrize("seed", [7, 21, 3])
def test_same_vectors_as_the_benches(lib, seed):
    for kind, sim, k in random_cases(seed, 64, 12):
        ids, gains, weights, stats, addr, ld = _call(lib, sim, k)
        gold = greedy_fixed(sim, k)
        assert stats[0] == 0, decode_status(int(stats[0]))
        assert np.array_equal(ids, gold.ids) and np.array_equal(gains, gold.gains)
        assert np.array_equal(weights, gold.weights)
        assert int(stats[1]) == run_cycles(addr, sim.shape[0], k, ld, gold.ids, LANES, 64)


@pytest.mark.parametrize("kind", KINDS)
def test_larger_classes(lib, kind):
    rng = np.random.default_rng(len(kind))
    n = 333
    sim = make_class(kind, n, rng, d=64)
    k = 34
    ids, gains, weights, stats, addr, ld = _call(lib, sim, k)
    gold = greedy_fixed(sim, k)
    assert stats[0] == 0 and np.array_equal(ids, gold.ids) and np.array_equal(gains, gold.gains)
    assert np.array_equal(weights, gold.weights) and weights.sum() == n
    assert int(stats[1]) == run_cycles(addr, n, k, ld, gold.ids, LANES, 64)


def test_refused_arguments_write_only_stats(lib):
    sim = make_class("uniform", 8, np.random.default_rng(0))
    for kw, bit in [(dict(k=0), 1), (dict(k=9), 1), (dict(k=2, n=0), 0), (dict(k=2, n=N_MAX + 1), 0),
                    (dict(k=2, ld=8), 2), (dict(k=2, ld=-32), 2)]:
        ids, gains, weights, stats, _, _ = _call(lib, sim, **kw)
        assert stats[0] >> bit & 1, (kw, stats[0])
        assert stats[1] == 3 and ids[0] == 0xFFFFFFFF and weights[0] == 0xFFFFFFFF


def test_through_the_emulator():
    """device -> xclbin -> kernel -> bos -> sync -> run -> wait -> check, as host code does."""
    emu = pytest.importorskip("host.device.emu")
    d = emu.device(0)
    xb = emu.xclbin(emu.default_xclbin())
    if "nessa_fl_rtl" not in [kn.get_name() for kn in xb.get_kernels()]:
        pytest.fail("the emulator library lacks nessa_fl_rtl (Makefile must compile rtl/cmodel/*.cpp)")
    uid = d.load_xclbin(xb)
    kern = emu.kernel(d, uid, "nessa_fl_rtl", emu.kernel.shared)
    sim = make_class("features", 150, np.random.default_rng(5))
    k = 15
    rows, ld = pack_rows(sim)
    bos = [emu.bo(d, nbytes, emu.bo.normal, kern.group_id(g))
           for g, nbytes in [(0, rows.nbytes), (4, 4 * k), (5, 8 * k), (6, 4 * k), (7, 16)]]
    bos[0].write(rows.view(np.uint8).ravel(), 0)
    bos[0].sync(emu.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE)
    run = kern(bos[0], 150, k, ld, bos[1], bos[2], bos[3], bos[4])
    assert run.wait() == emu.ert_cmd_state.ERT_CMD_STATE_COMPLETED
    out = []
    for b, dt in zip(bos[1:], ["<u4", "<u8", "<u4", "<u8"]):
        b.sync(emu.xclBOSyncDirection.XCL_BO_SYNC_BO_FROM_DEVICE)
        out.append(np.frombuffer(b.read(b.size(), 0).tobytes(), dtype=dt))
    gold = greedy_fixed(sim, k)
    assert out[3][0] == 0
    assert np.array_equal(out[0], gold.ids) and np.array_equal(out[1], gold.gains)
    assert np.array_equal(out[2], gold.weights)
