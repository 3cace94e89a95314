"""``nessa ingest``, ``nessa info`` and ``nessa verify``."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register"]


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(t) for t in text.replace("x", ",").split(",") if t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape must be comma-separated integers, got {text!r}") from None
    if not dims or min(dims) <= 0:
        raise argparse.ArgumentTypeError(f"--shape must be positive integers, got {text!r}")
    return dims


def register(sub) -> None:
    p = sub.add_parser("ingest", help="turn IDX / NumPy / image-folder / Arrow / Parquet / CIFAR / SVHN / CINIC-10 / "
                                      "TinyImageNet / ImageNet-100 data into a store",
                       description="Ingest SOURCE into the store DEST (atomically). An IDX, CIFAR or SVHN folder becomes DEST/train and DEST/test (SVHN also DEST/extra); "
                                   "CINIC-10 DEST/train, DEST/valid, DEST/test; TinyImageNet and ImageNet-100 DEST/train and DEST/val.")
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("--kind", choices=["idx", "arrays", "images", "table", "cifar", "svhn", "cinic10", "tinyimagenet", "imagenet100", "captions"],
                   help="input kind (default: detect)")
    p.add_argument("--image-size", type=int, metavar="S",
                   help="cinic10 / tinyimagenet / imagenet100: resize each image (shorter side to S, centre crop) to SxS "
                        "(default: native size; imagenet100: 64, a size a CPU can train ResNet-18 on)")
    p.add_argument("--name", help="data set name recorded in the manifest (default: DEST's folder name)")
    p.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    p.add_argument("--shard-mb", type=float, default=64.0, help="maximum shard size in MiB (default 64)")
    p.add_argument("--sample-column", help="table input: sample column name")
    p.add_argument("--label-column", help="table input: label column name")
    p.add_argument("--shape", type=_shape, help="table input: per-sample shape, e.g. 28,28")
    g = p.add_argument_group("image–caption shards (--kind captions; Parquet/Arrow file or folder of them, "
                             "CC3M/LAION style; storage_service/ingest/captions.py)")
    g.add_argument("--caption-column", help="caption column (default: caption, txt or text); stored as the 'text' column")
    g.add_argument("--image-column", help="image column: PNG/JPEG bytes, raw bytes or (nested) number lists "
                                          "(default: jpg, png, image, img or sample)")
    g.add_argument("--embedding-column", action="append", metavar="SRC=emb/NAME",
                   help="store precomputed embeddings of column SRC as emb/NAME (repeatable)")
    g.add_argument("--max-caption-bytes", type=int, metavar="B", help="longest caption allowed, UTF-8 bytes (default 1024)")
    g.add_argument("--embedding-dtype", choices=["float16", "float32"], default="float16",
                   help="element type of stored embedding columns (default float16)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("synthetic-captions", help="write SYNTHETIC image–caption Parquet shards from Fashion-MNIST "
                                                  "(generated captions, a share deliberately mismatched)",
                       description="Build a SYNTHETIC image–caption set from a Fashion-MNIST IDX folder: each image gets a "
                                   "caption from templates, its class name and attribute words, and a seeded share "
                                   "(--mismatch, default 0.1) describes another class. Writes Parquet shards to OUT "
                                   "(image, caption, label, mismatched) for `nessa ingest OUT STORE --kind captions`. "
                                   "No web data: the captions say no more than the label and the image's brightness.")
    p.add_argument("fashion_mnist", metavar="FM_DIR", help="Fashion-MNIST IDX folder (train-/t10k-*-idx*-ubyte[.gz])")
    p.add_argument("out", metavar="OUT", help="new folder for the Parquet shards")
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N images")
    p.add_argument("--mismatch", type=float, default=0.1, help="share of captions naming another class (default 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rows-per-shard", type=int, default=10000)
    p.add_argument("--image-format", choices=["auto", "png", "array"], default="auto",
                   help="PNG bytes (needs Pillow) or uint8 nested lists; auto: PNG when Pillow is installed")
    p.set_defaults(func=_synthetic_captions)

    p = sub.add_parser("info", help="describe a store")
    p.add_argument("store")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_info)

    p = sub.add_parser("verify", help="re-hash and re-check stores (exit 1 on any problem); --repair removes leftovers",
                       description="Verify a store, or every store under a store root (default: the current folder): re-hash "
                                   "every shard, re-check ids, labels and per-class counts, and record the result in "
                                   "STORE/.nessa-verify.json, which lets `nessa serve` trust those shards without hashing them "
                                   "again. Exit 1 on any problem. --repair also removes the leftovers of killed writes "
                                   "(temporary files and folders whose writer is gone) under the path.")
    p.add_argument("path", nargs="?", default=".", metavar="STORE_OR_ROOT")
    p.add_argument("--repair", action="store_true", help="remove leftovers of killed ingests and writes")
    p.add_argument("--no-record", action="store_true", help="do not write the verify record")
    p.set_defaults(func=_verify)


def _ingest(args) -> int:
    from nessa._errors import CliError
    from storage_service.ingest import IngestError, ingest

    if not args.shard_mb > 0:  # also rejects NaN
        raise CliError(f"--shard-mb must be positive, got {args.shard_mb}")
    if args.image_size is not None and args.image_size < 1:
        raise CliError(f"--image-size must be a positive number of pixels, got {args.image_size}")
    if args.max_caption_bytes is not None and args.max_caption_bytes < 1:
        raise CliError(f"--max-caption-bytes must be a positive number of bytes, got {args.max_caption_bytes}")
    try:
        made = ingest(args.source, args.dest, kind=args.kind, name=args.name, overwrite=args.overwrite,
                      shard_bytes=int(args.shard_mb * (1 << 20)), sample_column=args.sample_column,
                      label_column=args.label_column, shape=args.shape, progress=not args.quiet,
                      image_size=args.image_size, caption_column=args.caption_column, image_column=args.image_column,
                      embedding_columns=args.embedding_column, max_caption_bytes=args.max_caption_bytes,
                      embedding_dtype=args.embedding_dtype)
    except IngestError as exc:
        raise CliError(str(exc)) from None
    for rel, m in made.items():
        where = args.dest if rel == "." else f"{args.dest}/{rel}"
        cols = f", columns {', '.join(c.name for c in m.columns)}" if m.columns else ""
        print(f"{where}: {m.num_samples} samples, {m.num_classes} classes, shape {list(m.sample_shape)} {m.dtype}, {len(m.shards)} shard(s){cols}")
    skipped = {m.extra["skipped"] for m in made.values() if m.extra.get("skipped")}
    for note in sorted(skipped):  # e.g. TinyImageNet's unlabelled test/ images
        print(f"skipped {note}")
    return 0


def _synthetic_captions(args) -> int:
    from nessa._errors import CliError
    from storage_service.ingest import IngestError
    from storage_service.ingest.synthetic_captions import make_synthetic_captions

    if not 0.0 <= args.mismatch <= 1.0:  # also rejects NaN
        raise CliError(f"--mismatch must be a share in [0, 1], got {args.mismatch}")
    if args.rows_per_shard < 1:
        raise CliError(f"--rows-per-shard must be >= 1, got {args.rows_per_shard}")
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be >= 1, got {args.limit}")
    try:
        doc = make_synthetic_captions(args.fashion_mnist, args.out, split=args.split, limit=args.limit, seed=args.seed,
                                      mismatch=args.mismatch, rows_per_shard=args.rows_per_shard,
                                      image_format=args.image_format)
    except IngestError as exc:
        raise CliError(str(exc)) from None
    print(f"{doc['out']}: {doc['rows']} SYNTHETIC image–caption rows ({doc['mismatched']} mismatched), "
          f"{len(doc['shards'])} Parquet shard(s), images as {doc['image_format']}")
    return 0


def _info_doc(store) -> dict:
    m = store.manifest
    return {
        "name": m.name, "path": str(store.path), "format_version": m.format_version, "num_samples": m.num_samples,
        "num_classes": m.num_classes, "class_names": m.class_names, "class_counts": m.class_counts,
        "sample_shape": list(m.sample_shape), "dtype": m.dtype, "sample_nbytes": m.sample_nbytes,
        "num_shards": len(m.shards), "bytes": sum((store.path / s.file).stat().st_size for s in m.shards),
        "columns": [{"name": c.name, "kind": c.kind.value, "dtype": c.dtype, "dim": c.dim, "max_bytes": c.max_bytes,
                     "source": c.source} for c in store.columns.values()],
    }


def _info(args) -> int:
    from nessa._errors import CliError
    from storage_service.store import Store, StoreError

    try:
        doc = _info_doc(Store(args.store))
    except StoreError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        print()
        return 0
    print(f"{doc['name']} ({doc['path']}), format v{doc['format_version']}")
    print(f"  {doc['num_samples']} samples, shape {doc['sample_shape']} {doc['dtype']}, {doc['num_shards']} shard(s), {doc['bytes'] / 1e6:.1f} MB")
    for name, count in zip(doc["class_names"], doc["class_counts"]):
        print(f"  {count:>10}  {name}")
    for c in doc["columns"]:
        what = f"{c['dtype']} x {c['dim']}" if c["kind"] == "embedding" else f"text, <= {c['max_bytes']} bytes"
        print(f"  column {c['name']}: {what}" + (f" (source {c['source']})" if c["source"] else ""))
    return 0


def _verify(args) -> int:
    from pathlib import Path

    from storage_service.leftovers import find_leftovers, remove_leftovers
    from storage_service.manifest import MANIFEST_NAME
    from storage_service.store import discover, verify_store

    path = Path(args.path)
    if path.is_dir():
        if args.repair:
            for leftover, why in remove_leftovers(path):
                print(f"removed {leftover} ({why})")
        else:
            for leftover, why in find_leftovers(path):
                print(f"nessa: verify: leftover {leftover} ({why}); --repair removes it", file=sys.stderr)
    if path.is_dir() and not (path / MANIFEST_NAME).exists():
        stores = discover(path)
        if not stores:
            print(f"nessa: verify: {path}: no {MANIFEST_NAME} and no store below it (not a NeSSA store or store root)",
                  file=sys.stderr)
            return 0 if args.repair else 1
    else:
        stores = {".": path}  # a store, or not one (verify_store names the problem)
    failed = 0
    for rel, store_dir in sorted(stores.items()):
        problems = verify_store(store_dir, record=not args.no_record)
        for p in problems:
            print(f"nessa: verify: {p}", file=sys.stderr)
        if problems:
            failed += 1
        else:
            print(f"{store_dir}: OK")
    if failed:
        print(f"nessa: verify: {failed} of {len(stores)} store(s) failed; restore them (or ingest again) before serving",
              file=sys.stderr)
        return 1
    return 0
