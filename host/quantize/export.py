"""Torch model -> quantized layer program (:mod:`host.quantize.format`), the ``nessa_features`` input.

The exporter traces the model with ``torch.fx``, folds BatchNorm into the preceding conv, fuses
ReLU into the conv / linear / add that feeds it, calibrates activation ranges on sample data
(max |x| per tensor, symmetric int8, zero point 0) and quantizes:

* weights: int8 per output channel, ``scale_w[c] = max|w[c]| / 127``;
* biases: int32, ``round(b / (scale_in * scale_w[c]))``;
* requantisation: ``scale_in * scale_w[c] / scale_out = mult * 2**-shift``, ``mult`` in
  [2**30, 2**31) (the HEAD op targets ``2**-LOGIT_FRAC`` instead of an int8 scale);
* inputs: the stored uint8 pixels with scale 1/255 (what :func:`host.models.to_input` does).

Supported: Conv2d (square kernel 1/3/5, stride, zero padding, no dilation / groups), BatchNorm2d
after a conv, ReLU after conv / linear / add, MaxPool2d, AvgPool2d (no padding),
AdaptiveAvgPool2d(1), Flatten / torch.flatten(x, 1), Linear, residual ``+``, Identity and
Dropout (no-ops at inference). The model's output must
be a Linear (the head). Anything else is refused with the node and layer named.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.fx
from torch import nn
import torch.nn.functional as F

from host.models import input_chw, to_input
from host.quantize.format import (
    FORMAT_VERSION, HEADER_WORDS, LOGIT_FRAC, MAGIC, MAX_SLOT_ELEMS, MAX_SLOTS, OP_WORDS, Op, QModel,
)

__all__ = ["UnsupportedLayerError", "export_model", "requant_params"]


class UnsupportedLayerError(ValueError):
    """The model uses a layer (or a use of a layer) the FPGA kernel cannot run."""


@dataclass
class _FOp:
    """A float op of the folded graph; values are integer ids, 0 is the input."""

    code: int
    srcs: list[int]
    dst: int
    name: str
    weight: torch.Tensor | None = None  # conv [co, ci, k, k] / linear [co, ci]
    bias: torch.Tensor | None = None
    k: int = 1
    stride: int = 1
    pad: int = 0
    relu: bool = False
    shape: tuple[int, int, int] = (0, 0, 0)  # output CHW
    extra: dict[str, Any] = field(default_factory=dict)


def _pair(v: Any, what: str, name: str) -> int:
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise UnsupportedLayerError(f"layer {name!r}: non-square {what} {tuple(v)} is not supported")
        v = v[0]
    if not isinstance(v, int):
        raise UnsupportedLayerError(f"layer {name!r}: {what}={v!r} is not supported")
    return v


def _trace(model: nn.Module, chw: tuple[int, int, int]) -> list[_FOp]:
    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001 - report the tracer's reason
        raise UnsupportedLayerError(f"model cannot be traced by torch.fx: {e}") from e
    mods = dict(gm.named_modules())
    vid: dict[str, int] = {}
    ops: list[_FOp] = []
    producer: dict[int, _FOp] = {}
    shape: dict[int, tuple[int, ...]] = {}
    nxt = 1

    def new(code: int, srcs: list[int], name: str, **kw: Any) -> _FOp:
        nonlocal nxt
        op = _FOp(code, srcs, nxt, name, **kw)
        nxt += 1
        ops.append(op)
        producer[op.dst] = op
        return op

    def consumers(v: int) -> int:
        """Nodes reading value ``v`` that are not themselves aliases of it (BN / ReLU / no-ops folded in)."""
        return sum(1 for n in gm.graph.nodes if vid.get(n.name) != v
                   and any(isinstance(a, torch.fx.Node) and vid.get(a.name) == v for a in n.all_input_nodes))

    def fuse_target(node: torch.fx.Node, what: str) -> _FOp:
        src = node.args[0]
        op = producer.get(vid[src.name])
        if op is None or consumers(vid[src.name]) != 1 or op.relu:
            raise UnsupportedLayerError(
                f"{what} at {node.name!r} must directly follow a conv / linear / add used only by it"
            )
        return op

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if vid:
                raise UnsupportedLayerError(f"model takes more than one input ({node.name!r})")
            vid[node.name] = 0
            shape[0] = chw
            continue
        if node.op == "output":
            out = node.args[0]
            op = producer.get(vid.get(getattr(out, "name", ""), -1))
            if op is None or op.code != Op.LINEAR or op.relu:
                raise UnsupportedLayerError("the model output must be a Linear layer (the head)")
            op.code = Op.HEAD
            continue
        if node.op == "get_attr":
            raise UnsupportedLayerError(f"parameter access {node.target!r} inside forward is not supported")
        name = str(node.target) if node.op == "call_module" else node.name
        mod = mods.get(node.target) if node.op == "call_module" else None
        srcs = [a for a in node.args if isinstance(a, torch.fx.Node)]
        in_shape = shape[vid[srcs[0].name]] if srcs else None
        if isinstance(mod, nn.Conv2d):
            if mod.groups != 1 or _pair(mod.dilation, "dilation", name) != 1 or mod.padding_mode != "zeros":
                raise UnsupportedLayerError(f"layer {name!r} (Conv2d): groups, dilation and non-zero padding modes are not supported")
            k, s = _pair(mod.kernel_size, "kernel_size", name), _pair(mod.stride, "stride", name)
            p = _pair(mod.padding, "padding", name)
            if k not in (1, 3, 5):
                raise UnsupportedLayerError(f"layer {name!r} (Conv2d): kernel size {k} is not one of 1, 3, 5")
            c, h, w = in_shape
            ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            b = mod.bias.detach().clone() if mod.bias is not None else torch.zeros(mod.out_channels)
            op = new(Op.CONV, [vid[srcs[0].name]], name, weight=mod.weight.detach().clone(), bias=b, k=k, stride=s, pad=p,
                     shape=(mod.out_channels, ho, wo))
        elif isinstance(mod, nn.BatchNorm2d):
            op = fuse_target(node, f"BatchNorm2d {name!r}")
            if op.code != Op.CONV:
                raise UnsupportedLayerError(f"BatchNorm2d {name!r} must follow a Conv2d")
            g = mod.weight.detach() if mod.affine else torch.ones_like(mod.running_var)
            beta = mod.bias.detach() if mod.affine else torch.zeros_like(mod.running_var)
            scale = g / torch.sqrt(mod.running_var + mod.eps)
            op.weight = op.weight * scale[:, None, None, None]
            op.bias = (op.bias - mod.running_mean) * scale + beta
            vid[node.name] = op.dst
            continue
        elif isinstance(mod, nn.ReLU) or node.target in (F.relu, torch.relu) or (node.op == "call_method" and node.target == "relu"):
            op = fuse_target(node, "ReLU")
            op.relu = True
            vid[node.name] = op.dst
            continue
        elif isinstance(mod, (nn.Identity, nn.Dropout)):  # no-ops at inference
            vid[node.name] = vid[srcs[0].name]
            continue
        elif isinstance(mod, nn.Flatten) or node.target is torch.flatten or (node.op == "call_method" and node.target == "flatten"):
            start = mod.start_dim if mod is not None else (node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0))
            end = mod.end_dim if mod is not None else -1
            if start != 1 or end != -1:
                raise UnsupportedLayerError(f"{name!r}: only flatten(start_dim=1) is supported")
            vid[node.name] = vid[srcs[0].name]  # CHW slots are already flat
            continue
        elif isinstance(mod, nn.MaxPool2d):
            if _pair(mod.dilation, "dilation", name) != 1 or mod.ceil_mode or mod.return_indices:
                raise UnsupportedLayerError(f"layer {name!r} (MaxPool2d): dilation, ceil_mode and return_indices are not supported")
            k, p = _pair(mod.kernel_size, "kernel_size", name), _pair(mod.padding, "padding", name)
            s = _pair(mod.stride if mod.stride is not None else mod.kernel_size, "stride", name)
            c, h, w = in_shape
            op = new(Op.MAXPOOL, [vid[srcs[0].name]], name, k=k, stride=s, pad=p,
                     shape=(c, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1))
        elif isinstance(mod, nn.AvgPool2d):
            k, p = _pair(mod.kernel_size, "kernel_size", name), _pair(mod.padding, "padding", name)
            s = _pair(mod.stride if mod.stride is not None else mod.kernel_size, "stride", name)
            if p != 0 or mod.ceil_mode or mod.divisor_override is not None:
                raise UnsupportedLayerError(f"layer {name!r} (AvgPool2d): padding, ceil_mode and divisor_override are not supported")
            c, h, w = in_shape
            op = new(Op.AVGPOOL, [vid[srcs[0].name]], name, k=k, stride=s, shape=(c, (h - k) // s + 1, (w - k) // s + 1))
        elif isinstance(mod, nn.AdaptiveAvgPool2d):
            if _pair(mod.output_size, "output_size", name) != 1:
                raise UnsupportedLayerError(f"layer {name!r} (AdaptiveAvgPool2d): only output size 1 (global average) is supported")
            op = new(Op.GAP, [vid[srcs[0].name]], name, shape=(in_shape[0], 1, 1))
        elif isinstance(mod, nn.Linear):
            c = int(np.prod(in_shape))
            if c != mod.in_features:
                raise UnsupportedLayerError(f"layer {name!r} (Linear): expects {mod.in_features} inputs, gets {c}")
            b = mod.bias.detach().clone() if mod.bias is not None else torch.zeros(mod.out_features)
            op = new(Op.LINEAR, [vid[srcs[0].name]], name, weight=mod.weight.detach().clone()[:, :, None, None], bias=b,
                     shape=(mod.out_features, 1, 1))
        elif node.target in (operator.add, torch.add) or (node.op == "call_method" and node.target == "add"):
            if len(srcs) != 2 or len(node.args) != 2 or node.kwargs:
                raise UnsupportedLayerError(f"{name!r}: only tensor + tensor residual adds are supported")
            a, b = (vid[s.name] for s in srcs)
            if shape[a] != shape[b]:
                raise UnsupportedLayerError(f"{name!r}: residual add of shapes {shape[a]} and {shape[b]}")
            op = new(Op.ADD, [a, b], name, shape=tuple(shape[a]))
        else:
            what = type(mod).__name__ if mod is not None else f"{node.op} {getattr(node.target, '__name__', node.target)}"
            raise UnsupportedLayerError(f"unsupported layer {name!r} ({what}); supported: Conv2d, BatchNorm2d, ReLU, "
                                        "MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten, Linear, residual add")
        vid[node.name] = op.dst
        shape[op.dst] = op.shape
    if not ops or ops[-1].code != Op.HEAD:
        raise UnsupportedLayerError("the model output must be a Linear layer (the head)")
    return ops


def _float_run(ops: list[_FOp], x: torch.Tensor) -> dict[int, torch.Tensor]:
    vals = {0: x}
    for op in ops:
        a = vals[op.srcs[0]]
        if op.code == Op.CONV:
            y = F.conv2d(a, op.weight, op.bias, stride=op.stride, padding=op.pad)
        elif op.code in (Op.LINEAR, Op.HEAD):
            y = F.linear(a.flatten(1), op.weight[:, :, 0, 0], op.bias)
        elif op.code == Op.MAXPOOL:
            y = F.max_pool2d(a, op.k, op.stride, op.pad)
        elif op.code == Op.AVGPOOL:
            y = F.avg_pool2d(a, op.k, op.stride)
        elif op.code == Op.GAP:
            y = a.mean(dim=(2, 3), keepdim=True)
        else:
            y = a + vals[op.srcs[1]]
        vals[op.dst] = torch.relu(y) if op.relu else y
    return vals


def requant_params(m_real: float) -> tuple[int, int]:
    """``m_real`` -> ``(mult, shift)`` with ``mult * 2**-shift ~ m_real``, mult in [2**30, 2**31)."""
    if not math.isfinite(m_real) or m_real < 0:
        raise ValueError(f"bad requantisation factor {m_real}")
    if m_real == 0:
        return 0, 1
    mant, exp = math.frexp(m_real)
    mult = int(round(mant * (1 << 31)))
    if mult == 1 << 31:
        mult, exp = 1 << 30, exp + 1
    shift = 31 - exp
    if shift > 62:
        return 0, 1
    if shift < 1:
        raise ValueError(f"requantisation factor {m_real} is too large for the kernel")
    return mult, shift


def _allocate_slots(ops: list[_FOp]) -> dict[int, int]:
    last = {0: -1}
    for i, op in enumerate(ops):
        for s in op.srcs:
            last[s] = i
    slot = {0: 0}
    free = list(range(1, MAX_SLOTS))
    live = {0}
    for i, op in enumerate(ops):
        for v in sorted(live):
            if last.get(v, -1) < i:  # dead before this op reads / writes
                live.discard(v)
                free.append(slot[v])
        if op.code == Op.HEAD:
            continue
        if not free:
            raise UnsupportedLayerError(f"the model needs more than {MAX_SLOTS} live activation buffers at {op.name!r}")
        free.sort()
        slot[op.dst] = free.pop(0)
        live.add(op.dst)
    return slot


def export_model(model: nn.Module, calib_samples: np.ndarray, sample_shape: Sequence[int], *,
                 arch: str = "", calib_limit: int = 512) -> QModel:
    """Quantize ``model`` (eval mode, CPU) using ``calib_samples`` (uint8, ``[N, *sample_shape]``)."""
    chw = input_chw(sample_shape)
    layout = 1 if (len(sample_shape) == 3 and tuple(sample_shape) != chw) else 0
    calib = np.asarray(calib_samples)
    if calib.dtype != np.uint8:
        raise ValueError(f"calibration samples must be uint8 (the stored pixels), got {calib.dtype}")
    if len(calib) == 0:
        raise ValueError("calibration needs at least one sample")
    model = model.to("cpu").eval()
    with torch.no_grad():
        ops = _trace(model, chw)
        for op in ops:
            if op.shape[0] * op.shape[1] * op.shape[2] > MAX_SLOT_ELEMS and op.code != Op.HEAD:
                raise UnsupportedLayerError(f"activation of {op.name!r} {op.shape} exceeds {MAX_SLOT_ELEMS} elements")
        x = to_input(calib[:calib_limit], sample_shape)
        vals = _float_run(ops, x)
    scale = {v: max(float(t.abs().max()), 1e-8) / 127.0 for v, t in vals.items()}
    scale[0] = 1.0 / 255.0
    for op in ops:  # pooling keeps its input's scale (integer pooling does not rescale)
        if op.code in (Op.MAXPOOL, Op.AVGPOOL, Op.GAP):
            scale[op.dst] = scale[op.srcs[0]]
    slot = _allocate_slots(ops)
    records, params, wbytes, layers = [], [], [], []
    p_base = HEADER_WORDS + OP_WORDS * len(ops)
    w_off = 0
    for op in ops:
        src = op.srcs[0]
        cin_shape = vals[src].shape[1:]
        cin = int(np.prod(cin_shape)) if op.code in (Op.LINEAR, Op.HEAD) else int(cin_shape[0])
        hin, win = (1, 1) if op.code in (Op.LINEAR, Op.HEAD) else (int(cin_shape[1]), int(cin_shape[2]))
        rec = [op.code, slot[src], slot.get(op.srcs[1], 0) if len(op.srcs) > 1 else 0, slot.get(op.dst, 0),
               cin, hin, win, op.shape[0], op.shape[1], op.shape[2], op.k, op.stride, op.pad, int(op.relu), 0, 0]
        layer = {"name": op.name, "op": Op.NAMES[op.code], "scale_out": scale[op.dst]}
        if op.weight is not None:
            w = op.weight.double().numpy()
            wmax = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
            sw = np.where(wmax > 0, wmax / 127.0, 1.0)
            wq = np.clip(np.round(w / sw[:, None, None, None]), -127, 127).astype(np.int8)
            s_in = scale[src]
            bq = np.clip(np.round(op.bias.double().numpy() / (s_in * sw)), -(2 ** 31), 2 ** 31 - 1).astype(np.int64)
            target = 2.0 ** -LOGIT_FRAC if op.code == Op.HEAD else scale[op.dst]
            mq = [requant_params(s_in * float(s) / target) for s in sw]
            rec[14], rec[15] = w_off, p_base + len(params)
            params += bq.tolist() + [m for m, _ in mq] + [s for _, s in mq]
            wbytes.append(wq.reshape(-1))
            w_off += wq.size
        elif op.code == Op.ADD:
            sa, sb, so = scale[op.srcs[0]], scale[op.srcs[1]], scale[op.dst]
            sh = max(1, min(30, int(math.floor(math.log2((2 ** 30) / max(sa / so, sb / so))))))
            rec[15] = p_base + len(params)
            params += [int(round(sa / so * 2 ** sh)), int(round(sb / so * 2 ** sh)), sh]
        records.append(rec)
        layers.append(layer)
    head = ops[-1]
    slot_elems = max(int(np.prod(o.shape)) for o in ops[:-1]) if len(ops) > 1 else 1
    slot_elems = max(slot_elems, chw[0] * chw[1] * chw[2])
    header = [MAGIC, FORMAT_VERSION, len(ops), *chw, layout, head.shape[0], int(head.weight.shape[1]),
              max(slot.values()) + 1, slot_elems, LOGIT_FRAC, OP_WORDS, p_base, len(params), w_off]
    program = np.array(header + [v for r in records for v in r] + params, dtype=np.int64)
    if program.max() > 2 ** 31 - 1 or program.min() < -(2 ** 31):
        raise ValueError("quantized model parameter out of int32 range")
    info = {"arch": arch, "sample_shape": [int(s) for s in sample_shape], "layers": layers,
            "embed_scale": scale[head.srcs[0]], "calib_samples": int(min(len(calib), calib_limit))}
    weights = np.concatenate(wbytes) if wbytes else np.zeros(0, np.int8)
    return QModel(program=program.astype(np.int32), weights=weights, info=info)
