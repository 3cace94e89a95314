"""Random ``take`` of 10% of a store vs a numpy memmap of the same bytes, side by side.

    python bench/store_take.py [--store DIR] [--fraction 0.1] [--repeats 15] [--fault-safety]

Without --store it ingests Fashion-MNIST train (../shared/data/fashion-mnist) into a temp folder.
Both readers are warm (page cache) and read the same ids; the table reports the median time.

``--fault-safety`` adds, per layout, what issue #19's protection against shards changing under
the server costs: the unguarded C gather as ``take_bytes`` ran it before (the baseline), the
guarded gather with the identity check at most once a second (the default) and before every
take, and the pread-per-row reader used without the C extension; these four are timed
round-robin (one take of each per round, pread every 5th round), medians.
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

from storage_service.ingest import ingest  # noqa: E402
from storage_service.store import Store  # noqa: E402


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _fault_safety_rows(store: Store, ids: np.ndarray, repeats: int, layout: str) -> list[tuple[str, str, float]]:
    from storage_service import _gather

    row = store.manifest.sample_nbytes

    def unguarded():  # take_bytes before issue #19: checked ids, a new array, the C gather with no guard
        checked = store._check_ids(ids)
        out = np.empty((checked.size, row), np.uint8)
        _gather.gather_rows_unguarded(store._bases, store._starts, np.ascontiguousarray(checked), row, out)
        return out

    every = Store(store.path, check_interval=0.0)
    available = _gather.available
    _gather.available = lambda: False  # as if the extension were not built: nothing mapped, pread per row
    try:
        pread = Store(store.path)
    finally:
        _gather.available = available
    for reader in (every, pread):
        assert np.array_equal(reader.take_bytes(ids), unguarded())
    # Round-robin (one take of each reader per round), so load swings on a shared machine hit
    # every reader alike; pread is ~100x slower and takes every 5th round.
    readers = {"take_bytes unguarded (before #19)": unguarded,
               "take_bytes guarded, file check <= 1/s": lambda: store.take_bytes(ids),
               "take_bytes guarded, file check every take": lambda: every.take_bytes(ids),
               "take_bytes pread per row (no C extension)": lambda: pread.take_bytes(ids)}
    times: dict[str, list[float]] = {k: [] for k in readers}
    for fn in readers.values():
        fn()  # warm
    for r in range(repeats):
        for name, fn in readers.items():
            if "pread" in name and r % 5:
                continue
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return [(name, layout, float(np.median(t))) for name, t in times.items()]


def main() -> None:
    import shutil

    tmp = Path(tempfile.mkdtemp(prefix="nessa-bench-"))
    try:
        _main(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # ~150 MB of stores and a raw copy


def _main(tmp: Path) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--store", type=Path)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--shard-mb", type=float, nargs="+", default=[64.0, 4.0],
                    help="shard sizes to ingest Fashion-MNIST with (default: 64 = the default layout, and 4 = many shards)")
    ap.add_argument("--fault-safety", action="store_true",
                    help="also time take_bytes before the SIGBUS guard, with the per-take file check, and with pread")
    args = ap.parse_args()
    if args.store is not None:
        stores = [Store(args.store)]
    else:
        stores = []
        for mb in args.shard_mb:
            dest = tmp / f"fm-{mb:g}MiB"
            ingest(REPO.parent / "shared/data/fashion-mnist", dest, progress=False, shard_bytes=int(mb * (1 << 20)))
            stores.append(Store(dest / "train"))
    n, row = len(stores[0]), stores[0].manifest.sample_nbytes
    mm_path = tmp / "raw.npy"
    np.save(mm_path, stores[0].take_bytes(np.arange(n)))
    mm = np.load(mm_path, mmap_mode="r")
    ids = np.random.default_rng(0).choice(n, int(args.fraction * n), replace=False)
    rows = [("numpy memmap fancy index", "-", _median_seconds(lambda: mm[ids], args.repeats))]
    for store in stores:
        assert np.array_equal(store.take_bytes(ids), mm[ids])  # same bytes before timing
        layout = f"{len(store.manifest.shards)} shard(s), {len(store._views)} batch(es)"
        rows.append(("Store.take (samples+labels)", layout, _median_seconds(lambda: store.take(ids), args.repeats)))
        rows.append(("Store.take_table (Arrow)", layout, _median_seconds(lambda: store.take_table(ids), args.repeats)))
        if args.fault_safety:
            rows.extend(_fault_safety_rows(store, ids, args.repeats, layout))
    base = rows[0][2]
    mb = ids.size * row / 1e6
    print(f"{n} rows x {row} B; take {ids.size} random ids ({mb:.1f} MB), warm page cache, median of {args.repeats}\n")
    print("| reader | store layout | median ms | GB/s | vs memmap |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, layout, sec in rows:
        print(f"| {name} | {layout} | {sec * 1e3:.2f} | {mb / 1e3 / sec:.2f} | {sec / base:.2f}x |")


if __name__ == "__main__":
    main()
