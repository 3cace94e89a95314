"""Multiply-accumulate count of one forward pass of a torch model (Conv2d and Linear only).

Used to derive the ``model_macs`` of the scenarios that run the project's own models
(``host.models``): a test recounts them so the scenario table cannot drift from the code.
Element-wise layers (ReLU, pooling, BatchNorm folded at export, residual adds) are ignored:
they cost no DSP multiplies on the FPGA and are a few percent of the work elsewhere.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["count_macs", "model_macs", "param_bytes", "SMALL_CNN_28_MACS", "SMALL_CNN_28_BYTES"]

# The demo's model (small_cnn, 28x28, 10 classes), counted by this module (tests recount it).
SMALL_CNN_28_MACS, SMALL_CNN_28_BYTES = 1_117_056, 424_056


def count_macs(model, input_shape: Sequence[int]) -> int:
    """MACs of ``model`` on one input of ``input_shape`` (C, H, W), by forward hooks."""
    import torch
    from torch import nn

    total = 0

    def conv_hook(mod: nn.Conv2d, _inp, out) -> None:
        nonlocal total
        kh, kw = mod.kernel_size
        total += out[0].numel() * (mod.in_channels // mod.groups) * kh * kw

    def linear_hook(mod: nn.Linear, _inp, out) -> None:
        nonlocal total
        total += out[0].numel() * mod.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return int(total)


def model_macs(arch: str, sample_shape: Sequence[int], num_classes: int) -> int:
    """MACs per sample of a ``host.models`` architecture."""
    from host.models import build_model, input_chw

    return count_macs(build_model(arch, sample_shape, num_classes), input_chw(sample_shape))


def param_bytes(arch: str, sample_shape: Sequence[int], num_classes: int) -> int:
    """float32 bytes of the model's state (what PushModel sends), buffers included."""
    from host.models import build_model

    m = build_model(arch, sample_shape, num_classes)
    return int(sum(t.numel() * t.element_size() for t in m.state_dict().values()))
