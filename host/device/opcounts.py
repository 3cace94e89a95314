"""Per-class operation counts of the NeSSA kernels, for the system model (issue 8) to turn into cycles.

Counts follow the kernel loop nests in ``fpga_kernels/hls`` one to one (names in brackets are
the loop labels), so ``cycles ~= count / lanes`` for a loop pipelined at II = 1 with that many
parallel lanes. Byte counts are DDR traffic over the single ``gmem`` bundle.

``greedy_op_counts(n, d, k, evaluations=None, maxd_from_data=False)``
    ``distance_macs``: n*n*d (phase 1 [DIST_COLS x DIST_LANES]; x2 with ``maxd_from_data``, the
    extra [MAXD_BLOCKS] pass); ``isqrt``: n*n ([DIST_SIM], 32 steps each);
    ``gain_evals``: exact gain evaluations *after* step 0 (step 0's gains are the row sums of
    phase 1); pass the kernel's reported count (``GreedyRun.evaluations - n``), else the naive
    worst case (k-1)*(n-1) is assumed; ``gain_ops``: gain_evals*n ([GAIN_ROW]);
    ``scan_ops``: lazy argmax scans ([LAZY_SCAN], n per scan, one scan per evaluation and per
    pick); ``cover_ops``: k*n ([COVER_UPDATE]); ``assign_ops``: k*n ([ASSIGN_COLS]);
    bytes: features read (n/BLK + 1 passes of n*d*2), similarity rows written (2n^2) and read
    (2n per row).
``features_op_counts(model, n)``
    ``macs`` per layer and in total ([CONV_TAPS] / [LIN_CIN]), pooling / add element ops,
    softmax exps, and bytes: weights + program once, samples, labels, features and embedding.

Cycle estimates of the kernels *as now written* (``fpga_kernels/include/nessa_pe.h`` documents
the PE arrays; the constants below mirror it and ``tests/device/test_opcounts_cycles.py`` checks that
they agree): each pipelined loop costs ``ceil(trip count / lanes) * II`` plus its pipeline
depth where it restarts, loops run one after another as the code does (no overlap is assumed
between the weight-tile load, the taps and the requantisation). Unsynthesised: these are the
design's II = 1 targets, not csynth figures.

* ``features_op_counts(...)["cycles_per_sample"]`` / ``["cycles"]`` and per layer ``"cycles"``;
  ``"macs_per_cycle"``: the model's effective rate (the conv PE array peaks at
  ``CONV_MACS_PER_CYCLE`` = 512; edge tiles, weight loads and linear layers lower it).
* ``greedy_op_counts(...)["distance_cycles"]``: phase 1 (and the maxd pass) with
  ``GREEDY_BLK x GREEDY_DVEC`` = 512 lanes; the gain / scan / cover / weight loops are one
  element per cycle in the HLS kernel (the RTL engine, ``fpga_kernels/rtl``, is what the system
  model uses for them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


from host.quantize.format import Op, QModel, load_qmodel

__all__ = ["GREEDY_BLK", "GREEDY_DVEC", "GREEDY_WBEAT", "TILE_OC", "TILE_PX", "XBANKS", "WT_TAPS", "WLOAD_BYTES",
           "LIN_LANES", "TAP_DEPTH", "LIN_DEPTH", "CONV_MACS_PER_CYCLE", "DISTANCE_MACS_PER_CYCLE",
           "AS_WRITTEN_FEATURE_MACS_PER_CYCLE",
           "greedy_op_counts", "features_op_counts", "layer_cycles"]

# ---- mirrors of fpga_kernels (nessa_greedy.cpp, include/nessa_pe.h) ----
#: Candidate rows held on chip per phase-1 block (NESSA_GREEDY_BLK).
GREEDY_BLK = 64
#: Feature columns per cycle in the distance lanes (NESSA_GREEDY_DVEC).
GREEDY_DVEC = 8
#: uint16 similarities per 512-bit write beat (NESSA_GREEDY_WBEAT).
GREEDY_WBEAT = 32
#: Pipeline depth of one phase-1 block (distance lanes + 32-step isqrt + write); assumption.
GREEDY_DIST_DEPTH = 48
TILE_OC, TILE_PX, XBANKS, WT_TAPS, WLOAD_BYTES = 32, 16, 64, 4096, 16
LIN_LANES, TAP_DEPTH, LIN_DEPTH = 64, 6, 8
#: Peak rates of the PE arrays (MAC per cycle at II = 1).
CONV_MACS_PER_CYCLE = TILE_OC * TILE_PX
DISTANCE_MACS_PER_CYCLE = GREEDY_BLK * GREEDY_DVEC
#: Effective feature rate of the kernel as written on ResNet-20 at 32x32 (host.models, 10
#: classes): 40,813,184 MACs in 179,362 cycles per sample by :func:`features_op_counts`
#: (SmallCNN at 28x28: 1,117,056 MACs in 10,388 cycles, 107.5). The system model's
#: ``Fpga.as_written()`` uses it; tests/device/test_opcounts_cycles.py recomputes it.
AS_WRITTEN_FEATURE_MACS_PER_CYCLE = 227.5


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _distance_cycles(n: int, d: int, passes: int) -> int:
    blocks = _cdiv(n, GREEDY_BLK)
    dpad = _cdiv(d, GREEDY_DVEC) * GREEDY_DVEC
    per_row = max(_cdiv(d, GREEDY_DVEC), _cdiv(GREEDY_BLK, GREEDY_WBEAT))  # DIST_COLS vs WRITE_BEATS
    load = sum(min(GREEDY_BLK, n - j0) * dpad for j0 in range(0, n, GREEDY_BLK))  # LOAD_BLOCK, II = 1
    return passes * (blocks * (n * per_row + GREEDY_DIST_DEPTH) + load)


def greedy_op_counts(n: int, d: int, k: int, *, evaluations: int | None = None,
                     maxd_from_data: bool = False) -> dict[str, int]:
    if not (n >= 1 and d >= 1 and 1 <= k <= n):
        raise ValueError(f"need n >= 1, d >= 1, 1 <= k <= n; got n={n}, d={d}, k={k}")
    evals = (k - 1) * (n - 1) if evaluations is None else int(evaluations)
    passes = 2 if maxd_from_data else 1
    blocks = -(-n // GREEDY_BLK)
    rows_read = evals + k + k  # gain rows, cover-update rows, weight-assignment rows
    return {
        "n": n, "d": d, "k": k,
        "distance_macs": passes * n * n * d,
        "isqrt": n * n,
        "gain_evals": evals,
        "gain_ops": evals * n,
        "scan_ops": (evals + k) * n,
        "cover_ops": k * n,
        "assign_ops": k * n,
        "distance_cycles": _distance_cycles(n, d, passes),
        "bytes_read": passes * (blocks + 1) * n * d * 2 + rows_read * 2 * n,
        "bytes_written": 2 * n * n + k * (4 + 4 + 8) + 40,
    }


def layer_cycles(code: int, cin: int, hin: int, win: int, cout: int, hout: int, wout: int, k: int,
                 stride: int = 1) -> int:
    """Cycles of one layer-program op in ``nessa_features`` as written (one sample)."""
    if code in (Op.CONV, Op.LINEAR, Op.HEAD):
        if hout * wout == 1 and k == 1 and hin == 1 and win == 1:  # linear_op
            return cout * (_cdiv(cin, LIN_LANES) + LIN_DEPTH)
        taps = cin * k * k
        ii = 1 if stride <= 2 else _cdiv(stride, 2)
        segs = hout * _cdiv(wout, TILE_PX)
        chunks = [min(WT_TAPS, taps - t0) for t0 in range(0, taps, WT_TAPS)]
        load = sum(TILE_OC * _cdiv(nt, WLOAD_BYTES) for nt in chunks)  # WT_ROWS x WT_LOAD
        total = 0
        for co0 in range(0, cout, TILE_OC):
            na = min(TILE_OC, cout - co0)
            per_seg = 1 + taps * ii + len(chunks) * TAP_DEPTH + na  # ACC_INIT, CONV_TAPS, REQUANT_TILE
            total += (load if len(chunks) == 1 else segs * load) + segs * per_seg
        return total
    if code == Op.GAP:
        return cin * (_cdiv(hin * win, LIN_LANES) + 1)
    if code in (Op.MAXPOOL, Op.AVGPOOL):
        return cin * hout * _cdiv(wout, TILE_PX) * (k * k + 2)  # POOL_INIT, POOL_TAPS, POOL_STORE
    if code == Op.ADD:
        return _cdiv(cout * hout * wout, TILE_PX)
    raise ValueError(f"unknown opcode {code}")


def features_op_counts(model: QModel | str | Path, n: int) -> dict[str, Any]:
    qm = model if isinstance(model, QModel) else load_qmodel(model)
    layers = []
    macs = elem_ops = op_cycles = 0
    for op in qm.ops():
        code = int(op[0])
        cin, hin, win, cout, hout, wout, k, st = (int(v) for v in op[4:12])
        cyc = layer_cycles(code, cin, hin, win, cout, hout, wout, k, st)
        op_cycles += cyc
        if code in (Op.CONV, Op.LINEAR, Op.HEAD):
            m = cout * hout * wout * cin * k * k
            macs += m
            layers.append({"op": Op.NAMES[code], "macs": m, "cycles": cyc})
        else:
            e = cout * hout * wout * (k * k if code in (Op.MAXPOOL, Op.AVGPOOL) else (hin * win if code == Op.GAP else 1))
            elem_ops += e
            layers.append({"op": Op.NAMES[code], "elem_ops": e, "cycles": cyc})
    c, e = qm.num_classes, qm.embed_dim
    # load_sample streams into LOAD_SLOT0 (1 pixel/cycle); softmax max + exp + divide; store row
    per_sample = int(qm.sample_bytes) + op_cycles + 3 * c + c
    return {
        "n": n,
        "macs_per_sample": macs,
        "macs": macs * n,
        "elem_ops": elem_ops * n,
        "softmax_exps": c * n,
        "layers": layers,
        "cycles_per_sample": per_sample,
        "cycles": per_sample * n,
        "macs_per_cycle": macs / per_sample,
        "bytes_read": int(qm.program.nbytes + qm.weights.nbytes) + n * (qm.sample_bytes + 4),
        "bytes_written": n * (2 * c) + n * e,  # embedding bytes only when requested
    }
