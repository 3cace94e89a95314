"""Server memory spent on large unauthenticated StreamSamples requests, main port and data plane.

    python bench/unauth_memory.py [--requests 4] [--request-mib 120] [--md BENCHMARKS.md]

For each row it starts a storage server (``create_server`` with a bearer token, so the requests
below are unauthenticated) in a child process on a small temp store, warms it with one
authenticated stream, then sends ``--requests`` concurrent StreamSamples requests of
``--request-mib`` MiB each without the token and reports the server's peak RSS above its RSS
before (Linux: peak reset through /proc/PID/clear_refs, read back as VmHWM), its RSS growth
after, the status codes and the wall time. Rows:

* ``data plane``: the data plane as built (receive limit ``DATA_PLANE_MAX_REQUEST_BYTES``);
* ``data plane, 128 MiB limit``: the same server with the receive limit it had before
  (``MAX_MESSAGE_BYTES``), for the side-by-side ratio;
* ``main port``: StreamSamples on the main (gRPC-Python) port as the server configures it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import grpc  # noqa: E402

from storage_service._grpc_options import DATA_PLANE_MAX_REQUEST_BYTES, MAX_MESSAGE_BYTES  # noqa: E402
from storage_service._proto import nessa_pb2 as pb  # noqa: E402
from storage_service.client import StorageClient  # noqa: E402
from storage_service.ingest import write_store  # noqa: E402

_TOKEN = "bench-token"
_METHOD = "/nessa.v1.Storage/StreamSamples"

# The child: a server with the token; argv: store root, data-plane receive limit (0: as built).
_SERVE = ("import sys, threading\n"
          "from storage_service import _data_plane\n"
          "from storage_service.server import create_server\n"
          "if int(sys.argv[2]):\n"
          "    _data_plane.DATA_PLANE_MAX_REQUEST_BYTES = int(sys.argv[2])\n"
          "server, port = create_server('127.0.0.1:0', sys.argv[1], token=%r)\n"
          "print(port, server.data_port, flush=True)\n"
          "threading.Event().wait()\n") % _TOKEN


def _status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) << 10
    raise KeyError(key)


def _flood(target: str, n: int, body: bytes) -> list[str]:
    """``n`` concurrent unauthenticated StreamSamples requests of ``body``: their status codes."""
    codes: list[str] = []
    opts = [("grpc.max_send_message_length", len(body) + (1 << 20))]

    def one() -> None:
        with grpc.insecure_channel(target, options=opts) as ch:
            try:
                list(ch.unary_stream(_METHOD)(body, timeout=120))
                codes.append("OK")
            except grpc.RpcError as exc:
                codes.append(exc.code().name)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def _row(root: Path, which: str, limit: int, n: int, body: bytes) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(root), str(limit)], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=REPO)
    try:
        port, data_port = (int(x) for x in proc.stdout.readline().split())
        with StorageClient(f"127.0.0.1:{port}", token=_TOKEN, data_plane=which != "main") as c:  # warm-up
            sum(b.count for b in c.stream_samples("a", selection="full"))
        time.sleep(0.5)
        before = _status(proc.pid, "VmRSS")
        with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
            f.write("5")  # reset the peak (VmHWM) to the current RSS
        t0 = time.perf_counter()
        codes = _flood(f"127.0.0.1:{data_port if which != 'main' else port}", n, body)
        seconds = time.perf_counter() - t0
        peak, after = _status(proc.pid, "VmHWM"), _status(proc.pid, "VmRSS")
    finally:
        proc.kill()
        proc.wait(30)
    return dict(peak=(peak - before) / 2**20, after=(after - before) / 2**20, codes=codes, seconds=seconds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=4, help="concurrent requests (default 4)")
    ap.add_argument("--request-mib", type=int, default=120, help="MiB per request (default 120)")
    ap.add_argument("--md", type=Path, help="also put the table into this markdown file's section")
    args = ap.parse_args(argv)
    body = b"\x0a" + b"\x00" * ((args.request_mib << 20) - 1)  # length-prefixed garbage: never parsed
    rows = [("data plane", "data", 0, DATA_PLANE_MAX_REQUEST_BYTES),
            ("data plane, 128 MiB limit (before)", "data", MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES),
            ("main port", "main", 0, None)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        write_store(root / "a", rng.integers(0, 256, (512, 1, 28, 28), dtype=np.uint8), np.arange(512) % 4, name="a")
        results = [(label, limit, _row(root, which, patch, args.requests, body)) for label, which, patch, limit in rows]
    lines = [f"{args.requests} concurrent unauthenticated StreamSamples requests of {args.request_mib} MiB each "
             "(server peak RSS above its RSS before; `python bench/unauth_memory.py`):", "",
             "| port | receive limit | codes | peak growth MiB | RSS growth after MiB | seconds |",
             "| --- | --- | --- | ---: | ---: | ---: |"]
    for label, limit, r in results:
        codes = ", ".join(f"{c} x{r['codes'].count(c)}" for c in sorted(set(r["codes"])))
        lim = "as configured" if limit is None else f"{limit >> 10} KiB"
        lines.append(f"| {label} | {lim} | {codes} | {r['peak']:.1f} | {r['after']:.1f} | {r['seconds']:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.md:
        from bench._markdown import replace_section

        replace_section(args.md, "## Unauthenticated large requests", "## Unauthenticated large requests\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
