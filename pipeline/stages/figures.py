"""Figures of a run: the headline metrics of the stages that run drop by drop, and the
small CSVs behind the curator's plots of `dvc plots show`.

Ingest and clean write one report a drop (``<output>/drop=<name>/report.json``); their sum
(io.partition_report, which the dataset card reads too) goes to
``<paths.metrics>/<stage>.json``, so `dvc metrics show` keeps one row a stage.

The plot tables are derived from what the stages already wrote (their report.json and the
tables), so no stage changes its outputs for a chart. Written to ``paths.plots``:

* ``quarantine_by_stage.csv``: per reason, articles taken out at ingest, at clean,
  removed as duplicates by dedup, and set aside by split (one column a stage).
* ``articles_by_drop.csv``: per drop, its inputs, the articles ingest made of them, those
  clean kept, those dedup kept, and those published (one column a step).
* ``chars_by_split.csv`` / ``words_by_split.csv``: length distribution of the published
  articles (characters / words per article, in bins), one column a split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from pipeline.commands import add_parser
from pipeline.plumbing.io import (
    REPORT_FILE,
    headline_figures,
    partition_report,
    read_json,
    require_partitions,
    scan_partitions,
    write_json,
    write_text,
)
from pipeline.plumbing.params import drop_order, load_params, path_of
from pipeline.plumbing.progress import log
from pipeline.plumbing.schema import SPLITS
from pipeline.stages import clean, ingest
from pipeline.stages.split import DROP_FILE, split_table

STAGE = "figures"
PARTITIONED_STAGES = (ingest, clean)
# Left bin edges; each length scale roughly doubles (articles span 80 to 100,000 characters).
CHAR_BINS = (0, 250, 500, 1000, 2000, 4000, 8000, 16000)
WORD_BINS = (0, 50, 100, 200, 400, 800, 1600, 3200)
# The stages read, each with the file it writes last in a drop's folder (there when the drop
# is built that far) and the command that writes it.
DROP_BUILT = {
    "ingest": (REPORT_FILE, "corpus clean"),
    "clean": (REPORT_FILE, "corpus clean"),
    "dedup": (REPORT_FILE, "corpus dedup"),
    "split": (DROP_FILE, "corpus split"),
}


def quarantine_by_stage(ingest: dict[str, Any], clean: dict[str, Any], dedup: dict[str, Any],
                        split: dict[str, Any]) -> pl.DataFrame:
    """Articles taken out per reason (rows) and stage (columns), from the stage reports."""
    taken_out = {
        "ingest": ingest["quarantined_by_reason"],
        "clean": clean["quarantined_by_reason"],
        "dedup": {f"{kind}_duplicate": n for kind, n in dedup["duplicates_by_kind"].items()},
        "split": split["quarantined_by_reason"],
    }
    reasons = list(dict.fromkeys(reason for by_reason in taken_out.values() for reason in by_reason))
    return pl.DataFrame(
        {"reason": reasons} | {stage: [by_reason.get(r, 0) for r in reasons] for stage, by_reason in taken_out.items()},
        schema={"reason": pl.String} | {stage: pl.Int64 for stage in taken_out},
    )


def articles_by_drop(steps: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    """Per drop (rows), its articles at each step (`steps`: name -> table with a ``drop`` column)."""
    frame = None
    for step, table in steps.items():
        counts = table.group_by("drop").agg(pl.len().cast(pl.Int64).alias(step)).collect()
        frame = counts if frame is None else frame.join(counts, on="drop", how="full", coalesce=True)
    return frame.fill_null(0).sort("drop")


def bin_labels(edges: tuple[int, ...]) -> list[str]:
    """"0-249", "250-499", ..., the last "16000+"."""
    return [f"{lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:])] + [f"{edges[-1]}+"]


def lengths_by_split(splits: dict[str, pl.LazyFrame], column: str, edges: tuple[int, ...]) -> pl.DataFrame:
    """Articles per length bin (rows: every bin, in order) and split (columns)."""
    labels = bin_labels(edges)
    frame = pl.DataFrame({column: labels})
    for split, table in splits.items():
        index = pl.sum_horizontal([(pl.col(column) >= edge).cast(pl.Int32) for edge in edges[1:]])
        binned = index.replace_strict(dict(enumerate(labels)), return_dtype=pl.String).alias(column)
        counts = table.group_by(binned).agg(pl.len().cast(pl.Int64).alias(split)).collect()
        frame = frame.join(counts, on=column, how="left", maintain_order="left").with_columns(pl.col(split).fill_null(0))
    return frame


# ---------------------------------------------------------------------------- stage


def stage_reports(stage_dirs: dict[str, Path], drops: tuple[str, ...] | None = None) -> dict[str, dict[str, Any]]:
    """The reports of the stages in `stage_dirs` (name -> folder): those written drop by drop
    (ingest, clean) their drops' reports summed (those of `drops`, or every one found),
    dedup's and split's as they are."""
    reports = {stage.STAGE: partition_report(stage_dirs[stage.STAGE], drops) for stage in PARTITIONED_STAGES}
    return reports | {name: read_json(stage_dirs[name] / REPORT_FILE) for name in ("dedup", "split")}


def write_totals(reports: dict[str, dict[str, Any]], metrics_dir: Path) -> None:
    """The headline figures of each stage written drop by drop, from its summed report
    (``stage_reports``), into ``<metrics_dir>/<stage>.json``."""
    for stage in PARTITIONED_STAGES:
        write_json(metrics_dir / f"{stage.STAGE}.json", headline_figures(reports[stage.STAGE], stage.HEADLINE))


def write_plot_tables(stage_dirs: dict[str, Path], output_dir: Path, drops: tuple[str, ...] = (),
                      reports: dict[str, dict[str, Any]] | None = None) -> None:
    """Write the plot CSVs from the outputs of the stages in `stage_dirs` (name -> folder),
    the stages written drop by drop read in the order of `drops` (those alone, a project's
    ``split.drop_order``; without them, every drop found); `reports`: their ``stage_reports``
    when already read (the figures command reads them once for both)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    listed_only = bool(drops)
    reports = reports or stage_reports(stage_dirs, drops if listed_only else None)
    splits = {name: split_table(stage_dirs["split"], name) for name in SPLITS}
    ingested = scan_partitions(stage_dirs["ingest"], drops, "articles", listed_only)
    quarantined = scan_partitions(stage_dirs["ingest"], drops, "quarantine.parquet", listed_only)
    steps = {
        "inputs": pl.concat([ingested.select("drop"), quarantined.select("drop")]),
        "ingested": ingested,
        "cleaned": scan_partitions(stage_dirs["clean"], drops, "articles.parquet", listed_only),
        "deduplicated": scan_partitions(stage_dirs["dedup"], drops, "articles.parquet", listed_only),
        "published": pl.concat(list(splits.values())),
    }
    tables = {
        "quarantine_by_stage": quarantine_by_stage(reports["ingest"], reports["clean"], reports["dedup"], reports["split"]),
        "articles_by_drop": articles_by_drop({step: table.select("drop") for step, table in steps.items()}),
        "chars_by_split": lengths_by_split(splits, "n_chars", CHAR_BINS),
        "words_by_split": lengths_by_split(splits, "n_words", WORD_BINS),
    }
    for name, table in tables.items():
        write_text(output_dir / f"{name}.csv", table.write_csv())
    log(STAGE, f"{len(tables)} plot tables in {output_dir}: `dvc plots show`")


def add_command(commands) -> None:
    parser = add_parser(commands, STAGE)
    parser.add_argument("--output", type=Path, help="folder of the plot tables (default: <paths.plots>); the "
                        "metrics go to <paths.metrics>/{ingest,clean}.json")
    parser.set_defaults(handler=_main)


def _main(args) -> int:
    params = load_params(args.params)
    stage_dirs = {name: path_of(params, name) for name in DROP_BUILT}
    for name, (table, made_by) in DROP_BUILT.items():
        require_partitions(stage_dirs[name], drop_order(params), table, made_by)
    drops = tuple(drop_order(params))
    reports = stage_reports(stage_dirs, drops)
    write_totals(reports, path_of(params, "metrics"))
    write_plot_tables(stage_dirs, args.output or path_of(params, "plots"), drops, reports)
    return 0
