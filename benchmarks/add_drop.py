"""What `corpus add-drop` costs, this code beside another revision's, in a scratch copy of a project.

    .venv/bin/python benchmarks/add_drop.py --project /tmp/s15/b300/300000/project-whole \
        --drop /tmp/s15/drops/d5 --workdir /tmp/add-drop --rounds 3 [--baseline main | --baseline-code DIR]

The scratch project (WORKDIR/project, a git + DVC repository made afresh) holds what add-drop
reads of ``--project``, which is only read: its params.yaml, dvc.yaml, dvc.lock, Great
Expectations folders, DVC config and the ``.dvc`` files of its drops (not the drops), and a
link to its dedup output (the corpus index add-drop compares the drop with). Then, ``--rounds``
times, alternating between the codes (this checkout's; ``git archive`` of ``--baseline`` under
WORKDIR, or the folder ``--baseline-code``, first on PYTHONPATH), the project is put back as it
was (no drop added, no DVC cache) and ``corpus add-drop DROP --name NAME`` runs in it.

Printed: wall time, CPU time (user + sys) and peak RSS of each run's process tree (``dvc add``
included), the ratios this / baseline, and whether both codes left the same bytes: the drop's
report (results.json: every check, the articles already in the corpus, the repeats within the
drop), its ``.dvc`` file, params.yaml and data/raw/.gitignore.

``--dvc-add`` measures add-drop's ``dvc add`` of the drop alone, in the same scratch project,
``--rounds`` times alternating: ``python -m dvc add`` as a process of its own (what the child
add-drop starts costs), and, in a process that has imported what add-drop has when it installs
a drop, the CPU the step adds there run as that child (``drops._dvc``) or in process through
DVC's ``Repo.add``; and whether all left the same ``.dvc`` file, ``.gitignore`` and DVC cache.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.dedup_drop import revision_code  # noqa: E402
from benchmarks.incremental import measured  # noqa: E402
from pipeline.plumbing.params import load_params, path_of  # noqa: E402

COPIED = ("params.yaml", "dvc.yaml", "dvc.lock", ".gitignore", ".dvcignore")
# `dvc add PATH` inside a process that has imported what add-drop has when it installs a drop:
# prints the CPU (user + sys, its children's included) the step adds there.
DVC_ADD = """
import json, resource, sys
import great_expectations  # noqa: F401
from pipeline import drops

def cpu():
    return sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for field in ("ru_utime", "ru_stime"))

started = cpu()
if sys.argv[1] == "child":
    assert drops._dvc("add", sys.argv[2]).returncode == 0
else:
    from dvc.repo import Repo
    with Repo(".") as repo:
        repo.add(sys.argv[2])
print(json.dumps({"cpu": cpu() - started}))
"""


def scratch_project(project: Path, folder: Path) -> None:
    """A git + DVC repository with what add-drop reads of `project` (see the module's doc)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in COPIED:
        if (project / name).exists():
            shutil.copy2(project / name, folder / name)
    params = load_params(project / "params.yaml")
    shutil.copytree(project / path_of(params, "gx"), folder / path_of(params, "gx"))
    suites = project / "expectations"
    if suites.is_dir():
        shutil.copytree(suites, folder / "expectations")
    raw = folder / path_of(params, "raw")
    raw.mkdir(parents=True)
    for tracked in [*(project / path_of(params, "raw")).glob("*.dvc"), project / path_of(params, "raw") / ".gitignore"]:
        if tracked.is_file():
            shutil.copy2(tracked, raw / tracked.name)
    dedup_dir = folder / path_of(params, "dedup")
    dedup_dir.parent.mkdir(parents=True, exist_ok=True)
    dedup_dir.symlink_to((project / path_of(params, "dedup")).resolve(), target_is_directory=True)
    git = ["git", "-C", str(folder), "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=folder, check=True)
    shutil.copy2(project / ".dvc" / "config", folder / ".dvc" / "config")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "scratch project"], check=True)


def reset(folder: Path, name: str) -> None:
    """The scratch project as before an add-drop of `name`: no drop, no report, no DVC cache."""
    params = load_params(folder / "params.yaml")
    raw = folder / path_of(params, "raw")
    shutil.rmtree(raw / name, ignore_errors=True)
    (raw / f"{name}.dvc").unlink(missing_ok=True)
    for scratch in (folder / path_of(params, "validate_drop"), folder / ".dvc" / "cache", folder / ".dvc" / "tmp"):
        shutil.rmtree(scratch, ignore_errors=True)
    subprocess.run(["git", "-C", str(folder), "checkout", "-q", "--", "."], check=True)


