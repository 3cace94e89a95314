"""Is this model file acceptable? The checks a pushed model passes before the registry keeps it.

Models arrive from trainers over the network, so a model file is untrusted input: it is read
only as safetensors, never unpickled (a pickle runs code on load). A file is accepted when:

* it parses as safetensors (``read_header``: safetensors validates the header, the offsets
  and the sizes first; ``parse_blob`` for a whole blob in memory);
* it names a known architecture (``known_arch``: ``host.models.Arch``);
* it holds exactly the model's tensor names with matching shapes for the data set it is
  checked against (``check_header`` on a file's header, ``check_state`` on loaded tensors),
  plus, optionally, NeSSA's own ``nessa.`` tensors: the curvature estimate
  ``nessa.curvature.v1``, one float per class, that AdaCore selections use;
* it uses plain dtypes: floats F16, BF16, F32, F64 where the model has floats, integers where
  it has integers (float8 and other exotic types are refused: selection code cannot use them);
* every floating-point value is finite (``check_values``: read tensor by tensor in slices of
  ``SLICE_BYTES``, so a check holds about one slice of a model in memory, never the model).

Every refusal is ``InvalidArgument`` naming the tensor (or field) at fault. The size cap, the
sha256 of a push and of a stored file, and where files live are the registry's business
(``storage_service/models_registry.py``).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from storage_service._errors import InvalidArgument, shown

__all__ = [
    "SLICE_BYTES",
    "known_arch",
    "parse_blob",
    "check_state",
    "check_header",
    "read_header",
    "check_values",
]

#: Bytes read per slice when hashing or checking values (bounds the memory of a check).
SLICE_BYTES = 1 << 20
#: Safetensors dtypes accepted where the model has floating-point tensors, with the unsigned
#: view and the exponent mask that flags inf / nan (all exponent bits set).
_FLOATS = {
    "F16": (np.uint16, 0x7C00),
    "BF16": (np.uint16, 0x7F80),
    "F32": (np.uint32, 0x7F800000),
    "F64": (np.uint64, 0x7FF0000000000000),
}
_INTS = ("I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "BOOL")
_TORCH_FLOATS = ("float16", "bfloat16", "float32", "float64")


def known_arch(arch: str) -> str:
    """``arch`` itself when it names a ``host.models.Arch``, else InvalidArgument listing the known ones."""
    from host.models import Arch

    names = [a.value for a in Arch]
    if arch not in names:
        raise InvalidArgument(f"unknown model arch {shown(arch)}; known: {', '.join(names)}")
    return arch


def parse_blob(blob: bytes) -> dict:
    """The tensors (name -> torch tensor) of a safetensors blob; InvalidArgument if it is not one."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(blob)
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
        raise InvalidArgument(f"model is not a valid safetensors blob: {exc}") from None


def _expected_state(arch: str, sample_shape, num_classes: int) -> dict:
    """Names, shapes and dtypes of the model's state, on torch's meta device (no memory: the
    expected model of a 200 MiB push would otherwise cost 200 MiB)."""
    import torch

    from host.models import build_model

    try:
        with torch.device("meta"):
            return build_model(arch, tuple(sample_shape), int(num_classes)).state_dict()
    except ValueError as exc:
        raise InvalidArgument(f"arch {arch!r} cannot model samples of shape {list(sample_shape)}: {exc}") from None


def _aux_expected(num_classes: int) -> dict:
    """NeSSA's own tensors a model file may carry beside the model's (name -> (shape, float?)):
    the trainer's curvature estimate for AdaCore (host/curvature.py)."""
    from host.curvature import CURVATURE_TENSOR

    return {CURVATURE_TENSOR: ((int(num_classes),), True)}


