"""`corpus --help` and `corpus <command> --help`: short texts with examples, and fast
(the heavy libraries are imported by the commands that use them, not by their help)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from pipeline.cli import main
from pipeline.commands import COMMANDS

HEAVY = ("great_expectations", "huggingface_hub", "datasets", "mlcroissant", "scipy")


def imported_by_help(*commands: str) -> set[str]:
    """Top-level modules loaded by `corpus --help` (no command) or by `corpus <command> --help`
    for each of `commands` in turn, in a fresh interpreter."""
    code = ("import contextlib, io, json, sys\nfrom pipeline.cli import main\n"
            "for command in sys.argv[1:] or [None]:\n"
            "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "        main([command, '--help'] if command else ['--help'])\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", code, *commands], cwd=REPO, capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout))


def without_bytecode(package: str) -> list[Path]:
    """The sources of an installed package that have no compiled bytecode (.pyc) beside them."""
    root = Path(importlib.util.find_spec(package).origin).parent  # found, not imported
    return [source for source in root.rglob("*.py") if not Path(importlib.util.cache_from_source(source)).is_file()]


def help_text(*args: str) -> str:
    """What `corpus <args> --help` prints, 100 columns wide."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "100")
        output = io.StringIO()
        with contextlib.redirect_stdout(output), pytest.raises(SystemExit):
            main([*args, "--help"])
    return output.getvalue()


def test_corpus_help_imports_no_data_library():
    assert not imported_by_help() & {*HEAVY, "polars", "pyarrow", "numpy"}


def test_command_help_imports_no_heavy_library():
    assert not imported_by_help(*(command.name for command in COMMANDS)) & set(HEAVY)


@pytest.mark.parametrize("package", ["great_expectations", "polars", "dvc"])
def test_libraries_are_installed_compiled(package):
    """`make install` writes the libraries' bytecode (compileall): where Python may
    not write it (PYTHONDONTWRITEBYTECODE, a read-only venv), every stage's process would
    compile GX's, Polars's and DVC's sources again at start, seconds a command."""
    missing = without_bytecode(package)
    assert not missing, f"{len(missing)} sources of {package} without bytecode, e.g. {missing[0]}: run `make install`"


def test_corpus_help_lists_every_command_with_a_one_line_summary():
    text = help_text()
    for command in COMMANDS:
        line = next(line for line in text.splitlines() if line.split()[:1] == [command.name])
        assert command.summary in line
    assert "examples:" in text


@pytest.mark.parametrize("command", [command.name for command in COMMANDS])
def test_command_help_is_a_summary_its_options_and_examples(command):
    text = help_text(command)
    assert len(text.splitlines()) < 45
    assert "``" not in text and "**" not in text  # no reST pasted from docstrings
    assert "options:" in text
    examples = text.split("examples:\n", 1)[1].splitlines()
    assert 2 <= len(examples) <= 3 and all(line.startswith(f"  corpus {command}") for line in examples)


def test_add_drop_and_validate_drop_have_their_own_texts():
    add, check = help_text("add-drop"), help_text("validate-drop")
    assert add.split("options:")[0] != check.split("options:")[0]
    assert "--name" in add and "--name" not in check
