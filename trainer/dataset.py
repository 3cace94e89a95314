"""Streaming training data: ``StreamSamples`` from one or more storage services as a torch
``IterableDataset`` of ready mini-batches.

Data path (one thread per stream, so gRPC receive and Arrow decode overlap with training):

    server --StreamSamples--> client (Arrow body, zero-copy numpy views)
           --prefetch thread--> bounded queue (``prefetch`` streamed batches)
           --round-robin over streams--> mini-batch cutter --> Batch(x uint8, y, w) [--> pinned --> GPU]

Samples stay in the Arrow buffer the client received: ``torch.from_numpy`` wraps that memory,
and a mini-batch that falls inside one streamed batch is a slice of it (no copy). Only a
mini-batch that straddles two streamed batches is concatenated, and on CUDA each batch is
copied once into pinned memory for an asynchronous host-to-device transfer.

Under torchrun each rank asks every server for its own disjoint share (``rank`` of
``world_size``) of the epoch's shuffled order; ``limit`` makes all ranks take the same number
of samples so their collective calls stay in step. Each ``Batch`` carries, per stream, the
offset of the next unconsumed sample: pass those back as ``start_offsets`` to resume.

With a ``retry`` policy (``trainer.retry``), a stream that fails transiently (the server away,
hung past the client's idle deadline, busy) is opened again from the row after the last one
received, after a back-off, so no row is lost or repeated; past the bound the consumer gets
``StorageGaveUp``.

With ``soft_column`` (a distillation's soft labels, ``trainer.distilled``) every stream also
asks for that embedding column and each ``Batch`` carries its rows as ``soft`` (float32
[b, classes]), cut in step with the samples.
"""

from __future__ import annotations

import queue
import threading
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset

from trainer.retry import RetryPolicy
from trainer.source import SampleSource

__all__ = ["StreamPart", "Batch", "SampleStream"]

_END = object()


@dataclass(frozen=True)
class StreamPart:
    """One stream: a data set (or its part) on one storage service, with the selection to stream."""

    source: SampleSource
    dataset: str
    selection: str  # "full" or a selection id
    start_offset: int = 0


@dataclass
class Batch:
    """One training mini-batch."""

    x: torch.Tensor  # uint8 [b, *stored sample shape] (on the target device)
    y: torch.Tensor  # int64 [b]
    w: torch.Tensor  # float32 [b], coreset weights (1 for full data)
    ids: torch.Tensor  # int64 [b], global sample ids (CPU)
    offsets: tuple[int, ...]  # per stream: where to resume after this batch
    nbytes: int  # streamed bytes first used by this batch
    soft: torch.Tensor | None = None  # float32 [b, classes]: soft labels (SampleStream(soft_column=...))

    def __len__(self) -> int:
        return int(self.y.shape[0])


class _Error:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _as_tensor(array: Any) -> torch.Tensor:
    """Wrap a (possibly read-only) numpy view without copying; we never write to it."""
    arr = np.asarray(array)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "array is not writable": we only read
        return torch.from_numpy(arr)


