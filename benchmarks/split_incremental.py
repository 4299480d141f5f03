"""What a 1 % drop costs the split stage: `corpus split` on a corpus whose contamination
index already holds the earlier drop (incremental), side by side with the same split from
nothing (full: an empty index), in one run.

    .venv/bin/python benchmarks/split_incremental.py --articles 100000 --workdir /tmp/split-incremental

The corpus is benchmarks/incremental.py's (seeded: real SaudiNewsNet sentences recombined
into articles of 150-600 words, 5 % reprints; drops ``base``, 99 %, and ``new``, 1 %), laid
out as the dedup stage's output with every article its own cluster (no dedup run: the
reprints stay as near-duplicate articles, so the contamination check has real work). The
index of ``base`` alone is built first (not measured). Each measured run is one `corpus
split` process: wall time, CPU time (user + sys) and peak RSS, and the ratio incremental / full.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from benchmarks.incremental import generate  # noqa: E402
from pipeline.plumbing.io import partition, write_table  # noqa: E402
from pipeline.plumbing.schema import CLUSTER_ID, CLUSTERED_ARTICLE_SCHEMA, conform  # noqa: E402

CORPUS = str(Path(sys.executable).parent / "corpus")


def dedup_layout(raw: Path, dedup_dir: Path) -> None:
    """Each generated drop as build/dedup/drop=<name>/articles.parquet."""
    for drop in ("base", "new"):
        rows = pl.scan_ndjson(sorted((raw / drop).glob("*.jsonl"))).with_row_index("number").select(
            id=pl.lit(f"{drop}-") + pl.col("number").cast(pl.String),
            drop=pl.lit(drop),
            title="title",
            text="content",
            url="url",
            source="source",
            published_date=pl.col("date_extracted").str.to_date(strict=False),
            n_chars=pl.col("content").str.len_chars(),
            n_words=pl.col("content").str.split(" ").list.len(),
        ).with_columns(**{CLUSTER_ID: pl.col("id")})
        missing = [name for name in CLUSTERED_ARTICLE_SCHEMA if name not in rows.collect_schema()]
        rows = conform(rows.with_columns(pl.lit(None).alias(name) for name in missing), CLUSTERED_ARTICLE_SCHEMA)
        write_table(rows, partition(dedup_dir, drop) / "articles.parquet")


def measure(args: list[str], log: Path) -> dict[str, float]:
    """Wall s, CPU s and peak RSS (GiB) of one `corpus split` process (its output to `log`)."""
    start = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen([CORPUS, "--params", str(REPO / "params.yaml"), "split", *args],
                                   stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"corpus split failed:\n{log.read_text()}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_gib": usage.ru_maxrss / 2**20}


def split_args(dedup_dir: Path, out: Path, index: Path) -> list[str]:
    return ["--input", str(dedup_dir), "--output", str(out / "split"), "--index", str(index),
            "--metrics", str(out / "split.json")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/split-incremental"))
    args = parser.parse_args()
    work = args.workdir / f"{args.articles}-seed{args.seed}"
    if not (work / "dedup").is_dir():  # generated once for these arguments
        shutil.rmtree(work, ignore_errors=True)
        generate(args.articles, args.seed, work / "raw")
        dedup_layout(work / "raw", work / "dedup")
    for previous in ("dedup-base", "base", "full", "incremental", "index-full", "index-incremental"):
        shutil.rmtree(work / previous, ignore_errors=True)
    sizes = {drop: pl.scan_parquet(partition(work / "dedup", drop) / "articles.parquet").select(pl.len()).collect().item()
             for drop in ("base", "new")}
    words = pl.scan_parquet(sorted((work / "dedup").glob("drop=*/articles.parquet"))).select(pl.col("n_words").mean()).collect().item()
    print(f"corpus: {sizes['base']:,} + {sizes['new']:,} articles (mean {words:.0f} words)", flush=True)

    base_only = work / "dedup-base"
    shutil.copytree(partition(work / "dedup", "base"), partition(base_only, "base"))
    subprocess.run([CORPUS, "--params", str(REPO / "params.yaml"), "split", *split_args(base_only, work / "base", work / "index-incremental")],
                   check=True, capture_output=True)
    results = {
        "full (empty index)": measure(split_args(work / "dedup", work / "full", work / "index-full"), work / "full.log"),
        "incremental (index of base)": measure(split_args(work / "dedup", work / "incremental", work / "index-incremental"),
                                               work / "incremental.log"),
    }
    same = all((work / "full" / "split" / name).read_bytes() == (work / "incremental" / "split" / name).read_bytes()
               for name in os.listdir(work / "full" / "split"))
    print(f"{'run':<30} {'wall s':>8} {'CPU s':>8} {'peak RSS GiB':>13}")
    for name, figures in results.items():
        print(f"{name:<30} {figures['wall_s']:>8.1f} {figures['cpu_s']:>8.1f} {figures['peak_rss_gib']:>13.2f}")
    full, incremental = results.values()
    print(f"{'incremental / full':<30} {incremental['wall_s'] / full['wall_s']:>8.2f} {incremental['cpu_s'] / full['cpu_s']:>8.2f} "
          f"{incremental['peak_rss_gib'] / full['peak_rss_gib']:>13.2f}")
    print(f"outputs byte-identical: {same}; index: {sum(f.stat().st_size for f in (work / 'index-full').rglob('*')) / 2**20:.0f} MiB, "
          f"kept articles: {sum(f.stat().st_size for f in (work / 'dedup').rglob('*.parquet')) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
