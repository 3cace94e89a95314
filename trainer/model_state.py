"""A model's state as the bytes the storage service accepts: safetensors (never pickle)."""

from __future__ import annotations

import torch

__all__ = ["state_to_safetensors"]


def state_to_safetensors(model: torch.nn.Module) -> bytes:
    """The model's state as a safetensors blob (the only model format the server accepts)."""
    from safetensors.torch import save

    return save({k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()})
