"""The quantized model file (``*.nqm``): schema, version, save / load.

A file is a safetensors container (no pickle) with two tensors and string metadata:

* ``program``: ``int32 [W]`` -- the layer program the ``nessa_features`` kernel executes, copied
  verbatim into a device buffer. Layout (word offsets):

  header (``HEADER_WORDS = 16``)::

      0 magic 0x314D514E ("NQM1")  1 version (1)      2 n_ops          3 in_c
      4 in_h                       5 in_w             6 in_layout (0 CHW, 1 HWC)
      7 num_classes                8 embed_dim        9 n_slots       10 slot_elems
     11 logit_frac                12 op_words (16)   13 params_off    14 n_param_words
     15 weight_bytes

  then ``n_ops`` records of ``OP_WORDS = 16`` words::

      0 opcode  1 src0  2 src1  3 dst  4 cin  5 hin  6 win  7 cout  8 hout  9 wout
     10 k      11 stride 12 pad 13 relu 14 w_off (bytes into ``weights``)
     15 p_off (words into ``program``)

  then the parameter words (per-channel ``bias[cout], mult[cout], shift[cout]`` for CONV /
  LINEAR / HEAD; ``ma, mb, shift`` for ADD). Semantics of every opcode: :mod:`host.golden.qforward`.
* ``weights``: ``int8 [B]`` -- conv / linear weights, ``[cout][cin][k][k]`` per layer.
* metadata: ``format = "nessa-qmodel"``, ``version = "1"``, ``info`` (JSON: arch, sample
  shape, per-layer scales and names, ``embed_scale``) for humans and for dequantising embeddings.

Activations live in ``n_slots`` on-chip slots of ``slot_elems`` int16 each (CHW order); slot 0
receives the input sample (uint8 values 0..255, input scale 1/255).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAGIC",
    "HEADER_WORDS",
    "OP_WORDS",
    "Op",
    "QModel",
    "save_qmodel",
    "load_qmodel",
    "LOGIT_FRAC",
    "LOGIT_CLAMP",
    "MAX_SLOTS",
    "MAX_SLOT_ELEMS",
]

FORMAT_NAME = "nessa-qmodel"
FORMAT_VERSION = 1
MAGIC = 0x314D514E
HEADER_WORDS = 16
OP_WORDS = 16
#: Fractional bits of the fixed-point logits the HEAD op produces.
LOGIT_FRAC = 10
#: Logits saturate to +-LOGIT_CLAMP (i.e. +-1024.0) so the softmax arithmetic stays in int64.
LOGIT_CLAMP = 1 << 20
#: On-chip limits of the kernel (must match fpga_kernels/hls/nessa_features.cpp).
MAX_SLOTS = 6
MAX_SLOT_ELEMS = 65536


class Op:
    """Opcodes of the layer program."""

    CONV = 1
    LINEAR = 2
    MAXPOOL = 3
    AVGPOOL = 4
    GAP = 5
    ADD = 6
    HEAD = 7

    NAMES = {1: "conv", 2: "linear", 3: "maxpool", 4: "avgpool", 5: "gap", 6: "add", 7: "head"}


@dataclass
class QModel:
    """A quantized model: the kernel's two buffers plus descriptive metadata."""

    program: np.ndarray  # int32 [W]
    weights: np.ndarray  # int8 [B]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.program = np.ascontiguousarray(self.program, dtype=np.int32)
        self.weights = np.ascontiguousarray(self.weights, dtype=np.int8)
        _check(self.program, self.weights)

    @property
    def header(self) -> dict[str, int]:
        p = self.program
        keys = ("magic", "version", "n_ops", "in_c", "in_h", "in_w", "in_layout", "num_classes",
                "embed_dim", "n_slots", "slot_elems", "logit_frac", "op_words", "params_off",
                "n_param_words", "weight_bytes")
        return {k: int(p[i]) for i, k in enumerate(keys)}

    def ops(self) -> np.ndarray:
        """``int32 [n_ops, OP_WORDS]`` view of the op records."""
        n = int(self.program[2])
        return self.program[HEADER_WORDS:HEADER_WORDS + n * OP_WORDS].reshape(n, OP_WORDS)

    @property
    def num_classes(self) -> int:
        return int(self.program[7])

    @property
    def embed_dim(self) -> int:
        return int(self.program[8])

    @property
    def input_chw(self) -> tuple[int, int, int]:
        return int(self.program[3]), int(self.program[4]), int(self.program[5])

    @property
    def sample_bytes(self) -> int:
        c, h, w = self.input_chw
        return c * h * w

    @property
    def embed_scale(self) -> float:
        return float(self.info.get("embed_scale", 1.0))


def _check(program: np.ndarray, weights: np.ndarray) -> None:
    if program.ndim != 1 or program.size < HEADER_WORDS:
        raise ValueError("quantized model: program is shorter than its header")
    if int(program[0]) != MAGIC:
        raise ValueError(f"quantized model: bad magic 0x{int(program[0]) & 0xFFFFFFFF:08x}")
    if int(program[1]) != FORMAT_VERSION:
        raise ValueError(f"quantized model: unsupported version {int(program[1])} (this build reads {FORMAT_VERSION})")
    n_ops, op_words = int(program[2]), int(program[12])
    if op_words != OP_WORDS:
        raise ValueError(f"quantized model: op_words {op_words} != {OP_WORDS}")
    if HEADER_WORDS + n_ops * OP_WORDS > int(program[13]) or int(program[13]) + int(program[14]) != program.size:
        raise ValueError("quantized model: program sections are inconsistent")
    if int(program[15]) != weights.size:
        raise ValueError(f"quantized model: header says {int(program[15])} weight bytes, file has {weights.size}")
    if not 1 <= int(program[9]) <= MAX_SLOTS or not 1 <= int(program[10]) <= MAX_SLOT_ELEMS:
        raise ValueError("quantized model: slot count or size exceeds the kernel's on-chip limits")
    ops = program[HEADER_WORDS:HEADER_WORDS + n_ops * OP_WORDS].reshape(n_ops, OP_WORDS)
    if n_ops < 1 or int(ops[-1, 0]) != Op.HEAD:
        raise ValueError("quantized model: the last op must be HEAD")
    for i, op in enumerate(ops):
        if int(op[0]) not in Op.NAMES:
            raise ValueError(f"quantized model: op {i} has unknown opcode {int(op[0])}")


def save_qmodel(model: QModel, path: str | Path) -> Path:
    """Write ``model`` to ``path`` (safetensors; see module docstring)."""
    from safetensors.numpy import save_file

    path = Path(path)
    meta = {"format": FORMAT_NAME, "version": str(FORMAT_VERSION), "info": json.dumps(model.info)}
    save_file({"program": model.program, "weights": model.weights}, str(path), metadata=meta)
    return path


def load_qmodel(path: str | Path) -> QModel:
    """Read a quantized model file, checking format name, version and section consistency."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"quantized model file not found: {path}")
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT_NAME:
            raise ValueError(f"{path}: not a NeSSA quantized model (format={meta.get('format')!r})")
        if meta.get("version") != str(FORMAT_VERSION):
            raise ValueError(f"{path}: quantized model version {meta.get('version')!r}, this build reads {FORMAT_VERSION}")
        keys = set(f.keys())
        if keys != {"program", "weights"}:
            raise ValueError(f"{path}: expected tensors program and weights, found {sorted(keys)}")
        program, weights = f.get_tensor("program"), f.get_tensor("weights")
    return QModel(program=program, weights=weights, info=json.loads(meta.get("info", "{}")))
