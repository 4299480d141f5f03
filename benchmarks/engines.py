r"""The local engine against Ray (one node, 2 worker CPUs), stage by stage: the stages whose
per-batch work runs on the engine (ingest, clean, dedup, the row suite of validate,
publish's shards), on a generated corpus.

    .venv/bin/python benchmarks/engines.py --articles 10000
    .venv/bin/python benchmarks/engines.py --articles 100000 --stages dedup "dedup new drop"
    .venv/bin/python benchmarks/engines.py --articles 300000 --corpus /tmp/perf-bench/300000/corpus --stages ingest clean
    .venv/bin/python benchmarks/engines.py --articles 300000 --built /tmp/perf-bench/300000/project \
        --stages dedup "dedup new drop" "validate rows" publish

The corpus is ``benchmarks/incremental.py``'s (real SaudiNewsNet sentences recombined into
articles, seeded), two drops: ``base`` and ``new`` (1 % of the articles, reprinting some of
base's; ``--corpus``: one that script made already, copied). The project is built with the
local engine as far as the chosen stages need (`dvc repro dedup`, or `clean` when only
ingest and clean are measured), then each stage command runs on each engine, one after the
other:

* ingest: ``corpus ingest --input data/raw --output build/engines-ingest --engine local|ray``
  (every drop into one table, the files read in tasks);
* clean: ``corpus clean --engine local|ray`` from empty output folders: every drop ingested
  and cleaned, as `dvc repro` runs it;
* dedup: ``corpus dedup --engine local|ray`` from an empty output folder: both drops,
  base alone then new against base's index;
* dedup new drop: the same with base's folder kept, so only the new drop is deduplicated,
  against the index of base (what a drop added costs);
* validate rows: ``corpus validate --drop base --engine local|ray``;
* publish: ``corpus publish --build-only --engine local|ray`` into an empty release folder
  (each shard a task).

The script starts a one-node Ray cluster (``ray start --head --num-cpus 2``, on 127.0.0.1,
free ports, ``benchmarks/ray_cluster.py``) and stops it, only it, at the end.

``--built``: a project ``benchmarks/incremental.py`` finished (drops seed, base and new, every
stage built) whose clean and dedup outputs are copied into this code's project instead of
building them with ``dvc repro`` (the dedup and validate stages measured from there);
publish reads its split tables and stage reports where they are.

Per stage and engine it prints wall time, CPU seconds (all, and the driver's: the command's
own process tree) and peak RSS: of the command's process tree, plus for Ray those of the
cluster's worker processes (its ``ray::`` processes,
sampled every 0.2 s with psutil; the cluster's agents are left out), and the
ratio Ray / local. The Ray run includes joining the cluster and starting its workers (a
fixed cost of tens of seconds on a loaded machine): run two sizes to separate it from the
cost per article.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.incremental import generate, project_copy  # noqa: E402
from benchmarks.ray_cluster import LocalRayCluster  # noqa: E402
from pipeline.plumbing.params import with_list_item  # noqa: E402

BIN = Path(sys.executable).parent
STAGES = {"ingest": ["ingest", "--input", "data/raw", "--output", "build/engines-ingest"], "clean": ["clean"],
          "dedup": ["dedup"],
          "dedup new drop": ["dedup"],
          "validate rows": ["validate", "--drop", "base"], "publish": ["publish", "--build-only"]}


def clear_outputs(stage: str, project: Path) -> None:
    """Dedup reuses a drop's folder whose inputs did not change (the engine is not one of
    them), and so does clean: take out what the measured command is to compute."""
    if stage == "ingest":
        shutil.rmtree(project / "build" / "engines-ingest", ignore_errors=True)
    elif stage == "clean":
        for output in ("ingest", "line_counts", "repeated_lines", "clean"):
            shutil.rmtree(project / "build" / output, ignore_errors=True)
    elif stage == "dedup":
        shutil.rmtree(project / "build" / "dedup", ignore_errors=True)
    elif stage == "dedup new drop":
        shutil.rmtree(project / "build" / "dedup" / "drop=new", ignore_errors=True)
    elif stage == "publish":  # a build keeps the shards of an earlier one
        shutil.rmtree(project / "build" / "hub", ignore_errors=True)


def stage_command(stage: str, built: Path | None) -> list[str]:
    """The stage's command; publish of a --built project reads its split tables and reports."""
    if stage == "publish" and built:
        outputs = built / "build"
        return [*STAGES[stage], "--input", str(outputs / "split"), "--stage-outputs", str(outputs),
                "--validation", str(outputs / "validate" / "results.json")]
    return STAGES[stage]


