"""How long the validate stage takes, and what Great Expectations adds over plain Polars.

    python benchmarks/validate_throughput.py ARTICLES.parquet [--repeat N]

ARTICLES is an article table (ARTICLE_SCHEMA, with or without cluster_id), e.g. the
clean or dedup output of the SaudiNewsNet zips; --repeat stacks it N times (ids made
unique) to see how time grows with size. Prints, for the drop suites (no cluster_id
needed):

* derive: the check columns (Arabic ratio, line match keys, text key hash) in Polars;
* gx: `validate.run_suites`, i.e. derive + pandas conversion + every GX expectation +
  Data Docs, as the stage runs it;
* polars: the same row and table checks written as Polars expressions, the floor a
  hand-rolled validator would reach (no report, no Data Docs).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.plumbing.params import load_params  # noqa: E402
from pipeline.stages import validate  # noqa: E402
from pipeline.stages.clean import BoilerplateRules  # noqa: E402


def polars_checks(articles: pl.LazyFrame, parameters: dict, rules: BoilerplateRules) -> dict[str, int]:
    """Failing rows per check, the suites' row and table checks in Polars."""
    checked = validate.with_check_columns(articles, rules)
    row_checks = {
        "n_chars": ~pl.col("n_chars").is_between(parameters["min_chars"], parameters["max_chars"]),
        "n_words": pl.col("n_words") < parameters["min_words"],
        "arabic_ratio": pl.col("arabic_ratio") < parameters["min_arabic_ratio"],
        "title length": ~pl.col("title").str.len_chars().is_between(1, parameters["max_title_chars"]),
        "boilerplate lines": pl.col("text_line_keys").str.contains(parameters["boilerplate_line_regex"]),
        "boilerplate title": pl.col("title_key").str.contains(parameters["boilerplate_line_regex"]),
        "markers": pl.col("text").str.contains(parameters["boilerplate_marker_regex"]),
        "html tag": pl.col("text").str.contains(parameters["html_tag_regex"]) | pl.col("title").str.contains(parameters["html_tag_regex"]),
        "html entity": pl.col("text").str.contains(parameters["html_entity_regex"]) | pl.col("title").str.contains(parameters["html_entity_regex"]),
        "nulls": pl.any_horizontal(pl.col("id", "drop", "source_file", "title", "text", "raw_sha256").is_null()),
        "id format": ~pl.col("id").str.contains("^[0-9a-f]{16}$"),
        "duplicate id": pl.col("id").is_duplicated(),
        "duplicate text": pl.col("text_key_hash").is_duplicated(),
    }
    return checked.select(**{name: expr.sum() for name, expr in row_checks.items()}).collect(engine="streaming").row(0, named=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("articles", type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--gx", type=Path, default=Path("gx"))
    args = parser.parse_args()

    params = load_params(args.params)
    rules = BoilerplateRules.from_params(params["boilerplate"])
    base = pl.read_parquet(args.articles).drop("cluster_id", strict=False)
    articles = pl.concat([
        base.with_columns(id=pl.col("id").str.slice(0, 12) + pl.lit(f"{copy:04x}")) for copy in range(args.repeat)
    ])
    chars = articles["n_chars"].sum()
    print(f"{articles.height:,} articles, {chars / 1e6:,.1f} M characters; load average {os.getloadavg()[0]:.1f}")

    started = time.perf_counter()
    validate.with_check_columns(articles.lazy(), rules).collect(engine="streaming")
    derive = time.perf_counter() - started

    started = time.perf_counter()
    import great_expectations  # noqa: F401  (timed apart: a fixed cost of every run)
    gx_import = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        report = validate.run_suites(articles.lazy(), validate.DROP, params, args.gx, Path(output))
        gx = time.perf_counter() - started

    started = time.perf_counter()
    failing = polars_checks(articles.lazy(), validate.suite_parameters(params, validate.DROP), rules)
    plain = time.perf_counter() - started

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"derive check columns   {derive:6.1f} s")
    print(f"import GX              {gx_import:6.1f} s (once per run)")
    print(f"validate (GX)          {gx:6.1f} s  {articles.height / gx:,.0f} articles/s  "
          f"{len(report.checks) - len(report.failed)}/{len(report.checks)} expectations passed")
    print(f"same checks in Polars  {plain:6.1f} s  {articles.height / plain:,.0f} articles/s  "
          f"failing rows: {sum(failing.values())}")
    print(f"peak RSS               {rss:6.0f} MiB")


if __name__ == "__main__":
    main()
