"""Peak memory growth of a serving process: PushModel, and large unauthenticated requests.

    python bench/push_memory.py [--model-mib 200] [--concurrent 4] [--requests 8] [--request-mib 120]
                                [--baseline-repo DIR]

Starts ``nessa serve`` (no data plane, with a token, --max-pushes = --concurrent) in a child
process on a temp store with one data set of 1x640x640 images, then measures the server's peak
RSS above its RSS before each scenario (Linux: the peak is reset through /proc/PID/clear_refs
and read back as VmHWM; a 2 ms sampler backs it up):

* one push of a small_cnn whose fc layer makes it ``--model-mib`` (sent in 1 MiB chunks);
* ``--concurrent`` such pushes at once (versions 2, 3, ...);
* ``--requests`` concurrent GetDataset requests of ``--request-mib`` each without the token
  (refused UNAUTHENTICATED; the main port's receive limit, 4 MiB by default, refuses them too),
  and once more against this checkout's server with its receive limits raised to 128 MiB, to
  show what deciding auth before reading the body buys by itself.

Prints one markdown table: growth in MiB and as a multiple of the model's size; with
``--baseline-repo`` (a checkout of another commit, e.g. ``git worktree add /tmp/old ec60375``)
the same scenarios against that checkout's server, side by side.
"""

from __future__ import annotations

import argparse
import os
import re
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

from storage_service._proto import nessa_pb2 as pb  # noqa: E402
from storage_service.client import StorageClient, StorageError  # noqa: E402
from storage_service.ingest import write_store  # noqa: E402

_TOKEN = "bench-token"


def _status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) << 10
    raise KeyError(key)


class _Peak:
    """Peak RSS of ``pid`` while the block runs, above its RSS when it began."""

    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self):
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
            self._hwm = True
        except OSError:
            self._hwm = False
        self.base = _status(self.pid, "VmRSS")
        self.sampled = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.sampled = max(self.sampled, _status(self.pid, "VmRSS"))
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        peak = max(self.sampled, _status(self.pid, "VmHWM") if self._hwm else 0)
        self.growth = peak - self.base


def _model_blob(mib: float) -> tuple[bytes, tuple[int, int, int]]:
    """A small_cnn safetensors blob of about ``mib`` MiB (fc is 64 x 32*(h/4)*(w/4) floats)."""
    import torch
    from safetensors.torch import save

    from host.models import build_model

    side = int(round((mib * (1 << 20) / (4 * 64 * 32)) ** 0.5)) * 4
    shape = (1, side, side)
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in build_model("small_cnn", shape, 4).state_dict().items()}
    return save(state), shape


