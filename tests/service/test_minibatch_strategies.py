"""The mini-batch strategies (nessa-pa, crest), nessa-ss and the per-run loss history, over
real loopback gRPC with real store and selection files: ordered mini-batch coresets, features
for the pools only, learned examples dropped (never below min_keep), whole mini-batches per
rank, every bad option refused with INVALID_ARGUMENT naming the field, and the emu backend."""

from __future__ import annotations

import math

import grpc
import numpy as np
import pytest
import torch

import host
from host.models import build_model
from storage_service._proto import nessa_pb2 as pb
from storage_service.client import StorageClient, StorageError
from storage_service.learned import MAX_WATCH, LossHistories, LossHistory, keep_count
from storage_service.selection_file import read_selection
from storage_service.store import Store
from tests.service.helpers import make_root, running

N = 600  # data set "a": 600 x 1x8x8, 4 classes (tests/service/helpers.py)
RANDOM_MODEL, EASY0_MODEL = 1, 2


def _biased_model(bias) -> torch.nn.Module:
    """small_cnn whose logits are the constant ``bias``: loss ~0 for the favoured classes'
    examples, high for the others (what a partly trained model looks like to the history)."""
    torch.manual_seed(0)
    model = build_model("small_cnn", (1, 8, 8), 4)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return model


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_root(tmp_path_factory.mktemp("minibatch"))


@pytest.fixture(scope="module")
def server(root):
    with running(root) as (srv, port):
        with StorageClient(f"127.0.0.1:{port}", timeout=120) as c:
            torch.manual_seed(3)
            c.push_model("small_cnn", build_model("small_cnn", (1, 8, 8), 4), RANDOM_MODEL, dataset="a")
            c.push_model("small_cnn", _biased_model([8.0, 0.0, 0.0, 0.0]), EASY0_MODEL, dataset="a")
        yield srv, port


@pytest.fixture
def client(server):
    with StorageClient(f"127.0.0.1:{server[1]}", timeout=120, retries=0) as c:
        yield c


@pytest.fixture
def labels(root):
    return Store(root / "a").labels


def _ids(batches) -> np.ndarray:
    return np.concatenate([b.ids for b in batches]) if batches else np.empty(0, np.int64)


def _weights(batches) -> np.ndarray:
    return np.concatenate([b.weights for b in batches]) if batches else np.empty(0, np.float32)


def _refused(fn, *args, **kw) -> str:
    with pytest.raises(StorageError) as info:
        fn(*args, **kw)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT, info.value
    return info.value.details


# -- nessa-pa ----------------------------------------------------------------------------------
def test_nessa_pa_mini_batches_weights_and_order(client, server, root):
    sel = client.select("a", "nessa-pa", 0.25, seed=4, model_version=RANDOM_MODEL, batch_size=16, num_batches=4)
    assert sel.state == "done" and sel.strategy == "nessa-pa" and sel.model_version == RANDOM_MODEL
    assert (sel.batch_size, sel.num_batches, sel.num_selected) == (16, 4, 64)
    assert sel.num_forwarded == 4 * 64  # pool = 16 / 0.25; four disjoint pools fit in 600
    assert sel.num_dropped == 0 and sel.objective > 0 and client.get_selection(sel.id) == sel
    ids, weights, doc = read_selection(root / ".nessa" / "selections" / f"{sel.id}.arrow")
    assert doc["ordered"] is True and doc["batch_size"] == 16 and doc["num_batches"] == 4 and doc["pool_size"] == 64
    per_batch = weights.reshape(4, 16).sum(axis=1)
    assert np.allclose(per_batch, 16, atol=1e-3) and weights.min() > 0
    assert len(set(ids.tolist())) == 64  # disjoint pools: no id twice
    assert sel.class_counts == np.bincount(Store(root / "a").labels[ids], minlength=4).tolist()
    # Streamed in file order, whatever the seed / epoch; weights come along.
    for seed, epoch in ((0, 0), (9, 3)):
        batches = list(client.stream_samples("a", selection=sel.id, seed=seed, epoch=epoch, batch_bytes=64 * 5))
        assert np.array_equal(_ids(batches), ids) and np.array_equal(_weights(batches), weights)
        assert all(b.total == 64 for b in batches)
    st = Store(root / "a")
    for b in batches:
        samples, labels = st.take(b.ids)
        assert np.array_equal(b.samples, samples) and np.array_equal(b.labels, labels)
    # Content-addressed: the same options find it again; each option changes the id.
    assert client.select("a", "nessa-pa", 0.25, seed=4, model_version=RANDOM_MODEL, batch_size=16, num_batches=4).id == sel.id
    others = [dict(batch_size=8), dict(num_batches=5), dict(pool_size=32), dict(run="r")]
    base = dict(seed=4, model_version=RANDOM_MODEL, batch_size=16, num_batches=4)
    assert len({client.select("a", "nessa-pa", 0.25, **{**base, **o}).id for o in others} | {sel.id}) == 5


