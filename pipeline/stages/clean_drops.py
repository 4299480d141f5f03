"""The clean stage of `dvc repro` (``corpus clean``): each drop of ``split.drop_order``, in
that order, ingested (stages/ingest.py), its short lines counted per outlet, the counts
chained into the repeated lines each drop is cleaned with (``clean.repeated_lines_by_drop``:
drop k's from drops 1..k), and cleaned (stages/clean.py).

One DVC stage for every drop and step, not a `foreach` stage a drop and step: DVC's own
work for a new drop grows with the drops already there (it rewrites dvc.lock, ~120 lines a
drop of those stages' entries, after every stage it runs; benchmarks/README.md "Many
drops"). The per-drop state is this stage's own instead: a step writes a drop's folder with
the fingerprint of what shaped it (``fingerprint.write_fingerprint``, written last, so a folder
interrupted before it is made again) and reuses the folder while the fingerprint holds:

* ``<paths.ingest>/drop=<name>/``: the ingest params, the code, the raw drop's files;
* ``<paths.line_counts>/drop=<name>/``: the rules counting reads, the code, the drop's
  ingested articles;
* ``<paths.repeated_lines>/drop=<name>/``: chained from every drop's counts on each run
  (small: a row per repeated line of an outlet), an unchanged drop's the same bytes;
* ``<paths.clean>/drop=<name>/``: the boilerplate, clean and quality params, the code, the
  drop's ingested articles and quarantine, its repeated lines.

So after a new drop only its folders are made; a changed raw drop is ingested, counted and
cleaned again, and so is (cleaned) every later drop whose repeated lines change with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.engines.engine import Engine, add_engine_option, open_engine, with_engine
from pipeline.plumbing.fingerprint import (
    DigestMemo,
    code_digest,
    digest,
    files_digest,
    fingerprint_holds,
    write_fingerprint,
)
from pipeline.plumbing.io import (
    keep_listed_drops,
    partition,
    reset_dir,
    scan_table,
    scratch_folder,
    write_table,
    write_text,
)
from pipeline.plumbing.params import drop_order, path_of, section
from pipeline.plumbing.progress import log
from pipeline.plumbing.stage_command import StagePaths, add_stage_command
from pipeline.stages import clean, ingest
from pipeline.stages.clean import (
    BOILERPLATE_FILE,
    REPEATED_LINES_FILE,
    BoilerplateRules,
    normalise_in_batches,
    repeated_lines_by_drop,
)

STAGE = clean.STAGE
LINE_COUNTS_FILE = "short_lines.parquet"
# The ``boilerplate`` params counting reads (the others leave the counts as they are: tested).
COUNTING_RULES = ("line_start_markers", "line_end_markers", "repeated_lines")
# The params sections cleaning a drop reads.
CLEANING_PARAMS = ("boilerplate", "clean", "quality")


@dataclass(frozen=True)
class Folders:
    """The stage's input (the raw drops) and its four outputs, one partition a drop in each."""

    raw: Path
    ingest: Path
    line_counts: Path
    repeated_lines: Path
    clean: Path

    @classmethod
    def of(cls, params: dict[str, Any], clean_dir: Path | None = None) -> Folders:
        return cls(*(path_of(params, name) for name in ("raw", "ingest", "line_counts", "repeated_lines")),
                   clean_dir or path_of(params, "clean"))

    def outputs(self) -> tuple[Path, ...]:
        return self.ingest, self.line_counts, self.repeated_lines, self.clean


def step_code(module: str, memo: DigestMemo | None = None) -> str:
    """The code a step's output depends on: its module with what it imports
    (``code_digest``), and this one, which runs the step."""
    return digest(code_digest(module, memo), files_digest(Path(__file__), memo))


def counting_fingerprint(boilerplate: dict[str, Any], memo: DigestMemo | None = None) -> str:
    """What every drop's line counts depend on but its articles: the rules counting reads,
    the code."""
    rules = json.dumps({name: boilerplate[name] for name in COUNTING_RULES}, sort_keys=True)
    return digest(rules, step_code(clean.__name__, memo))


def count_lines(articles: Path, output_dir: Path, params: dict[str, Any], fingerprint: str) -> None:
    """A drop's short lines (ingested `articles`) normalised and counted once an article per
    outlet (``clean.normalise_in_batches``), into `output_dir`."""
    rules = BoilerplateRules.from_params(section(params, "boilerplate"))
    with scratch_folder(output_dir.parent) as scratch:
        _, counts = normalise_in_batches(scan_table(articles), rules, int(section(params, "clean")["batch_size"]),
                                         scratch, keep_normalised=False)
    write_table(counts, reset_dir(output_dir) / LINE_COUNTS_FILE)
    write_fingerprint(output_dir, fingerprint)