class SampleStream(IterableDataset):
    """Iterate mini-batches of ``batch_size`` over the interleaved streams of ``parts``.

    Iterate it directly or through ``DataLoader(ds, batch_size=None)`` with no worker processes
    (the prefetch threads already overlap I/O; gRPC channels must not cross a fork).
    """

    def __init__(self, parts: Sequence[StreamPart], *, epoch: int, seed: int, batch_size: int,
                 rank: int = 0, world_size: int = 1, batch_bytes: int = 1 << 20, prefetch: int = 4,
                 device: torch.device | str = "cpu", limit: int | None = None, retry: RetryPolicy | None = None,
                 soft_column: str | None = None):
        if not parts:
            raise ValueError("SampleStream needs at least one stream")
        if batch_size < 1 or prefetch < 1:
            raise ValueError(f"batch_size and prefetch must be >= 1, got {batch_size}, {prefetch}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.parts = list(parts)
        self.epoch, self.seed = int(epoch), int(seed)
        self.batch_size, self.prefetch = int(batch_size), int(prefetch)
        self.rank, self.world_size = int(rank), int(world_size)
        self.batch_bytes = int(batch_bytes)
        self.device = torch.device(device)
        self.limit = limit
        self.retry = retry if retry is not None else RetryPolicy(retries=0)
        self.bytes_received = 0  # all streamed bytes taken off the queues so far
        self.soft_column = soft_column

    # -- background receive ---------------------------------------------------------------
    def _pump(self, part: StreamPart, q: queue.Queue, stop: threading.Event) -> None:
        offset, failures = part.start_offset, 0
        what = f"stream of {part.dataset!r} ({part.selection}) from {getattr(part.source, 'target', 'the storage service')}"
        try:
            while not stop.is_set():
                it = None
                try:
                    it = part.source.stream_samples(
                        part.dataset, selection=part.selection, epoch=self.epoch, seed=self.seed, rank=self.rank,
                        world_size=self.world_size, start_offset=offset, batch_bytes=self.batch_bytes,
                        **({"columns": (self.soft_column,)} if self.soft_column else {}))
                    for item in it:
                        failures = 0
                        offset = int(item.offset) + int(item.count)  # a reopened stream starts after it
                        if not self._put(q, item, stop):
                            return
                    return
                except Exception as exc:
                    if stop.is_set() or not self.retry.should_retry(exc, failures):
                        err = self.retry.gave_up(what, exc, failures)
                        if err is not exc:
                            err.__cause__ = exc
                        self._put(q, _Error(err), stop)
                        return
                    stop.wait(self.retry.note(what, exc, failures))
                    failures += 1
                finally:
                    close = getattr(it, "close", None)
                    if close is not None:
                        try:
                            close()  # ends the RPC early when the consumer stopped first
                        except Exception:
                            pass
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(q, _Error(exc), stop)
        finally:
            self._put(q, _END, stop)

    @staticmethod
    def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    # -- consumer ------------------------------------------------------------------------
    def _streamed(self) -> Iterator[tuple[int, Any]]:
        """Streamed batches, round-robin over the streams, as ``(stream index, SampleBatch)``."""
        stop = threading.Event()
        queues = [queue.Queue(maxsize=self.prefetch) for _ in self.parts]
        threads = [threading.Thread(target=self._pump, args=(p, q, stop), daemon=True,
                                    name=f"nessa-prefetch-{i}") for i, (p, q) in enumerate(zip(self.parts, queues))]
        for t in threads:
            t.start()
        try:
            active = list(range(len(self.parts)))
            while active:
                for i in list(active):
                    item = queues[i].get()
                    if item is _END:
                        active.remove(i)
                    elif isinstance(item, _Error):
                        raise item.exc
                    else:
                        yield i, item
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=5.0)

    def __iter__(self) -> Iterator[Batch]:
        offsets = [p.start_offset for p in self.parts]
        pending: deque = deque()  # [stream, first offset, x, y, w, ids, start row, soft or None]
        have = 0
        taken = 0
        new_bytes = 0
        limit = self.limit if self.limit is not None else float("inf")
        streamed = self._streamed()
        try:
            for i, sb in streamed:
                count = int(sb.count)
                if count == 0:
                    continue
                self.bytes_received += int(sb.nbytes)
                new_bytes += int(sb.nbytes)
                soft = _as_tensor(sb.columns[self.soft_column]) if self.soft_column else None
                pending.append([i, int(sb.offset), _as_tensor(sb.samples), _as_tensor(sb.labels),
                                _as_tensor(sb.weights), _as_tensor(sb.ids), 0, soft])
                have += count
                while have >= self.batch_size and taken < limit:
                    n = int(min(self.batch_size, limit - taken))
                    yield self._cut(pending, n, offsets, new_bytes)
                    have -= n
                    taken += n
                    new_bytes = 0
                if taken >= limit:
                    return
            while have > 0 and taken < limit:  # the epoch's last, short batch
                n = int(min(have, self.batch_size, limit - taken))
                yield self._cut(pending, n, offsets, new_bytes)
                have -= n
                taken += n
                new_bytes = 0
        finally:
            streamed.close()

    def _cut(self, pending: deque, n: int, offsets: list[int], nbytes: int) -> Batch:
        pieces = []
        need = n
        while need:
            seg = pending[0]
            i, first, x, y, w, ids, start, soft = seg
            k = min(need, x.shape[0] - start)
            pieces.append((x[start:start + k], y[start:start + k], w[start:start + k], ids[start:start + k],
                           None if soft is None else soft[start:start + k]))
            seg[6] = start + k
            offsets[i] = first + start + k
            need -= k
            if seg[6] == x.shape[0]:
                pending.popleft()
        cuda = self.device.type == "cuda"
        xs, ys, ws, idss, softs = zip(*pieces)
        if len(pieces) == 1:
            x = xs[0]  # a view into the received Arrow buffer
            if cuda:
                x = x.pin_memory()  # the one copy: into page-locked memory
        else:
            # Straddles two streamed batches: one copy, straight into (pinned, on CUDA) memory.
            x = torch.empty((n, *xs[0].shape[1:]), dtype=xs[0].dtype, pin_memory=cuda)
            torch.cat(xs, out=x)
        y = torch.cat(ys).to(torch.int64)  # labels and weights are small: 12 B a sample
        w = torch.cat(ws).to(torch.float32)
        ids = torch.cat(idss).to(torch.int64)
        soft = None if softs[0] is None else torch.cat(softs).to(torch.float32)
        if cuda:
            # Asynchronous host-to-device copies overlap with the previous step's compute.
            x = x.to(self.device, non_blocking=True)
            y = y.pin_memory().to(self.device, non_blocking=True)
            w = w.pin_memory().to(self.device, non_blocking=True)
            if soft is not None:
                soft = soft.pin_memory().to(self.device, non_blocking=True)
        return Batch(x=x, y=y, w=w, ids=ids, offsets=tuple(offsets), nbytes=nbytes, soft=soft)
