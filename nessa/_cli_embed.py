"""``nessa embed``: compute an embedding column next to the data (``emb/<name>``).

On the storage host itself (``--store ROOT``, the default being the current folder) the job runs
in this process, with a pushed model of the store root's registry (``--model VERSION``, 0 = the
newest that fits) or a model file (``--model-file PATH --arch ARCH``: a ``model.pt`` written by
``nessa train``, a bare torch state dict, or safetensors); with ``--server HOST:PORT`` the storage
service runs it (``Embed`` RPC, pushed models only) and this command follows its progress
(``GetEmbedding``). Either way the column is written atomically at the end and a killed run,
started again with the same options, resumes after its last finished chunk.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

from nessa._cli_jobs import add_where_args, service_client

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("embed", help="compute an embedding column (emb/<name>) of a data set with a model",
                       description="Embed every row of DATASET with a model (its image tower over the samples, or its "
                                   "text tower over the captions) and write the column COLUMN beside the data, "
                                   "atomically. Resumes after the last finished chunk when run again.")
    p.add_argument("dataset", help="data set name under the store root, e.g. pairs/train")
    p.add_argument("--column", required=True, help="column to write, emb/<name> (e.g. emb/proxy)")
    p.add_argument("--model", type=int, default=None, metavar="VERSION",
                   help="pushed model version (0 or omitted: the newest that fits the data set)")
    p.add_argument("--model-file", type=Path, help="--store: a model file instead of a pushed model (needs --arch)")
    p.add_argument("--arch", help="--model-file: the model's architecture (see nessa train --arch)")
    p.add_argument("--tower", default="image", help="image (default) or text (CLIP-style models, the text column)")
    p.add_argument("--batch-size", type=int, default=256, help="rows per forward pass (default 256)")
    p.add_argument("--dtype", default="float16", help="element dtype of the column: float16 (default) or float32")
    p.add_argument("--overwrite", action="store_true", help="replace the column if it exists")
    add_where_args(p, "embed")
    p.set_defaults(func=_embed)


def _embed(args: argparse.Namespace) -> int:
    from nessa._errors import CliError
    from storage_service.embed_jobs import EmbedError, check_options

    if args.threads < 1:
        raise CliError(f"--threads: must be >= 1, got {args.threads}")
    if args.batch_size < 1:
        raise CliError(f"--batch-size: must be >= 1, got {args.batch_size}")
    if args.model is not None and args.model < 0:
        raise CliError(f"--model: a version is >= 0, got {args.model}")
    if args.model_file is not None and args.model not in (None, 0):
        raise CliError("--model and --model-file: give one of them")
    if (args.model_file is None) != (args.arch is None):
        raise CliError("--model-file and --arch go together (--arch names the file's architecture)")
    if args.model_file is not None and args.server:
        raise CliError("--model-file: a server embeds with pushed models only; push it (nessa train --push-version) "
                       "and pass --model VERSION")
    try:
        check_options(args.column, args.tower, args.batch_size, args.dtype, args.overwrite)
    except EmbedError as exc:
        field, _, rest = str(exc).partition(":")  # "batch_size: ..." -> "--batch-size: ..."
        raise CliError(f"--{field.replace('_', '-')}:{rest}") from None
    info = _remote(args) if args.server else _local(args)
    print(f"{info.dataset}: column {info.column} written, {info.rows_total} rows x {info.dim} ({args.dtype}), "
          f"tower {info.tower}, {info.seconds:.1f} s"
          + (f"; resumed after {info.resumed_from} rows" if info.resumed_from else ""))
    return 0


def _bar(args, total: int, initial: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"embed {args.column}", unit="row", disable=args.quiet,
                dynamic_ncols=True)


def _follow(args, get, info):
    """Poll ``get()`` until the job is not running, with a progress bar."""
    bar = _bar(args, int(info.rows_total), int(info.rows_done))
    try:
        while info.state == "running":
            time.sleep(0.2)
            info = get()
            bar.update(int(info.rows_done) - bar.n)
    finally:
        bar.close()
    return info


def _load_file_model(path: Path, arch: str, store):
    """``build_model(arch)`` for ``store`` with the weights of ``path``; (model, source sha256)."""
    import torch

    from host.models import build_model
    from nessa._errors import CliError

    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise CliError(f"--model-file: cannot read {str(path)!r}: {exc.strerror}") from None
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load as st_load

            state = st_load(blob)
        else:
            import io

            state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
            if isinstance(state, dict) and isinstance(state.get("state"), dict):  # nessa train's model.pt
                state = state["state"]
            elif isinstance(state, dict) and isinstance(state.get("model"), dict):
                state = state["model"]
        m = store.manifest
        model = build_model(arch, tuple(m.sample_shape), int(m.num_classes))
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("nessa.")})
    except CliError:
        raise
    except Exception as exc:  # noqa: BLE001 - a wrong file or arch, said by name
        raise CliError(f"--model-file: {str(path)!r} is not a {arch} model for this data set: {exc}") from None
    return model.eval(), hashlib.sha256(blob).hexdigest()


def _local(args):
    import torch

    from nessa._errors import CliError
    from storage_service._errors import ServiceError
    from storage_service.embed_jobs import (EmbedError, EmbedStatus, check_options, job_dir, run_embedding,
                                            source_tag)
    from storage_service.store import Store, StoreError, discover

    root = args.store if args.store is not None else Path(".")
    if not root.is_dir():
        raise CliError(f"--store: {str(root)!r} is not a folder")
    name = args.dataset.strip("/")
    if discover(root).get(name) is None:
        raise CliError(f"{args.dataset}: no such data set under {str(root)!r} (see `nessa info`)")
    torch.set_num_threads(args.threads)
    if args.model_file is None:  # a pushed model: the service's own code path, in this process
        from storage_service._core import StorageCore

        core = StorageCore(root)
        try:
            st = core.embed(name, args.column, model_version=args.model or 0, tower=args.tower,
                            batch_size=args.batch_size, overwrite=args.overwrite, dtype=args.dtype)
            st = _follow(args, lambda: core.embedding(name, args.column), st)
        except ServiceError as exc:
            raise CliError(f"{args.dataset}: {exc}") from None
        finally:
            core.close()
        if st.state != "done":
            raise CliError(f"{args.dataset}: embedding {args.column} failed: {st.error}")
        return st
    try:
        store = Store(discover(root)[name])
        opts = check_options(args.column, args.tower, args.batch_size, args.dtype, args.overwrite)
    except (StoreError, EmbedError) as exc:
        raise CliError(str(exc)) from None
    if opts.column in store.columns and not opts.overwrite:
        raise CliError(f"--column: {opts.column} already exists in {args.dataset}; pass --overwrite to replace it")
    if opts.tower.value == "text" and "text" not in store.columns:
        raise CliError(f"--tower: text needs the data set's text column; {args.dataset} has none")
    model, sha = _load_file_model(args.model_file, args.arch, store)
    from host.embedding import has_tower

    if not has_tower(model, opts.tower.value):
        raise CliError(f"--tower: {args.arch} has no {opts.tower.value} tower")
    status = EmbedStatus(name, opts.column, tower=opts.tower.value, rows_total=len(store))
    bar = _bar(args, len(store), 0)
    import threading

    stop = threading.Event()

    def watch():
        while not stop.wait(0.2):
            bar.update(status.rows_done - bar.n)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        run_embedding(store, name, model, opts, job_dir(root, name, opts.column), source=source_tag(args.arch, sha),
                      model_sha=sha, status=status)
    except Exception as exc:  # noqa: BLE001 - EmbedError, ColumnError, a disk error: said by name
        raise CliError(f"{args.dataset}: embedding {opts.column} failed: {exc}") from None
    finally:
        stop.set()
        t.join()
        bar.update(status.rows_done - bar.n)
        bar.close()
    return status


def _remote(args):
    from nessa._errors import CliError
    from storage_service.client import StorageError

    try:
        with service_client(args) as client:
            info = client.embed(args.dataset, args.column, model_version=args.model or 0, tower=args.tower,
                                batch_size=args.batch_size, overwrite=args.overwrite, dtype=args.dtype, wait=False)
            info = _follow(args, lambda: client.get_embedding(args.dataset, args.column), info)
    except StorageError as exc:
        raise CliError(f"{args.server}: {exc.details or exc}") from None
    except KeyboardInterrupt:
        raise CliError(f"stopped following {args.column}; the storage service keeps embedding it "
                       "(run the same command again to follow it)") from None
    if info.state != "done":
        raise CliError(f"{args.column}: embedding failed on {args.server}: {info.error or info.state}")
    return info
