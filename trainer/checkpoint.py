"""Trainer checkpoints: model, optimizer, where in which selection each stream was, counters.

A checkpoint is the trainer's own local file (never received from the wire), written with
``torch.save`` atomically (temporary file + rename) and read with ``weights_only=True`` so
loading it cannot run code. Schema, format 1:

    format       1
    epoch        0-based epoch in progress (== epochs done when ``step`` is 0 and offsets are 0)
    step         optimizer steps already taken in that epoch
    offsets      [[int]] per rank, per stream: next sample offset in that rank's share
    selections   [str] per server: selection id streamed in that epoch ("full" for all data)
    num_selected int, total samples in those selections
    model        model state_dict (unwrapped from DDP)
    optimizer    optimizer state_dict
    counters     {wall_s, selection_s, eval_s, bytes_received, eval_bytes, model_bytes, samples_seen, model_version}
    identity     {dataset, strategy, fraction, servers, world_size}: must match to resume
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint", "CheckpointMismatch"]

FORMAT = 1


class CheckpointMismatch(ValueError):
    """The checkpoint belongs to a different run (names the differing field)."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus the format number) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, **state}, f)
        f.flush()
        os.fsync(f.fileno())  # on disk before it replaces the previous one (a crash or power loss)
    os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint intact
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself
    finally:
        os.close(dir_fd)
    return path


def load_checkpoint(path: Path, *, identity: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a checkpoint; with ``identity``, refuse one from a different run."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError) as exc:  # truncated, corrupt or foreign file
        # torch's unpickling text advises weights_only=False, which we never do: don't repeat it
        first = ("not a torch checkpoint file" if isinstance(exc, pickle.UnpicklingError) or not str(exc).strip()
                 else str(exc).strip().splitlines()[0])
        raise CheckpointMismatch(f"{path}: not a readable trainer checkpoint ({first})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointMismatch(f"{path}: not a trainer checkpoint of format {FORMAT}")
    if identity is not None:
        saved = state.get("identity", {})
        for key, want in identity.items():
            if saved.get(key) != want:
                raise CheckpointMismatch(
                    f"{path}: checkpoint has {key}={saved.get(key)!r} but this run has {key}={want!r}")
    return state
