"""Server memory spent on large StreamSamples requests, main port and data plane.

    python bench/unauth_memory.py [--requests 4] [--request-mib 120] [--repeats 3] [--md BENCHMARKS.md]

For each row it starts a storage server (``create_server`` with a bearer token) in a child
process on a small temp store, warms it with one authenticated stream, then sends
``--requests`` concurrent StreamSamples requests of ``--request-mib`` MiB each and reports the
server's peak RSS above its RSS before (Linux: peak reset through /proc/PID/clear_refs, read
back as VmHWM), its RSS growth after, the status codes and the wall time; each row is run
``--repeats`` times on fresh servers, and the medians are reported (single runs vary by tens of
MiB). Rows:

* ``data plane, no token``: the data plane checks the token before it reads the request;
* ``data plane, with the token``: an authenticated client's oversized request, refused by the
  receive limit ``DATA_PLANE_MAX_REQUEST_BYTES`` (gRPC C++ 1.51 reads it first);
* ``main port, no token``: StreamSamples on the main (gRPC-Python) port as the server configures it.
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

from storage_service._grpc_options import DATA_PLANE_MAX_REQUEST_BYTES  # noqa: E402
from storage_service.client import StorageClient  # noqa: E402
from storage_service.ingest import write_store  # noqa: E402

_TOKEN = "bench-token"
_METHOD = "/nessa.v1.Storage/StreamSamples"

# The child: a server with the token; argv: store root.
_SERVE = ("import sys, threading\n"
          "from storage_service.server import create_server\n"
          "server, port = create_server('127.0.0.1:0', sys.argv[1], token=%r)\n"
          "print(port, server.data_port, flush=True)\n"
          "threading.Event().wait()\n") % _TOKEN


def _status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) << 10
    raise KeyError(key)


def _flood(target: str, n: int, body: bytes, metadata=()) -> list[str]:
    """``n`` concurrent StreamSamples requests of ``body``: their status codes."""
    codes: list[str] = []
    opts = [("grpc.max_send_message_length", len(body) + (1 << 20))]

    def one() -> None:
        with grpc.insecure_channel(target, options=opts) as ch:
            try:
                list(ch.unary_stream(_METHOD)(body, timeout=120, metadata=metadata))
                codes.append("OK")
            except grpc.RpcError as exc:
                codes.append(exc.code().name)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def _row(root: Path, which: str, authenticated: bool, n: int, body: bytes) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(root)], stdout=subprocess.PIPE, text=True,
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
        metadata = (("authorization", f"Bearer {_TOKEN}"),) if authenticated else ()
        codes = _flood(f"127.0.0.1:{data_port if which != 'main' else port}", n, body, metadata)
        seconds = time.perf_counter() - t0
        peak, after = _status(proc.pid, "VmHWM"), _status(proc.pid, "VmRSS")
    finally:
        proc.kill()
        proc.wait(30)
    return dict(peak=(peak - before) / 2**20, after=(after - before) / 2**20, codes=codes, seconds=seconds)


def _native_version() -> str:
    try:
        out = subprocess.run(["pkg-config", "--modversion", "grpc++"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(version unknown)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=4, help="concurrent requests (default 4)")
    ap.add_argument("--request-mib", type=int, default=120, help="MiB per request (default 120)")
    ap.add_argument("--repeats", type=int, default=3, help="fresh servers per row; medians reported (default 3)")
    ap.add_argument("--md", type=Path, help="also put the table into this markdown file's section")
    args = ap.parse_args(argv)
    body = b"\x0a" + b"\x00" * ((args.request_mib << 20) - 1)  # length-prefixed garbage: never parsed
    rows = [("data plane, no token", "data", False, DATA_PLANE_MAX_REQUEST_BYTES),
            ("data plane, with the token", "data", True, DATA_PLANE_MAX_REQUEST_BYTES),
            ("main port, no token", "main", False, None)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        write_store(root / "a", rng.integers(0, 256, (512, 1, 28, 28), dtype=np.uint8), np.arange(512) % 4, name="a")
        results = []
        for label, which, authenticated, limit in rows:
            runs = [_row(root, which, authenticated, args.requests, body) for _ in range(args.repeats)]
            med = {k: float(np.median([r[k] for r in runs])) for k in ("peak", "after", "seconds")}
            results.append((label, limit, dict(med, codes=[c for r in runs for c in r["codes"]],
                                               peaks=[r["peak"] for r in runs])))
    lines = [f"{args.requests} concurrent StreamSamples requests of {args.request_mib} MiB each, "
             f"median of {args.repeats} fresh servers (server peak RSS above its RSS before; "
             f"`python bench/unauth_memory.py --repeats {args.repeats}`):", "",
             "| port | receive limit | codes (all runs) | peak growth MiB (median) | each run | RSS growth after MiB | seconds |",
             "| --- | --- | --- | ---: | --- | ---: | ---: |"]
    for label, limit, r in results:
        codes = ", ".join(f"{c} x{r['codes'].count(c)}" for c in sorted(set(r["codes"])))
        lim = "as configured" if limit is None else f"{limit >> 10} KiB"
        each = ", ".join(f"{p:.0f}" for p in r["peaks"])
        lines.append(f"| {label} | {lim} | {codes} | {r['peak']:.1f} | {each} | {r['after']:.1f} | {r['seconds']:.2f} |")
    lines += ["", f"The data plane checks the token before it reads a request; gRPC C++ {_native_version()} (the data plane) "
              "assembles a request it reads before checking its size, so an authenticated client's oversized request "
              f"still costs about its size; gRPC-Python's core ({grpc.__version__}, the main port) refuses from the "
              "length prefix."]
    table = "\n".join(lines)
    print(table)
    if args.md:
        from bench._markdown import replace_section

        replace_section(args.md, "## Large StreamSamples requests (server memory)", "## Large StreamSamples requests (server memory)\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
