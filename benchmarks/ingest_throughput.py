"""Ingest's record reading on clean UTF-8 drops: this checkout against another revision.

    python benchmarks/ingest_throughput.py [--zips N] [--repeat R] [--against REV]

Builds one drop per format from the first N SaudiNewsNet daily zips (their JSON arrays
as given, the same records as JSON lines, and as a CSV of title, content, url,
date_extracted, source) and times reading every record into article rows
(`DropReader.rows()`, what the ingest stage spends its time on apart from writing
Parquet) with this checkout's `pipeline/stages/ingest.py` and with REV's (`git show`), the two
alternating in one process, best of R. Prints seconds and the ratio current / REV per
format, and checks both give the same rows. The per-line decoding of issue 11 item 5
only runs for files that are not clean in one encoding, so on these the ratio should
stay near 1.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.shared_corpus import REPO, SAUDI_ZIPS  # noqa: E402
from pipeline.plumbing.params import load_params, section  # noqa: E402
from pipeline.stages import ingest  # noqa: E402


def ingest_module_at(revision: str):
    """pipeline/stages/ingest.py as it is at `revision`, imported as a module of the pipeline package."""
    source = subprocess.run(["git", "show", f"{revision}:pipeline/stages/ingest.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f"pipeline.ingest_at_{revision.replace('-', '_')}", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "pipeline"
    sys.modules[spec.name] = module  # dataclasses look their module up here
    exec(compile(source, f"{revision}:pipeline/stages/ingest.py", "exec"), module.__dict__)
    return module


def build_drops(root: Path, zips: int) -> dict[str, Path]:
    records = []
    for path in sorted(SAUDI_ZIPS.glob("*.zip"))[:zips]:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                (root / "json").mkdir(parents=True, exist_ok=True)
                data = archive.read(name)
                (root / "json" / name).write_bytes(data)
                records += json.loads(data)
    (root / "jsonl").mkdir()
    with (root / "jsonl" / "all.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    (root / "csv").mkdir()
    fields = ["title", "content", "url", "date_extracted", "source"]
    with (root / "csv" / "all.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    return {kind: root / kind for kind in ("json", "jsonl", "csv")}


def read_rows(module, drop: Path, params: dict) -> tuple[float, list]:
    start = time.perf_counter()
    rows = list(module.DropReader(drop, module.DropConfig.load(drop, params)).rows())
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zips", type=int, default=3, help="daily zips to use (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, the best counts (default: %(default)s)")
    parser.add_argument("--against", default="main", help="revision to compare with (default: %(default)s)")
    args = parser.parse_args()
    params = section(load_params(REPO / "params.yaml"), "ingest")
    baseline = ingest_module_at(args.against)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        drops = build_drops(Path(tmp), args.zips)
        print(f"{'format':<8}{'records':>9}{args.against + ' s':>12}{'current s':>12}{'current/' + args.against:>16}")
        for kind, drop in drops.items():
            times: dict[str, list[float]] = {"baseline": [], "current": []}
            for _ in range(args.repeat):
                seconds, baseline_rows = read_rows(baseline, drop, params)
                times["baseline"].append(seconds)
                seconds, current_rows = read_rows(ingest, drop, params)
                times["current"].append(seconds)
            assert current_rows == baseline_rows, f"{kind}: the two revisions read different rows"
            best = {name: min(values) for name, values in times.items()}
            print(f"{kind:<8}{len(current_rows):>9,}{best['baseline']:>12.2f}{best['current']:>12.2f}"
                  f"{best['current'] / best['baseline']:>16.2f}")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} after")


if __name__ == "__main__":
    main()
