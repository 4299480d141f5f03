"""What a 1 % drop costs the split stage: `corpus split` on a corpus whose output folder
and contamination index already hold the earlier drop (incremental), side by side with the
same split from nothing (full: empty folders), in one run; with ``--baseline DIR`` (a
checkout of other code, e.g. ``git worktree add /tmp/split-main main``), the same two runs
of that code too, interleaved with ours.

    .venv/bin/python benchmarks/split_incremental.py --articles 100000 --workdir /tmp/split-incremental

The corpus is benchmarks/incremental.py's (seeded: real SaudiNewsNet sentences recombined
into articles of 150-600 words, 5 % reprints; drops ``base``, 99 %, and ``new``, 1 %), laid
out as the dedup stage's output with every article its own cluster (no dedup run: the
reprints stay as near-duplicate articles, so the contamination check has real work). The
split of ``base`` alone is run first into the incremental run's folders (not measured).
Each measured run is one `corpus split` process: wall time, CPU time (user + sys) and peak
RSS, and the ratio incremental / full. With a baseline, the split outputs of the two codes
are compared too (all but drop.json, which holds the code's fingerprint, and the index,
whose hashes other code may compute otherwise); ``--full-only`` measures the full runs
alone (a large corpus on a busy machine), and with ``--from-full`` each incremental run
starts from its full run's folders less the new drop's (no split of ``base`` alone).
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


def measure(args: list[str], log: Path, code: Path | None) -> dict[str, float]:
    """Wall s, CPU s and peak RSS (GiB) of one `corpus split` process (its output to `log`),
    running the pipeline package of ``code`` (None: the checkout this script is in, say a
    `git archive` of a commit, while the working tree changes)."""
    env = os.environ | {"PYTHONPATH": str(code or REPO)}
    start = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen([CORPUS, "--params", str((code or REPO) / "params.yaml"), "split", *args],
                                   stdout=output, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"corpus split failed:\n{log.read_text()}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_gib": usage.ru_maxrss / 2**20}


def split_args(dedup_dir: Path, out: Path) -> list[str]:
    return ["--input", str(dedup_dir), "--output", str(out / "split"), "--index", str(out / "index"),
            "--metrics", str(out / "split.json")]


def files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/split-incremental"))
    parser.add_argument("--baseline", type=Path, help="a checkout of the code to compare with (its pipeline/ and params.yaml)")
    parser.add_argument("--full-only", action="store_true", help="the full runs alone (a large corpus on a busy machine)")
    parser.add_argument("--from-full", action="store_true",
                        help="each incremental run starts from its full run's folders less the new drop's, "
                        "not from a split of the first drop alone (half the time: a large corpus)")
    args = parser.parse_args()
    work = args.workdir / f"{args.articles}-seed{args.seed}"
    if not (work / "dedup").is_dir():  # generated once for these arguments
        shutil.rmtree(work, ignore_errors=True)
        generate(args.articles, args.seed, work / "raw")
        dedup_layout(work / "raw", work / "dedup")
    sizes = {drop: pl.scan_parquet(partition(work / "dedup", drop) / "articles.parquet").select(pl.len()).collect().item()
             for drop in ("base", "new")}
    words = pl.scan_parquet(sorted((work / "dedup").glob("drop=*/articles.parquet"))).select(pl.col("n_words").mean()).collect().item()
    print(f"corpus: {sizes['base']:,} + {sizes['new']:,} articles (mean {words:.0f} words)", flush=True)
    base_only = work / "dedup-base"
    shutil.rmtree(base_only, ignore_errors=True)
    shutil.copytree(partition(work / "dedup", "base"), partition(base_only, "base"))

    codes = {"this": None} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    runs = ("full",) if args.full_only else ("full", "incremental")
    for name, code in codes.items():
        for run in ("full", "incremental"):
            shutil.rmtree(work / name / run, ignore_errors=True)
        (work / name).mkdir(parents=True, exist_ok=True)
        if not (args.full_only or args.from_full):
            measure(split_args(base_only, work / name / "incremental"), work / name / "base.log", code)
    results = {}
    for run in runs:  # the codes interleaved, so a change of load hits both
        for name, code in codes.items():
            if run == "incremental" and args.from_full:
                for out in ("split", "index"):
                    shutil.copytree(work / name / "full" / out, work / name / run / out,
                                    ignore=shutil.ignore_patterns(partition(".", "new").name))
            results[name, run] = measure(split_args(work / "dedup", work / name / run), work / name / f"{run}.log", code)
    print(f"{'code':<10} {'run':<12} {'wall s':>8} {'CPU s':>8} {'peak RSS GiB':>13}")
    for (name, run), figures in results.items():
        print(f"{name:<10} {run:<12} {figures['wall_s']:>8.1f} {figures['cpu_s']:>8.1f} {figures['peak_rss_gib']:>13.2f}")
    for name in codes if not args.full_only else ():
        full, incremental = results[name, "full"], results[name, "incremental"]
        print(f"{name:<10} {'incr / full':<12} {incremental['wall_s'] / full['wall_s']:>8.2f} "
              f"{incremental['cpu_s'] / full['cpu_s']:>8.2f} {incremental['peak_rss_gib'] / full['peak_rss_gib']:>13.2f}")
        same = all(files(work / name / "full" / out) == files(work / name / "incremental" / out) for out in ("split", "index"))
        print(f"{name}: incremental outputs byte-identical to full: {same}")
    if args.baseline:
        for run in runs:
            ours, theirs = results["this", run], results["baseline", run]
            print(f"this / baseline, {run}: wall {ours['wall_s'] / theirs['wall_s']:.2f}, CPU {ours['cpu_s'] / theirs['cpu_s']:.2f}, "
                  f"peak RSS {ours['peak_rss_gib'] / theirs['peak_rss_gib']:.2f}")
            # The index holds hashes, which other code may compute otherwise, and a drop.json
            # the code's fingerprint: the split's other files are compared.
            compared = [{name: data for name, data in files(work / code / run / "split").items()
                         if not name.endswith("drop.json")} for code in ("this", "baseline")]
            same = compared[0] == compared[1]
            print(f"this / baseline, {run}: split outputs byte-identical: {same}")


if __name__ == "__main__":
    main()