def left(folder: Path, name: str) -> dict[str, bytes]:
    """What an add-drop left that the codes must agree on."""
    params = load_params(folder / "params.yaml")
    raw = folder / path_of(params, "raw")
    files = [path_of(params, "validate_drop") / name / "results.json", raw / f"{name}.dvc", raw / ".gitignore",
             Path("params.yaml")]
    return {str(path): (folder / path).read_bytes() for path in files}


def dvc_add_costs(folder: Path, drop: Path, name: str, rounds: int) -> None:
    """``--dvc-add``: the ``dvc add`` step alone, three ways (see the module's doc)."""
    raw = path_of(load_params(folder / "params.yaml"), "raw")
    target = str(raw / name)
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    ways = {
        "own process: python -m dvc add": None,
        "in add-drop's process: the child (drops._dvc)": "child",
        "in add-drop's process: Repo.add": "in-process",
    }
    cpu: dict[str, list[float]] = {way: [] for way in ways}
    left_behind = []
    for _ in range(rounds):
        for way, how in ways.items():
            reset(folder, name)
            shutil.copytree(drop, folder / target)
            if how is None:
                cpu[way].append(measured([sys.executable, "-m", "dvc", "add", "-q", target], folder, REPO)["cpu"])
            else:
                done = subprocess.run([sys.executable, "-c", DVC_ADD, how, target], cwd=folder, env=environment,
                                      capture_output=True, text=True, check=True)
                cpu[way].append(json.loads(done.stdout.strip().splitlines()[-1])["cpu"])
            cache = sorted(p.relative_to(folder).as_posix() for p in (folder / ".dvc" / "cache").rglob("*") if p.is_file())
            left_behind.append((*((folder / raw / f).read_bytes() for f in (f"{name}.dvc", ".gitignore")), cache))
    reset(folder, name)
    print(f"\n`dvc add` of {drop} as {target} in a scratch copy of the project, {rounds} rounds alternating")
    print(f"{'way':<48} {'CPU s (each round)':<28} {'mean':>6}")
    for way, runs in cpu.items():
        print(f"{way:<48} {' '.join(f'{run:.2f}' for run in runs):<28} {sum(runs) / len(runs):>6.2f}")
    print(f"same .dvc file, .gitignore and DVC cache every time: {all(x == left_behind[0] for x in left_behind)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", type=Path, required=True, help="a project after `dvc repro` (only read)")
    parser.add_argument("--drop", type=Path, required=True, help="the drop folder to add")
    parser.add_argument("--name", default="added", help="the new drop's name")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--baseline", default="main", help="git revision to compare with")
    parser.add_argument("--baseline-code", type=Path, help="a folder with the code to compare with (instead of --baseline)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dvc-add", action="store_true", help="measure add-drop's `dvc add` step alone, three ways")
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    folder = work / "project"
    scratch_project(args.project.resolve(), folder)
    if args.dvc_add:
        dvc_add_costs(folder, args.drop.resolve(), args.name, args.rounds)
        return
    baseline_code = args.baseline_code or revision_code(args.baseline, work / "baseline-code")
    codes = {"this": REPO, "baseline": baseline_code}
    command = [str(Path(sys.executable).parent / "corpus"), "--params", "params.yaml", "add-drop",
               str(args.drop.resolve()), "--name", args.name]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in codes}
    outputs: dict[str, list[dict[str, bytes]]] = {name: [] for name in codes}
    for round_number in range(args.rounds):
        for name in codes:
            reset(folder, args.name)
            print(f"  round {round_number + 1}: {name}: add-drop ...", flush=True)
            runs[name].append(measured(command, folder, codes[name]))
            outputs[name].append(left(folder, args.name))
    reset(folder, args.name)

    print(f"\n`corpus add-drop {args.drop} --name {args.name}` in a copy of {args.project}, this code vs "
          f"{args.baseline_code or args.baseline}, runs alternating")
    print(f"{'code':<9} {'wall s':>8} {'CPU s':>8} {'peak RSS GiB':>13}")
    for name in codes:
        for run in runs[name]:
            print(f"{name:<9} {run['wall']:>8.1f} {run['cpu']:>8.1f} {run['rss']:>13.3f}")
    ratio = {key: sum(r[key] for r in runs["this"]) / sum(r[key] for r in runs["baseline"]) for key in ("wall", "cpu", "rss")}
    print("this / baseline: " + ", ".join(f"{key} {value:.3f}" for key, value in ratio.items()))
    every = [output for name in codes for output in outputs[name]]
    print(f"same report, .dvc file, params.yaml and .gitignore in every run of both codes: "
          f"{all(output == every[0] for output in every)}")
    print(json.dumps({"runs": runs}))


if __name__ == "__main__":
    main()
