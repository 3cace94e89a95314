"""The P2P read path: where a store's sample bytes lie inside its Arrow shard files, and how they
are read into device memory.

A shard is an Arrow IPC *file*; each record batch's ``sample`` column (fixed_size_binary) is one
contiguous run of ``rows * sample_bytes`` bytes at a fixed file offset. On a SmartSSD those
runs are read with ``O_DIRECT`` ``preadv`` straight into a ``p2p`` buffer in FPGA DDR
(:meth:`host.device.flow.DeviceFlow.features_from_file`); the kernel then parses nothing -- it
reads the samples where they landed. Offsets are found from the memory map without reading the
sample bytes themselves.

How the bytes are read (short reads, O_DIRECT, the BAR window): :mod:`host.device.direct_io`.
Which FPGA reads which store: :mod:`host.device.pcie`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["ShardRuns", "shard_runs", "store_features"]

@dataclass(frozen=True)
class ShardRuns:
    path: Path
    runs: list[tuple[int, int]]  # (file offset, rows) of each record batch's sample bytes
    first_id: int  # global id of the shard's first row


def shard_runs(store: Any) -> list[ShardRuns]:
    """The sample-byte runs of every shard of an opened :class:`storage_service.store.Store`."""
    out = []
    for shard in store.manifest.shards:
        path = Path(store.path) / shard.file
        mm = pa.memory_map(str(path), "r")
        whole = mm.read_buffer()  # zero-copy over the mapping: addresses give file offsets
        reader = pa.ipc.open_file(whole)
        runs = []
        for b in range(reader.num_record_batches):
            col = reader.get_batch(b).column("sample")
            width = col.type.byte_width
            data = col.buffers()[1]
            runs.append((data.address - whole.address + col.offset * width, len(col)))
        out.append(ShardRuns(path, runs, int(shard.first_id)))
        mm.close()
    return out


def store_features(flow: Any, qm: Any, store: Any, *, embedding: bool = False, direct: bool = False) -> Any:
    """Features of every sample of ``store`` (id order), samples read P2P into device memory."""
    sb = int(np.prod(store.manifest.sample_shape)) * np.dtype(store.manifest.dtype).itemsize
    if store.manifest.dtype != "uint8" or sb != qm.sample_bytes:
        raise ValueError(f"store samples are {store.manifest.dtype} x {sb} bytes; the model reads uint8 x {qm.sample_bytes}")
    labels = np.asarray(store.labels, dtype=np.int32)
    from host.device.flow import _concat

    outs = []
    for sr in shard_runs(store):
        rows = sum(n for _, n in sr.runs)
        outs.append(flow.features_from_file(qm, str(sr.path), sr.runs, labels[sr.first_id:sr.first_id + rows],
                                            embedding=embedding, direct=direct))
    return _concat(outs, qm, embedding)
