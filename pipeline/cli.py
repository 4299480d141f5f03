"""The ``corpus`` command: one subcommand per pipeline stage, plus drop tools.

``dvc repro`` runs the stage subcommands with the paths from params.yaml; each also takes
explicit ``--input``/``--output`` paths so it can run on any drop or table.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import traceback

import yaml

from . import clean, dedup, drops, ingest, publish, release, split, validate
from .io import WriteFailed
from .locks import LockHeld

# Order is the order of the data flow, then the tools for new drops; `corpus --help` lists them so.
COMMAND_MODULES = (ingest, clean, dedup, validate, split, publish, release, drops)

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
    parser.add_argument("--debug", action="store_true", help="print the traceback of an unexpected error")
    commands = parser.add_subparsers(title="commands", metavar="<command>", required=True)
    for module in COMMAND_MODULES:
        module.add_command(commands)
    return parser


EXIT_OK, EXIT_UNUSABLE = 0, 2  # and 1, a check failed, returned by the commands themselves
# What a user's input or machine can cause (a missing file, a bad value, a full disk, a lock
# held by another run): its message is the whole story, a traceback would hide it.
EXPECTED_FAILURES = (OSError, ValueError, yaml.YAMLError, WriteFailed, LockHeld)


def main(argv: list[str] | None = None) -> int:
    """Run one command: 0 ok, 1 a check failed, 2 the input or setup is unusable. No
    traceback reaches the user unless `--debug` asks for it."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("corpus: interrupted", file=sys.stderr)
        return 130
    except EXPECTED_FAILURES as error:
        if args.debug:
            traceback.print_exc()
        print(f"corpus: error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    except Exception as error:
        if args.debug:
            traceback.print_exc()
            return EXIT_UNUSABLE
        command = shlex.join(["corpus", "--debug", *(sys.argv[1:] if argv is None else argv)])
        summary = " ".join(str(error).split()) or "no message"
        print(f"corpus: internal error: {type(error).__name__}: {summary} (a bug: `{command}` shows where)",
              file=sys.stderr)
        return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
