"""What DVC's rewrite of dvc.lock costs after each stage it runs, by the lock's size.

    .venv/bin/python benchmarks/dvc_lock.py /tmp/incremental/100000/project-whole/dvc.lock
    # the stages of this checkout's dvc.yaml kept, on a lock of an older layout
    .venv/bin/python benchmarks/dvc_lock.py OLD_PROJECT/dvc.lock --dvc-yaml dvc.yaml

`dvc repro` rewrites the whole dvc.lock after every stage it runs (a ruamel round trip:
parse, set the stage's entry, write), so the lock's size is a cost paid once a stage, and
it grows with the drops: each per-drop stage has its own entry, which lists the params it
tracks (`boilerplate`'s curated lists, 200-odd lines, in most of them). Given a project's
dvc.lock, this prints the CPU time of one such rewrite (DVC's own `modify_yaml`, median of
--rounds) for: the lock as it is; without the entries of stages that a dvc.yaml (its
project's, or --dvc-yaml) does not define (a stage per drop that became one stage, like
`validate_rows@<drop>`, and entries an older layout left: DVC never removes them); and
both with every per-drop entry repeated for 10 and 30 drops, as the lock grows. Compare the ratios: the machine's load moves the seconds.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml
from dvc.utils.serialize import modify_yaml


def stage_names(dvc_yaml: Path, drops: list[str]) -> set[str]:
    """The stage names dvc.yaml defines for `drops` (a foreach stage: name@drop)."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    return {f"{name}@{drop}" if "foreach" in spec else name for name, spec in stages.items() for drop in drops}


def with_drops(lock: dict, count: int) -> dict:
    """The lock with each per-drop entry (name@drop) of its last drop repeated up to `count` drops."""
    grown = copy.deepcopy(lock)
    drops = list(dict.fromkeys(name.split("@", 1)[1] for name in lock["stages"] if "@" in name))
    last = drops[-1]
    for number in range(len(drops), count):
        for name, entry in lock["stages"].items():
            if name.endswith(f"@{last}"):
                grown["stages"][f"{name.split('@')[0]}@extra{number}"] = copy.deepcopy(entry)
    return grown


def rewrite_cpu(lock: dict, rounds: int) -> tuple[int, float]:
    """Lines of the lock as DVC writes it, and the median CPU s of one `modify_yaml` rewrite."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dvc.lock"
        with modify_yaml(path) as data:  # written by DVC's own writer, as `dvc repro` leaves it
            data.update(lock)
        lines = len(path.read_text(encoding="utf-8").splitlines())
        times = []
        for round_ in range(rounds):
            started = time.process_time()
            with modify_yaml(path) as data:
                data["stages"][next(iter(data["stages"]))]["cmd"] += f" #{round_}"
            times.append(time.process_time() - started)
    return lines, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lock", type=Path, help="a project's dvc.lock (its dvc.yaml and params.yaml beside it)")
    parser.add_argument("--dvc-yaml", type=Path, help="the stages kept (default: the project's dvc.yaml)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    project = args.lock.resolve().parent
    lock = yaml.safe_load(args.lock.read_text(encoding="utf-8"))
    drops = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))["split"]["drop_order"]
    current = stage_names(args.dvc_yaml or project / "dvc.yaml", drops)
    pruned = {**lock, "stages": {name: entry for name, entry in lock["stages"].items() if name in current}}
    print(f"{args.lock}: drops {drops}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'lock':<44}{'entries':>8}{'lines':>8}{'CPU s a rewrite':>17}{'ratio':>7}")
    first = None
    cases = [("as it is", lock), ("only the stages of the dvc.yaml", pruned)]
    for drops_count in (10, 30):
        cases += [(f"as it is, {drops_count} drops", with_drops(lock, drops_count)),
                  (f"only its stages, {drops_count} drops", with_drops(pruned, drops_count))]
    for label, data in cases:
        lines, cpu = rewrite_cpu(data, args.rounds)
        first = first or cpu
        print(f"{label:<44}{len(data['stages']):>8}{lines:>8}{cpu:>17.3f}{cpu / first:>7.2f}")


if __name__ == "__main__":
    sys.exit(main())
