"""Dedup of a new 1 % drop against the earlier drops' index, side by side with a run from scratch.

    .venv/bin/python benchmarks/dedup_incremental.py --articles 100000 --workdir /tmp/dedup-incremental

The corpus is benchmarks/incremental.py's (``generate``, seeded: real SaudiNewsNet sentences
recombined into articles of 150-600 words, 5 % reprints; drops ``base``, 99 %, and ``new``,
1 %), laid out as the clean stage's drop folders without running ingest and clean (the body
is the text). Three `corpus dedup` processes, one after the other:

1. scratch: both drops into an empty output folder (what a fresh clone or a changed param costs);
2. base: the ``base`` drop alone into a second folder (the corpus before the new drop);
3. incremental: the ``new`` drop added, same folder: ``base``'s folder is reused.

It prints wall time, CPU time and peak RSS of each, the ratios incremental / scratch, and
checks the incremental output equals the scratch output byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.incremental import generate, measured  # noqa: E402
from pipeline.plumbing.io import partition, write_table  # noqa: E402
from pipeline.plumbing.params import with_list_item  # noqa: E402
from pipeline.plumbing.schema import ARTICLE_SCHEMA, conform  # noqa: E402
from pipeline.stages.dedup import KEPT_FILE  # noqa: E402


def clean_folders(raw: Path, clean: Path) -> dict[str, int]:
    """The generated JSONL drops as clean's drop folders (ARTICLE_SCHEMA); articles a drop."""
    sizes = {}
    for drop in ("base", "new"):
        rows = pl.concat([pl.read_ndjson(path) for path in sorted((raw / drop).glob("*.jsonl"))])
        articles = rows.select(
            id=pl.col("url").map_elements(lambda url: hashlib.sha256(url.encode()).hexdigest()[:16], return_dtype=pl.String),
            drop=pl.lit(drop), source_file=pl.col("url"), title="title", text="content", url="url", source="source",
            published_date=pl.col("date_extracted").str.to_date(strict=False),
            n_chars=pl.col("content").str.len_chars().cast(pl.Int64),
            n_words=pl.col("content").str.count_matches(r"\S+").cast(pl.Int64),
            language=pl.lit("ar"), raw_sha256=pl.lit(None, pl.String), language_score=pl.lit(None, pl.Float64),
        )
        write_table(conform(articles, ARTICLE_SCHEMA), partition(clean, drop) / KEPT_FILE)
        sizes[drop] = articles.height
    return sizes


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work, clean = args.workdir, args.workdir / "clean"
    if args.prepare_only:
        generate(args.articles, args.seed, work / "raw")
        print(json.dumps(clean_folders(work / "raw", clean)))
        return
    # Prepared in a child process: a process forked from a big parent reports the parent's
    # peak RSS as its own (Linux keeps it across exec), so this one stays small.
    shutil.rmtree(work, ignore_errors=True)
    sizes = json.loads(subprocess.run(
        [sys.executable, __file__, "--articles", str(args.articles), "--seed", str(args.seed), "--workdir", str(work),
         "--prepare-only"], check=True, capture_output=True, text=True).stdout)
    params = work / "params.yaml"
    params.write_text(with_list_item((REPO / "params.yaml").read_text(encoding="utf-8"), "split", "drop_order", "base"),
                      encoding="utf-8")
    params.write_text(with_list_item(params.read_text(encoding="utf-8"), "split", "drop_order", "new"), encoding="utf-8")
    corpus = [str(Path(sys.executable).parent / "corpus"), "--params", str(params), "dedup"]

    def dedup(input_dir: Path, output: Path) -> dict[str, float]:
        return measured([*corpus, "--input", str(input_dir), "--output", str(output), "--metrics", str(output.with_suffix(".json"))],
                        work)

    figures = {"scratch": dedup(clean, work / "scratch")}
    only_base = work / "clean-base"
    shutil.copytree(partition(clean, "base"), partition(only_base, "base"))
    figures["base"] = dedup(only_base, work / "grown")
    figures["incremental"] = dedup(clean, work / "grown")
    same = files(work / "scratch") == files(work / "grown")

    print(f"dedup, {sizes['base']:,} articles + a new drop of {sizes['new']:,} (mean "
          f"{pl.scan_parquet(clean / '*' / KEPT_FILE).select(pl.col('n_words').mean()).collect().item():.0f} words)")
    print(f"{'run':<12} {'wall s':>8} {'CPU s':>8} {'peak RSS GiB':>13}")
    for name, figure in figures.items():
        print(f"{name:<12} {figure['wall']:>8.1f} {figure['cpu']:>8.1f} {figure['rss']:>13.2f}")
    ratios = {key: figures["incremental"][key] / figures["scratch"][key] for key in ("wall", "cpu", "rss")}
    print("incremental / scratch: " + ", ".join(f"{key} {value:.3f}" for key, value in ratios.items()))
    print(f"incremental output equals the scratch output byte for byte: {same}")
    print(json.dumps({"sizes": sizes, "figures": figures, "ratios": ratios, "identical": same}))


if __name__ == "__main__":
    main()
