"""Fingerprints that tell a stage whether the state it kept from an earlier run still holds.

A stage that keeps per-drop state across runs (dedup: an output DVC leaves in place,
``persist: true``) reuses a drop's state only when the fingerprint it stored with it is
unchanged: a hash of everything that shaped it (params, the source of the code it runs,
the input's bytes, the fingerprint of the state it was built on). Like datatrove's
completion markers, but keyed on content, not on a file's presence: a fresh clone reuses
the same states, and any change upstream makes the stage recompute. Names in a
fingerprint are relative, never absolute paths, so it does not depend on the checkout.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import xxhash

_CHUNK = 1 << 20
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding pipeline/
# Modules every stage runs through but that do not shape its outputs (params are declared
# by section, separately; locks only keeps two publishes apart; commands holds the help
# texts; the engines run a stage's batches, with outputs the same on each:
# tests/test_engines.py). dvc.yaml does not list them as a stage's code, so a fingerprint
# must not hash them either: a change to them would change outputs DVC sees as up to date.
NOT_SHAPING_OUTPUTS = frozenset({
    "pipeline/plumbing/params.py", "pipeline/plumbing/progress.py", "pipeline/plumbing/stage_command.py",
    "pipeline/plumbing/locks.py", "pipeline/commands.py", "pipeline/engines/engine.py",
    "pipeline/engines/local.py", "pipeline/engines/ray.py",
})


def digest(*parts: str) -> str:
    """xxh3-128 (hex) of the parts, each length-prefixed (so ("ab", "c") != ("a", "bc"))."""
    hasher = xxhash.xxh3_128()
    for part in parts:
        data = part.encode("utf-8")
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


def files_digest(path: str | Path) -> str:
    """Hash of a file's bytes, or of a folder's files (names relative to it, and bytes)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    hasher = xxhash.xxh3_128()
    for file in files:
        name = file.relative_to(path).as_posix() if path.is_dir() else ""
        hasher.update(len(name).to_bytes(8, "little") + name.encode("utf-8"))
        hasher.update(file.stat().st_size.to_bytes(8, "little"))
        with file.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
    return hasher.hexdigest()


def code_sources(module: str) -> list[str]:
    """The source files (``pipeline/...py``) of `module` and of every pipeline module it
    imports, transitively, but ``NOT_SHAPING_OUTPUTS``: what a stage's decisions depend on
    (as dvc.yaml's code deps of the stage)."""
    imported = _pipeline_sources(Path(importlib.util.find_spec(module).origin).resolve(), set())
    return sorted({source.relative_to(_PACKAGE_ROOT).as_posix() for source in imported} - NOT_SHAPING_OUTPUTS)


def code_digest(module: str) -> str:
    """Hash of the ``code_sources`` of `module` (their names and text)."""
    return digest(*(part for source in code_sources(module)
                    for part in (source, (_PACKAGE_ROOT / source).read_text(encoding="utf-8"))))


def _pipeline_sources(source: Path, seen: set[Path]) -> set[Path]:
    if source not in seen:
        seen.add(source)
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline"):
                for name in [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]:
                    candidate = _PACKAGE_ROOT.joinpath(*name.split(".")).with_suffix(".py")
                    if candidate.is_file():
                        _pipeline_sources(candidate, seen)
    return seen

