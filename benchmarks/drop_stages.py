"""What a further drop costs, command by command, in built projects side by side: each
project gets the same drops (`corpus add-drop` then one `dvc repro`), the projects taking
turns (ABBA), every `corpus` command DVC runs timed by a wrapper first on PATH (user + sys
CPU of its process tree, GNU time), DVC's own share the rest of the `dvc repro`'s CPU.

    # copies of a built project, one with another layout's code (pipeline/, dvc.yaml), each
    # brought up to date with `dvc repro` first
    .venv/bin/python benchmarks/drop_stages.py --project main=/tmp/stages/main \\
        --project ours=/tmp/stages/mine /tmp/s16/drops/d6 /tmp/s16/drops/d7

Each project runs its own code (PYTHONPATH=<project>) with this venv's commands; the drops
are added to the projects (use copies). Printed: per command the mean CPU s over the drops
in each project, the count of processes, and each project's over the first's, as ratios:
the machine's load moves the seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.incremental import measured  # noqa: E402

WRAPPER = """#!/bin/sh
exec /usr/bin/time -a -o "$DROP_STAGES_LOG" -f "%U %S %C" {corpus} "$@"
"""


def command_name(argv: list[str]) -> str:
    """A command's row: `corpus` and its options without their values, a drop's name out."""
    words = argv[1:]
    return " ".join(word for index, word in enumerate(words) if index == 0 or word.startswith("--"))


def drop_run(project: Path, drop: Path, wrappers: Path, log: Path) -> dict[str, float]:
    """CPU s of add-drop, of each `corpus` command of the `dvc repro` after it, and of DVC itself."""
    env = {"DVC_NO_ANALYTICS": "1", "PATH": f"{wrappers}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ['PATH']}", "DROP_STAGES_LOG": str(log)}
    log.write_text("")
    add = measured([str(Path(sys.executable).parent / "corpus"), "add-drop", str(drop), "--name", drop.name],
                   project, env=env)
    repro = measured([str(Path(sys.executable).parent / "dvc"), "repro"], project, env=env)
    cpu = {"add-drop": add["cpu"]}
    for line in log.read_text().splitlines():
        user, system, *argv = line.split()
        name = command_name(argv)
        cpu[name] = cpu.get(name, 0.0) + float(user) + float(system)
    cpu["DVC itself"] = repro["cpu"] - sum(value for name, value in cpu.items() if name != "add-drop")
    cpu["dvc repro in all"] = repro["cpu"]
    cpu["processes"] = len(log.read_text().splitlines())
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", action="append", required=True, metavar="LABEL=PATH",
                        help="a built project (changed: the drops are added to it); two or more")
    parser.add_argument("drops", nargs="+", type=Path, help="drop folders, added in this order")
    args = parser.parse_args()
    projects = dict(entry.split("=", 1) for entry in args.project)
    labels = list(projects)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in labels}
    with tempfile.TemporaryDirectory() as folder:
        wrappers, log = Path(folder) / "bin", Path(folder) / "times.log"
        wrappers.mkdir()
        wrapper = wrappers / "corpus"
        wrapper.write_text(WRAPPER.format(corpus=Path(sys.executable).parent / "corpus"))
        wrapper.chmod(0o755)
        for number, drop in enumerate(args.drops):
            for label in labels if number % 2 == 0 else reversed(labels):  # turns: a load change hits both
                runs[label].append(drop_run(Path(projects[label]).resolve(), drop.resolve(), wrappers, log))
                print(f"  {drop.name} in {label}: add-drop {runs[label][-1]['add-drop']:.1f} CPU s, dvc repro "
                      f"{runs[label][-1]['dvc repro in all']:.1f}; load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = list(dict.fromkeys(name for label in labels for run in runs[label] for name in run
                              if name not in ("DVC itself", "dvc repro in all", "processes")))
    rows += ["DVC itself", "dvc repro in all", "processes"]
    mean = {label: {row: statistics.mean(run.get(row, 0.0) for run in runs[label]) for row in rows} for label in labels}
    for label in labels:
        mean[label]["add-drop + repro"] = mean[label]["add-drop"] + mean[label]["dvc repro in all"]
    rows.append("add-drop + repro")
    first = labels[0]
    print(f"\nCPU s, mean of {len(args.drops)} drop(s); load average now {os.getloadavg()[0]:.1f}")
    print(f"{'command':<28}" + "".join(f"{label:>10}" for label in labels)
          + "".join(f"{label + '/' + first:>14}" for label in labels[1:]))
    for row in rows:
        values = [mean[label][row] for label in labels]
        ratios = [f"{value / values[0]:>14.2f}" if values[0] else f"{'-':>14}" for value in values[1:]]
        print(f"{row:<28}" + "".join(f"{value:>10.2f}" for value in values) + "".join(ratios))


if __name__ == "__main__":
    main()
