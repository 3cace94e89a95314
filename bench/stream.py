"""Streaming throughput: NeSSA's StreamSamples vs Arrow Flight DoGet vs a plain protobuf message.

    python bench/stream.py [--mib 1024] [--repeats 5] [--baseline-tree DIR]

One run, same data for every transport: a store of Fashion-MNIST-sized rows (784 B) and one of
3x32x32 rows (3072 B), random bytes, ``--mib`` MiB each. (With 256 MiB a stream lasts ~0.2 s
and the MB/s ratio of one cell swung by +-0.15 between identical runs on a 2-core VM.) Every transport serves the same
shuffled order (``storage_service.sampling``), gathering rows from the same memory-mapped
store per batch, with the same columns (id, label, weight, sample):

* ``nessa``  — ``nessa serve``'s StreamSamples as ``StorageClient.stream_samples`` runs it by
  default: on the server's data plane (gRPC C++, ``storage_service/_native_stream.cc``), SampleBatch
  wire bytes built by hand and lent to gRPC without a copy, read into one ``bytes`` and viewed
  zero-copy by numpy;
* ``nessa-dp-grpcio`` — the data plane read with gRPC-Python: ``StorageClient`` on an install
  without the native extension (e.g. the trainer image, which has no compiler);
* ``nessa-grpcio`` — the same server's main port (gRPC-Python), ``StorageClient(data_plane=False)``:
  what any gRPC-Python client of the service gets;
* ``flight`` — ``pyarrow.flight`` DoGet of a GeneratorStream of record batches;
* ``protobuf`` — the same SampleBatch message built as a protobuf object (``body`` = Arrow IPC
  bytes) and serialized / parsed by protobuf, then read with pyarrow.

Settings, alike for every transport where they apply: ``nessa`` and ``protobuf`` (both
gRPC-Python) use the product's gRPC options (``storage_service._grpc_options``: message limits,
unary-stream reads on the caller's thread); ``flight`` runs with pyarrow.flight's own defaults.
Every server and client process keeps freed memory for reuse (``storage_service._malloc``,
which ``nessa serve`` and ``StorageClient`` apply to themselves).

All servers live in one separate process (only one transport is busy at a time); server CPU is
that process's user+system time, client CPU each client process's own (``resource``). Targets
(issue 4): nessa >= 0.8x Flight's MB/s with one stream and >= 1.0x with two parallel streams
(two client processes, ranks 0 and 1 of 2); server CPU-s/GB <= 1.5x Flight's.
MB/s counts sample bytes delivered (10^6 bytes); CPU-s/GB per 10^9 sample bytes.

``--baseline-tree DIR`` (a before/after of a server-side change in one run): a second server
process runs from another checkout (e.g. ``git archive`` of an earlier commit with its
extensions built) over the same stores; kinds ``nessa-base`` and ``nessa-grpcio-base`` stream
from it with this checkout's client, interleaved with the other kinds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

ROW_SHAPES = {784: (1, 28, 28), 3072: (3, 32, 32)}


# -- the server process ----------------------------------------------------------------------
def _batches(store, seed, epoch, rank, world, batch_bytes, start=0):
    """(offset, ids, labels, weights, rows) in the shared shuffled order (same for every transport)."""
    from storage_service.sampling import rows_per_batch, share

    n = len(store)
    ids, weights = share(np.arange(n, dtype=np.int64), np.ones(n, np.float32), seed=seed, epoch=epoch, rank=rank, world_size=world)
    row_bytes = int(np.prod(store.manifest.sample_shape))
    step = rows_per_batch(row_bytes, batch_bytes)
    for pos in range(min(int(start), len(ids)), len(ids), step):
        chunk = ids[pos : pos + step]
        samples, labels = store.take(chunk)
        yield pos, chunk, labels, weights[pos : pos + step], samples.reshape(len(chunk), -1)


def _record_batch(schema, chunk, labels, weights, rows):
    sample = pa.FixedSizeBinaryArray.from_buffers(schema.field("sample").type, len(chunk), [None, pa.py_buffer(rows)])
    return pa.record_batch([pa.array(chunk), pa.array(labels), pa.array(weights), sample], schema=schema)


def serve(root: str) -> None:
    import grpc
    import pyarrow.flight as fl
    from concurrent.futures import ThreadPoolExecutor

    from storage_service._grpc_options import SERVER_OPTIONS
    from storage_service._proto import nessa_pb2 as pb
    from storage_service._wire import batch_schema
    from storage_service.server import create_server
    from storage_service.store import Store

    stores = {name: Store(Path(root) / name) for name in ("r784", "r3072")}
    schemas = {k: batch_schema(int(np.prod(s.manifest.sample_shape)), s.manifest.sample_shape, "uint8") for k, s in stores.items()}

    nessa, nessa_port = create_server("127.0.0.1:0", root, max_workers=8)

    class Flight(fl.FlightServerBase):
        def do_get(self, context, ticket):
            q = json.loads(ticket.ticket)
            st, schema = stores[q["dataset"]], schemas[q["dataset"]]
            gen = (_record_batch(schema, c, l, w, r) for _, c, l, w, r in _batches(st, q["seed"], q["epoch"], q["rank"], q["world"], q["batch_bytes"], q["start"]))
            return fl.GeneratorStream(schema, gen)

    flight = Flight("grpc://127.0.0.1:0")

    def plain(request, context):
        st, schema = stores[request.dataset], schemas[request.dataset]
        for pos, c, l, w, r in _batches(st, request.seed, request.epoch, request.rank, request.world_size or 1, request.batch_bytes, request.start_offset):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, schema) as writer:
                writer.write_batch(_record_batch(schema, c, l, w, r))
            yield pb.SampleBatch(header=pb.BatchHeader(offset=pos, count=len(c)), body=sink.getvalue().to_pybytes())

    proto = grpc.server(ThreadPoolExecutor(8), options=SERVER_OPTIONS)
    handler = grpc.unary_stream_rpc_method_handler(plain, pb.StreamSamplesRequest.FromString, lambda m: m.SerializeToString())
    proto.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Plain", {"Stream": handler}),))
    proto_port = proto.add_insecure_port("127.0.0.1:0")
    proto.start()
    print(json.dumps({"nessa": nessa_port, "nessa-dp-grpcio": nessa_port, "nessa-grpcio": nessa_port, "flight": flight.port, "protobuf": proto_port}), flush=True)
    sys.stdin.read()  # run until the parent closes our stdin
    nessa.stop(0)
    proto.stop(0)
    flight.shutdown()


# -- client processes ------------------------------------------------------------------------
def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def client(kind: str, port: int, dataset: str, total: int, rank: int, world: int, batch_bytes: int, go, ready, out) -> None:
    import grpc

    from storage_service._grpc_options import CHANNEL_OPTIONS
    from storage_service._malloc import keep_freed_memory
    from storage_service._proto import nessa_pb2 as pb

    keep_freed_memory()  # what StorageClient does for nessa, applied to every transport alike
    req = dict(seed=1, epoch=0, rank=rank, world=world, batch_bytes=batch_bytes)
    if kind in ("nessa", "nessa-dp-grpcio", "nessa-grpcio"):
        from storage_service import _native_channel
        from storage_service.client import StorageClient

        if kind == "nessa-dp-grpcio":
            _native_channel._native = None  # as if the extension were not built in this process
        conn = StorageClient(f"127.0.0.1:{port}", data_plane=kind != "nessa-grpcio")
        conn.wait_ready()
        want = {"nessa": "NativeChannel", "nessa-dp-grpcio": "_PythonDataChannel", "nessa-grpcio": "NoneType"}[kind]
        if type(conn._data_plane_channel()).__name__ != want:
            raise SystemExit(f"{kind}: expected a {want} data channel (is storage_service._native_stream built?)")

        def run(start=0):
            for b in conn.stream_samples(dataset, selection="full", seed=1, epoch=0, rank=rank, world_size=world, batch_bytes=batch_bytes, start_offset=start):
                yield b.count, b.samples.nbytes
    elif kind == "flight":
        import pyarrow.flight as fl

        conn = fl.connect(f"grpc://127.0.0.1:{port}")
        def run(start=0):
            ticket = fl.Ticket(json.dumps({"dataset": dataset, "start": start, **req}).encode())
            for chunk in conn.do_get(ticket):
                b = chunk.data
                col = b.column(3)
                samples = np.frombuffer(col.buffers()[1], np.uint8)  # the same views the nessa client makes
                b.column(0).to_numpy(), b.column(1).to_numpy(), b.column(2).to_numpy()
                yield b.num_rows, len(col) * col.type.byte_width if samples.size else 0
    else:
        conn = grpc.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)
        call = conn.unary_stream("/bench.Plain/Stream", request_serializer=lambda m: m.SerializeToString(), response_deserializer=pb.SampleBatch.FromString)
        grpc.channel_ready_future(conn).result(timeout=10)
        def run(start=0):
            msg = pb.StreamSamplesRequest(dataset=dataset, selection="full", seed=1, epoch=0, rank=rank, world_size=world, batch_bytes=batch_bytes, start_offset=start)
            for m in call(msg):
                b = pa.ipc.open_stream(m.body).read_next_batch()
                col = b.column(3)
                samples = np.frombuffer(col.buffers()[1], np.uint8)
                b.column(0).to_numpy(), b.column(1).to_numpy(), b.column(2).to_numpy()
                yield b.num_rows, len(col) * col.type.byte_width if samples.size else 0

    # Warm up (connection, first-call setup) on the last few rows, off the clock.
    for _ in range(2):
        for _ in run(total // world - 10):
            pass
    ready.put(rank)
    go.wait()
    c0, t0 = _cpu(), time.perf_counter()
    rows = nbytes = 0
    for n, nb in run():
        rows += n
        nbytes += nb
    out.put((rows, nbytes, time.perf_counter() - t0, _cpu() - c0))
    conn.close()


def measure(kind, port, server_proc, dataset, total, streams, batch_bytes) -> dict:
    ctx = mp.get_context("spawn")
    go, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    how = kind.removesuffix("-base")  # a baseline server is read like the current one
    procs = [ctx.Process(target=client, args=(how, port, dataset, total, r, streams, batch_bytes, go, ready, out)) for r in range(streams)]
    for p in procs:
        p.start()
    for _ in procs:  # clients import, connect and warm up before the clock starts
        ready.get(timeout=120)
    time.sleep(0.2)
    s0 = sum(server_proc.cpu_times()[:2])
    t0 = time.perf_counter()
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - t0
    s1 = sum(server_proc.cpu_times()[:2])
    for p in procs:
        p.join()
    rows = sum(r[0] for r in results)
    nbytes = sum(r[1] for r in results)
    return dict(rows=rows, bytes=nbytes, wall=wall, server_cpu=s1 - s0, client_cpu=sum(r[3] for r in results))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=1024, help="MiB of sample bytes per row size (default 1024)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per cell; the median MB/s is kept (default 5)")
    ap.add_argument("--rows", default="784,3072", help="row sizes to run, of 784,3072 (default both)")
    ap.add_argument("--batches", default="1,4", help="batch sizes in MiB (default 1,4)")
    ap.add_argument("--streams", default="1,2", help="parallel streams (default 1,2)")
    ap.add_argument("--kinds", default="flight,nessa,nessa-dp-grpcio,nessa-grpcio,protobuf", help="transports; flight first (the anchor)")
    ap.add_argument("--baseline-tree", type=Path, help="serve kinds nessa-base / nessa-grpcio-base from this other checkout")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    import subprocess

    import psutil

    from storage_service.ingest import write_store

    tmp = tempfile.TemporaryDirectory(prefix="nessa-bench-")
    rng = np.random.default_rng(0)
    for row, shape in ROW_SHAPES.items():
        n = (args.mib << 20) // row
        write_store(Path(tmp.name) / f"r{row}", rng.integers(0, 256, (n, *shape), dtype=np.uint8), rng.integers(0, 10, n), name=f"r{row}")
    server = subprocess.Popen([sys.executable, __file__, "--serve", tmp.name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ports = json.loads(server.stdout.readline())
    sproc = psutil.Process(server.pid)
    sprocs = {k: sproc for k in ports}
    base = None
    if args.baseline_tree is not None:
        base = subprocess.Popen([sys.executable, str(args.baseline_tree / "bench" / "stream.py"), "--serve", tmp.name],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        base_ports = json.loads(base.stdout.readline())
        for k in ("nessa", "nessa-grpcio"):
            ports[f"{k}-base"] = base_ports[k]
            sprocs[f"{k}-base"] = psutil.Process(base.pid)
    rows_out = []
    try:
        for row in [int(x) for x in args.rows.split(",")]:
            for batch_mib in [int(x) for x in args.batches.split(",")]:
                for streams in [int(x) for x in args.streams.split(",")]:
                    total = (args.mib << 20) // row
                    kinds = tuple(args.kinds.split(","))
                    runs = {k: [] for k in kinds}
                    for _ in range(args.repeats):  # interleaved, so load swings hit every transport alike
                        for kind in kinds:
                            r = measure(kind, ports[kind], sprocs[kind], f"r{row}", total, streams, batch_mib << 20)
                            assert r["rows"] == total, (kind, r)
                            runs[kind].append(r)
                    cell = {}
                    for kind in kinds:
                        mbps = [r["bytes"] / r["wall"] / 1e6 for r in runs[kind]]
                        best = runs[kind][int(np.argsort(mbps)[len(mbps) // 2])]
                        gb = best["bytes"] / 1e9
                        cell[kind] = dict(mbps=statistics.median(mbps), sps=best["rows"] / best["wall"], scpu=best["server_cpu"] / gb, ccpu=best["client_cpu"] / gb)
                    anchor = cell.get("flight", {"mbps": float("nan"), "scpu": float("nan")})
                    for kind, r in cell.items():
                        rows_out.append((row, batch_mib, streams, kind, r, r["mbps"] / anchor["mbps"], r["scpu"] / anchor["scpu"]))
                        print(f"{row} B rows, {batch_mib} MiB batches, {streams} stream(s), {kind}: {r['mbps']:.0f} MB/s", file=sys.stderr, flush=True)
    finally:
        for proc in (server, base):
            if proc is not None:
                proc.stdin.close()
                proc.wait(30)
        tmp.cleanup()
    print(f"{args.mib} MiB of sample bytes per row size, shuffled full epoch, loopback, median of {args.repeats}\n")
    print("| row | batch | streams | transport | MB/s | samples/s | server CPU-s/GB | client CPU-s/GB | MB/s vs Flight | server CPU vs Flight |")
    print("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row, batch_mib, streams, kind, r, ratio, cpu_ratio in rows_out:
        print(f"| {row} B | {batch_mib} MiB | {streams} | {kind} | {r['mbps']:.0f} | {r['sps']:.0f} | {r['scpu']:.2f} | {r['ccpu']:.2f} | {ratio:.2f}x | {cpu_ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