def test_features_are_computed_for_the_pools_only(client, monkeypatch):
    """The server forwards exactly the union of the pools through the model, not the data set."""
    real = host.gradient_features
    seen = []

    def spy(model, samples, labels, **kw):
        seen.append(len(samples))
        return real(model, samples, labels, **kw)

    monkeypatch.setattr(host, "gradient_features", spy)  # the server runs in this process
    sel = client.select("a", "nessa-pa", 0.5, seed=11, model_version=RANDOM_MODEL, batch_size=10, num_batches=3)
    assert sum(seen) == sel.num_forwarded == 3 * 20 and sel.num_selected == 30
    seen.clear()
    crest = client.select("a", "crest", 0.1, seed=11, model_version=RANDOM_MODEL, batch_size=8, pool_size=40, num_batches=2)
    assert sum(seen) == crest.num_forwarded == 80 and (crest.batch_size, crest.num_batches) == (8, 2)
    seen.clear()
    craig = client.select("a", "craig", 0.1, seed=11, model_version=RANDOM_MODEL)
    assert sum(seen) == craig.num_forwarded == N and craig.batch_size == craig.num_batches == 0


def test_nessa_pa_default_pool_and_tiny_data_overlap(client, server):
    """Pools larger than the data set overlap: the selection may hold an id twice (in different
    mini-batches), never within one; defaults batch 128, 5 batches, pool batch / fraction."""
    sel = client.select("a", "nessa-pa", 0.5, seed=2, model_version=RANDOM_MODEL)
    assert (sel.batch_size, sel.num_batches, sel.num_selected) == (128, 5, 640)
    ids, weights = server[0].core.selections.arrays(sel.id)
    assert len(set(ids.tolist())) < 640  # 5 pools of 256 cannot be disjoint in 600
    assert all(len(set(b.tolist())) == 128 for b in ids.reshape(5, 128))
    assert np.allclose(weights.reshape(5, 128).sum(axis=1), 128, atol=1e-2)
    assert sel.num_forwarded <= N
    assert server[0].core.selections.get(sel.id).pool_size == 256


# -- crest -------------------------------------------------------------------------------------
def test_crest_defaults(client, server):
    sel = client.select("a", "crest", 0.1, seed=5, model_version=RANDOM_MODEL, batch_size=16)
    rec = server[0].core.selections.get(sel.id)
    # 5 mini-batches; pool max(1% of 600, 2 * 16) = 32; nothing dropped without a threshold.
    assert (sel.batch_size, sel.num_batches, rec.pool_size, sel.num_dropped) == (16, 5, 32, 0)
    assert sel.num_selected == 80 and sel.num_forwarded == 5 * 32
    small = client.select("a", "crest", 0.1, seed=5, model_version=RANDOM_MODEL, batch_size=2)
    assert server[0].core.selections.get(small.id).pool_size == 6  # 1% of 600 beats 2 * 2
    assert small.num_forwarded == 30 and small.num_selected == 10
    default = client.select("a", "crest", 0.1, seed=5, model_version=RANDOM_MODEL)
    assert (default.batch_size, default.num_batches) == (128, 5)
    assert server[0].core.selections.get(default.id).pool_size == 256


