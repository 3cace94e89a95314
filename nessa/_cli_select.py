"""``nessa select``: choose a weighted coreset of a store, per class, and save it.

The output is a selection file (:mod:`storage_service.selection_file`, the format the storage
service persists its selections in): Arrow IPC, columns ``id`` (ascending) and ``weight``, and
a JSON summary with the strategy (``craig``), fraction, seed, backend, objective, per-class
counts, plus ``optimizer``, ``source`` (where the features came from), ``raw_weights`` and
``per_class`` (``[{cls, n, k, objective, seconds}]``). ``--strategy sas`` / ``clipcov`` select on
the store's embedding columns instead (``--embedding-column``, ``--text-embedding-column``,
``--latent-classes``; host/sas.py, host/clipcov.py), weight 1, summary with those options. Read it with
``storage_service.selection_file.read_selection(path) -> (ids, weights, summary)``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["register", "load_model"]


def register(sub) -> None:
    p = sub.add_parser(
        "select",
        help="select a weighted coreset of a store (greedy facility location per class)",
        description="Select FRACTION of each class of STORE by greedy facility location over "
        "gradient-proxy features (from --model/--arch) or precomputed --features; write a selection file "
        "(Arrow IPC: id, weight + JSON summary; the storage service's format).",
    )
    p.add_argument("store", help="store directory (manifest.json + shards)")
    p.add_argument("--fraction", type=float, required=True, help="fraction to keep, in (0, 1]")
    p.add_argument("--strategy", default="craig", choices=["craig", "sas", "sas-fl", "clipcov"],
                   help="craig (default: facility location on gradient proxies), sas, sas-fl or clipcov (embedding columns)")
    p.add_argument("--embedding-column", help="sas / sas-fl / clipcov: embedding column (e.g. emb/proxy; clipcov: the image column)")
    p.add_argument("--text-embedding-column", help="clipcov: caption embedding column (e.g. emb/text)")
    p.add_argument("--latent-classes", type=int, default=0,
                   help="sas / sas-fl / clipcov: k-means classes (0: the labels when more than one class, else 10)")
    src = p.add_mutually_exclusive_group(required=False)
    src.add_argument("--model", help="model state (.safetensors) used to compute the features; needs --arch")
    src.add_argument("--features", help="precomputed features (.npy, float [N, D], rows in store id order)")
    p.add_argument("--arch", help="architecture of --model (small_cnn, resnet20, resnet18)")
    p.add_argument("--out", required=True, help="output selection file (e.g. sel.arrow)")
    p.add_argument("--optimizer", default="lazy", help="lazy (exact greedy, default), stochastic or naive")
    p.add_argument("--backend", default="cpu", help="cpu (default) or emu / xrt / pynq (FPGA kernels)")
    p.add_argument("--seed", type=int, default=0, help="seed (stochastic greedy, GreeDi partitions)")
    p.add_argument("--epsilon", type=float, default=None, help="stochastic greedy epsilon (default 0.01)")
    p.add_argument("--budget", default="per_class", choices=["per_class", "global"], help="how the fraction is split")
    p.add_argument("--memory-budget-mb", type=float, default=None, help="GreeDi above this distance-matrix size per class (default 2048)")
    p.add_argument("--embedding", action="store_true", help="features: outer product with the penultimate embedding")
    p.add_argument("--batch-size", type=int, default=512, help="feature batch size (default 512)")
    p.add_argument("--raw-weights", action="store_true", help="keep member counts as weights (no normalisation)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_select)


def load_model(path: str | os.PathLike, arch: str, sample_shape, num_classes: int):
    """Build ``arch`` and load the safetensors state at ``path`` strictly (ValueError naming
    the first missing / unexpected / mis-shaped key)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from host.models import build_model

    model = build_model(arch, sample_shape, num_classes)  # ValueError on unknown arch
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"cannot read model state {path}: {exc}") from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        raise ValueError(f"model state {path} does not fit arch {arch!r}: missing key {missing[0]!r} ({len(missing)} missing)")
    if unexpected:
        raise ValueError(f"model state {path} does not fit arch {arch!r}: unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected)")
    for name, ref in expected.items():
        got = state[name]
        if tuple(got.shape) != tuple(ref.shape):
            raise ValueError(
                f"model state {path} does not fit arch {arch!r}: key {name!r} has shape {list(got.shape)}, "
                f"expected {list(ref.shape)}"
            )
        if got.is_floating_point() and not bool(got.isfinite().all()):
            raise ValueError(f"model state {path}: key {name!r} holds NaN or infinite values")
    model.load_state_dict(state, strict=True)
    return model.eval()


