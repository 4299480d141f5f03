"""Totals: the headline metrics of the stages that run drop by drop (ingest, clean).

Those stages write one report a drop (``<output>/drop=<name>/report.json``); this sums
them (io.partition_report, which the dataset card reads too) into
``<paths.metrics>/<stage>.json``, so `dvc metrics show` keeps one row a stage.
"""

from __future__ import annotations

from typing import Any

from pipeline.commands import add_parser
from pipeline.plumbing.io import headline_figures, partition_report, write_json
from pipeline.plumbing.params import load_params, path_of
from pipeline.stages import clean, ingest

STAGE = "totals"
PARTITIONED_STAGES = (ingest, clean)


def run(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    metrics = path_of(params, "metrics")
    figures = {}
    for stage in PARTITIONED_STAGES:
        figures[stage.STAGE] = headline_figures(partition_report(path_of(params, stage.STAGE)), stage.HEADLINE)
        write_json(metrics / f"{stage.STAGE}.json", figures[stage.STAGE])
    return figures


def add_command(commands) -> None:
    add_parser(commands, STAGE).set_defaults(handler=_main)


def _main(args) -> int:
    run(load_params(args.params))
    return 0