def test_crest_drops_learned_examples_from_its_pools(client, labels):
    kw = dict(model_version=EASY0_MODEL, batch_size=20, pool_size=120, num_batches=5, run="crest-run",
              drop_threshold=0.5, watch=1)
    first = client.select("a", "crest", 0.1, seed=1, **kw)
    assert first.num_dropped == 0 and first.num_forwarded == 600
    # Every class-0 example was seen once with loss ~0.001 < 0.5 (watch 1): learned. But the
    # pools need 5 * 120 = 600 candidates, more than min_keep's 300: nothing may go.
    second = client.select("a", "crest", 0.1, seed=2, **kw)
    assert second.num_dropped == 0
    # Pools of 60 need 300 = min_keep's 300: every learned (class-0) example goes.
    third = client.select("a", "crest", 0.1, seed=3, **{**kw, "pool_size": 60})
    n0 = int((labels == 0).sum())
    assert third.num_dropped == n0 and third.class_counts[0] == 0
    assert third.num_forwarded == 300  # 5 pools of 60 from the 600 - n0 candidates


# -- nessa-ss and the loss history ---------------------------------------------------------------
def test_nessa_ss_drops_learned_examples_across_selections(client, server, labels):
    n0 = int((labels == 0).sum())
    kw = dict(model_version=EASY0_MODEL, run="ss-run", drop_threshold=0.5, watch=2)
    s1 = client.select("a", "nessa-ss", 0.2, seed=1, **kw)
    s2 = client.select("a", "nessa-ss", 0.2, seed=2, **kw)
    assert (s1.num_dropped, s2.num_dropped) == (0, 0)  # two observations needed (watch 2)
    assert s1.num_forwarded == s2.num_forwarded == N and s1.batch_size == 0
    s3 = client.select("a", "nessa-ss", 0.2, seed=3, **kw)
    assert s3.num_dropped == n0 and s3.num_forwarded == N - n0
    assert s3.class_counts[0] == 0 and s3.num_selected == sum(math.ceil(0.2 * int(c) - 1e-9) for c in np.bincount(labels)[1:])
    ids, weights = server[0].core.selections.arrays(s3.id)
    assert not (labels[ids] == 0).any() and abs(float(weights.sum()) - len(ids)) < 1e-2 * len(ids)
    # Not ordered: streamed shuffled like any subset.
    streamed = _ids(list(client.stream_samples("a", selection=s3.id, seed=1)))
    assert sorted(streamed.tolist()) == ids.tolist() and not np.array_equal(streamed, ids)
    # Asking for s3 again is the same selection (no recount); another run has its own history.
    assert client.select("a", "nessa-ss", 0.2, seed=3, **kw) == s3
    assert client.select("a", "nessa-ss", 0.2, seed=3, **{**kw, "run": "other"}).num_dropped == 0
    # craig records losses in its run but never drops.
    c = [client.select("a", "craig", 0.2, seed=s, **{**kw, "run": "craig-run"}) for s in (1, 2, 3)]
    assert [x.num_dropped for x in c] == [0, 0, 0] and all(x.num_forwarded == N for x in c)
    hist = server[0].core.selections.histories.peek("a", "craig-run")
    assert len(hist.learned(2)) == n0


def test_drops_never_go_below_min_keep_and_keep_the_hardest(client, server, labels):
    # Threshold 20: every example is "learned" (losses are ~0.001 or ~8); min_keep decides.
    kw = dict(model_version=EASY0_MODEL, drop_threshold=20.0, watch=1)
    client.select("a", "nessa-ss", 0.2, seed=1, run="keep-90", min_keep=0.9, **kw)
    s = client.select("a", "nessa-ss", 0.2, seed=2, run="keep-90", min_keep=0.9, **kw)
    assert s.num_dropped == N - 540 and s.num_forwarded == 540  # ceil(0.9 * 600) kept
    hist = server[0].core.selections.histories.peek("a", "keep-90")
    assert (labels[hist.dropped(1, 540)] == 0).all()  # the easiest (class 0, loss ~0) go first
    assert s.class_counts[0] == math.ceil(0.2 * (int((labels == 0).sum()) - 60) - 1e-9)
    client.select("a", "nessa-ss", 0.2, seed=1, run="keep-default", **kw)
    d = client.select("a", "nessa-ss", 0.2, seed=2, run="keep-default", **kw)
    assert d.num_dropped == N // 2 and d.num_forwarded == N // 2  # min_keep 0 -> 0.5
    one = [client.select("a", "nessa-ss", 0.2, seed=k, run="keep-all", min_keep=1.0, **kw) for k in (1, 2, 3)]
    assert [x.num_dropped for x in one] == [0, 0, 0]


