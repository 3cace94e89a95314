"""SampleStream over a live storage service (loopback gRPC): exact coverage, resume, ranks, zero copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from storage_service.client import StorageClient, StorageError
from storage_service.store import Store
from trainer.dataset import SampleStream, StreamPart
from nessa.demo import prepare_store
from storage_service.server import serve_local as local_service

ROW = 64  # digits: 8x8 uint8


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    prepare_store(root, None, progress=False)
    with local_service(root) as target, StorageClient(target) as client:
        yield client, Store(root / "digits" / "train"), Store(root / "digits" / "test")


def collect(stream):
    batches = list(stream)
    ids = torch.cat([b.ids for b in batches]).numpy() if batches else np.empty(0, np.int64)
    return batches, ids


def test_full_stream_is_every_sample_once_with_store_bytes(service):
    client, train, _ = service
    # 20-row streamed batches and 48-row mini-batches: most mini-batches straddle two.
    stream = SampleStream([StreamPart(client, "digits/train", "full")], epoch=3, seed=7, batch_size=48,
                          batch_bytes=20 * ROW)
    batches, ids = collect(stream)
    n = len(train)
    assert sorted(ids.tolist()) == list(range(n))
    assert [len(b) for b in batches[:-1]] == [48] * (len(batches) - 1) and 0 < len(batches[-1]) <= 48
    x = torch.cat([b.x for b in batches]).numpy()
    y = torch.cat([b.y for b in batches]).numpy()
    w = torch.cat([b.w for b in batches]).numpy()
    samples, labels = train.take(ids)
    np.testing.assert_array_equal(x, samples)
    np.testing.assert_array_equal(y, labels)
    assert np.all(w == 1.0) and batches[0].y.dtype == torch.int64 and batches[0].x.dtype == torch.uint8
    assert stream.bytes_received >= n * ROW and sum(b.nbytes for b in batches) == stream.bytes_received
    assert batches[-1].offsets == (n,)
    # The shuffled order is a function of (seed, epoch).
    _, again = collect(SampleStream([StreamPart(client, "digits/train", "full")], epoch=3, seed=7, batch_size=100))
    _, other = collect(SampleStream([StreamPart(client, "digits/train", "full")], epoch=4, seed=7, batch_size=100))
    assert again.tolist() == ids.tolist() and other.tolist() != ids.tolist()


def test_resume_from_offsets_has_no_duplicate_and_no_gap(service):
    client, train, _ = service
    part = StreamPart(client, "digits/train", "full")
    kw = dict(epoch=1, seed=0, batch_size=50, batch_bytes=33 * ROW)
    _, whole = collect(SampleStream([part], **kw))
    head = []
    for i, b in enumerate(SampleStream([part], **kw)):
        head.append(b.ids)
        if i == 6:
            resume_at = b.offsets
            break  # stop mid-stream: the prefetch threads and the RPC must wind down
    resumed = StreamPart(client, "digits/train", "full", start_offset=resume_at[0])
    _, tail = collect(SampleStream([resumed], **kw))
    joined = torch.cat(head).tolist() + tail.tolist()
    assert resume_at == (350,)
    assert joined == whole.tolist()


def test_ranks_take_disjoint_complete_shares_and_limit_evens_them(service):
    client, train, _ = service
    part = StreamPart(client, "digits/train", "full")
    shares = [collect(SampleStream([part], epoch=0, seed=1, batch_size=64, rank=r, world_size=3))[1]
              for r in range(3)]
    assert sorted(np.concatenate(shares).tolist()) == list(range(len(train)))
    assert set(shares[0].tolist()).isdisjoint(shares[1].tolist())
    limit = len(train) // 3
    capped = [collect(SampleStream([part], epoch=0, seed=1, batch_size=64, rank=r, world_size=3, limit=limit))[1]
              for r in range(3)]
    assert [len(c) for c in capped] == [limit] * 3
    assert all(c.tolist() == s[:limit].tolist() for c, s in zip(capped, shares))


def test_two_streams_interleave_round_robin(service):
    client, train, test = service
    parts = [StreamPart(client, "digits/train", "full"), StreamPart(client, "digits/test", "full")]
    stream = SampleStream(parts, epoch=0, seed=0, batch_size=32, batch_bytes=32 * ROW)
    batches = list(stream)
    assert sum(len(b) for b in batches) == len(train) + len(test)
    assert batches[-1].offsets == (len(train), len(test))
    # Round robin: both offsets advance together while both streams last.
    assert batches[1].offsets == (32, 32) and batches[3].offsets == (64, 64)


def test_mini_batches_inside_a_streamed_batch_are_views_not_copies(service):
    client, train, _ = service
    stream = SampleStream([StreamPart(client, "digits/train", "full")], epoch=0, seed=0, batch_size=64,
                          batch_bytes=64 << 10)  # one streamed batch holds every sample
    it = iter(stream)
    a, b, c = next(it), next(it), next(it)
    it.close()
    # Consecutive mini-batches are adjacent slices of one received buffer.
    assert b.x.data_ptr() - a.x.data_ptr() == 64 * ROW
    assert c.x.data_ptr() - b.x.data_ptr() == 64 * ROW


def test_stream_errors_reach_the_consumer(service):
    client, _, _ = service
    with pytest.raises(StorageError, match="NOT_FOUND"):
        list(SampleStream([StreamPart(client, "digits/train", "no-such-selection")], epoch=0, seed=0, batch_size=8))
    with pytest.raises(ValueError, match="rank"):
        SampleStream([StreamPart(client, "digits/train", "full")], epoch=0, seed=0, batch_size=8, rank=2, world_size=2)
