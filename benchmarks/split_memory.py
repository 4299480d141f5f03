"""Peak memory of the split's contamination index: the layer of a drop built from nothing
(`build_layer` of the ``base`` drop, as the split stage builds it), by this checkout and, with
``--baseline DIR`` (a checkout of other code, e.g. ``git worktree add /tmp/split-main main``),
by that code, side by side at one or more corpus sizes, in one run.

    .venv/bin/python benchmarks/split_memory.py --articles 100000 300000 --baseline /tmp/split-main

The corpus is split_incremental.py's (benchmarks/incremental.py's generated articles laid out
as dedup's output, every article its own cluster); ``--corpus DIR`` takes a corpus generated
before (DIR/base/*.jsonl, e.g. /tmp/perf-bench/300000/corpus) instead of generating it. The
articles' splits are drawn from a hash of their id (80 % train, 10 % validation, 10 % test;
the split stage's hash split at its default ratios, without its clusters and dates). Each
build is one process, its RSS sampled every 20 ms: the peak while the n-grams are hashed
(a batch of ``memory_ngrams`` words at a time: flat), the peak after (the partitions joined
and the layer's tables written: what grows with the drop), and its CPU time (user + sys).
The layers of the two codes are compared file by file.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build(articles: Path, layer: Path) -> dict[str, float]:
    """Build the layer of ``articles`` (the pipeline package on sys.path), sampling RSS."""
    import polars as pl
    import psutil

    from pipeline.plumbing.params import load_params
    from pipeline.stages import split

    process = psutil.Process()
    peaks = {"hashing": 0, "after": 0}
    phase = ["after"]

    def sample() -> None:
        while True:
            peaks[phase[0]] = max(peaks[phase[0]], process.memory_info().rss)
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    hash_ngrams = split.write_ngram_partitions

    @functools.wraps(hash_ngrams)
    def hashing(*args, **kwargs):
        phase[0] = "hashing"
        try:
            return hash_ngrams(*args, **kwargs)
        finally:
            phase[0] = "after"

    split.write_ngram_partitions = hashing
    rules = split.ContaminationRules.from_params(load_params(Path("params.yaml"))["split"])
    split_of = pl.scan_parquet(articles).select("id", split=(pl.col("id").hash(7) % 10).replace_strict(
        {0: "validation", 1: "test"}, default="train", return_dtype=split.SPLIT_TYPE))
    drop = split.DropArticles("base", articles, 1, split_of, "benchmark")
    split.build_layer(drop, [], rules, layer, "benchmark", split.LocalEngine())
    time.sleep(0.05)
    cpu = process.cpu_times()
    return {"cpu_s": cpu.user + cpu.system, "hashing_gib": peaks["hashing"] / 2**30, "after_gib": peaks["after"] / 2**30}


def measure(code: Path, articles: Path, layer: Path) -> dict[str, float]:
    """One build by the pipeline package of ``code``, in a process of its own."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, __file__, "--child", str(articles), str(layer)], cwd=code,
                         env=os.environ | {"PYTHONPATH": str(code)}, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"build_layer failed:\n{run.stdout}{run.stderr}")
    return json.loads(run.stdout.splitlines()[-1]) | {"wall_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/split-memory"))
    parser.add_argument("--corpus", type=Path, help="a generated corpus (base/*.jsonl) for the first --articles")
    parser.add_argument("--baseline", type=Path, help="a checkout of the code to compare with (its pipeline/ and params.yaml)")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(build(*args.child)))
        return
    sys.path.insert(0, str(REPO))
    from benchmarks.incremental import generate
    from benchmarks.split_incremental import dedup_layout, files

    codes = {"this": REPO} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    results = {}
    for size in args.articles:
        work = args.workdir / f"{size}-seed{args.seed}"
        if not (work / "dedup").is_dir():
            if args.corpus and size == args.articles[0]:
                dedup_layout(args.corpus, work / "dedup")
            else:
                generate(size, args.seed, work / "raw")
                dedup_layout(work / "raw", work / "dedup")
        articles = work / "dedup" / "drop=base" / "articles.parquet"
        for name, code in codes.items():
            results[size, name] = measure(code, articles, work / name / "drop=base")
            print(size, name, results[size, name], flush=True)
        if args.baseline:
            same = files(work / "this") == files(work / "baseline")
            print(f"{size:,} articles: layers byte-identical: {same}", flush=True)
    print(f"{'articles':>9} {'code':<9} {'CPU s':>7} {'peak hashing GiB':>17} {'peak after GiB':>15}")
    for (size, name), figures in results.items():
        print(f"{size:>9,} {name:<9} {figures['cpu_s']:>7.1f} {figures['hashing_gib']:>17.2f} {figures['after_gib']:>15.2f}")
    if args.baseline:
        for size in args.articles:
            ours, theirs = results[size, "this"], results[size, "baseline"]
            print(f"{size:>9,} this / baseline: CPU {ours['cpu_s'] / theirs['cpu_s']:.2f}, "
                  f"peak after hashing {ours['after_gib'] / theirs['after_gib']:.2f}, "
                  f"peak {max(ours['hashing_gib'], ours['after_gib']) / max(theirs['hashing_gib'], theirs['after_gib']):.2f}")
    if len(args.articles) >= 2:  # a straight line through the two largest sizes, per code
        small, large = sorted(args.articles)[-2:]
        for name in codes:
            slope = (results[large, name]["after_gib"] - results[small, name]["after_gib"]) / (large - small)
            print(f"{name}: peak after hashing at 1M articles, projected: "
                  f"{results[large, name]['after_gib'] + slope * (1_000_000 - large):.2f} GiB")


if __name__ == "__main__":
    main()