def test_loss_history_rule_and_bounds():
    h = LossHistory(5)
    assert h.streak.dtype == np.int16 and h.last_loss.dtype == np.float32
    ids = np.arange(5)
    h.observe(ids, np.array([0.1, 0.1, 2.0, 0.1, 0.1]), 0.5)
    h.observe(np.array([0, 1, 2]), np.array([0.1, 0.9, 0.1]), 0.5)  # 1 reset; 3, 4 not seen
    assert h.streak.tolist() == [2, 0, 1, 1, 1] and h.learned(2).tolist() == [0]
    h.observe(ids, np.full(5, 0.2), 0.0)  # no threshold: losses recorded, streaks unchanged
    assert h.streak.tolist() == [2, 0, 1, 1, 1] and np.allclose(h.last_loss, 0.2)
    h.observe(np.array([3]), np.array([0.0]), 0.7)  # another threshold: streaks restart
    assert h.streak.tolist() == [0, 0, 0, 1, 0]
    h.observe(ids, np.array([0.3, 0.1, 0.2, 0.4, 0.5]), 0.7)
    assert h.dropped(1, keep=3).tolist() == [1, 2]  # room for two: the lowest losses
    assert h.dropped(1, keep=0).tolist() == [0, 1, 2, 3, 4] and h.dropped(1, keep=5).tolist() == []
    for _ in range(3):
        h.streak[:] = MAX_WATCH
        h.observe(ids, np.zeros(5), 0.7)
    assert (h.streak == MAX_WATCH).all()  # saturates, no int16 overflow
    hs = LossHistories()
    first = hs.get("d", "run-0", 10)
    for k in range(1, 17):
        hs.get("d", f"run-{k}", 10)
    assert len(hs) == 16 and hs.peek("d", "run-0") is None  # least recently used forgotten
    assert hs.get("d", "run-1", 10) is hs.peek("d", "run-1") and first is not hs.get("d", "run-0", 10)
    assert keep_count(600, 0.5) == 300 and keep_count(600, 0.5, 400) == 400 and keep_count(600, 0.1, 9999) == 600


# -- ordered streaming ---------------------------------------------------------------------------
def test_ordered_rank_shares_are_whole_mini_batches(client, server):
    sel = client.select("a", "nessa-pa", 0.25, seed=8, model_version=RANDOM_MODEL, batch_size=12, num_batches=5)
    ids, weights = server[0].core.selections.arrays(sel.id)
    batches = ids.reshape(5, 12)
    for world in (2, 3, 7):
        shares = []
        for rank in range(world):
            got = list(client.stream_samples("a", selection=sel.id, seed=rank, epoch=world, rank=rank, world_size=world,
                                             batch_bytes=64 * 7))
            share = _ids(got)
            expect = batches[rank::world].ravel()
            assert np.array_equal(share, expect), (world, rank)
            assert all(b.total == len(expect) for b in got)
            shares.append(share)
        assert sum(len(s) for s in shares) == 60
    # start_offset: a row position within the rank's share (rank 1 of 2: batches 1 and 3).
    share = batches[1::2].ravel()
    rest = _ids(list(client.stream_samples("a", selection=sel.id, rank=1, world_size=2, start_offset=17)))
    assert np.array_equal(rest, share[17:])
    assert list(client.stream_samples("a", selection=sel.id, rank=1, world_size=2, start_offset=24)) == []
    with pytest.raises(StorageError) as info:
        list(client.stream_samples("a", selection=sel.id, rank=1, world_size=2, start_offset=25))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_ordered_selection_survives_a_restart(tmp_path):
    root = make_root(tmp_path)
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        c.push_model("small_cnn", _biased_model([0.0, 1.0, 0.0, 0.0]), 1, dataset="a")
        sel = c.select("a", "crest", 0.1, model_version=1, batch_size=8, num_batches=3)
        first = _ids(list(c.stream_samples("a", selection=sel.id, rank=1, world_size=2)))
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        assert c.get_selection(sel.id) == sel
        assert np.array_equal(_ids(list(c.stream_samples("a", selection=sel.id, rank=1, world_size=2))), first)
        assert len(first) == 8


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "strategy,fields,name",
    [
        (pb.STRATEGY_NESSA_PA, dict(batch_size=32, pool_size=16), "pool_size"),
        (pb.STRATEGY_CREST, dict(batch_size=32, pool_size=31), "pool_size"),
        (pb.STRATEGY_NESSA_PA, dict(pool_size=16), "pool_size"),  # below the default batch (128)
        (pb.STRATEGY_NESSA_PA, dict(drop_threshold=-0.5, run="r"), "drop_threshold"),
        (pb.STRATEGY_CREST, dict(drop_threshold=float("nan"), run="r"), "drop_threshold"),
        (pb.STRATEGY_NESSA_SS, dict(drop_threshold=float("inf"), run="r"), "drop_threshold"),
        (pb.STRATEGY_CRAIG, dict(drop_threshold=-1.0), "drop_threshold"),
        (pb.STRATEGY_NESSA_SS, dict(drop_threshold=0.5, run="r", min_keep=1.5), "min_keep"),
        (pb.STRATEGY_CREST, dict(min_keep=-0.1), "min_keep"),
        (pb.STRATEGY_CREST, dict(min_keep=float("nan")), "min_keep"),
        (pb.STRATEGY_NESSA_SS, dict(run="r"), "drop_threshold"),
        (pb.STRATEGY_NESSA_SS, dict(), "drop_threshold"),
        (pb.STRATEGY_NESSA_SS, dict(drop_threshold=0.5), "run"),
        (pb.STRATEGY_NESSA_PA, dict(batch_size=601), "batch_size"),
        (pb.STRATEGY_CREST, dict(batch_size=10_000), "batch_size"),
        (pb.STRATEGY_NESSA_PA, dict(num_batches=2**32 - 1), "num_batches"),
        (pb.STRATEGY_CREST, dict(drop_threshold=0.5, run="r", watch=40_000), "watch"),
        (pb.STRATEGY_CREST, dict(run="x" * 300), "run"),
        (99, dict(), "strategy"),
    ],
)
def test_bad_options_are_invalid_argument_naming_the_field(server, strategy, fields, name):
    """Straight through the generated stub (the client checks some of these itself)."""
    request = pb.SelectRequest(dataset="a", strategy=strategy, fraction=0.25, model_version=RANDOM_MODEL, **fields)
    with grpc.insecure_channel(f"127.0.0.1:{server[1]}") as ch:
        call = ch.unary_unary("/nessa.v1.Storage/Select", request_serializer=pb.SelectRequest.SerializeToString,
                              response_deserializer=pb.SelectionInfo.FromString)
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert name in info.value.details(), info.value.details()