class Sampler(threading.Thread):
    """Peak RSS of a process tree plus the Ray worker processes of the cluster, and their CPU seconds."""

    def __init__(self, root: int, cluster: LocalRayCluster | None) -> None:
        super().__init__(daemon=True)
        self.root, self.cluster = root, cluster
        self.peak_rss, self.cpu, self.stopped = 0, {}, threading.Event()
        # The cluster's own processes (agents, earlier jobs' actors) are not the command's;
        # idle workers are, once the command's job takes them.
        self.daemons = {pid for pid, name in self._ray_processes() if name != "ray::IDLE"}

    def _ray_processes(self) -> list[tuple[int, str]]:
        """(pid, name) of the cluster's ``ray::`` processes (workers, actors, agents)."""
        found = []
        for process in self.cluster.processes() if self.cluster else []:
            try:
                name = (process.cmdline() or [""])[0]
            except psutil.Error:
                continue
            if name.startswith("ray::"):
                found.append((process.pid, name))
        return found

    def processes(self) -> list[psutil.Process]:
        found = []
        try:
            root = psutil.Process(self.root)
            found = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
        for pid, _ in self._ray_processes():
            if pid not in self.daemons:
                try:
                    found.append(psutil.Process(pid))
                except psutil.NoSuchProcess:
                    continue
        return found

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            rss = 0
            for process in self.processes():
                try:
                    rss += process.memory_info().rss
                    times = process.cpu_times()
                    self.cpu[process.pid] = times.user + times.system
                except psutil.NoSuchProcess:
                    continue
            self.peak_rss = max(self.peak_rss, rss)


def measured(command: list[str], cwd: Path, cluster: LocalRayCluster | None) -> dict[str, float]:
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(process.pid, cluster)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    sampler.stopped.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read()}")
    # The command's own CPU (with its waited-for children) and the Ray workers' it sampled.
    workers = sum(cpu for pid, cpu in sampler.cpu.items() if pid != process.pid) if cluster else 0.0
    driver = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": driver + workers, "driver": driver,
            "rss": max(sampler.peak_rss, usage.ru_maxrss * 1024) / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, action="append", help="corpus size (repeatable; default 10000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/engines-bench"))
    parser.add_argument("--reuse", action="store_true", help="measure in the project an earlier run built in "
                        "--workdir (say, one whose Ray cluster went down), without building it again")
    parser.add_argument("--corpus", type=Path, help="a corpus benchmarks/incremental.py generated (base/, new/), "
                        "used instead of generating one; it must have --articles articles")
    parser.add_argument("--built", type=Path, help="a project benchmarks/incremental.py finished: its drops "
                        "and its clean and dedup outputs are copied instead of built")
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), default=list(STAGES))
    args = parser.parse_args()
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    with LocalRayCluster(BIN / "ray", [2]) as cluster:
        os.environ.update(cluster.env)
        for articles in args.articles or [10000]:
            work = args.workdir / str(articles)
            project = work / "project"
            if not (args.reuse and project.is_dir()):
                shutil.rmtree(work, ignore_errors=True)
                corpus = args.corpus or (args.built / "data" / "raw" if args.built else work / "corpus")
                if not (args.corpus or args.built):
                    generate(articles, args.seed, corpus)
                project_copy(REPO, project, corpus / "base")
                shutil.copytree(corpus / "new", project / "data" / "raw" / "new")
                params = project / "params.yaml"
                params.write_text(with_list_item(params.read_text(encoding="utf-8"), "split", "drop_order", "new"),
                                  encoding="utf-8")
                if args.built and set(args.stages) - {"publish"}:
                    for stage in ("clean", "dedup"):
                        shutil.copytree(args.built / "build" / stage, project / "build" / stage)
            if not args.built:
                built = ("clean" if set(args.stages) <= {"ingest", "clean"} else
                         "split" if "publish" in args.stages else "dedup")
                subprocess.run([str(BIN / "dvc"), "repro", built], cwd=project, check=True, capture_output=True)
            print(f"\n{articles:,} articles (drop base: {articles - max(1, round(articles * 0.01)):,}) on "
                  f"{os.cpu_count()} cores; Ray: one node, 2 CPUs; load: the 1-minute load average after the command")
            print(f"{'stage':<16}{'engine':<8}{'wall s':>8}{'CPU s':>8}{'driver CPU s':>14}{'RSS GiB':>9}"
                  f"{'wall ray/local':>16}{'CPU ray/local':>15}{'load':>6}", flush=True)
            for stage in args.stages:
                rows = {}
                for engine in ("local", "ray"):
                    clear_outputs(stage, project)
                    command = [str(BIN / "corpus"), *stage_command(stage, args.built), "--engine", engine]
                    rows[engine] = row = measured(command, project, cluster if engine == "ray" else None)
                    ratios = (f"{row['wall'] / rows['local']['wall']:>16.2f}{row['cpu'] / rows['local']['cpu']:>15.2f}"
                              if engine == "ray" else " " * 31)
                    print(f"{stage:<16}{engine:<8}{row['wall']:>8.1f}{row['cpu']:>8.1f}{row['driver']:>14.1f}"
                          f"{row['rss']:>9.2f}{ratios}{os.getloadavg()[0]:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
