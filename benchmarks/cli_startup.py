"""Start-up time of `corpus --help` and `corpus <command> --help`: this checkout against
another git revision (default: main), side by side, as ratios.

    .venv/bin/python benchmarks/cli_startup.py [--against main] [--repeat 5]

The other revision's `pipeline/` is exported with `git archive` to a temporary folder; each
runs from its own folder with the same interpreter; the two alternate, so load hits both alike.
The figure is the median wall time of a fresh interpreter per call.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ([], ["ingest"], ["validate"], ["split"], ["publish"], ["diff"], ["add-drop"])


def seconds(source: Path, command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())", *command, "--help"],
                   cwd=source, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="main", help="git revision to compare with (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores)")
    with tempfile.TemporaryDirectory() as other:
        archive = subprocess.run(["git", "archive", args.against, "pipeline"], cwd=ROOT, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(other, filter="data")
        print(f"{'command':<24}{args.against:>10}{'this':>10}{'ratio':>8}")
        for command in COMMANDS:
            times: dict[str, list[float]] = {"other": [], "this": []}
            for _ in range(args.repeat):
                times["other"].append(seconds(Path(other), command))
                times["this"].append(seconds(ROOT, command))
            before, after = statistics.median(times["other"]), statistics.median(times["this"])
            label = " ".join(["corpus", *command, "--help"])
            print(f"{label:<24}{before:>9.2f}s{after:>9.2f}s{before / after:>7.1f}x")


if __name__ == "__main__":
    main()
