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
    ``macs`` per layer and in total ([CONV_*] / [LIN_CIN]), pooling / add element ops,
    softmax exps, and bytes: weights + program once, samples, labels, features and embedding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


from host.quantize.format import Op, QModel, load_qmodel

__all__ = ["GREEDY_BLK", "greedy_op_counts", "features_op_counts"]

#: Candidate rows held on chip per phase-1 block (NESSA_GREEDY_BLK).
GREEDY_BLK = 64


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
        "bytes_read": passes * (blocks + 1) * n * d * 2 + rows_read * 2 * n,
        "bytes_written": 2 * n * n + k * (4 + 4 + 8) + 40,
    }


def features_op_counts(model: QModel | str | Path, n: int) -> dict[str, Any]:
    qm = model if isinstance(model, QModel) else load_qmodel(model)
    layers = []
    macs = elem_ops = 0
    for op in qm.ops():
        code = int(op[0])
        cin, hin, win, cout, hout, wout, k = (int(v) for v in op[4:11])
        if code in (Op.CONV, Op.LINEAR, Op.HEAD):
            m = cout * hout * wout * cin * k * k
            macs += m
            layers.append({"op": Op.NAMES[code], "macs": m})
        else:
            e = cout * hout * wout * (k * k if code in (Op.MAXPOOL, Op.AVGPOOL) else (hin * win if code == Op.GAP else 1))
            elem_ops += e
            layers.append({"op": Op.NAMES[code], "elem_ops": e})
    c, e = qm.num_classes, qm.embed_dim
    return {
        "n": n,
        "macs_per_sample": macs,
        "macs": macs * n,
        "elem_ops": elem_ops * n,
        "softmax_exps": c * n,
        "layers": layers,
        "bytes_read": int(qm.program.nbytes + qm.weights.nbytes) + n * (qm.sample_bytes + 4),
        "bytes_written": n * (2 * c) + n * e,  # embedding bytes only when requested
    }
