"""Fingerprints that tell a stage whether the state it kept from an earlier run still holds.

A stage that keeps per-drop state across runs (dedup: an output DVC leaves in place,
``persist: true``) reuses a drop's state only when the fingerprint it stored with it is
unchanged: a hash of everything that shaped it (params, the source of the code it runs,
the input's bytes, the fingerprint of the state it was built on). Like datatrove's
completion markers, but keyed on content, not on a file's presence: a fresh clone reuses
the same states, and any change upstream makes the stage recompute. Names in a
fingerprint are relative, never absolute paths, so it does not depend on the checkout.

Hashing the inputs' bytes on every run would cost each stage a read of every drop's tables,
unchanged but for the new drop's: a ``DigestMemo`` keeps each file's digest by its identity,
as DVC's state database does, so an unchanged file costs a ``stat``. A stage saves its memo
once, after its last fingerprint (``DigestMemo.save``), not after each file or drop.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import time
from contextlib import suppress
from pathlib import Path
from typing import Any, Callable

import xxhash

from pipeline.plumbing.io import WriteFailed, read_json, write_json, write_text

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


# A folder a stage keeps between runs holds the fingerprint of what it was made from in this
# file, written last: a folder interrupted before it is made again.
FINGERPRINT_FILE = "fingerprint.json"


def fingerprint_holds(folder: Path, fingerprint: str) -> bool:
    """Whether `folder` was finished (``write_fingerprint``) with this `fingerprint`."""
    done = folder / FINGERPRINT_FILE
    return done.exists() and read_json(done)["fingerprint"] == fingerprint


def write_fingerprint(folder: Path, fingerprint: str) -> None:
    """Mark `folder` finished, made from what `fingerprint` hashes: the last file written in it."""
    write_json(folder / FINGERPRINT_FILE, {"fingerprint": fingerprint})


def digest(*parts: str) -> str:
    """xxh3-128 (hex) of the parts, each length-prefixed (so ("ab", "c") != ("a", "bc"))."""
    hasher = xxhash.xxh3_128()
    for part in parts:
        data = part.encode("utf-8")
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


def files_digest(path: str | Path, memo: DigestMemo | None = None) -> str:
    """Hash of a file's bytes, or of a folder's files (names relative to it, and bytes);
    each file's bytes hashed once while it is unchanged, with a `memo` (which the caller saves)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    hasher = xxhash.xxh3_128()
    for file in files:
        name = file.relative_to(path).as_posix() if path.is_dir() else ""
        hasher.update(len(name).to_bytes(8, "little") + name.encode("utf-8"))
        hasher.update(bytes.fromhex(memo.of(file, file_digest) if memo else file_digest(file)))
    return hasher.hexdigest()


def file_digest(file: Path) -> str:
    """xxh3-128 (hex) of a file's bytes."""
    hasher = xxhash.xxh3_128()
    with file.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


class DigestMemo:
    """What was read from files (their digests, the modules a source imports) kept by each
    file's identity (device, inode, size, modification time in ns) in a JSON file of
    absolute paths outside any DVC output, such as ``build/file_digests.json``
    (``beside``): a stage's own cache, which may be lost or shared between stages (an entry
    is used only while the file's identity is the one it was read with; a lost one costs a
    read).

    The identity is DVC's own (its state database keys a file's hash by inode, mtime and
    size): a write sets the modification time and a file replaced is another inode. Not the
    change time: DVC chmods every file of a ``persist`` output before each run of its stage
    (dvc_data's ``unprotect``), which sets it, and every stage would read every drop's files
    again on every run. Like DVC, a file rewritten in place with the same size and its
    modification time set back (``os.utime``) passes for unchanged. A digest is kept only
    for a file last modified ``SETTLED_NS`` before it was read: a file system's clock is
    coarse (a tick, a second on some), and a file rewritten within the tick it was read in
    could keep its time."""

    FILE = "file_digests.json"
    SETTLED_NS = 2_000_000_000

    def __init__(self, memo: Path) -> None:
        self.path, self.added = memo, False
        try:
            entries = json.loads(memo.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entries = {}
        # (entries of another form, as an unreadable memo, are left out: read again)
        self.entries: dict[str, list] = {
            key: entry for key, entry in (entries.items() if isinstance(entries, dict) else ())
            if " " in key and isinstance(entry, list) and len(entry) == 5}

    @classmethod
    def beside(cls, output: Path) -> DigestMemo:
        """The memo next to a stage's output folder (the folder holding the stages' outputs)."""
        return cls(Path(output).absolute().parent / cls.FILE)

    def of(self, file: Path, read: Callable[[Path], Any]) -> Any:
        """``read(file)`` (a JSON value), from the memo while the file is unchanged."""
        key, status = f"{read.__name__} {file.absolute()}", file.stat()
        identity = [status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns]
        if (entry := self.entries.get(key)) is not None and entry[:-1] == identity:
            return entry[-1]
        reading = time.time_ns()
        found = read(file)
        if status.st_mtime_ns < reading - self.SETTLED_NS:
            self.entries[key], self.added = [*identity, found], True
        return found

    def save(self) -> None:
        """Writes the memo whole when digests were added (a reader sees the old memo or the
        new: a crash before or while saving leaves the old), without the files gone; where it
        cannot be written, the next run reads again. A stage calls it once, after its last
        fingerprint: the memo is rewritten whole, so once per file or drop would cost a
        rewrite each."""
        if self.added:
            self.entries = {key: entry for key, entry in self.entries.items() if Path(key.split(" ", 1)[1]).exists()}
            with suppress(OSError, WriteFailed):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_text(self.path, json.dumps(self.entries, sort_keys=True))
            self.added = False


def code_sources(module: str, memo: DigestMemo | None = None) -> list[str]:
    """The source files (``pipeline/...py``) of `module` and of every pipeline module it
    imports, transitively, but ``NOT_SHAPING_OUTPUTS``: what a stage's decisions depend on
    (as dvc.yaml's code deps of the stage). Each source parsed once while unchanged, with a
    `memo` (which the caller saves)."""
    imported = _pipeline_sources(Path(importlib.util.find_spec(module).origin).resolve(), set(), memo)
    return sorted({source.relative_to(_PACKAGE_ROOT).as_posix() for source in imported} - NOT_SHAPING_OUTPUTS)


def code_digest(module: str, memo: DigestMemo | None = None) -> str:
    """Hash of the ``code_sources`` of `module` (their names and text)."""
    return digest(*(part for source in code_sources(module, memo)
                    for part in (source, (_PACKAGE_ROOT / source).read_text(encoding="utf-8"))))


def _pipeline_sources(source: Path, seen: set[Path], memo: DigestMemo | None) -> set[Path]:
    if source not in seen:
        seen.add(source)
        for imported in memo.of(source, imported_modules) if memo else imported_modules(source):
            if (candidate := Path(imported)).is_file():
                _pipeline_sources(candidate, seen, memo)
    return seen


def imported_modules(source: Path) -> list[str]:
    """The files a source file's imports of the pipeline (at any depth of its code) may be:
    ``pipeline/a/b.py`` and ``pipeline/a.py`` for ``from pipeline.a import b``."""
    return [str(_PACKAGE_ROOT.joinpath(*name.split(".")).with_suffix(".py"))
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline")
            for name in [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]]

