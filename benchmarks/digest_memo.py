"""The upkeep of a stage's memo of file digests (fingerprint.DigestMemo): this checkout
against another git revision (default: main), side by side, as ratios.

    .venv/bin/python benchmarks/digest_memo.py [--against main] [--drops 20] [--files 10] [--repeat 5]

A stage fingerprints its code, then each drop's input files, with one memo
(``build/file_digests.json``), as dedup does. The memo is rewritten whole whenever digests
were added: main saved it after the code and after each drop, this checkout once after the
last fingerprint. Two cases, on `--drops` drops of `--files` files of 64 KiB each:

* from scratch: no memo yet, every drop's digests added (main: one rewrite a drop);
* a new drop: the memo holds the other drops' digests, the last drop's are added.

The other revision's `pipeline/` is exported with `git archive`; each revision runs the same
code in a fresh interpreter from its own folder, the two alternating. Figures: memo writes,
and the CPU seconds of the fingerprinting (memo read, digests, saves; not the start-up),
median of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILE_BYTES = 64 * 1024

# Run in each revision's folder: fingerprint the code and the drops given, with the memo at
# argv[2]; print the memo writes and the CPU seconds.
FINGERPRINTING = """
import json, sys, time
from pathlib import Path
from pipeline.plumbing import fingerprint
writes, writing = [], fingerprint.write_text
fingerprint.write_text = lambda path, text: writes.append(path) or writing(path, text)
drops_dir, memo_file, drops = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
started = time.process_time()
memo = fingerprint.DigestMemo(memo_file)
found = fingerprint.code_digest("pipeline.stages.dedup", memo)
for drop in drops:
    found = fingerprint.digest(found, drop, fingerprint.files_digest(drops_dir / drop, memo))
memo.save()
print(json.dumps({"cpu": time.process_time() - started, "writes": len(writes)}))
"""


def fingerprinting(source: Path, drops_dir: Path, memo_file: Path, drops: list[str]) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", FINGERPRINTING, str(drops_dir), str(memo_file), *drops],
                            cwd=source, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="main", help="git revision to compare with (default: %(default)s)")
    parser.add_argument("--drops", type=int, default=20)
    parser.add_argument("--files", type=int, default=10, help="files a drop (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores); {args.drops} drops of {args.files} files")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        sources = {args.against: work / "other", "this": ROOT}
        archive = subprocess.run(["git", "archive", args.against, "pipeline"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(sources[args.against], filter="data")
        drops = [f"drop-{n:03d}" for n in range(args.drops)]
        for drop in drops:
            (work / "drops" / drop).mkdir(parents=True)
            for n in range(args.files):
                (work / "drops" / drop / f"part-{n:05d}.parquet").write_bytes(os.urandom(FILE_BYTES))
        # A digest is kept only for a file settled (fingerprint.DigestMemo.SETTLED_NS): the
        # drops and the exported sources were written just now.
        time.sleep(2.5)
        # Each revision's memo of every drop but the last (its own: the sources' paths differ).
        earlier = {}
        for name, source in sources.items():
            earlier[name] = work / f"earlier-{name}.json"
            fingerprinting(source, work / "drops", earlier[name], drops[:-1])
        runs: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(args.repeat):
            for case in ("from scratch", "a new drop"):
                for name, source in sources.items():
                    memo_file = work / "memo.json"
                    memo_file.unlink(missing_ok=True)
                    if case == "a new drop":
                        shutil.copyfile(earlier[name], memo_file)
                    runs.setdefault((case, name), []).append(fingerprinting(source, work / "drops", memo_file, drops))
        print(f"{'case':<14}{'writes ' + args.against:>14}{'this':>6}{'CPU s ' + args.against:>14}{'this':>8}{'ratio':>8}")
        for case in ("from scratch", "a new drop"):
            (writes_before, cpu_before), (writes_after, cpu_after) = (
                (statistics.median(run["writes"] for run in runs[case, name]),
                 statistics.median(run["cpu"] for run in runs[case, name])) for name in sources)
            print(f"{case:<14}{writes_before:>14.0f}{writes_after:>6.0f}{cpu_before:>14.3f}{cpu_after:>8.3f}"
                  f"{cpu_after / cpu_before:>7.2f}x")


if __name__ == "__main__":
    main()
