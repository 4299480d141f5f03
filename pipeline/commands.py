"""The commands of ``corpus``: name, where its parser is defined, one-line summary, examples.

Kept apart from cli.py, which imports a command's module only when that command runs, so the
stage modules can take their help texts from here without importing the CLI.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    register: str  # "module:function" that adds the command's parser (and options)
    summary: str  # one line, in `corpus --help` and atop `corpus <name> --help`
    examples: tuple[str, ...]


# Order is the order of the data flow, then the release and drop tools; `corpus --help` lists them so.
COMMANDS = (
    Command("ingest", "stages.ingest:add_command", "read raw drops into one table of articles",
            ("corpus ingest --input ~/incoming --output /tmp/ingest   # every drop folder in ~/incoming",
             "corpus ingest --input ~/incoming --output /tmp/ingest --engine ray")),
    Command("clean", "stages.clean_drops:add_command",
            "ingest drops, remove boilerplate, filter by quality",
            ("corpus clean   # every drop of split.drop_order, as `dvc repro` runs it",
             "corpus clean --input /tmp/ingest --output /tmp/clean")),
    Command("dedup", "stages.dedup:add_command", "remove exact and near-duplicate articles",
            ("corpus dedup", "corpus dedup --input /tmp/clean/articles.parquet --output /tmp/dedup")),
    Command("validate", "stages.validate:add_command", "check articles with the Great Expectations suites",
            ("corpus validate", "corpus validate --input /tmp/dedup/articles.parquet --output /tmp/validate")),
    Command("split", "stages.split:add_command", "assign train/validation/test; measure leakage",
            ("corpus split", "corpus split --input /tmp/dedup --output /tmp/split")),
    Command("figures", "stages.figures:add_command",
            "the drops' metrics summed; the tables behind `dvc plots show`",
            ("corpus figures   # then `dvc metrics show`, `dvc plots show`", "corpus figures --output /tmp/plots")),
    Command("publish", "release.publish:add_command", "build the release; publish it as a tagged Hub release",
            ("corpus publish --build-only   # what `dvc repro` runs, offline",
             "corpus publish --dry-run      # compare with the Hub, upload nothing",
             "corpus publish --version 1.1.0")),
    Command("diff", "release.manifests:add_command", "what changed between two releases, article by article",
            ("corpus diff v1.0.0 v1.1.0", "corpus diff v1.0.0 build/hub --limit 0")),
    Command("validate-drop", "drops:add_validate_command", "check a new drop before adding it; changes nothing",
            ("corpus validate-drop ~/incoming/snn-2016", "corpus validate-drop ~/incoming/snn-2016 --output /tmp/report")),
    Command("add-drop", "drops:add_add_command", "validate a drop, add it to data/raw, track it with DVC",
            ("corpus add-drop ~/incoming/snn-2016 --name snn-2016",
             "corpus add-drop ~/incoming/snn-2016 --name snn-2016 --push")),
)
COMMAND_BY_NAME = {command.name: command for command in COMMANDS}


def add_parser(commands, name: str) -> argparse.ArgumentParser:
    """The parser of command `name`, with its summary and examples from COMMANDS."""
    command = COMMAND_BY_NAME[name]
    return commands.add_parser(
        name, help=command.summary, description=command.summary[0].upper() + command.summary[1:] + ".",
        epilog="examples:\n" + "\n".join(f"  {example}" for example in command.examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
