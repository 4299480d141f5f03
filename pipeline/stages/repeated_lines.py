"""Repeated lines: each drop's short lines counted per outlet, then chained in drop order
into the table of repeated lines each drop is cleaned with (``clean.repeated_lines_by_drop``).

`dvc repro` runs it as one stage over every drop (``corpus repeated-lines``), between the
drops' ingest and clean. A drop's counts, ``<paths.line_counts>/drop=<name>/`` (a DVC
output left in place between runs, ``persist``), are reused while their fingerprint holds:
the boilerplate rules counting reads, the code, the drop's ingested articles. So after a
new drop only its lines are counted; the chaining re-reads every drop's counts (small: one
row per distinct short line of an outlet) and writes every drop's table, the earlier ones
the same bytes as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.commands import add_parser
from pipeline.plumbing.fingerprint import DigestMemo, code_digest, digest, files_digest
from pipeline.plumbing.io import (
    keep_only,
    partition,
    partition_drops,
    read_json,
    require_partitions,
    reset_dir,
    scan_table,
    scratch_folder,
    write_json,
    write_table,
    write_text,
)
from pipeline.plumbing.params import drop_order, load_params, path_of, section
from pipeline.plumbing.progress import log
from pipeline.stages.clean import (
    BOILERPLATE_FILE,
    REPEATED_LINES_FILE,
    BoilerplateRules,
    normalise_in_batches,
    repeated_lines_by_drop,
)

STAGE = "repeated_lines"
LINE_COUNTS_FILE = "short_lines.parquet"
# What a drop's counts were computed from (``counts_fingerprint``); written last, so a drop
# interrupted before it is counted again.
FINGERPRINT_FILE = "fingerprint.json"
# The ``boilerplate`` params counting reads (the others leave the counts as they are: tested).
COUNTING_RULES = ("line_start_markers", "line_end_markers", "repeated_lines")


def counting_fingerprint(boilerplate: dict[str, Any], memo: DigestMemo | None = None) -> str:
    """What every drop's line counts depend on but its articles: the rules counting reads,
    the code."""
    rules = json.dumps({name: boilerplate[name] for name in COUNTING_RULES}, sort_keys=True)
    return digest(rules, code_digest(__name__, memo))


def counts_fingerprint(articles: Path, counting: str, memo: DigestMemo | None = None) -> str:
    """A drop's line counts hold while this does: `counting` (``counting_fingerprint``) and
    the drop's ingested articles (each file read once while unchanged, with a `memo`)."""
    return digest(counting, files_digest(articles, memo))


def count_lines(articles: Path, output_dir: Path, params: dict[str, Any], fingerprint: str) -> None:
    """A drop's short lines (ingested `articles`) normalised and counted once an article per
    outlet (``clean.normalise_in_batches``), into `output_dir`."""
    rules = BoilerplateRules.from_params(section(params, "boilerplate"))
    with scratch_folder(output_dir.parent) as scratch:
        _, counts = normalise_in_batches(scan_table(articles), rules, int(section(params, "clean")["batch_size"]),
                                         scratch, keep_normalised=False)
    write_table(counts, reset_dir(output_dir) / LINE_COUNTS_FILE)
    write_json(output_dir / FINGERPRINT_FILE, {"fingerprint": fingerprint})


def run(ingested: Path, counted: Path, output_dir: Path, params: dict[str, Any]) -> None:
    """Every drop of `ingested` (in ``split.drop_order``) counted into `counted`, a drop
    whose counts' fingerprint holds reused, then each drop's repeated lines into `output_dir`."""
    require_partitions(ingested, drop_order(params), "articles", "corpus ingest --drop {drop}")
    boilerplate, memo = section(params, "boilerplate"), DigestMemo.beside(counted)
    drops, counting = partition_drops(ingested, drop_order(params)), counting_fingerprint(boilerplate, memo)
    for drop in drops:
        articles, counts_dir = partition(ingested, drop) / "articles", partition(counted, drop)
        fingerprint = counts_fingerprint(articles, counting, memo)
        done = counts_dir / FINGERPRINT_FILE
        if done.exists() and read_json(done)["fingerprint"] == fingerprint:
            log(STAGE, f"drop {drop}: unchanged since its lines were counted, the counts are reused")
        else:
            count_lines(articles, counts_dir, params, fingerprint)
    memo.save()  # once, after the last fingerprint
    keep_only(counted, [partition(counted, drop) for drop in drops])  # drops no longer in the corpus go
    reset_dir(output_dir)
    counts = ((drop, scan_table(partition(counted, drop) / LINE_COUNTS_FILE)) for drop in drops)
    for drop, repeated in repeated_lines_by_drop(counts, BoilerplateRules.from_params(boilerplate)):
        write_table(repeated, partition(output_dir, drop) / REPEATED_LINES_FILE)
        # In params.yaml's order (not key-sorted): the first line rule that matches a line names it.
        write_text(partition(output_dir, drop) / BOILERPLATE_FILE,
                   json.dumps(boilerplate, ensure_ascii=False, indent=2) + "\n")
        log(STAGE, f"drop {drop}: {repeated.height:,} repeated lines")


def add_command(commands) -> None:
    add_parser(commands, "repeated-lines").set_defaults(handler=_main)


def _main(args) -> int:
    params = load_params(args.params)
    run(path_of(params, "ingest"), path_of(params, "line_counts"), path_of(params, "repeated_lines"), params)
    return 0
