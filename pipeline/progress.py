"""Console messages and progress for long stages (to stderr, so stdout stays clean)."""

from __future__ import annotations

import sys
import time


def log(stage: str, message: str) -> None:
    print(f"[{stage}] {message}", file=sys.stderr, flush=True)


class Progress:
    """Counts work done and reports it at most every `every_seconds`.

    >>> progress = Progress("ingest", "records")
    >>> progress.advance(500)   # prints only if enough time has passed
    >>> progress.done()         # always prints the total and the rate
    """

    def __init__(self, stage: str, unit: str, every_seconds: float = 5.0) -> None:
        self.stage, self.unit, self.every = stage, unit, every_seconds
        self.count = 0
        self.started = self.last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            log(self.stage, f"{self.count:,} {self.unit} ({self._rate(now)})")

    def done(self, summary: str = "") -> None:
        now = time.monotonic()
        suffix = f"; {summary}" if summary else ""
        log(self.stage, f"{self.count:,} {self.unit} in {now - self.started:.1f} s ({self._rate(now)}){suffix}")

    def _rate(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        return f"{self.count / elapsed:,.0f} {self.unit}/s"