def _serve(root: Path, concurrent: int, repo: Path, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int]:
    token_file = root.parent / "token"
    token_file.write_text(_TOKEN)
    cmd = [sys.executable, "-m", "nessa", "serve", str(root), "--port", "0", "--no-data-plane", "--token-file", str(token_file),
           "--max-model-mb", "1024", "--workers", "16"]
    env = dict(os.environ, PYTHONPATH=str(repo))
    usage = subprocess.run(cmd[:4] + ["--help"], capture_output=True, text=True, cwd=repo, env=env).stdout
    if "--max-pushes" in usage:  # an older server has no cap to raise
        cmd += ["--max-pushes", str(concurrent), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=repo, env=env)
    line = proc.stdout.readline()
    m = re.search(r"listening on \S+:(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"nessa serve did not start: {line!r}")
    return proc, int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-mib", type=float, default=200.0)
    ap.add_argument("--concurrent", type=int, default=4)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--request-mib", type=float, default=120.0)
    ap.add_argument("--baseline-repo", type=Path, help="also run the server of this checkout (another commit)")
    args = ap.parse_args()

    blob, shape = _model_blob(args.model_mib)
    size_mib = len(blob) / (1 << 20)
    repos = [REPO] + ([args.baseline_repo.resolve()] if args.baseline_repo else [])
    runs = [_scenarios(args, blob, shape, repo) for repo in repos]
    names = [_commit(r) for r in repos]
    print(f"server peak RSS growth, model {size_mib:.1f} MiB (small_cnn for {list(shape)}), 1 MiB chunks\n")
    print("| scenario | " + " | ".join(f"{n} MiB | {n} x model" for n in names) + " |")
    print("| --- |" + " ---: | ---: |" * len(repos))
    for i, (scenario, _) in enumerate(runs[0][0]):
        cells = [f"{rows[i][1] / (1 << 20):.1f} | {rows[i][1] / len(blob):.2f}" for rows, _ in runs]
        print(f"| {scenario} | " + " | ".join(cells) + " |")
    growth, codes = _auth_alone(args, REPO)
    print(f"\n{names[0]} with its receive limits raised to 128 MiB (auth before the body alone): "
          f"{args.requests} x {args.request_mib:g} MiB requests without token: {growth / (1 << 20):.1f} MiB ({codes})")
    for name, (_, codes) in zip(names, runs):
        print(f"{name} answered the requests without token: {codes}")


def _commit(repo: Path) -> str:
    out = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return (out.stdout.strip() or repo.name) + ("+" if dirty.stdout.strip() else "")


def _scenarios(args, blob: bytes, shape, repo: Path) -> tuple[list[tuple[str, int]], str]:
    """``([(scenario, peak growth in bytes)], status codes of the requests without token)``."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        write_store(root / "big", np.zeros((8, *shape), np.uint8), np.arange(8) % 4, name="big")
        proc, port = _serve(root, args.concurrent, repo)
        target = f"127.0.0.1:{port}"
        try:
            with StorageClient(target, token=_TOKEN, timeout=600) as c:
                c.push_model("small_cnn", blob, 1, dataset="big")  # warm: imports, first file
                with _Peak(proc.pid) as peak:
                    c.push_model("small_cnn", blob, 100, dataset="big")
                rows.append(("1 push", peak.growth))

                errors = []

                def push(version):
                    try:
                        c.push_model("small_cnn", blob, version, dataset="big")
                    except StorageError as exc:
                        errors.append(exc)

                with _Peak(proc.pid) as peak:
                    threads = [threading.Thread(target=push, args=(200 + i,)) for i in range(args.concurrent)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                if errors:
                    raise SystemExit(f"a concurrent push failed: {errors[0]}")
                rows.append((f"{args.concurrent} pushes at once", peak.growth))

            growth, codes = _unauthenticated(target, proc.pid, args)
            rows.append((f"{args.requests} x {args.request_mib:g} MiB requests without token", growth))
        finally:
            proc.terminate()
            proc.wait(30)
    return rows, codes


def _unauthenticated(target: str, pid: int, args) -> tuple[int, str]:
    """Peak growth of server ``pid`` while ``args.requests`` GetDataset requests of
    ``args.request_mib`` MiB without the token run at once, and the codes they got."""
    body = pb.GetDatasetRequest(name="x" * int(args.request_mib * (1 << 20))).SerializeToString()
    codes = []
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 1 << 30)]) as ch:
        get = ch.unary_unary("/nessa.v1.Storage/GetDataset", request_serializer=lambda b: b, response_deserializer=lambda b: b)

        def unauth():
            try:
                get(body, timeout=120)
                codes.append("OK")
            except grpc.RpcError as exc:
                codes.append(exc.code().name)

        with _Peak(pid) as peak:
            threads = [threading.Thread(target=unauth) for _ in range(args.requests)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    return peak.growth, ", ".join(sorted(set(codes)))


def _auth_alone(args, repo: Path) -> tuple[int, str]:
    """The requests without token against this checkout's server with its receive limits raised
    to the old 128 MiB: what deciding auth before the body buys by itself."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        write_store(root / "tiny", np.zeros((4, 1, 8, 8), np.uint8), np.arange(4), name="tiny")
        proc, port = _serve(root, 1, repo, ("--max-request-kib", "131072", "--max-push-chunk-mib", "128"))
        try:
            return _unauthenticated(f"127.0.0.1:{port}", proc.pid, args)
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
