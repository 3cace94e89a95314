"""Per-run loss histories: which examples a training run has learned (NeSSA SS, CREST's drops).

The rule. Every model-based selection of a run (``SelectRequest.run`` non-empty) reports the
loss of each example it forwarded through the model (cross-entropy, read off the gradient
proxy: ``host.minibatch.losses_from_features``). Per example the history keeps

* ``streak``: the number of *consecutive observations* of that example with
  ``loss < drop_threshold``; an observation with ``loss >= drop_threshold`` resets it to 0.
  Selections that do not see an example (it was not in a pool, or it was dropped) leave its
  streak as it is. A selection with ``drop_threshold == 0`` has nothing to compare against:
  it records the losses but leaves the streaks alone. When a run's threshold changes, every
  streak restarts from 0 (a streak counts observations under one threshold).
* ``last_loss``: the loss at its latest observation (NaN before the first).

An example is *learned* when ``streak >= watch``. A selection with ``drop_threshold > 0``
drops the learned examples from its candidates before it draws pools / forwards anything,
but never so many that fewer than ``keep`` candidates remain (``keep = max(ceil(min_keep *
N), what the strategy's pools need)``): when it must keep some learned examples it keeps the
hardest ones, i.e. it drops the learned examples with the lowest ``last_loss`` first.

Memory is bounded: one int16 streak (saturating at 32767) and one float32 last loss per
example per run, and at most ``max_runs`` (16) runs; the least recently used run is forgotten
first. Histories live in the server's memory only: a restart forgets them (the next
selections of the run start counting again).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np

__all__ = ["LossHistory", "LossHistories", "keep_count", "MAX_WATCH", "DEFAULT_MAX_RUNS"]

#: The largest ``watch`` a history can count to (its int16 streak saturates here).
MAX_WATCH = int(np.iinfo(np.int16).max)
#: Runs kept at once (least recently used forgotten first).
DEFAULT_MAX_RUNS = 16


class LossHistory:
    """One (data set, run): streaks and last losses of its ``n`` examples. Thread-safe."""

    def __init__(self, n: int):
        self.n = int(n)
        self.streak = np.zeros(self.n, np.int16)
        self.last_loss = np.full(self.n, np.nan, np.float32)
        self.threshold = 0.0  # the positive threshold the streaks count under (0: none yet)
        self.observations = 0  # selections that reported losses
        self._lock = threading.Lock()

    def observe(self, ids: np.ndarray, losses: np.ndarray, threshold: float) -> None:
        """Record one selection's losses of ``ids`` (the rule in the module docs)."""
        ids = np.asarray(ids, dtype=np.int64)
        losses = np.asarray(losses, dtype=np.float32)
        if ids.shape != losses.shape or ids.ndim != 1:
            raise ValueError(f"ids and losses must be 1-D and aligned, got {ids.shape} and {losses.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n):
            raise ValueError(f"ids out of range [0, {self.n})")
        ids, first = np.unique(ids, return_index=True)  # one observation per example
        losses = losses[first]
        threshold = float(threshold)
        with self._lock:
            self.observations += 1
            self.last_loss[ids] = losses
            if not threshold > 0:
                return
            if threshold != self.threshold:
                self.streak[:] = 0
                self.threshold = threshold
            low = losses < threshold  # NaN losses count as not learned
            old = self.streak[ids].astype(np.int32)
            self.streak[ids] = np.where(low, np.minimum(old + 1, MAX_WATCH), 0).astype(np.int16)

    def learned(self, watch: int) -> np.ndarray:
        """Ids (ascending) whose streak reached ``watch``."""
        with self._lock:
            return np.flatnonzero(self.streak >= int(watch)).astype(np.int64)

    def dropped(self, watch: int, keep: int) -> np.ndarray:
        """Ids (ascending) to leave out: the learned ones, lowest last loss first, while at
        least ``keep`` of the ``n`` examples remain."""
        with self._lock:
            learned = np.flatnonzero(self.streak >= int(watch))
            room = max(0, self.n - max(0, int(keep)))
            if len(learned) > room:
                order = np.argsort(self.last_loss[learned], kind="stable")  # easiest first
                learned = learned[order[:room]]
        return np.sort(learned).astype(np.int64)


class LossHistories:
    """Histories keyed by ``(dataset, run)``, at most ``max_runs`` of them (LRU)."""

    def __init__(self, max_runs: int = DEFAULT_MAX_RUNS):
        if max_runs < 1:
            raise ValueError(f"max_runs must be >= 1, got {max_runs}")
        self.max_runs = int(max_runs)
        self._runs: OrderedDict[tuple[str, str], LossHistory] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, dataset: str, run: str, n: int) -> LossHistory:
        """The run's history (new, or fresh if the data set's size changed); marks it used."""
        key = (str(dataset), str(run))
        with self._lock:
            hist = self._runs.get(key)
            if hist is None or hist.n != int(n):
                hist = LossHistory(n)
                self._runs[key] = hist
            self._runs.move_to_end(key)
            while len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)
            return hist

    def peek(self, dataset: str, run: str) -> LossHistory | None:
        """The run's history if it is kept (does not mark it used)."""
        with self._lock:
            return self._runs.get((str(dataset), str(run)))

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)


def keep_count(n: int, min_keep: float, need: int = 0) -> int:
    """Candidates a selection must keep: ``max(ceil(min_keep * n), need)``, at most ``n``."""
    return min(int(n), max(int(math.ceil(float(min_keep) * n - 1e-9)), int(need)))
