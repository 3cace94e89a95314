"""A model's state as the bytes the storage service accepts: safetensors (never pickle)."""

from __future__ import annotations

import torch

__all__ = ["state_to_safetensors"]


def state_to_safetensors(model: torch.nn.Module, extra: dict | None = None) -> bytes:
    """The model's state as a safetensors blob (the only model format the server accepts), with
    ``extra`` tensors beside it (NeSSA's own, named ``nessa.*``: the curvature for AdaCore)."""
    from safetensors.torch import save

    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    for name, tensor in (extra or {}).items():
        if name in state:
            raise ValueError(f"extra tensor {name!r} would replace one of the model's")
        state[name] = tensor.detach().to("cpu").contiguous().clone()
    return save(state)
