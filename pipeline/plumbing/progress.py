"""Console messages and progress for long stages (to stderr, so stdout stays clean).

On a terminal, progress is a tqdm bar (count, total, percentage, rate, ETA); in a log
(stderr not a terminal: CI, `dvc repro > log`) it is a plain line every few seconds,
with the same figures and no control characters.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


def log(stage: str, message: str) -> None:
    print(f"[{stage}] {message}", file=sys.stderr, flush=True)


class Progress:
    """Counts work done towards `total` (None when not known beforehand).

    >>> progress = Progress("ingest", "records", total=5_000)
    >>> progress.advance(500)   # moves the bar, or logs a line if `every_seconds` have passed
    >>> progress.done()         # always logs the count, the time and the rate
    """

    def __init__(self, stage: str, unit: str, total: int | None = None, every_seconds: float = 5.0) -> None:
        self.stage, self.unit, self.total, self.every = stage, unit, total, every_seconds
        self.count = 0
        self.started = self.last = time.monotonic()
        self.bar = tqdm(total=total, desc=f"[{stage}]", unit=f" {unit}", leave=False,
                        file=sys.stderr, dynamic_ncols=True) if sys.stderr.isatty() else None

    def advance(self, n: int = 1) -> None:
        self.count += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            log(self.stage, self.line(now))

    def done(self, summary: str = "") -> None:
        if self.bar is not None:
            self.bar.close()
        now = time.monotonic()
        suffix = f"; {summary}" if summary else ""
        log(self.stage, f"{self.count:,} {self.unit} in {now - self.started:.1f} s ({self._rate(now)}){suffix}")

    def line(self, now: float) -> str:
        """'1,200 of 5,000 articles (24%), 300 articles/s, 00:12 left' (no total: count and rate)."""
        if not self.total:
            return f"{self.count:,} {self.unit} ({self._rate(now)})"
        elapsed = max(now - self.started, 1e-9)
        left = (self.total - self.count) * elapsed / self.count if self.count else None
        eta = tqdm.format_interval(left) if left is not None else "?"
        return (f"{self.count:,} of {self.total:,} {self.unit} ({100 * self.count / self.total:.0f}%), "
                f"{self._rate(now)}, {eta} left")

    def _rate(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        return f"{self.count / elapsed:,.0f} {self.unit}/s"
