"""Mini-batch coreset training (nessa-pa, crest): rounds of coresets chosen next to the data,
prefetched one round ahead so that selection stays off the trainer's critical path.

    RoundFeeder (one background thread, queue depth 1):
        model snapshot -> PushModel -> Select(R mini-batch coresets) -> stream them -> Round
    RoundStream (the trainer's batches, ``steps`` per epoch):
        take round k (only the very first take can wait for a whole selection)
        -> ask for round k+1 at once, with the model as it is now (so it is at most one round old)
        -> nessa-pa: each of the R batches once
           crest:    cycle over the R batches until the loss model drifts (``tau``) or ``max_hold``
        -> if round k+1 is not ready yet, keep cycling over round k's batches rather than wait
           (a coreset stays a good one for a while: CREST's premise); wait only past ``max_hold``

So the trainer never waits for the storage host except for the first round and when the storage
side falls more than ``max_hold`` steps behind; ``mean_hold`` in the metrics shows how far each
round was stretched.

CREST's drift check (Yang, Kang, Mirzasoleiman, ICML 2023) is kept nearly free here: the first
time a round's batch j is trained, its loss L_j, gradient g_j and the parameters theta_j are
the anchor (the training step computes them anyway); on every later visit the step's own loss at
theta is compared with the quadratic model L_j + g_j.d + 1/2 d^T diag(H) d, d = theta - theta_j,
and the round ends when the relative error passes ``tau``. diag(H) is a Hutchinson estimate
(Rademacher v, v * Hv), refreshed every ``hessian_every`` rounds and averaged exponentially, as
AdaHessian does. The reference checks on separate random examples; checking on the coreset
batches themselves costs no extra forward pass (said in BENCHMARKS.md).
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from host.models import to_input
from host.strategies import spec
from trainer.config import TrainConfig
from trainer.dataset import Batch, SampleStream
from trainer.model_state import state_to_safetensors
from trainer.retry import RetryPolicy, retrying

__all__ = ["Round", "RoundFeeder", "RoundStream", "CrestCheck"]


@dataclass
class Round:
    """One selection's mini-batches, ready on the training device."""

    batches: list[Batch]
    storage_s: float  # seconds the storage hosts spent selecting it (features + greedy)
    forwarded: int  # samples the storage hosts forwarded through the model for it
    dropped: int  # candidates excluded as learned when it was chosen
    model_bytes: int  # model bytes pushed for it


class RoundFeeder:
    """Fetches rounds in the background: ``request(model)`` snapshots the model and starts the
    next selection; ``take()`` returns it (and how long the trainer waited for it)."""

    def __init__(self, cfg: TrainConfig, cluster: Any, arch: str, device: torch.device, *, run: str,
                 first_version: int):
        self.cfg, self.cluster, self.arch, self.device, self.run = cfg, cluster, arch, device, run
        self._version = int(first_version)
        self._rounds = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nessa-rounds")
        self._pending: Future | None = None
        self.curvature = None  # AdaCore: the trainer's CurvatureEMA, pushed with the model

    def request(self, model: torch.nn.Module) -> None:
        if self._pending is not None:
            raise RuntimeError("a round is already being fetched")
        extra = self.curvature.tensors() if self.curvature is not None else None
        blob = state_to_safetensors(model, extra)  # now: the selection sees this model, not a later one
        self._version += 1
        seed = self.cfg.seed * 100_003 + 7_919 * self._rounds + 1
        self._rounds += 1
        self._pending = self._pool.submit(self._fetch, blob, self._version, seed)

    def ready(self) -> bool:
        """Whether the requested round has arrived (take() will not wait)."""
        return self._pending is not None and self._pending.done()

    def take(self) -> tuple[Round, float]:
        if self._pending is None:
            raise RuntimeError("no round requested")
        t0 = time.perf_counter()
        try:
            return self._pending.result(), time.perf_counter() - t0
        finally:
            self._pending = None

    def _fetch(self, blob: bytes, version: int, seed: int) -> Round:
        cfg = self.cfg
        retry = RetryPolicy(retries=cfg.storage_retries, backoff=cfg.retry_backoff)

        def once() -> list:  # the push too: a restarted server may have lost the model
            self.cluster.push_model(self.arch, blob, version)
            return self.cluster.select(
                cfg.strategy, cfg.fraction, seed=seed, model_version=version, backend=cfg.backend,
                batch_size=cfg.batch_size, num_batches=cfg.minibatches, pool_size=cfg.pool_size, run=self.run,
                drop_threshold=cfg.drop_threshold, watch=cfg.watch, min_keep=cfg.min_keep)

        infos = retrying(once, retry, f"selection {cfg.strategy.value}@{cfg.fraction:g} (round {self._rounds})")
        stream = SampleStream(self.cluster.parts(cfg.dataset, [i.id for i in infos]), epoch=0, seed=seed,
                              batch_size=cfg.batch_size, rank=0, world_size=1, batch_bytes=cfg.batch_bytes,
                              prefetch=cfg.prefetch, device=self.device, retry=retry)
        batches = list(stream)  # an ordered selection streams batch after batch
        return Round(batches, storage_s=float(sum(i.seconds for i in infos)),
                     forwarded=int(sum(getattr(i, "num_forwarded", 0) for i in infos)),
                     dropped=int(sum(getattr(i, "num_dropped", 0) for i in infos)),
                     model_bytes=len(blob) * len(self.cluster.sources))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


