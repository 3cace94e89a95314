"""Disk a storage host keeps after many pushes and selections: bounded by its retention settings.

Starts a server on a store this script writes (2,000 28x28 samples), pushes a small CNN
``--pushes`` times (new version each time) and asks for ``--selections`` random selections (new
seed each time), then counts the files and bytes in the server's state folder (``.nessa``). The
issue that asked for retention measured the service before it: 1,000 pushes left 2,000 files
(425 MB), 200 selections 72 MB. Then the server is stopped and started again on the same root,
and temp files are counted (none should remain).

    python bench/retention.py --pushes 1000 --selections 200 --md RELIABILITY.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from host.models import build_model  # noqa: E402
from storage_service.client import StorageClient  # noqa: E402
from storage_service.ingest import write_store  # noqa: E402
from storage_service.models_registry import DEFAULT_KEEP_MODELS  # noqa: E402
from storage_service.selections import DEFAULT_KEEP_SELECTIONS  # noqa: E402
from storage_service.server import create_server  # noqa: E402

NAME = "ret/small"


def _usage(root: Path, folder: str) -> tuple[int, int]:
    files = [p for p in (root / ".nessa" / folder).rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _temp_files(root: Path) -> int:
    return sum(1 for p in (root / ".nessa").rglob("*") if ".tmp" in p.name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pushes", type=int, default=1000)
    ap.add_argument("--selections", type=int, default=200)
    ap.add_argument("--md", help="append the table to this Markdown file")
    args = ap.parse_args(argv)
    if args.pushes < 1 or args.selections < 1:
        ap.error("--pushes and --selections must be >= 1")

    with tempfile.TemporaryDirectory(prefix="nessa-retention-") as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        write_store(root / NAME, rng.integers(0, 256, (2000, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, 2000), name="small")
        model = build_model("small_cnn", (1, 28, 28), 10)
        server, port = create_server("127.0.0.1:0", root, data_port=None)
        t0 = time.perf_counter()
        try:
            with StorageClient(f"127.0.0.1:{port}", timeout=60) as c:
                for v in range(1, args.pushes + 1):
                    c.push_model("small_cnn", model, v, dataset=NAME)
                push_s = time.perf_counter() - t0
                t1 = time.perf_counter()
                for k in range(args.selections):
                    c.select(NAME, "random", 0.5, seed=k)
                select_s = time.perf_counter() - t1
        finally:
            server.stop(0)
        models = _usage(root, "models")
        selections = _usage(root, "selections")
        restarted, _ = create_server("127.0.0.1:0", root, data_port=None)
        restarted.stop(0)
        temps = _temp_files(root)
        model_bytes = len(_safetensors_size(model))

    rows = [
        "| what | count | kept files | kept MB | retention setting | seconds |",
        "| --- | ---: | ---: | ---: | --- | ---: |",
        f"| model pushes ({model_bytes / 1e3:.0f} kB each) | {args.pushes} | {models[0]} | {models[1] / 1e6:.2f} | keep {DEFAULT_KEEP_MODELS} models | {push_s:.1f} |",
        f"| random selections at 0.5 | {args.selections} | {selections[0]} | {selections[1] / 1e6:.2f} | keep {DEFAULT_KEEP_SELECTIONS} per data set | {select_s:.1f} |",
    ]
    text = "\n".join(rows) + f"\n\nTemp files after a restart on the same root: {temps}."
    print(text)
    if args.md:
        cmd = "python bench/retention.py " + " ".join(argv if argv is not None else sys.argv[1:])
        with open(args.md, "a") as f:
            f.write(f"\n`{cmd}` ({time.strftime('%Y-%m-%d')}, 2-core host):\n\n{text}\n")
    return 0 if temps == 0 else 1


def _safetensors_size(model) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in model.state_dict().items()})


if __name__ == "__main__":
    raise SystemExit(main())
