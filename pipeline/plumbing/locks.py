"""One ``corpus add-drop`` or ``corpus publish`` at a time per checkout.

Both change shared state of the checkout (the raw area, params.yaml, the build and release
folders), so both take the lock ``.corpus.lock`` in the folder of params.yaml. It is an
advisory ``flock``: the kernel releases it when its holder exits, even on ``kill -9``, so a
stale lock never blocks anyone. The file tells who holds it (pid, command, since), for the
message of a run that has to wait or is refused.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".corpus.lock"
POLL_SECONDS = 0.2


class LockHeld(Exception):
    """Another run holds the checkout's lock."""


def lock_path(params_path: str | Path) -> Path:
    return Path(params_path).resolve().parent / LOCK_FILE


@contextmanager
def checkout_lock(params_path: str | Path, wait_seconds: float = 0) -> Iterator[None]:
    """Hold the lock of the checkout of `params_path`. When another run holds it, wait up
    to `wait_seconds` (saying for whom), then raise `LockHeld` naming the holder."""
    path = lock_path(params_path)
    with path.open("a+", encoding="utf-8") as handle:
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = describe_holder(path)
                if time.monotonic() >= deadline:
                    waited = f" after waiting {wait_seconds:.0f} s" if wait_seconds else ""
                    raise LockHeld(f"{holder} is running in this checkout (lock {path}){waited}: "
                                   "let it finish, then run this again") from None
                if not told:
                    print(f"corpus: waiting for {holder} to finish (lock {path})", file=sys.stderr)
                    told = True
                time.sleep(POLL_SECONDS)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({
            "pid": os.getpid(),
            "command": shlex.join(["corpus", *sys.argv[1:]]),
            "since": utc_now(),
        }) + "\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_holder(path: Path) -> str:
    """'`corpus add-drop ...` (pid 123, since ...)', from what the holder wrote."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        return f"`{holder['command']}` (pid {holder['pid']}, since {holder['since']})"
    except (OSError, ValueError, KeyError, TypeError):  # the holder is still writing it
        return "another corpus command"