def _check_names(arch: str, expected: dict, got, num_classes: int) -> None:
    """The model's names exactly, plus known ``nessa.`` tensors (checked here: shape and float dtype).
    ``got`` is a safetensors header (name -> {dtype, shape}) or loaded tensors (name -> tensor)."""
    from host.curvature import AUX_PREFIX

    aux = _aux_expected(num_classes)
    missing = sorted(set(expected) - set(got))
    extra = sorted(n for n in set(got) - set(expected) if not (n.startswith(AUX_PREFIX) and n in aux))
    if missing or extra:
        raise InvalidArgument(f"{arch} state does not match: missing {missing[:5]}, unexpected {[shown(n) for n in extra[:5]]}")
    for name in set(got) & set(aux):
        shape = got[name]["shape"] if isinstance(got[name], dict) else list(got[name].shape)
        if tuple(shape) != aux[name][0]:
            raise InvalidArgument(f"tensor {name!r} has shape {list(shape)}, expected {list(aux[name][0])} (one value per class)")
        dtype = got[name]["dtype"] if isinstance(got[name], dict) else str(got[name].dtype).removeprefix("torch.")
        if dtype not in _FLOATS and dtype not in _TORCH_FLOATS:
            raise InvalidArgument(f"tensor {name!r} has dtype {shown(dtype)}, expected a float")


def check_state(arch: str, state: dict, sample_shape, num_classes: int) -> None:
    """Raise InvalidArgument unless ``state`` (name -> tensor) loads into ``build_model(arch, ...)`` exactly."""
    import torch

    expected = _expected_state(arch, sample_shape, num_classes)
    _check_names(arch, expected, state, num_classes)
    for name, want in expected.items():
        got = state[name]
        if tuple(got.shape) != tuple(want.shape):
            raise InvalidArgument(f"{arch} tensor {name!r} has shape {list(got.shape)}, expected {list(want.shape)}")
        if got.dtype.is_floating_point != want.dtype.is_floating_point or (
                got.dtype.is_floating_point and str(got.dtype).removeprefix("torch.") not in _TORCH_FLOATS):
            raise InvalidArgument(f"{arch} tensor {name!r} has dtype {got.dtype}, expected {want.dtype} "
                                  f"(floats: {', '.join(_TORCH_FLOATS)})")
        if got.dtype.is_floating_point and not bool(torch.isfinite(got).all()):
            raise InvalidArgument(f"{arch} tensor {name!r} holds non-finite values")


def check_header(arch: str, header: dict, sample_shape, num_classes: int) -> None:
    """``check_state`` on a safetensors header (names, shapes, dtypes; values are checked apart)."""
    expected = _expected_state(arch, sample_shape, num_classes)
    _check_names(arch, expected, header, num_classes)
    for name, want in expected.items():
        dtype, shape = header[name]["dtype"], header[name]["shape"]
        if tuple(shape) != tuple(want.shape):
            raise InvalidArgument(f"{arch} tensor {name!r} has shape {list(shape)}, expected {list(want.shape)}")
        allowed = tuple(_FLOATS) if want.dtype.is_floating_point else _INTS
        if dtype not in allowed:
            raise InvalidArgument(f"{arch} tensor {name!r} has dtype {shown(dtype)}, expected one of {', '.join(allowed)}")


def read_header(path: Path) -> tuple[dict, int]:
    """The tensors of a safetensors file (name -> {dtype, shape, data_offsets}) and where its data starts.

    safetensors itself validates the file first (header, offsets within the file, sizes).
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt"):
            pass
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
    except (SafetensorError, ValueError, RuntimeError, OverflowError, struct.error) as exc:
        raise InvalidArgument(f"model is not a valid safetensors blob: {exc}") from None
    header.pop("__metadata__", None)
    return header, 8 + n


def check_values(path: Path, header: dict, data_start: int) -> None:
    """InvalidArgument unless every floating-point tensor holds only finite values (read in slices)."""
    with open(path, "rb") as f:
        for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            if t["dtype"] not in _FLOATS:
                continue
            view, mask = _FLOATS[t["dtype"]]
            item = np.dtype(view).itemsize
            begin, end = t["data_offsets"]
            f.seek(data_start + begin)
            left = end - begin
            while left > 0:
                raw = f.read(min(left, SLICE_BYTES - SLICE_BYTES % item))
                if not raw:
                    raise InvalidArgument(f"model tensor {shown(name)} is truncated")
                left -= len(raw)
                bits = np.frombuffer(raw, dtype=view)
                if np.any((bits & view(mask)) == view(mask)):
                    raise InvalidArgument(f"tensor {shown(name)} holds non-finite values")
