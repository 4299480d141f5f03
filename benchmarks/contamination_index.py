"""A new drop's n-grams looked up in the earlier layers of the split's contamination index:
the layers as Parquet, decoded and filtered by the scan (the code before INDEX_FORMAT 5,
kept here as the baseline), against the layers as .npy columns searched in place
(`split.rows_with_ngrams`), side by side in one run, on the same synthetic layers.

    .venv/bin/python benchmarks/contamination_index.py --rows 48000000 --drop 387000 --workdir /tmp/ctx-index

Synthetic layers, written once per shape in both formats (same rows): ``--rows`` rows in
all, four fifths owned n-grams (one row each, distinct over the index) and one fifth
held-out n-grams (a validation or test article's; a tenth of them held by a second
article too), random 64-bit hashes (as the index's are), each layer's rows in the order
``build_layer`` writes (hash partition, then n-gram, then key). Two shapes: ``base`` (one
layer of 95 % of the rows and five of 1 %: a corpus of one large first drop and 1 %
drops, as benchmarks/incremental.py's 300k project, whose 1 % drop read 48.5M earlier
rows) and ``many`` (``--layers`` equal layers: a corpus grown by many small drops). The
drop has ``--drop`` distinct n-grams, of which ``--seen`` (a share) are in the earlier
layers (reprints: owned or held-out rows), the rest new.

Each lookup is one process (the drop's runs of partitions as ``build_layer`` forms them,
``memory_ngrams // RUN_SHARE`` n-grams a run; both tables of every earlier layer), after
one untimed warm-up of each (the layers in the page cache, as on a machine that just
wrote them): CPU s (user + sys), wall s, peak RSS and its growth over the process's RSS
before the lookup; the median of ``--repeats`` runs, interleaved, and the ratio new / old.
The two give the same rows (checked in each run).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from pipeline.plumbing.io import NpyTableAppender, ParquetAppender  # noqa: E402
from pipeline.stages import split  # noqa: E402

PARTITIONS = 64
MEMORY_NGRAMS = 5_000_000  # params.yaml split.contamination.memory_ngrams
# The Parquet layout before INDEX_FORMAT 5: the partition a column of each table.
PARQUET_TABLES = {name: pl.Schema({"partition": pl.UInt32(), **schema}) for name, schema in split.NGRAM_TABLES.items()}


def layer_sizes(shape: str, rows: int, layers: int) -> list[int]:
    if shape == "base":
        return [rows * 95 // 100] + [rows // 100] * 5
    return [rows // layers] * layers


def layer_rows(rng: np.random.Generator, rows: int, first_key: int) -> dict[str, pl.DataFrame]:
    """One layer's owned and held-out rows, in the layer's order."""
    owned = np.sort(rng.integers(0, 2**64, rows * 4 // 5, dtype=np.uint64, endpoint=False))
    held = rng.integers(0, 2**64, rows - len(owned), dtype=np.uint64, endpoint=False)
    held[len(held) * 9 // 10:] = held[:len(held) - len(held) * 9 // 10]  # a tenth held by two articles
    frames = {
        "owned": pl.DataFrame({"ngram": owned, "owner": rng.integers(first_key, first_key + 2**20, len(owned),
                                                                     dtype=np.uint64)}),
        "held_out": pl.DataFrame({"ngram": held, "key": np.arange(len(held), dtype=np.uint64) + first_key,
                                  "split": pl.Series(rng.choice(["validation", "test"], len(held)),
                                                     dtype=split.SPLIT_TYPE)}),
    }
    return {name: frame.with_columns(partition=split.hash_partition(PARTITIONS)).sort("partition", "ngram",
                                                                                      *frame.columns[1:2])
            for name, frame in frames.items()}


def write_layers(folder: Path, sizes: list[int], drop: int, seen: float, seed: int) -> None:
    """The layers in both formats (folder/parquet/drop=k, folder/npy/drop=k) and the drop's n-grams."""
    if (folder / "drop.npy").exists():
        return
    rng = np.random.default_rng(seed)
    earlier = []
    for number, size in enumerate(sizes):
        frames = layer_rows(rng, size, number << split.KEY_BITS)
        for name, frame in frames.items():
            with ParquetAppender(folder / "parquet" / f"drop={number}" / f"{name}.parquet",
                                 PARQUET_TABLES[name]) as out:
                out.append(frame.select(PARQUET_TABLES[name].names()))
            with NpyTableAppender(folder / "npy" / f"drop={number}", name, split.NGRAM_TABLES[name], PARTITIONS) as out:
                for bucket, part in sorted(frame.partition_by("partition", as_dict=True, include_key=False).items()):
                    out.append(part, bucket[0])
        # a sample of the layer's n-grams, for the drop's reprints
        earlier.append(rng.choice(frames["owned"]["ngram"].to_numpy(), min(size // 4, drop), replace=False))
        earlier.append(rng.choice(frames["held_out"]["ngram"].to_numpy(), min(size // 20, drop), replace=False))
        print(f"layer {number}: {size:,} rows written", flush=True)
    known = np.concatenate(earlier)
    reprinted = rng.choice(known, int(drop * seen), replace=False)
    ngrams = np.unique(np.concatenate([reprinted, rng.integers(0, 2**64, drop - len(reprinted), dtype=np.uint64)]))
    np.save(folder / "drop.npy", ngrams)


def drop_runs(ngrams: np.ndarray) -> list[np.ndarray]:
    """The drop's n-grams by run of partitions, as build_layer joins them."""
    buckets = ngrams % PARTITIONS
    pairs = {int(bucket): int(count) for bucket, count in zip(*np.unique(buckets, return_counts=True))}
    return [ngrams[(buckets >= first) & (buckets <= last)]
            for first, last in split.partition_ranges(pairs, MEMORY_NGRAMS // split.RUN_SHARE)]


def old_lookup(layers: list[Path], run: np.ndarray) -> dict[str, pl.DataFrame]:
    """main's join_partitions read: the run's partitions of each table, filtered by is_in, streaming."""
    buckets = run % PARTITIONS
    first, last = int(buckets.min()), int(buckets.max())
    ngrams = pl.Series("ngram", run).implode()
    scans = {name: pl.scan_parquet([layer / f"{name}.parquet" for layer in layers])
             .filter(pl.col("partition").is_between(first, last)).select(schema.names())
             .filter(pl.col("ngram").is_in(ngrams)) for name, schema in split.NGRAM_TABLES.items()}
    return dict(zip(scans, pl.collect_all(list(scans.values()), engine="streaming")))


def new_lookup(tables: dict[str, list], run: np.ndarray) -> dict[str, pl.DataFrame]:
    """build_layer's: the earlier layers' tables mapped once, the run's n-grams searched in them."""
    wanted = split.wanted_ngrams(pl.Series(run), PARTITIONS)
    return {name: split.rows_with_ngrams(tables[name], name, wanted) for name in split.NGRAM_TABLES}


def child(code: str, folder: Path) -> None:
    import psutil

    runs = drop_runs(np.load(folder / "drop.npy"))
    lookup, layers = (old_lookup, "parquet") if code == "old" else (new_lookup, "npy")
    layers = sorted((folder / layers).iterdir(), key=lambda path: int(path.name.split("=")[1]))
    before, started, clock = psutil.Process().memory_info().rss, resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    if code == "new":
        layers = {name: split.ngram_tables(layers, name) for name in split.NGRAM_TABLES}
    found = [lookup(layers, run) for run in runs]
    wall, ended = time.perf_counter() - clock, resource.getrusage(resource.RUSAGE_SELF)
    rows = {name: pl.concat([run[name] for run in found]) for name in split.NGRAM_TABLES}
    print(json.dumps({
        "cpu": ended.ru_utime + ended.ru_stime - started.ru_utime - started.ru_stime, "wall": wall,
        "peak": ended.ru_maxrss * 1024, "growth": ended.ru_maxrss * 1024 - before,
        "rows": {name: frame.height for name, frame in rows.items()},
        "digest": {name: int(frame.hash_rows().sum()) for name, frame in rows.items()},
    }))


def measure(code: str, folder: Path) -> dict:
    run = subprocess.run([sys.executable, __file__, "--child", code, str(folder)], capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"{code} lookup failed:\n{run.stderr}")
    return json.loads(run.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=48_000_000, help="rows of the earlier layers in all")
    parser.add_argument("--layers", type=int, default=100, help="layers of the 'many' shape")
    parser.add_argument("--drop", type=int, default=387_000, help="the drop's distinct n-grams")
    parser.add_argument("--seen", type=float, default=0.3, help="share of the drop's n-grams in the earlier layers")
    parser.add_argument("--shapes", nargs="+", default=["base", "many"], choices=["base", "many"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ctx-index"))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], Path(args.child[1]))
    for shape in args.shapes:
        sizes = layer_sizes(shape, args.rows, args.layers)
        folder = args.workdir / f"{shape}-{args.rows}-{len(sizes)}-{args.drop}-{args.seen}"
        write_layers(folder, sizes, args.drop, args.seen, seed=len(sizes))
        size = {kind: sum(path.stat().st_size for path in (folder / kind).rglob("*") if path.is_file()) / 2**20
                for kind in ("parquet", "npy")}
        figures = {"old": [], "new": []}
        for code in ("old", "new"):  # warm-up: the layers read once into the page cache
            measure(code, folder)
        for _ in range(args.repeats):
            for code in ("old", "new"):
                figures[code].append(measure(code, folder))
        same = all(result["digest"] == figures["old"][0]["digest"] for code in figures for result in figures[code])
        print(f"\n{shape}: {len(sizes)} earlier layers, {sum(sizes):,} rows (Parquet {size['parquet']:,.0f} MiB, "
              f".npy {size['npy']:,.0f} MiB); drop {args.drop:,} n-grams, {args.seen:.0%} seen before; "
              f"rows found {figures['old'][0]['rows']}; same rows: {same}")
        print(f"{'lookup':<10}{'CPU s':>8}{'wall s':>8}{'peak RSS MiB':>14}{'growth MiB':>12}")
        median = {code: {key: statistics.median(result[key] for result in results)
                         for key in ("cpu", "wall", "peak", "growth")} for code, results in figures.items()}
        for code, row in median.items():
            print(f"{code:<10}{row['cpu']:>8.2f}{row['wall']:>8.2f}{row['peak'] / 2**20:>14.0f}{row['growth'] / 2**20:>12.0f}")
        print(f"{'new / old':<10}{median['new']['cpu'] / median['old']['cpu']:>8.3f}"
              f"{median['new']['wall'] / median['old']['wall']:>8.3f}{median['new']['peak'] / median['old']['peak']:>14.2f}"
              f"{median['new']['growth'] / max(median['old']['growth'], 1):>12.2f}", flush=True)


if __name__ == "__main__":
    main()