def _features(args, store):
    import numpy as np

    from nessa._errors import CliError

    if args.features is not None:
        if args.arch is not None:
            raise CliError("--arch goes with --model, not with --features")
        if args.embedding:
            raise CliError("--embedding goes with --model (it shapes the computed features), not with --features")
        try:
            feats = np.load(args.features, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read features {args.features}: {exc}") from None
        if feats.ndim != 2:
            raise CliError(f"features {args.features} must be 2-D [N, D], got shape {list(feats.shape)}")
        if feats.shape[0] != len(store):
            raise CliError(f"length mismatch: features {args.features} has {feats.shape[0]} rows, store has {len(store)} samples")
        if not np.issubdtype(feats.dtype, np.floating) and not np.issubdtype(feats.dtype, np.integer):
            raise CliError(f"features {args.features} must be numeric, got {feats.dtype}")
        return feats, str(args.features)
    if args.arch is None:
        raise CliError("--model needs --arch (e.g. --arch small_cnn)")
    if args.batch_size < 1:
        raise CliError(f"--batch-size must be >= 1, got {args.batch_size}")
    m = store.manifest
    try:
        model = load_model(args.model, args.arch, tuple(m.sample_shape), int(m.num_classes))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.backend == "cpu":
        from host.features import store_features

        return store_features(model, store, batch_size=args.batch_size, embedding=args.embedding, progress=not args.quiet), str(args.model)
    from host.features import gradient_features

    samples, labels = store.take(np.arange(len(store)))
    feats = gradient_features(model, samples, labels, sample_shape=tuple(m.sample_shape), batch_size=args.batch_size,
                              embedding=args.embedding, backend=args.backend)
    return feats, str(args.model)


def _select_embeddings(args, store, out: Path) -> int:
    """``--strategy sas / clipcov``: select on the store's embedding columns (host.sas / host.clipcov)."""
    import time

    import numpy as np

    from host.clipcov import clipcov_select
    from host.sas import sas_select
    from nessa._errors import CliError
    from storage_service.columns import ColumnError

    if args.model is not None or args.features is not None:
        raise CliError(f"--strategy {args.strategy} reads --embedding-column, not --model / --features")
    if not args.embedding_column:
        raise CliError(f"--strategy {args.strategy} needs --embedding-column (e.g. emb/proxy)")
    if args.strategy == "clipcov" and not args.text_embedding_column:
        raise CliError("--strategy clipcov needs --text-embedding-column (e.g. emb/text)")
    if args.strategy != "clipcov" and args.text_embedding_column:
        raise CliError("--text-embedding-column is only for --strategy clipcov")
    if args.latent_classes < 0:
        raise CliError(f"--latent-classes must be >= 0, got {args.latent_classes}")
    t0 = time.perf_counter()
    try:
        img = store.embeddings(args.embedding_column)
        if args.strategy in ("sas", "sas-fl"):
            r = sas_select(img, args.fraction, labels=store.labels, latent=args.latent_classes, seed=args.seed,
                           backend=args.backend, option="--embedding-column", consume=True,
                           objective="facility-location" if args.strategy == "sas-fl" else "reference")
        else:
            r = clipcov_select(img, store.embeddings(args.text_embedding_column), args.fraction, labels=store.labels,
                               latent=args.latent_classes, seed=args.seed, image_option="--embedding-column",
                               text_option="--text-embedding-column", consume=True)
    except (ValueError, RuntimeError, ColumnError) as exc:
        raise CliError(str(exc).replace("latent_classes", "--latent-classes")) from None
    seconds = time.perf_counter() - t0
    counts = np.bincount(store.labels[r.ids], minlength=store.manifest.num_classes)
    summary = {
        "dataset": store.manifest.name, "strategy": args.strategy, "fraction": float(args.fraction),
        "seed": int(args.seed), "backend": args.backend if args.strategy == "sas-fl" else "cpu", "num_selected": int(len(r.ids)),
        "class_counts": [int(c) for c in counts], "objective": float(r.objective), "seconds": seconds,
        "embedding_column": args.embedding_column, "text_embedding_column": args.text_embedding_column or "",
        "latent_classes": int(args.latent_classes), "num_latent_classes": int(np.unique(r.classes).size),
    }
    return _write_out(args, out, r.ids, np.ones(len(r.ids), np.float32), summary,
                      f"{out}: {len(r.ids)} of {len(store)} examples ({summary['num_latent_classes']} latent classes), "
                      f"{args.strategy}, {seconds:.2f}s")


def _select(args) -> int:
    import numpy as np

    from host.budget import check_fraction
    from host.facility_location import DEFAULT_EPSILON
    from host.strategies import Strategy
    from host.selection import DEFAULT_MEMORY_BUDGET, select
    from nessa._errors import CliError
    from storage_service.store import Store, StoreError

    try:
        check_fraction(args.fraction, option="--fraction")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.memory_budget_mb is not None and not args.memory_budget_mb > 0:
        raise CliError(f"--memory-budget-mb must be positive, got {args.memory_budget_mb}")
    out = Path(args.out)
    for given in (args.features, args.model):
        if given is not None and out.resolve() == Path(given).resolve():
            raise CliError(f"--out {args.out} is the input {given}; writing it would destroy the input")
    try:  # before the (possibly long) selection, not after it
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create the folder of --out {args.out}: {exc.strerror}") from None
    try:
        store = Store(args.store)
    except (StoreError, OSError) as exc:
        raise CliError(f"cannot open store {args.store}: {exc}") from None
    if args.strategy != "craig":
        return _select_embeddings(args, store, out)
    if args.embedding_column or args.text_embedding_column or args.latent_classes:
        raise CliError("--embedding-column, --text-embedding-column and --latent-classes go with --strategy sas / sas-fl / clipcov")
    if args.model is None and args.features is None:
        raise CliError("one of --model or --features is required (or --strategy sas / sas-fl / clipcov with --embedding-column)")
    feats, source = _features(args, store)
    budget = DEFAULT_MEMORY_BUDGET if args.memory_budget_mb is None else int(args.memory_budget_mb * (1 << 20))
    try:
        sel = select(
            feats, store.labels, args.fraction, optimizer=args.optimizer, seed=args.seed, backend=args.backend,
            normalize_weights=not args.raw_weights, budget=args.budget, memory_budget_bytes=budget,
            epsilon=DEFAULT_EPSILON if args.epsilon is None else args.epsilon, progress=not args.quiet,
        )
    except (ValueError, RuntimeError) as exc:
        raise CliError(str(exc)) from None
    pc = sel.per_class
    counts = np.bincount(store.labels[sel.ids], minlength=store.manifest.num_classes)
    summary = {
        "dataset": store.manifest.name, "strategy": Strategy.CRAIG.value, "fraction": float(sel.fraction),
        "seed": int(args.seed), "backend": sel.backend, "num_selected": len(sel),
        "class_counts": [int(c) for c in counts], "objective": float(sel.objective), "seconds": float(sel.seconds),
        "optimizer": sel.optimizer, "source": source, "raw_weights": bool(args.raw_weights),
        "per_class": [{"cls": int(r.cls), "n": int(r.n), "k": int(r.k), "objective": float(r.objective),
                       "seconds": float(r.seconds)} for r in pc],
    }
    return _write_out(args, out, sel.ids, sel.weights, summary,
                      f"{out}: {len(sel)} of {len(store)} examples ({len(pc)} classes), objective {sel.objective:.6g}, "
                      f"{sel.seconds:.2f}s ({sel.optimizer}, {sel.backend})")


def _write_out(args, out, ids, weights, summary: dict, line: str) -> int:
    """Write the selection file (a CliError naming --out if it cannot be), report, print its path."""
    from nessa._errors import CliError
    from storage_service.selection_file import write_selection

    try:
        write_selection(out, ids, weights, summary)
    except OSError as exc:
        raise CliError(f"cannot write --out {args.out}: {exc.strerror}") from None
    if not args.quiet:
        print(line, file=sys.stderr)
    print(str(out))
    return 0