@dataclass
class CrestCheck:
    """CREST's quadratic loss model around each batch's first visit (see the module docs)."""

    tau: float
    hessian_every: int = 10
    beta: float = 0.9  # EMA of the Hutchinson diagonal
    _h: torch.Tensor | None = None
    _h_updates: int = 0
    _anchors: dict[int, tuple[float, torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    errors: list[float] = field(default_factory=list)

    def new_round(self) -> None:
        self._anchors.clear()

    def curvature(self, model: torch.nn.Module, batch: Batch, shape, use_weights: bool, rounds: int) -> None:
        """Refresh diag(H) with one Hutchinson sample on ``batch`` every ``hessian_every`` rounds."""
        if self._h is not None and rounds % self.hessian_every:
            return
        params = [p for p in model.parameters() if p.requires_grad]
        per = F.cross_entropy(model(to_input(batch.x, shape)), batch.y, reduction="none")
        loss = (per * batch.w).mean() if use_weights else per.mean()
        grads = torch.autograd.grad(loss, params, create_graph=True)
        vs = [torch.randint_like(p, 2) * 2 - 1 for p in params]
        hv = torch.autograd.grad(grads, params, grad_outputs=vs)
        h = _flat([v * x for v, x in zip(vs, hv)]).detach()
        self._h_updates += 1
        self._h = h if self._h is None else self.beta * self._h + (1 - self.beta) * h

    def drifted(self, j: int, loss: float, model: torch.nn.Module) -> bool:
        """Call after backward, before the optimizer step: True when batch ``j``'s loss has left
        the quadratic model of its first visit by more than ``tau`` (relative)."""
        params = [p for p in model.parameters() if p.requires_grad]
        theta = _flat([p.detach() for p in params])
        if j not in self._anchors:
            grad = _flat([p.grad.detach() if p.grad is not None else torch.zeros_like(p) for p in params])
            self._anchors[j] = (loss, grad.clone(), theta.clone())
            return False
        l0, g0, t0 = self._anchors[j]
        d = theta - t0
        pred = l0 + float(g0 @ d)
        if self._h is not None:
            pred += 0.5 * float((self._h * d * d).sum())
        err = abs(loss - pred) / max(abs(loss), 1e-8)
        self.errors.append(err)
        return err > self.tau


class RoundStream:
    """The trainer's batches for mini-batch strategies, ``epoch(steps)`` at a time."""

    def __init__(self, feeder: RoundFeeder, cfg: TrainConfig, model: torch.nn.Module, shape):
        self.feeder, self.cfg, self.model, self.shape = feeder, cfg, model, shape
        self.adaptive = spec(cfg.strategy).adaptive
        self.check = CrestCheck(cfg.tau) if self.adaptive else None
        self._round: Round | None = None
        self._pos = 0  # steps taken on the current round
        self._ended = False  # the drift check ended the current round
        self.stats = dict(select_wait_s=0.0, storage_s=0.0, forwarded=0, dropped=0, rounds=0, model_bytes=0,
                          held_steps=[])
        self._current: tuple[int, Batch] | None = None
        feeder.request(model)  # the first round: the only selection the trainer may wait for

    def _next_round(self) -> None:
        if self._round is not None:
            self.stats["held_steps"].append(self._pos)
        rnd, waited = self.feeder.take()
        self.feeder.request(self.model)  # the next one is computed while this one trains
        self.stats["select_wait_s"] += waited
        self.stats["storage_s"] += rnd.storage_s
        self.stats["forwarded"] += rnd.forwarded
        self.stats["dropped"] = rnd.dropped
        self.stats["model_bytes"] += rnd.model_bytes
        self.stats["rounds"] += 1
        if not rnd.batches:
            raise RuntimeError("the storage service selected an empty round")
        self._round, self._pos, self._ended = rnd, 0, False
        if self.check is not None:
            self.check.new_round()
            self.check.curvature(self.model, rnd.batches[0], self.shape, self.cfg.use_weights, self.stats["rounds"] - 1)

    def _round_done(self) -> bool:
        if self._round is None:
            return True
        r = len(self._round.batches)
        if self._pos >= max(r, self.cfg.max_hold):
            return True  # held long enough: wait for the next round if it is late
        if not self.adaptive:
            due = self._pos >= r  # nessa-pa: every coreset once
        else:  # crest: at least one pass (the anchors), then until the loss model drifts
            due = self._ended and self._pos >= r
        # A late selection does not stall training: keep cycling over this round meanwhile.
        return due and self.feeder.ready()

    def epoch(self, steps: int) -> Iterator[Batch]:
        for _ in range(steps):
            if self._round_done():
                self._next_round()
            j = self._pos % len(self._round.batches)
            batch = self._round.batches[j]
            if self._pos >= len(self._round.batches):  # a reused coreset: its bytes came already
                batch = dataclasses.replace(batch, nbytes=0)
            self._current = (j, batch)
            self._pos += 1
            yield batch

    def observe(self, loss: float) -> None:
        """The loop calls this after backward, before the step, with the current batch's loss."""
        if self.check is not None and self._current is not None and not self._ended:
            self._ended = self.check.drifted(self._current[0], loss, self.model)

    def take_stats(self) -> dict:
        """Counters since the last call (``dropped``: the latest value)."""
        out = dict(self.stats)
        held = out.pop("held_steps")
        out["mean_hold"] = sum(held) / len(held) if held else float(self._pos)
        self.stats.update(select_wait_s=0.0, storage_s=0.0, forwarded=0, rounds=0, model_bytes=0, held_steps=[])
        return out

    def close(self) -> None:
        self.feeder.close()
