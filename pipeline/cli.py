"""The ``corpus`` command: one subcommand per pipeline stage, plus release and drop tools.

Only the module of the command being run is imported (its libraries take seconds to
load), so `corpus --help` imports none and `corpus <command> --help` only its own.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    register: str  # "module:function" that adds the command's parser (and options)
    summary: str  # one line, in `corpus --help` and atop `corpus <name> --help`
    examples: tuple[str, ...]


# Order is the order of the data flow, then the release and drop tools; `corpus --help` lists them so.
COMMANDS = (
    Command("ingest", "ingest:add_command", "read the raw drops into one table of articles",
            ("corpus ingest", "corpus ingest --drop seed --output /tmp/ingest")),
    Command("clean", "clean:add_command", "normalise text, remove boilerplate, filter by quality",
            ("corpus clean", "corpus clean --input /tmp/ingest --output /tmp/clean")),
    Command("dedup", "dedup:add_command", "remove exact and near-duplicate articles",
            ("corpus dedup", "corpus dedup --input /tmp/clean/articles.parquet --output /tmp/dedup")),
    Command("validate", "validate:add_command", "check articles with the Great Expectations suites",
            ("corpus validate", "corpus validate --input /tmp/dedup/articles.parquet --output /tmp/validate")),
    Command("split", "split:add_command", "assign train/validation/test; measure leakage",
            ("corpus split", "corpus split --input /tmp/dedup --output /tmp/split")),
    Command("publish", "publish:add_command", "build the release; publish it as a tagged Hub release",
            ("corpus publish --build-only   # what `dvc repro` runs, offline",
             "corpus publish --dry-run      # compare with the Hub, upload nothing",
             "corpus publish --version 1.1.0")),
    Command("diff", "release:add_command", "what changed between two releases, article by article",
            ("corpus diff v1.0.0 v1.1.0", "corpus diff v1.0.0 build/hub --limit 0")),
    Command("validate-drop", "drops:add_validate_command", "check a new drop before adding it; changes nothing",
            ("corpus validate-drop ~/incoming/snn-2016", "corpus validate-drop ~/incoming/snn-2016 --output /tmp/report")),
    Command("add-drop", "drops:add_add_command", "validate a drop, add it to data/raw, track it with DVC",
            ("corpus add-drop ~/incoming/snn-2016 --name snn-2016",
             "corpus add-drop ~/incoming/snn-2016 --name snn-2016 --push")),
)
COMMAND_BY_NAME = {command.name: command for command in COMMANDS}

DESCRIPTION = """\
Build the Arabic news corpus from raw drops:

  raw drop -> ingest -> clean -> dedup -> validate -> split -> publish

`dvc repro` runs all stages; every stage can also run alone on explicit paths."""

EPILOG = """\
examples:
  dvc repro                          # the whole pipeline, as params.yaml says
  corpus validate-drop ~/incoming/x  # check a new drop
  corpus publish --dry-run           # what a release would change on the Hub

`corpus <command> --help` shows a command's options; the README explains each stage."""


def add_parser(commands, name: str) -> argparse.ArgumentParser:
    """The parser of command `name`, with its summary and examples from COMMANDS."""
    command = COMMAND_BY_NAME[name]
    return commands.add_parser(
        name, help=command.summary, description=command.summary[0].upper() + command.summary[1:] + ".",
        epilog="examples:\n" + "\n".join(f"  {example}" for example in command.examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the options of `command` (its module imported); the other commands
    are listed by name and summary only."""
    parser = argparse.ArgumentParser(
        prog="corpus", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    commands = parser.add_subparsers(title="commands", metavar="<command>", required=True)
    for entry in COMMANDS:
        if entry.name == command:
            module, function = entry.register.split(":")
            getattr(importlib.import_module(f"{__package__}.{module}"), function)(commands)
        else:
            commands.add_parser(entry.name, help=entry.summary)
    return parser


def command_in(argv: list[str]) -> str | None:
    """The command named on the command line, if any (the first argument after the global options)."""
    global_options = argparse.ArgumentParser(add_help=False)
    global_options.add_argument("--params")
    rest = global_options.parse_known_args(argv)[1]
    return next((arg for arg in rest if not arg.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(command_in(argv)).parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (FileNotFoundError, ValueError) as error:
        print(f"corpus: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
