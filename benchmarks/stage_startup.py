"""What a stage's process costs besides its work, with and without the libraries' bytecode:
the commands `dvc repro` runs after a new drop whose work is small (the corpus-level stages
and the new drop's row checks) on a built project, each run alternately with the bytecode
`make install` writes and without it (Python then compiles every module it imports, GX's,
Polars's..., as it does at each start where PYTHONDONTWRITEBYTECODE is set and the venv has
no .pyc, which was the case before `make install` compiled them), side by side, as ratios.

    .venv/bin/python benchmarks/stage_startup.py --project /tmp/perf-bench/300000/project --drop new --rounds 2

`validate --drop NAME` then `validate --corpus` is what `dvc repro`'s one validate stage does
after a new drop, in two processes: on a project built by this code the second reuses every
drop's row checks (their fingerprints hold), on one built before it checks every drop again.

`--project` is a project `dvc repro` built (read only here): its stages' outputs are linked
into a scratch project under `--workdir`, where the commands write theirs. Without bytecode
means PYTHONDONTWRITEBYTECODE=1 and PYTHONPYCACHEPREFIX pointing at an empty folder, so no
.pyc is found and none is written; with bytecode, the same but no prefix. Our own package
is compiled in both (PYTHONDONTWRITEBYTECODE). CPU seconds are user + sys of the process
(benchmarks/incremental.py's `measured`); the figures are the medians over the rounds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.incremental import measured  # noqa: E402

# Read by the commands: linked. Written by them: copied (clean's folders, validate's rows) or made afresh.
LINKED = ("dedup", "split")
COPIED = ("ingest", "line_counts", "clean", "validate/rows")


def scratch_project(built: Path, work: Path) -> Path:
    """A project whose stage inputs are `built`'s (linked) and whose outputs are its own."""
    project = work / "project"
    shutil.rmtree(project, ignore_errors=True)
    (project / "build").mkdir(parents=True)
    for name in ("params.yaml", "gx", "expectations"):
        (shutil.copytree if (built / name).is_dir() else shutil.copyfile)(built / name, project / name)
    for name in LINKED:
        (project / "build" / name).symlink_to(built / "build" / name)
    for name in COPIED:
        shutil.copytree(built / "build" / name, project / "build" / name)
    return project


def commands(drop: str) -> list[list[str]]:
    return [["corpus", "clean"], ["corpus", "figures"], ["corpus", "validate", "--drop", drop],
            ["corpus", "validate", "--corpus"]]


def arguments(description: str, workdir: str) -> argparse.ArgumentParser:
    """The options of a script that runs commands side by side on a built project."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True, help="a project `dvc repro` built")
    parser.add_argument("--drop", required=True, help="the drop whose rows `corpus validate --drop` checks")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(workdir))
    return parser


def prepared(args: argparse.Namespace) -> Path:
    """The scratch project of `args.project` under `args.workdir` (``scratch_project``), with
    this venv's commands first on PATH."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    print(f"{args.project}: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    return scratch_project(args.project.resolve(), args.workdir.resolve())


def side_by_side(project: Path, commands: list[list[str]], variants: dict[str, tuple[list[str], dict[str, str]]],
                 rounds: int, warm_up: bool = False) -> None:
    """Each command run alternately in `project` as each of two `variants` (a variant: the
    arguments added to the command and the environment it runs with), `rounds` times, after
    one unmeasured run of each if `warm_up`; prints the medians of wall and CPU s, the second
    variant's CPU over the first's, and the sums."""
    first, second = variants
    print(f"{'command':<34}{first + ': wall s':>16}{'CPU s':>8}{second + ': wall s':>14}{'CPU s':>8}"
          f"{f'{second}/{first} CPU':>18}")
    totals = {variant: 0.0 for variant in variants}
    for command in commands:
        runs: dict[str, list[dict[str, float]]] = {variant: [] for variant in variants}
        for round_ in range(rounds + warm_up):
            for variant, (arguments, env) in variants.items():
                run = measured([*command, *arguments], project, code=REPO, env=env)
                if round_ >= warm_up:
                    runs[variant].append(run)
        median = {variant: {key: statistics.median(run[key] for run in runs[variant]) for key in ("wall", "cpu")}
                  for variant in variants}
        for variant in variants:
            totals[variant] += median[variant]["cpu"]
        print(f"{' '.join(command)[:33]:<34}{median[first]['wall']:>16.1f}{median[first]['cpu']:>8.1f}"
              f"{median[second]['wall']:>14.1f}{median[second]['cpu']:>8.1f}"
              f"{median[second]['cpu'] / median[first]['cpu']:>18.3f}", flush=True)
    print(f"{'all':<34}{'':>16}{totals[first]:>8.1f}{'':>14}{totals[second]:>8.1f}"
          f"{totals[second] / totals[first]:>18.3f}")


def main() -> None:
    args = arguments(__doc__, "/tmp/stage-startup").parse_args()
    project = prepared(args)
    work = args.workdir.resolve()
    no_bytecode = work / "no-bytecode"  # stays empty: nothing is written with PYTHONDONTWRITEBYTECODE
    no_bytecode.mkdir(exist_ok=True)
    modes = {"without": {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(no_bytecode)},
             "with": {"PYTHONDONTWRITEBYTECODE": "1"}}
    os.environ.pop("PYTHONPYCACHEPREFIX", None)
    side_by_side(project, commands(args.drop), {mode: ([], env) for mode, env in modes.items()}, args.rounds)
    print(f"load average now {os.getloadavg()[0]:.1f}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