def test_bad_options_through_the_client(client):
    """Server-side refusals reach the client as StorageError; negative values never leave it."""
    assert "batch_size" in _refused(client.select, "img/b", "nessa-pa", 0.5, batch_size=91)  # b has 90 samples
    assert "drop_threshold" in _refused(client.select, "a", "nessa-ss", 0.2, model_version=RANDOM_MODEL)
    for kw, name in ((dict(batch_size=-1), "batch_size"), (dict(num_batches=-2), "num_batches"),
                     (dict(pool_size=-3), "pool_size"), (dict(watch=-1), "watch"),
                     (dict(drop_threshold=-0.1), "drop_threshold"), (dict(min_keep=-0.5), "min_keep"),
                     (dict(min_keep=2.0), "min_keep"), (dict(drop_threshold=float("nan")), "drop_threshold"),
                     (dict(batch_size=64, pool_size=32), "pool_size"), (dict(batch_size=1.5), "batch_size")):
        with pytest.raises(ValueError, match=name):
            client.select("a", "nessa-pa", 0.25, **kw)


# -- emu backend -----------------------------------------------------------------------------------
def test_emu_backend_gives_a_valid_nessa_pa_selection(client, server, labels):
    sel = client.select("a", "nessa-pa", 0.5, seed=6, model_version=RANDOM_MODEL, backend="emu", batch_size=8, num_batches=2,
                        timeout=600)
    assert sel.state == "done" and sel.backend == "emu"
    assert (sel.batch_size, sel.num_batches, sel.num_selected, sel.num_forwarded) == (8, 2, 16, 32)
    ids, weights = server[0].core.selections.arrays(sel.id)
    assert len(set(ids.tolist())) == 16 and ((ids >= 0) & (ids < N)).all()
    assert np.allclose(weights.reshape(2, 8).sum(axis=1), 8, atol=1e-3) and weights.min() > 0
    assert np.array_equal(_ids(list(client.stream_samples("a", selection=sel.id))), ids)
