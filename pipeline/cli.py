"""The ``corpus`` command: one subcommand per pipeline stage, plus release and drop tools.

Only the module of the command being run is imported (its libraries take seconds to
load), so `corpus --help` imports none and `corpus <command> --help` only its own.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import traceback

from pipeline.commands import COMMANDS

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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the options of `command` (its module imported); the other commands
    are listed by name and summary only."""
    parser = argparse.ArgumentParser(
        prog="corpus", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # (the metavar's width also sets the column of the commands' summaries: room for `validate-drop`)
    parser.add_argument("--params", default="params.yaml", metavar="PARAMS_FILE", help="params file (default: %(default)s)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an unexpected error")
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
    global_options.add_argument("--debug", action="store_true")
    rest = global_options.parse_known_args(argv)[1]
    return next((arg for arg in rest if not arg.startswith("-")), None)


EXIT_OK, EXIT_UNUSABLE = 0, 2  # and 1, a check failed, returned by the commands themselves


def expected_failures() -> tuple[type[BaseException], ...]:
    """What a user's input or machine can cause (a missing file, a bad value, a full disk, a lock
    held by another run): its message is the whole story, a traceback would hide it. Imported
    here, not at the top, so `corpus --help` loads no YAML or Polars."""
    import yaml

    from pipeline.plumbing.io import WriteFailed
    from pipeline.plumbing.locks import LockHeld

    return OSError, ValueError, yaml.YAMLError, WriteFailed, LockHeld


def main(argv: list[str] | None = None) -> int:
    """Run one command: 0 ok, 1 a check failed, 2 the input or setup is unusable. No
    traceback reaches the user unless `--debug` asks for it."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(command_in(argv)).parse_args(argv)
    try:
        return int(args.handler(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("corpus: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            traceback.print_exc()
        if isinstance(error, expected_failures()):
            print(f"corpus: error: {error}", file=sys.stderr)
        elif not args.debug:
            summary = " ".join(str(error).split()) or "no message"
            print(f"corpus: internal error: {type(error).__name__}: {summary} "
                  f"(a bug: `{shlex.join(['corpus', '--debug', *argv])}` shows where)", file=sys.stderr)
        return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
