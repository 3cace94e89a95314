"""Golden int8 forward pass: the semantics of every op of the quantized layer program.

Shared integer rules (the kernel implements exactly these):

* ``rshift_round(x, s) = (x + 2**(s-1)) >> s`` (round half up, arithmetic shift; ``s >= 1``),
  with ``x`` a 64-bit product.
* ``sat8(x) = clamp(x, -128, 127)``; ReLU is ``max(0, .)`` after saturation (zero point 0).
* ``div_round(a, b) = floor((2a + b) / (2b))`` for ``b > 0`` (round half up).

Ops (slot tensors are CHW; slot 0 holds the input, uint8 values 0..255):

* CONV (k in {1, 3, 5}, stride, zero padding pad): ``acc = bias[co] + sum w[co,ci,ky,kx] *
  x[ci, oy*s-pad+ky, ox*s-pad+kx]`` (int32; out-of-range taps read 0);
  ``y = sat8(rshift_round(acc * mult[co], shift[co]))``, optional ReLU.
* LINEAR: a CONV with k = 1 over the flattened (CHW) source, ``hin = win = 1``.
* HEAD: a LINEAR whose output is the logits ``clamp(rshift_round(acc * mult, shift), +-2**20)``
  with ``LOGIT_FRAC`` fractional bits; then :mod:`host.golden.softmax`. Its input is the
  penultimate embedding (int8, scale ``info["embed_scale"]``).
* MAXPOOL (k, stride, pad; padded taps are ignored), AVGPOOL (pad 0, ``div_round(sum, k*k)``),
  GAP (``div_round(sum, hin*win)``): the output keeps the input scale.
* ADD: ``sat8(rshift_round(a * ma + b * mb, shift))``, optional ReLU.

Integer accumulations are done in float64 BLAS here for speed: every partial sum is an integer
below 2**53, so the result is exact.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from host.golden.softmax import softmax_onehot_q
from host.quantize.format import LOGIT_CLAMP, Op, QModel

__all__ = ["rshift_round", "sat8", "div_round", "qforward", "QForwardResult"]


def rshift_round(x: np.ndarray, s: np.ndarray | int) -> np.ndarray:
    s = np.asarray(s, dtype=np.int64)
    return (np.asarray(x, dtype=np.int64) + (np.int64(1) << (s - 1))) >> s


def sat8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -128, 127)


def div_round(a: np.ndarray, b: int) -> np.ndarray:
    return (2 * np.asarray(a, dtype=np.int64) + b) // (2 * b)


class QForwardResult:
    """Outputs of :func:`qforward`: features int16 [N, C], logits int64 [N, C], embedding int8 [N, E]."""

    def __init__(self, features: np.ndarray, logits: np.ndarray, embedding: np.ndarray):
        self.features, self.logits, self.embedding = features, logits, embedding


def _input(samples: np.ndarray, qm: QModel) -> np.ndarray:
    c, h, w = qm.input_chw
    x = np.asarray(samples, dtype=np.uint8).reshape(len(samples), -1)
    if x.shape[1] != c * h * w:
        raise ValueError(f"samples have {x.shape[1]} bytes each, the model expects {c * h * w}")
    if qm.header["in_layout"] == 1:
        return x.reshape(-1, h, w, c).transpose(0, 3, 1, 2).astype(np.int64)
    return x.reshape(-1, c, h, w).astype(np.int64)


def _params(qm: QModel, off: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = qm.program.astype(np.int64)
    return p[off:off + n], p[off + n:off + 2 * n], p[off + 2 * n:off + 3 * n]


def _conv_acc(x: np.ndarray, op: np.ndarray, qm: QModel) -> np.ndarray:
    cin, cout, k, st, pad = (int(op[i]) for i in (4, 7, 10, 11, 12))
    hout, wout = int(op[8]), int(op[9])
    w = qm.weights[int(op[14]):int(op[14]) + cout * cin * k * k].astype(np.float64).reshape(cout, cin * k * k)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::st, ::st][:, :, :hout, :wout]
    # [N, cin, hout, wout, k, k] -> [N, hout*wout, cin*k*k]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(x.shape[0], hout * wout, cin * k * k).astype(np.float64)
    acc = (cols @ w.T).astype(np.int64)  # [N, hout*wout, cout]
    bias, _, _ = _params(qm, int(op[15]), cout)
    return acc.transpose(0, 2, 1).reshape(x.shape[0], cout, hout, wout) + bias[None, :, None, None]


def _requant(acc: np.ndarray, op: np.ndarray, qm: QModel) -> np.ndarray:
    _, mult, shift = _params(qm, int(op[15]), int(op[7]))
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    y = sat8(rshift_round(acc * mult.reshape(shape), shift.reshape(shape)))
    return np.maximum(y, 0) if int(op[13]) else y


def _pool(x: np.ndarray, op: np.ndarray, kind: int) -> np.ndarray:
    k, st, pad = int(op[10]), int(op[11]), int(op[12])
    hout, wout = int(op[8]), int(op[9])
    if kind == Op.GAP:
        return div_round(x.sum(axis=(2, 3)), x.shape[2] * x.shape[3])[:, :, None, None]
    if kind == Op.MAXPOOL:
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-(1 << 40))
        win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::st, ::st][:, :, :hout, :wout]
        return win.max(axis=(4, 5))
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::st, ::st][:, :, :hout, :wout]
    return div_round(win.sum(axis=(4, 5)), k * k)


def qforward(qm: QModel, samples: np.ndarray, labels: np.ndarray) -> QForwardResult:
    """Run the layer program over a batch (uint8 samples, int labels), exactly as the kernel does."""
    slots: dict[int, np.ndarray] = {0: _input(samples, qm)}
    n = len(slots[0])
    logits = embed = None
    for op in qm.ops():
        code, s0, s1, dst = (int(v) for v in op[:4])
        cin, hin, win, cout, hout, wout = (int(v) for v in op[4:10])
        x = slots[s0]
        if code in (Op.LINEAR, Op.HEAD):
            x = x.reshape(n, -1)[:, :, None, None]
            if x.shape[1] != cin:
                raise ValueError(f"linear op expects {cin} inputs, source has {x.shape[1]}")
        if code == Op.HEAD:
            embed = x.reshape(n, cin).astype(np.int8)
            _, mult, shift = _params(qm, int(op[15]), cout)
            acc = _conv_acc(x, op, qm).reshape(n, cout)
            logits = np.clip(rshift_round(acc * mult[None], shift[None]), -LOGIT_CLAMP, LOGIT_CLAMP)
            continue
        if code in (Op.CONV, Op.LINEAR):
            y = _requant(_conv_acc(x, op, qm), op, qm)
        elif code in (Op.MAXPOOL, Op.AVGPOOL, Op.GAP):
            y = _pool(x, op, code)
        elif code == Op.ADD:
            p = qm.program.astype(np.int64)
            ma, mb, sh = p[int(op[15])], p[int(op[15]) + 1], p[int(op[15]) + 2]
            y = sat8(rshift_round(x * ma + slots[s1] * mb, sh))
            y = np.maximum(y, 0) if int(op[13]) else y
        else:  # pragma: no cover - QModel validates opcodes
            raise ValueError(f"unknown opcode {code}")
        slots[dst] = y.reshape(n, cout, hout, wout)
    feats = softmax_onehot_q(logits, labels)
    return QForwardResult(feats, logits, embed)
