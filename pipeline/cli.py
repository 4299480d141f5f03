"""The ``corpus`` command: one subcommand per pipeline stage, plus drop tools.

``dvc repro`` runs the stage subcommands with the paths from params.yaml; each also takes
explicit ``--input``/``--output`` paths so it can run on any drop or table.
"""

from __future__ import annotations

import argparse
import sys

from . import clean, dedup, drops, ingest, publish, release, split, totals, validate

# Order is the order of the data flow, then the tools for new drops; `corpus --help` lists them so.
COMMAND_MODULES = (ingest, clean, totals, dedup, validate, split, publish, release, drops)

DESCRIPTION = """\
Build the Arabic news corpus from raw drops:

  raw drop -> ingest -> clean -> dedup -> validate -> split -> publish

`dvc repro` runs all stages; every stage can also run alone on explicit paths.
Run `corpus <command> --help` for what a command does and its options."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corpus", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    commands = parser.add_subparsers(title="commands", metavar="<command>", required=True)
    for module in COMMAND_MODULES:
        module.add_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (FileNotFoundError, ValueError) as error:
        print(f"corpus: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
