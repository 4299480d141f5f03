"""The per-drop stages' throughput, this checkout beside another revision, on one drop:
``corpus clean`` (every drop ingested, its lines counted, its repeated lines, cleaned, from
nothing; a baseline before 2026-12-01's one clean stage ran ``corpus ingest --drop``,
``corpus repeated-lines`` and ``corpus clean --drop`` for that: leave the stage out),
``corpus validate --drop`` and ``corpus split`` (every drop, its contamination index built
from nothing), each code's command after the other's, in rounds.

    # a project to run them in: benchmarks/incremental.py's generated corpus, built once
    .venv/bin/python benchmarks/incremental.py --articles 30000 --workdir /tmp/throughput-bench --full-only
    .venv/bin/python benchmarks/stage_throughput.py --project /tmp/throughput-bench/30000/project --baseline main

Each command runs in the project (its raw drop, its repeated lines and dedup output are the
inputs) with a params file whose stage outputs point into ``WORKDIR/<code>/``, emptied
before each run (split would reuse its drops' folders and index layers), with the
code of the checkout first on PYTHONPATH. Printed per stage: wall time, CPU time (user +
sys) and peak RSS of the process tree (``incremental.measured``) for both codes, summed
over the rounds, the ratios ours / baseline (and of the stages together), and whether the
two codes' outputs are the same bytes (every file but GX's own result and Data Docs files,
which carry the run's time).
The machine's load average is printed before and after: compare the ratios, not seconds.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.incremental import baseline_checkout, measured  # noqa: E402

# Stage -> (command after `corpus`, the params paths it writes).
STAGES = {
    "clean": (["clean"], ["ingest", "line_counts", "repeated_lines", "clean"]),
    "validate_rows": (["validate", "--drop", "{drop}"], ["validate"]),
    "split": (["split"], ["split", "split_index"]),
}
# Outputs compared byte for byte (relative to the run's folder): GX's result store and Data
# Docs (validate/drop=<name>/) are stamped with the run's time.
COMPARED = {"clean": ["ingest", "line_counts", "repeated_lines", "clean"],
            "validate_rows": ["validate/rows"], "split": ["split", "split_index"]}


def run_params(project: Path, out: Path, stages: list[str]) -> Path:
    """The project's params.yaml with the measured `stages`' outputs (and metrics) under `out`;
    a stage not measured is read from the project."""
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    for stage in stages:
        for name in STAGES[stage][1]:
            params["paths"][name] = str(out / name)
    params["paths"]["metrics"] = str(out / "metrics")
    path = out / "params.yaml"
    path.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def different_files(left: Path, right: Path) -> list[str]:
    """Files (relative) that are missing on one side or differ in their bytes (a JSON file
    but its ``fingerprint``: split's drop and index-layer fingerprints cover its code)."""
    names = {p.relative_to(left) for p in left.rglob("*") if p.is_file()}
    names |= {p.relative_to(right) for p in right.rglob("*") if p.is_file()}
    return sorted(str(n) for n in names
                  if not (left / n).is_file() or not (right / n).is_file() or not _same(left / n, right / n))


def _same(left: Path, right: Path) -> bool:
    if filecmp.cmp(left, right, shallow=False):
        return True
    if left.suffix != ".json":
        return False
    left_json, right_json = (json.loads(path.read_text(encoding="utf-8")) for path in (left, right))
    return (isinstance(left_json, dict) and isinstance(right_json, dict)
            and {**left_json, "fingerprint": None} == {**right_json, "fingerprint": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True, help="a project built by benchmarks/incremental.py")
    parser.add_argument("--baseline", default="main", metavar="REV", help="the revision to compare with (default: main), or a folder holding its code")
    parser.add_argument("--drop", default="base")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stage", action="append", choices=list(STAGES), help="only these stages (repeatable)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/stage-throughput"))
    args = parser.parse_args()
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    workdir, project = args.workdir.resolve(), args.project.resolve()
    baseline = Path(args.baseline)
    codes = {"base": baseline.resolve() if baseline.is_dir() else baseline_checkout(args.baseline, workdir), "ours": REPO}
    stages = args.stage or list(STAGES)
    totals = {code: {stage: {"wall": 0.0, "cpu": 0.0, "rss": 0.0} for stage in stages} for code in codes}
    print(f"{args.drop!r} of {project}; baseline {args.baseline} ({codes['base'].name}); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    for round_number in range(args.rounds):
        # Alternate which code goes first, so a change of load hits both alike.
        order = list(codes) if round_number % 2 == 0 else list(reversed(codes))
        for stage in stages:
            command, _ = STAGES[stage]
            for code in order:
                out = workdir / code
                out.mkdir(parents=True, exist_ok=True)
                params = run_params(project, out, stages)
                for name in STAGES[stage][1]:
                    shutil.rmtree(out / name, ignore_errors=True)
                # The installed entry point, not `python -m` (which would put the project's own
                # copy of the code, its working folder, first on sys.path).
                argv = [str(Path(sys.executable).parent / "corpus"), "--params", str(params),
                        *(part.format(drop=args.drop) for part in command)]
                figures = measured(argv, project, codes[code])
                for key in ("wall", "cpu"):
                    totals[code][stage][key] += figures[key]
                totals[code][stage]["rss"] = max(totals[code][stage]["rss"], figures["rss"])
                print(f"  round {round_number + 1} {stage:<14}{code:<5} wall {figures['wall']:7.1f} s  CPU "
                      f"{figures['cpu']:7.1f} s  peak RSS {figures['rss']:.2f} GiB", flush=True)
    print(f"\nload average now {os.getloadavg()[0]:.1f}; sums over {args.rounds} round(s), peak RSS the highest")
    print(f"{'stage':<15}{'base wall':>10}{'CPU':>8}{'RSS GiB':>9}{'ours wall':>11}{'CPU':>8}{'RSS GiB':>9}"
          f"{'CPU ratio':>11}{'wall':>7}{'RSS':>7}  same bytes")
    for stage in stages:
        differ = [f"{folder}/{name}" for folder in COMPARED[stage]
                  for name in different_files(workdir / "base" / folder, workdir / "ours" / folder)]
        _print_row(stage, totals["base"][stage], totals["ours"][stage], "yes" if not differ else f"NO: {', '.join(differ[:3])}")
    if len(stages) > 1:
        summed = {code: {key: sum(totals[code][stage][key] for stage in stages) for key in ("wall", "cpu")}
                  | {"rss": max(totals[code][stage]["rss"] for stage in stages)} for code in codes}
        _print_row("together", summed["base"], summed["ours"], "")
    shutil.rmtree(workdir / "base", ignore_errors=True)
    shutil.rmtree(workdir / "ours", ignore_errors=True)


def _print_row(name: str, base: dict[str, float], ours: dict[str, float], same: str) -> None:
    print(f"{name:<15}{base['wall']:>10.1f}{base['cpu']:>8.1f}{base['rss']:>9.2f}{ours['wall']:>11.1f}"
          f"{ours['cpu']:>8.1f}{ours['rss']:>9.2f}{ours['cpu'] / base['cpu']:>11.2f}{ours['wall'] / base['wall']:>7.2f}"
          f"{ours['rss'] / base['rss']:>7.2f}  {same}")


if __name__ == "__main__":
    main()
