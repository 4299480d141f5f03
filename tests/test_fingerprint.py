"""Fingerprints of the stages' inputs: a file's digest read once while it is unchanged, and
never reused once its bytes change."""

from __future__ import annotations

import functools
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from conftest import REPO, SAUDI_SAMPLE

from pipeline.plumbing import fingerprint
from pipeline.plumbing.fingerprint import DigestMemo, files_digest


def with_memo(fingerprint_of: Callable[[Any, DigestMemo], str], target: Any, memo_file: Path) -> str:
    """``fingerprint_of(target, memo)`` with the memo at `memo_file`, saved after it (as a
    stage saves its memo, after its last fingerprint)."""
    memo = DigestMemo(memo_file)
    taken = fingerprint_of(target, memo)
    memo.save()
    return taken


def test_a_digest_is_read_once_while_the_file_is_unchanged_and_never_after_its_bytes_change(tmp_path, monkeypatch):
    folder = tmp_path / "drop"
    shutil.copytree(SAUDI_SAMPLE, folder, copy_function=shutil.copyfile)  # written now, not settled
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    assert len(files) > 10
    read = []
    reading = fingerprint.file_digest

    @functools.wraps(reading)
    def file_digest(file: Path) -> str:
        read.append(file)
        return reading(file)

    monkeypatch.setattr(fingerprint, "file_digest", file_digest)
    memo_file = tmp_path / "build" / DigestMemo.FILE
    assert DigestMemo.beside(tmp_path / "build" / "dedup").path == memo_file

    plain = files_digest(folder)
    assert with_memo(files_digest, folder, memo_file) == plain
    assert not memo_file.exists()  # the files were just written: their digests are not kept yet
    time.sleep(DigestMemo.SETTLED_NS / 1e9 + 0.1)
    read.clear()
    assert with_memo(files_digest, folder, memo_file) == plain and len(read) == len(files)
    read.clear()
    assert with_memo(files_digest, folder, memo_file) == plain and read == []  # a stat a file, no read
    for unusable in ("{not json", '["a list"]', '{"a path alone": [1, 2, 3, 4, 5, "digest"], "x y": 3}'):
        (tmp_path / "other.json").write_text(unusable)
        assert with_memo(files_digest, folder, tmp_path / "other.json") == plain  # read again, not an error
    (tmp_path / "a file").write_text("")
    assert with_memo(files_digest, folder, tmp_path / "a file" / "memo.json") == plain  # a memo it cannot write

    # A chmod sets the change time, not the bytes: DVC does it to every file of a persist
    # output before each run of its stage, and it costs no read.
    for file in files:
        file.chmod(file.stat().st_mode)
    read.clear()
    assert with_memo(files_digest, folder, memo_file) == plain and read == []

    # Other bytes of the same size, written in place (the modification time moves on).
    edited = files[3]
    status, data = edited.stat(), bytearray(edited.read_bytes())
    middle = len(data) // 2
    pair = data[middle : middle + 2]
    data[middle : middle + 2] = bytes(reversed(pair)) if pair[0] != pair[1] else b"ab"
    with edited.open("r+b") as stream:
        stream.write(data)
    assert (edited.stat().st_ino, edited.stat().st_size) == (status.st_ino, status.st_size)
    read.clear()
    changed = with_memo(files_digest, folder, memo_file)
    assert read == [edited]
    assert changed != plain and changed == files_digest(folder)

    # A file replaced by another (another inode) and a file renamed are read again too.
    os.replace(files[5], files[4])
    read.clear()
    replaced = with_memo(files_digest, folder, memo_file)
    assert read == [edited, files[4]]  # and the file edited above, as it changed just now
    assert replaced == files_digest(folder) != changed


def test_a_stage_code_is_parsed_once_while_its_sources_are_unchanged(tmp_path, monkeypatch):
    parsed = []
    parsing = fingerprint.imported_modules

    @functools.wraps(parsing)
    def imported_modules(source: Path) -> list[str]:
        parsed.append(source)
        return parsing(source)

    monkeypatch.setattr(fingerprint, "imported_modules", imported_modules)
    memo_file = tmp_path / DigestMemo.FILE
    # (a source changed just now, as in a fresh checkout, is kept only once settled)
    newest = max(path.stat().st_mtime_ns for path in (REPO / "pipeline").rglob("*.py"))
    time.sleep(max(0, newest + DigestMemo.SETTLED_NS - time.time_ns()) / 1e9)
    plain = fingerprint.code_digest("pipeline.stages.split")
    sources = len(parsed)
    assert sources > 4 and with_memo(fingerprint.code_digest, "pipeline.stages.split", memo_file) == plain
    parsed.clear()
    assert with_memo(fingerprint.code_digest, "pipeline.stages.split", memo_file) == plain and parsed == []
    assert fingerprint.code_sources("pipeline.stages.split", DigestMemo(memo_file)) == fingerprint.code_sources(
        "pipeline.stages.split")
