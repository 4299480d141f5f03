"""Ingest's record reading on clean UTF-8 drops: this checkout against another revision.

    python benchmarks/ingest_throughput.py [--zips N] [--repeat R] [--against REV]
    python benchmarks/ingest_throughput.py --drop FOLDER [--repeat R] [--against REV]

Builds one drop per format from the first N SaudiNewsNet daily zips (their JSON arrays
as given, the same records as JSON lines, and as a CSV of title, content, url,
date_extracted, source) and times reading every record into article rows
(`DropReader.rows()`, what the ingest stage spends its time on apart from writing
Parquet) with this checkout's `pipeline/stages/ingest.py` and with REV's (`git show`), the two
alternating in one process, best of R. Prints seconds and the ratio current / REV per
format, and checks both give the same rows. The per-line decoding of issue 11 item 5
only runs for files that are not clean in one encoding, so on these the ratio should
stay near 1.

With ``--drop FOLDER`` (a drop, e.g. a generated corpus's ``base``): the whole stage,
``ingest.run`` of that drop (reading, the articles' lengths, writing the Parquet parts and
the quarantine), each revision in its own process, alternating, best of R; prints CPU
seconds (the process's, all threads) and peak RSS per revision and their ratios, and
checks the two wrote the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import os
import resource
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


def run_stage(revision: str | None, drop: Path, output: Path) -> None:
    """`ingest.run` of `drop` with `revision`'s module (None: this checkout's), in this
    process; prints its CPU seconds and peak RSS as JSON."""
    module = ingest if revision is None else ingest_module_at(revision)
    module.run(drop.parent, output, None, section(load_params(REPO / "params.yaml"), "ingest"), [drop.name])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 2**20}))


def compare_stage(drop: Path, against: str, repeat: int) -> None:
    print(f"ingest.run of {drop} ({sum(1 for _ in drop.rglob('*'))} files), best of {repeat}; CPU s and peak RSS "
          f"GiB of the process (imports included)")
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        outputs = {name: Path(tmp) / name for name in (against, "current")}
        for _ in range(repeat):
            for name, output in outputs.items():
                command = [sys.executable, __file__, "--run-stage", str(drop), str(output)]
                command += ["--stage-revision", against] if name == against else []
                figures = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
                best[name] = {key: min(value, best.get(name, figures)[key]) for key, value in figures.items()}
        written = {name: {path.relative_to(output): hashlib.sha256(path.read_bytes()).digest()
                          for path in sorted(output.rglob("*")) if path.is_file()} for name, output in outputs.items()}
        assert written[against] == written["current"], "the two revisions wrote different files"
    print(f"{'':<12}{'CPU s':>8}{'RSS GiB':>9}")
    for name, figures in best.items():
        print(f"{name:<12}{figures['cpu']:>8.1f}{figures['rss']:>9.2f}")
    print(f"{'current/' + against:<12}{best['current']['cpu'] / best[against]['cpu']:>8.2f}"
          f"{best['current']['rss'] / best[against]['rss']:>9.2f}  (same files: yes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zips", type=int, default=3, help="daily zips to use (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, the best counts (default: %(default)s)")
    parser.add_argument("--against", default="main", help="revision to compare with (default: %(default)s)")
    parser.add_argument("--drop", type=Path, help="time the whole stage on this drop folder instead")
    parser.add_argument("--run-stage", nargs=2, type=Path, metavar=("DROP", "OUTPUT"), help=argparse.SUPPRESS)
    parser.add_argument("--stage-revision", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_stage:
        return run_stage(args.stage_revision, *args.run_stage)
    if args.drop:
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        compare_stage(args.drop.resolve(), args.against, args.repeat)
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} after")
        return
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