def require_raw_drops(raw_dir: Path, drops: list[str]) -> None:
    """Every drop of ``split.drop_order`` has its folder under `raw_dir`, or a ValueError
    naming the first that has not, before anything is written."""
    for drop in drops:
        if not (raw_dir / drop).is_dir():
            raise ValueError(f"drop {drop} of split.drop_order has no folder {raw_dir / drop}: add it with "
                             f"`corpus add-drop` (or `dvc pull` it), or take it out of split.drop_order")


def ingest_and_count(folders: Folders, drops: list[str], params: dict[str, Any], engine: Engine,
                     memo: DigestMemo) -> None:
    """Each drop ingested and its short lines counted, a folder whose fingerprint holds reused."""
    ingest_params = section(params, "ingest")
    ingesting = digest(json.dumps(ingest_params, sort_keys=True, default=str), step_code(ingest.__name__, memo))
    counting = counting_fingerprint(section(params, "boilerplate"), memo)
    for drop in drops:
        ingested, counted = partition(folders.ingest, drop), partition(folders.line_counts, drop)
        fingerprint = digest(ingesting, drop, files_digest(folders.raw / drop, memo))
        if fingerprint_holds(ingested, fingerprint):
            log(STAGE, f"drop {drop}: its raw files unchanged since it was ingested, its articles are reused")
        else:
            ingest.run(folders.raw, reset_dir(ingested), None, ingest_params, [drop], engine)
            write_fingerprint(ingested, fingerprint)
        fingerprint = digest(counting, files_digest(ingested / "articles", memo))
        if fingerprint_holds(counted, fingerprint):
            log(STAGE, f"drop {drop}: unchanged since its lines were counted, the counts are reused")
        else:
            count_lines(ingested / "articles", counted, params, fingerprint)


def chain_and_clean(folders: Folders, drops: list[str], params: dict[str, Any], memo: DigestMemo) -> None:
    """Each drop's repeated lines, from the counts of the drops up to it, and the drop
    cleaned with them, a clean folder whose fingerprint holds reused."""
    boilerplate = section(params, "boilerplate")
    cleaning = digest(json.dumps({name: section(params, name) for name in CLEANING_PARAMS}, sort_keys=True,
                                 default=str), step_code(clean.__name__, memo))
    reset_dir(folders.repeated_lines)
    counts = ((drop, scan_table(partition(folders.line_counts, drop) / LINE_COUNTS_FILE)) for drop in drops)
    for drop, repeated in repeated_lines_by_drop(counts, BoilerplateRules.from_params(boilerplate)):
        learnt = partition(folders.repeated_lines, drop)
        write_table(repeated, learnt / REPEATED_LINES_FILE)
        # The rules the table was learnt with, which validate checks the drop's rows against;
        # in params.yaml's order (not key-sorted): the first line rule that matches a line names it.
        write_text(learnt / BOILERPLATE_FILE, json.dumps(boilerplate, ensure_ascii=False, indent=2) + "\n")
        log(STAGE, f"drop {drop}: {repeated.height:,} repeated lines")
        ingested, cleaned = partition(folders.ingest, drop), partition(folders.clean, drop)
        fingerprint = digest(cleaning, drop, *(files_digest(path, memo) for path in (
            ingested / "articles", ingested / "quarantine.parquet", learnt / REPEATED_LINES_FILE)))
        if fingerprint_holds(cleaned, fingerprint):
            log(STAGE, f"drop {drop}: unchanged since it was cleaned, its folder is reused")
        else:
            clean.run(ingested, reset_dir(cleaned), None, params, repeated)
            write_fingerprint(cleaned, fingerprint)


def run(folders: Folders, params: dict[str, Any]) -> None:
    """Every drop of ``split.drop_order`` ingested, counted, chained and cleaned into
    `folders`; the folders of drops no longer listed removed."""
    drops = drop_order(params)
    require_raw_drops(folders.raw, drops)
    keep_listed_drops(STAGE, folders.outputs(), drops)
    memo = DigestMemo.beside(folders.clean)
    ingest_and_count(folders, drops, params, open_engine(params), memo)
    chain_and_clean(folders, drops, params, memo)
    memo.save()  # once, after the last fingerprint


def add_command(commands) -> None:
    parser = add_stage_command(
        commands, STAGE, input_from=("ingest",), main=_main,
        input_help="an ingested table (`corpus ingest --output`) to clean alone, with its own repeated lines",
        without_input="without it: every drop of split.drop_order, from <paths.raw>, ingested and cleaned drop by "
        "drop into <paths.ingest>, <paths.line_counts>, <paths.repeated_lines> and <output>: what `dvc repro` runs",
    )
    add_engine_option(parser)


def _main(paths: StagePaths, params: dict[str, Any], args) -> int:
    params = with_engine(params, args.engine)
    if args.input is None:
        run(Folders.of(params, args.output), params)
    else:
        clean.run(paths.input, paths.output, paths.metrics, params)
    return 0
