"""storage_service/_model_checks.py on real safetensors files: what is refused, and that the
refusal names the tensor or field at fault (the RPC path is tests/service/test_models.py)."""

from __future__ import annotations

import io
import struct

import pytest
import torch
from safetensors.torch import save

from host.curvature import CURVATURE_TENSOR
from host.models import build_model
from storage_service import _model_checks as checks
from storage_service._errors import InvalidArgument

SHAPE, CLASSES = (1, 8, 8), 4


def _state(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    return {k: v.contiguous() for k, v in build_model("small_cnn", SHAPE, CLASSES).state_dict().items()}


def _write(tmp_path, tensors: dict, name: str = "m.safetensors"):
    path = tmp_path / name
    path.write_bytes(save(tensors))
    return path


def _refused(fn, *args) -> str:
    with pytest.raises(InvalidArgument) as info:
        fn(*args)
    return str(info.value)


def _check_file(path) -> None:
    header, start = checks.read_header(path)
    checks.check_header("small_cnn", header, SHAPE, CLASSES)
    checks.check_values(path, header, start)


def test_a_real_model_passes_every_check(tmp_path):
    state = _state()
    state[CURVATURE_TENSOR] = torch.rand(CLASSES)
    path = _write(tmp_path, state)
    header, start = checks.read_header(path)
    assert set(header) == set(state)  # no __metadata__ entry
    assert start == 8 + struct.unpack("<Q", path.read_bytes()[:8])[0]
    checks.check_header("small_cnn", header, SHAPE, CLASSES)
    checks.check_values(path, header, start)
    loaded = checks.parse_blob(path.read_bytes())
    checks.check_state("small_cnn", loaded, SHAPE, CLASSES)
    assert torch.equal(loaded["head.weight"], state["head.weight"])


def test_float8_dtype_is_refused_naming_tensor_and_dtype(tmp_path):
    state = _state()
    state["fc.weight"] = state["fc.weight"].to(torch.float8_e4m3fn)
    message = _refused(_check_file, _write(tmp_path, state))
    assert "fc.weight" in message and "F8_E4M3" in message and "F32" in message


def test_float_where_the_model_has_integers_is_refused(tmp_path):
    state = _state()
    state["features.1.num_batches_tracked"] = torch.tensor(1.0)
    message = _refused(_check_file, _write(tmp_path, state))
    assert "features.1.num_batches_tracked" in message and "F32" in message and "I64" in message


def test_wrong_shape_is_refused_naming_tensor_and_shapes(tmp_path):
    state = _state()
    state["head.weight"] = torch.zeros(CLASSES + 1, 64)
    message = _refused(_check_file, _write(tmp_path, state))
    assert "head.weight" in message and f"[{CLASSES + 1}, 64]" in message and f"[{CLASSES}, 64]" in message


def test_missing_and_unknown_tensors_are_named(tmp_path):
    state = {k: v for k, v in _state().items() if k != "head.bias"}
    state["nessa.payload"] = torch.zeros(3)  # our prefix, but not a tensor we know
    message = _refused(_check_file, _write(tmp_path, state))
    assert "head.bias" in message and "nessa.payload" in message


@pytest.mark.parametrize("bad,words", [(torch.rand(CLASSES + 2), f"[{CLASSES + 2}]"),
                                       (torch.ones(CLASSES, dtype=torch.int32), "I32")])
def test_bad_curvature_tensor_is_refused(tmp_path, bad, words):
    state = _state()
    state[CURVATURE_TENSOR] = bad
    message = _refused(_check_file, _write(tmp_path, state))
    assert CURVATURE_TENSOR in message and words in message


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_non_finite_value_past_the_first_slice_is_found(tmp_path, monkeypatch, dtype):
    monkeypatch.setattr(checks, "SLICE_BYTES", 4096)  # fc.weight (64 x 1568) spans many slices
    state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in _state().items()}
    state["fc.weight"][-1, -1] = float("inf")
    path = _write(tmp_path, state)
    header, start = checks.read_header(path)
    checks.check_header("small_cnn", header, SHAPE, CLASSES)  # names, shapes, dtypes are fine
    message = _refused(checks.check_values, path, header, start)
    assert "fc.weight" in message and "non-finite" in message


def test_pickle_and_lying_headers_are_not_safetensors(tmp_path):
    state = _state()
    buf = io.BytesIO()
    torch.save(state, buf)  # never unpickled: refused as not safetensors
    pickled = tmp_path / "m.pt"
    pickled.write_bytes(buf.getvalue())
    assert "not a valid safetensors blob" in _refused(checks.read_header, pickled)
    assert "not a valid safetensors blob" in _refused(checks.parse_blob, buf.getvalue())
    blob = save(state)
    (n,) = struct.unpack("<Q", blob[:8])
    too_long = tmp_path / "long.safetensors"  # header length points past the end of the file
    too_long.write_bytes(struct.pack("<Q", len(blob)) + blob[8:])
    assert "not a valid safetensors blob" in _refused(checks.read_header, too_long)
    truncated = tmp_path / "short.safetensors"  # data offsets beyond the bytes present
    truncated.write_bytes(blob[: 8 + n + 16])
    assert "not a valid safetensors blob" in _refused(checks.read_header, truncated)


def test_check_state_names_non_finite_and_integer_tensors():
    state = _state()
    state["head.bias"][0] = float("nan")
    message = _refused(checks.check_state, "small_cnn", state, SHAPE, CLASSES)
    assert "head.bias" in message and "non-finite" in message
    state = _state()
    state["fc.bias"] = state["fc.bias"].to(torch.int32)
    message = _refused(checks.check_state, "small_cnn", state, SHAPE, CLASSES)
    assert "fc.bias" in message and "int32" in message


def test_unknown_arch_is_named_with_the_known_ones():
    assert checks.known_arch("small_cnn") == "small_cnn"
    message = _refused(checks.known_arch, "vgg_evil")
    assert "vgg_evil" in message and "small_cnn" in message and "resnet18" in message


def test_registry_reexports_check_state():
    from storage_service import models_registry

    assert models_registry.check_state is checks.check_state and "check_state" in models_registry.__all__
