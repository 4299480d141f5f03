"""The command-line shape every pipeline stage shares.

``corpus <stage> [--input PATH] [--output PATH] [--metrics PATH]``: each path defaults to
params.yaml ``paths`` (the output folder is ``paths.<stage>``, the metrics file
``<paths.metrics>/<stage>.json``), so `dvc repro` runs the bare command and a user can point
any stage at any table. A stage writes its full report to ``<output>/report.json`` and a few
headline figures of it to the metrics file (io.write_stage_report).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pipeline.commands import add_parser
from pipeline.plumbing.io import require_partitions
from pipeline.plumbing.params import drop_order, load_params, path_of


@dataclass(frozen=True)
class StagePaths:
    input: Path
    output: Path
    metrics: Path


StageMain = Callable[[StagePaths, dict[str, Any], argparse.Namespace], int]


def add_stage_command(
    commands, name: str, *, input_from: tuple[str, ...], input_help: str, main: StageMain,
    without_input: str | None = None,
) -> argparse.ArgumentParser:
    """Register ``corpus <name>`` (summary and examples: commands.COMMANDS); `input_from` is a
    ``paths`` key and optional parts below it, e.g. ``("clean", "articles.parquet")``, the
    default input unless `without_input` says what the command reads without --input.
    Returns the parser for stage-specific options."""
    parser = add_parser(commands, name)
    key, *below = input_from
    default = without_input or f"default: {'/'.join([f'<paths.{key}>', *below])}"
    parser.add_argument("--input", type=Path, help=f"{input_help} ({default})")
    parser.add_argument("--output", type=Path, help=f"output folder (default: <paths.{name}>)")
    parser.add_argument("--metrics", type=Path, help=f"headline metrics JSON (default: <paths.metrics>/{name}.json); "
                        "the full report is <output>/report.json")

    def handler(args: argparse.Namespace) -> int:
        params = load_params(args.params)
        paths = StagePaths(
            input=args.input or path_of(params, key).joinpath(*below),
            output=args.output or path_of(params, name),
            metrics=args.metrics or path_of(params, "metrics") / f"{name}.json",
        )
        return main(paths, params, args)

    parser.set_defaults(handler=handler)
    return parser


def require_listed_drops(paths: StagePaths, params: dict[str, Any], args: argparse.Namespace, table: str,
                         made_by: str) -> bool:
    """Whether this is a project run (no --input), which reads exactly the drops of
    ``split.drop_order`` (io.partition_drops' `listed_only`): then every one must have `table`
    (io.require_partitions; `made_by` builds it). A folder given with --input is read as it
    is, the drops found there."""
    if args.input is None:
        require_partitions(paths.input, drop_order(params), table, made_by)
    return args.input is None
