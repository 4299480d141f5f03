"""Fingerprints of the stages' inputs: a file's digest read once while it is unchanged, and
never reused once its bytes change."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from conftest import SAUDI_SAMPLE

from pipeline.plumbing import fingerprint
from pipeline.plumbing.fingerprint import DigestMemo, files_digest


def test_a_digest_is_read_once_while_the_file_is_unchanged_and_never_after_its_bytes_change(tmp_path, monkeypatch):
    folder = tmp_path / "drop"
    shutil.copytree(SAUDI_SAMPLE, folder)
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    assert len(files) > 10
    read = []
    reading = fingerprint.file_digest
    monkeypatch.setattr(fingerprint, "file_digest", lambda file: read.append(file) or reading(file))
    memo_file = tmp_path / "build" / DigestMemo.FILE
    assert DigestMemo.beside(tmp_path / "build" / "dedup").path == memo_file

    plain = files_digest(folder)
    assert files_digest(folder, DigestMemo(memo_file)) == plain
    assert not memo_file.exists()  # the files were just written: their digests are not kept yet
    time.sleep(DigestMemo.SETTLED_NS / 1e9 + 0.1)
    read.clear()
    assert files_digest(folder, DigestMemo(memo_file)) == plain and len(read) == len(files)
    read.clear()
    assert files_digest(folder, DigestMemo(memo_file)) == plain and read == []  # a stat a file, no read

    # Other bytes of the same size, written in place, the modification time set back: only
    # the change time (set by any write, never by os.utime) tells the file changed.
    edited = files[3]
    status, data = edited.stat(), bytearray(edited.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2] = bytes(reversed(data[middle : middle + 2])) if data[middle] != data[middle + 1] else b"ab"
    with edited.open("r+b") as stream:
        stream.write(data)
    os.utime(edited, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert (edited.stat().st_ino, edited.stat().st_size, edited.stat().st_mtime_ns) == (
        status.st_ino, status.st_size, status.st_mtime_ns)
    read.clear()
    changed = files_digest(folder, DigestMemo(memo_file))
    assert changed != plain and changed == files_digest(folder) and read[0] == edited

    # A file replaced by another (another inode) and a file renamed are read again too.
    os.replace(files[5], files[4])
    read.clear()
    replaced = files_digest(folder, DigestMemo(memo_file))
    assert read == [edited, files[4]]  # and the file edited above, as it changed just now
    assert replaced == files_digest(folder) != changed
