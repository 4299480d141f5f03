"""What a new drop costs, command by command, this checkout's code beside another's: two copies
of one built project (each runs the code in its own ``pipeline/``), each given the same drops
with ``corpus add-drop`` and ``dvc repro``, the other copy's turn after each drop; or
(``--unchanged``) the stages whose fingerprints hash every drop's tables run again with
nothing to recompute, what each pays a run whatever the drop.

    # two copies of a project after a full run (e.g. benchmarks/incremental.py's project-whole),
    # the baseline's code in one, this checkout's pipeline/ (and dvc.yaml, params.yaml) in the
    # other, each brought up to date with one `dvc repro` first; then:
    .venv/bin/python benchmarks/drop_stages.py --baseline /tmp/b/main --ours /tmp/b/ours \\
        --drop /tmp/drops/d7 --drop /tmp/drops/d8
    .venv/bin/python benchmarks/drop_stages.py --baseline /tmp/b/main --ours /tmp/b/ours --unchanged 3

Every ``corpus`` command DVC runs goes through a wrapper on PATH that records its CPU time
(user + sys of the process and its children) and wall time. Printed: per command, the CPU
seconds of both copies summed over the drops and the ratio ours / baseline; add-drop; the
`dvc repro` as a whole (DVC and every command); and the load average before and after (a
busy machine inflates wall times: compare CPU seconds, as ratios). Both copies run the same
``corpus`` and ``dvc`` (this checkout's .venv); only the project's code differs.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
# Runs the real `corpus` and appends "<command>\t<cpu s>\t<wall s>" to $DROP_STAGES_TIMES.
WRAPPER = f"""#!{sys.executable}
import os, resource, subprocess, sys, time
start = time.monotonic()
code = subprocess.call([{str(VENV_BIN / "corpus")!r}, *sys.argv[1:]])
used = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(os.environ["DROP_STAGES_TIMES"], "a") as times:
    times.write(f"{{sys.argv[1]}}\\t{{used.ru_utime + used.ru_stime:.3f}}\\t{{time.monotonic() - start:.3f}}\\n")
sys.exit(code)
"""


def timed(command: list[str], project: Path, env: dict[str, str]) -> tuple[float, float]:
    """(CPU s of the command and everything it ran, wall s); fails on a non-zero exit."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        sys.exit(f"{' '.join(command)} in {project} exited {result.returncode}:\n"
                 f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, time.monotonic() - start


def add_drop(project: Path, drop: Path, wrapper_dir: Path) -> dict[str, float]:
    """CPU s of add-drop, of each command `dvc repro` ran (by its name), and of the repro."""
    times = wrapper_dir / "times.tsv"
    times.write_text("")
    env = os.environ | {"PYTHONPATH": str(project), "DVC_NO_ANALYTICS": "1", "DROP_STAGES_TIMES": str(times),
                        "PATH": f"{wrapper_dir}{os.pathsep}{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    adding = [str(VENV_BIN / "corpus"), "add-drop", str(drop), "--name", drop.name]
    figures = {"add-drop": timed(adding, project, env)[0]}
    times.write_text("")
    figures["dvc repro"] = timed([str(VENV_BIN / "dvc"), "repro"], project, env)[0]
    for line in times.read_text().splitlines():
        name, cpu, _ = line.split("\t")
        figures[name] = figures.get(name, 0.0) + float(cpu)
    return figures


UNCHANGED = (["dedup"], ["validate", "--corpus"], ["split"], ["publish", "--build-only"])


def unchanged(projects: dict[str, Path], rounds: int) -> None:
    """Each command of UNCHANGED in each project, alternating, `rounds` times: their CPU s."""
    cpu: dict[str, dict[str, float]] = {side: defaultdict(float) for side in projects}
    for _ in range(rounds):
        for command in UNCHANGED:
            for side, project in projects.items():
                env = os.environ | {"PYTHONPATH": str(project.resolve()), "DVC_NO_ANALYTICS": "1"}
                cpu[side][" ".join(command)] += timed([str(VENV_BIN / "corpus"), *command], project, env)[0]
    print(f"\nCPU s a run, nothing to recompute (mean of {rounds})\n"
          f"{'command':<22}{'baseline':>10}{'ours':>10}{'ours/base':>11}")
    for name in cpu["baseline"]:
        base, ours = cpu["baseline"][name] / rounds, cpu["ours"][name] / rounds
        print(f"{name:<22}{base:>10.2f}{ours:>10.2f}{ours / base:>11.3f}")
    base, ours = (sum(cpu[side].values()) / rounds for side in ("baseline", "ours"))
    print(f"{'together':<22}{base:>10.2f}{ours:>10.2f}{ours / base:>11.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a project copy running the other code")
    parser.add_argument("--ours", type=Path, required=True, help="a project copy running this checkout's code")
    parser.add_argument("--drop", type=Path, action="append", default=[],
                        help="a drop folder to add to both (repeatable; its name is the drop's)")
    parser.add_argument("--unchanged", type=int, metavar="ROUNDS",
                        help="instead, run dedup, validate, split and publish's build again this many times")
    args = parser.parse_args()
    if args.unchanged:
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        unchanged({"baseline": args.baseline, "ours": args.ours}, args.unchanged)
        print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        return 0
    if not args.drop:
        parser.error("--drop or --unchanged")
    totals: dict[str, dict[str, float]] = {"baseline": defaultdict(float), "ours": defaultdict(float)}
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as wrapper_dir:
        wrapper = Path(wrapper_dir) / "corpus"
        wrapper.write_text(WRAPPER)
        wrapper.chmod(0o755)
        for drop in args.drop:
            for side, project in (("baseline", args.baseline), ("ours", args.ours)):
                figures = add_drop(project.resolve(), drop.resolve(), Path(wrapper_dir))
                print(f"{drop.name} {side}: " + ", ".join(f"{name} {cpu:.2f}" for name, cpu in figures.items()),
                      flush=True)
                for name, cpu in figures.items():
                    totals[side][name] += cpu
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    base, ours = totals["baseline"], totals["ours"]
    names = [name for name in base if name not in ("add-drop", "dvc repro")] + ["add-drop", "dvc repro"]
    print(f"\nCPU s over {len(args.drop)} drop(s)\n{'command':<14}{'baseline':>10}{'ours':>10}{'ours/base':>11}")
    for name in names:
        print(f"{name:<14}{base[name]:>10.2f}{ours.get(name, 0.0):>10.2f}{ours.get(name, 0.0) / base[name]:>11.3f}")
    both = base["add-drop"] + base["dvc repro"], ours["add-drop"] + ours["dvc repro"]
    print(f"{'add + repro':<14}{both[0]:>10.2f}{both[1]:>10.2f}{both[1] / both[0]:>11.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
