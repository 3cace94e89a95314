"""Distributed plumbing for the training loop: rank, world, device, and the few collectives it
needs (sums, gathers, a string broadcast), over torch.distributed (gloo on CPU, nccl on GPU).
Nothing is pickled: every collective moves tensors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch

from trainer.config import ConfigError, TrainConfig

__all__ = ["Dist"]


@dataclass
class Dist:
    rank: int
    world: int
    device: torch.device
    owns_group: bool = False  # setup() created the process group, so close() destroys it

    @property
    def on(self) -> bool:
        return self.world > 1

    @staticmethod
    def setup(cfg: TrainConfig) -> "Dist":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        want = cfg.device
        if want == "auto":
            want = "cuda" if torch.cuda.is_available() else "cpu"
        if want.startswith("cuda"):
            if not torch.cuda.is_available():
                raise ConfigError(f"--device {cfg.device}: CUDA is not available on this machine")
            device = torch.device(f"cuda:{local}") if want == "cuda" else torch.device(want)
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
        owns = world > 1 and not torch.distributed.is_initialized()
        if owns:
            torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        rank = torch.distributed.get_rank() if world > 1 else 0
        return Dist(rank, world, device, owns)

    def close(self) -> None:
        """Destroy the process group this run created. Left to interpreter exit, the backend's
        threads are torn down while the other ranks may already be gone, which aborted a rank
        now and then ("terminate called without an active exception", seen in CI)."""
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over ranks (float64)."""
        t = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        if self.on:
            torch.distributed.all_reduce(t)
        return t.tolist()

    def gather_ints(self, values: Sequence[int]) -> list[list[int]]:
        """Every rank's ``values`` (same length on all ranks), indexed by rank."""
        t = torch.tensor(list(values), dtype=torch.int64, device=self.device)
        if not self.on:
            return [t.tolist()]
        out = [torch.zeros_like(t) for _ in range(self.world)]
        torch.distributed.all_gather(out, t)
        return [o.tolist() for o in out]

    def broadcast_text(self, text: str | None) -> str:
        """Rank 0's string on every rank (as a byte tensor: nothing is pickled)."""
        if not self.on:
            return text or ""
        data = (text or "").encode() if self.rank == 0 else b""
        n = torch.tensor([len(data)], dtype=torch.int64, device=self.device)
        torch.distributed.broadcast(n, 0)
        buf = torch.zeros(int(n.item()), dtype=torch.uint8, device=self.device)
        if self.rank == 0 and data:
            buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        torch.distributed.broadcast(buf, 0)
        return bytes(buf.cpu().tolist()).decode()
