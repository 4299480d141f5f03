"""What one new small drop costs as the number of drops K grows: DVC's own work (checking
every stage's deps and params, rewriting dvc.lock after each stage it runs) beside the
`corpus` commands'.

    .venv/bin/python benchmarks/many_drops.py --sizes 5,20,50,100 --articles-per-drop 40
    PATH=/path/to/py-spy/bin:$PATH .venv/bin/python benchmarks/many_drops.py --sizes 5,20 --profile /tmp/dvc.raw

One project copy (incremental.py's `project_copy`: this checkout's code, first on
PYTHONPATH) holds the seed drop and K small drops of real SaudiNewsNet articles (the zips
of the shared corpus, shuffled with --seed, each drop other articles; the first drop is
named `base`), put in data/raw and split.drop_order directly (`corpus add-drop` costs
12-14 CPU s a drop: 20 minutes for 100). At each K, in one run on the same project:
  1. `dvc repro` builds the drops added since the last K (secondary: its wall and CPU);
  2. `corpus add-drop` of one more drop, then `dvc repro`, timed (CPU = user + sys of the
     process tree). DVC's own CPU is that repro's minus the `corpus` commands it ran, each
     timed by drop_stages.py's wrapper first on PATH (the wrapper's Python start, about
     0.07 CPU s a command, counts as DVC's: constant in K). Also the stages run and the
     lines of dvc.lock before and after;
  3. a no-op `dvc repro` and a `dvc status` (what users run often).
The measured drop counts among the K of the next size. Drops already in the project are
kept, and the figures of each size (WORKDIR/.../results.json): a run with the same --workdir
goes on with larger sizes and prints every size's row. `--profile FILE`: after the last size,
one more drop and its `dvc repro` under `py-spy record -r 200 -f raw` (DVC's process, not
its subprocesses; --gil: Python running), and the functions with the most samples.
`--baseline CHECKOUT`: a second project copy with that checkout's code (a `git worktree` of
main, say), measured at each K right after this checkout's on the same drops, and the two
side by side: DVC's own CPU a drop and the dvc.lock lines a drop adds, as ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.drop_stages import VENV_BIN, WRAPPER  # noqa: E402
from benchmarks.incremental import _write_jsonl, measured, project_copy  # noqa: E402
from benchmarks.shared_corpus import SAUDI_ZIPS  # noqa: E402
from pipeline.plumbing.params import load_params, with_list_item  # noqa: E402

FIELDS = ("source", "url", "title", "date_extracted", "content")


def article_pool(seed: int) -> list[dict[str, str]]:
    """Every SaudiNewsNet article with a text, in an order shuffled by `seed`."""
    articles = []
    for archive in sorted(SAUDI_ZIPS.glob("*.zip")):
        with zipfile.ZipFile(archive) as bundle:
            for name in sorted(bundle.namelist()):
                articles.extend({key: record.get(key) or "" for key in FIELDS}
                                for record in json.loads(bundle.read(name)) if (record.get("content") or "").strip())
    random.Random(seed).shuffle(articles)
    return articles


class Drops:
    """Drop n (1, 2, ...) of the run: the pool's n-th slice of `per_drop` articles, written
    once as JSONL under `folder/d<n>` (its name as a drop)."""

    def __init__(self, folder: Path, per_drop: int, seed: int):
        self.folder, self.per_drop, self.seed, self.pool = folder, per_drop, seed, None

    def __getitem__(self, number: int) -> Path:
        drop = self.folder / f"d{number:04d}"
        if not drop.exists():
            self.pool = self.pool or article_pool(self.seed)
            rows = self.pool[(number - 1) * self.per_drop:number * self.per_drop]
            if len(rows) < self.per_drop:
                raise SystemExit(f"the SaudiNewsNet zips hold {len(self.pool):,} articles: not enough for drop "
                                 f"{number} of {self.per_drop}; ask for fewer drops or articles per drop")
            partial = drop.with_name(drop.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            _write_jsonl(rows, partial / "part-00000.jsonl")
            partial.rename(drop)
        return drop


def drop_count(project: Path) -> int:
    """Drops in split.drop_order besides the bundled seed."""
    return len([d for d in load_params(project / "params.yaml")["split"]["drop_order"] if d != "seed"])


def add_directly(project: Path, drop: Path) -> None:
    """The drop into data/raw and split.drop_order, without add-drop's validation and `dvc add`."""
    shutil.copytree(drop, project / "data" / "raw" / drop.name)
    params = project / "params.yaml"
    params.write_text(with_list_item(params.read_text(encoding="utf-8"), "split", "drop_order", drop.name),
                      encoding="utf-8")


def lock_lines(project: Path) -> int:
    lock = project / "dvc.lock"
    return len(lock.read_text(encoding="utf-8").splitlines()) if lock.exists() else 0


def commands_run(times: Path) -> list[float]:
    """CPU s of each `corpus` command the wrapper timed since `times` was emptied."""
    return [float(line.split("\t")[1]) for line in times.read_text().splitlines()]


def add_drop(project: Path, drop: Path, env: dict[str, str]) -> dict[str, float]:
    return measured([str(VENV_BIN / "corpus"), "add-drop", str(drop), "--name", drop.name], project, env=env)


def at_size(project: Path, k: int, drops: Drops, env: dict[str, str], times: Path) -> dict[str, float]:
    """Figures of one new drop at K drops (see the module's docstring)."""
    dvc = str(VENV_BIN / "dvc")
    catch_up = measured([dvc, "repro"], project, env=env)
    row = {"K": k, "catch-up wall": catch_up["wall"], "catch-up cpu": catch_up["cpu"],
           "lock before": lock_lines(project)}
    added = add_drop(project, drops[k + 1], env)
    times.write_text("")
    repro = measured([dvc, "repro"], project, env=env)
    commands = commands_run(times)
    row.update({"add wall": added["wall"], "add cpu": added["cpu"], "repro wall": repro["wall"],
                "repro cpu": repro["cpu"], "commands cpu": sum(commands), "dvc cpu": repro["cpu"] - sum(commands),
                "stages": len(commands), "lock after": lock_lines(project)})
    times.write_text("")
    noop = measured([dvc, "repro"], project, env=env)
    if commands_run(times):
        raise SystemExit(f"the second `dvc repro` at K={k} ran stages again in {project}: not a no-op")
    status = measured([dvc, "status"], project, env=env)
    row.update({"noop wall": noop["wall"], "noop cpu": noop["cpu"], "status wall": status["wall"],
                "status cpu": status["cpu"]})
    return row


COLUMNS = (  # header, key, format
    ("K", "K", "{:>5}"), ("lock lines", "lock before", "{:>11,}"), ("->", "lock after", "{:>7,}"),
    ("add-drop CPU", "add cpu", "{:>13.1f}"), ("wall", "add wall", "{:>6.1f}"),
    ("repro CPU", "repro cpu", "{:>10.1f}"), ("wall", "repro wall", "{:>6.1f}"), ("stages", "stages", "{:>7}"),
    ("commands CPU", "commands cpu", "{:>13.1f}"), ("DVC own CPU", "dvc cpu", "{:>12.1f}"),
    ("no-op repro CPU", "noop cpu", "{:>16.2f}"), ("wall", "noop wall", "{:>6.1f}"),
    ("status CPU", "status cpu", "{:>11.2f}"), ("wall", "status wall", "{:>6.1f}"),
    ("catch-up wall", "catch-up wall", "{:>14.0f}"),
)


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares intercept and slope of y over x."""
    mean_x, mean_y = (sum(p[i] for p in points) / len(points) for i in (0, 1))
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0
    return mean_y - slope * mean_x, slope


GROWTH = (("dvc cpu", 10, 3), ("commands cpu", 10, 3), ("noop cpu", 13, 3), ("status cpu", 8, 3), ("lock after", 12, 0))


def report(rows: list[dict[str, float]], per_drop: int) -> None:
    print(f"\nOne new drop of {per_drop} articles at K drops (CPU and wall s; DVC own CPU = the repro's CPU minus "
          f"its `corpus` commands'); load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("".join(f"{header:>{len(fmt.format(rows[0][key]))}}" for header, key, fmt in COLUMNS))
    for row in rows:
        print("".join(fmt.format(row[key]) for _, key, fmt in COLUMNS))
    if len(rows) < 2:
        return
    print("\nGrowth between sizes, per drop more (CPU s)")
    print(f"{'K':>11}{'DVC own':>10}{'commands':>10}{'no-op repro':>13}{'status':>8}{'lock lines':>12}")
    for before, after in zip(rows, rows[1:]):
        span = after["K"] - before["K"]
        print(f"{before['K']:>5} ->{after['K']:>4}" + "".join(
            f"{(after[key] - before[key]) / span:>{width}.{places}f}" for key, width, places in GROWTH))
    print("\nLinear fit over the sizes (CPU s = a + b K), projected")
    print(f"{'figure':<14}{'a':>8}{'b':>9}{'at 200':>9}{'at 1,000':>10}")
    for label, key in (("DVC own", "dvc cpu"), ("commands", "commands cpu"), ("no-op repro", "noop cpu"),
                       ("dvc status", "status cpu"), ("add-drop", "add cpu")):
        a, b = fit([(row["K"], row[key]) for row in rows])
        print(f"{label:<14}{a:>8.2f}{b:>9.4f}{a + 200 * b:>9.1f}{a + 1000 * b:>10.1f}")


def compare(rows: dict[str, list[dict[str, float]]]) -> None:
    """This checkout's figures over the baseline's at each K measured on both."""
    baseline = {row["K"]: row for row in rows["baseline"]}
    print("\nThis checkout against the baseline, one new drop at K drops (CPU s; lock lines the drop adds)")
    print(f"{'K':>5}{'DVC own base':>14}{'ours':>8}{'ratio':>7}{'repro CPU base':>16}{'ours':>8}{'ratio':>7}"
          f"{'stages base':>13}{'ours':>6}{'lock +lines base':>18}{'ours':>6}{'lock lines base':>17}{'ours':>8}")
    for ours in rows["ours"]:
        if (base := baseline.get(ours["K"])) is None:
            continue
        added = {side: row["lock after"] - row["lock before"] for side, row in (("base", base), ("ours", ours))}
        print(f"{ours['K']:>5}{base['dvc cpu']:>14.1f}{ours['dvc cpu']:>8.1f}{ours['dvc cpu'] / base['dvc cpu']:>7.2f}"
              f"{base['repro cpu']:>16.1f}{ours['repro cpu']:>8.1f}{ours['repro cpu'] / base['repro cpu']:>7.2f}"
              f"{base['stages']:>13}{ours['stages']:>6}{added['base']:>18,}{added['ours']:>6,}"
              f"{base['lock after']:>17,}{ours['lock after']:>8,}")


def profile(project: Path, drop: Path, env: dict[str, str], out: Path, top: int = 25) -> None:
    """The new drop's `dvc repro` under py-spy (DVC's process only; `--gil`: the samples of
    a thread running Python, not DVC waiting for a command or tqdm's idle monitor); the
    functions in the most samples (a function counts once a stack) and the top-level
    folder or module of the frame on top of the stacks ("yaml" is ruamel.yaml's)."""
    py_spy = shutil.which("py-spy")
    if not py_spy:
        raise SystemExit("--profile: py-spy is not on PATH")
    add_drop(project, drop, env)
    sampling = ["record", "-r", "200", "--gil", "-f", "raw", "-o", str(out)]
    measured([py_spy, *sampling, "--", str(VENV_BIN / "dvc"), "repro"], project, env=env)
    inclusive, on_top, total = Counter(), Counter(), 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [frame.rsplit(":", 1)[0] + ")" if ":" in frame else frame for frame in stack.split(";")]
        total += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
        on_top[frames[-1].rpartition("(")[2].rstrip(")").split("/")[0]] += int(count)
    print(f"\npy-spy of the drop's `dvc repro` at {drop_count(project) - 1} drops: {total:,} samples ({out})")
    for frame, count in inclusive.most_common(top):
        print(f"{count / total:>7.1%}  {frame}")
    print("on top of the stack, by top-level folder or module:")
    for place, count in on_top.most_common(12):
        print(f"{count / total:>7.1%}  {place}")


def sizes(text: str) -> list[int]:
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of drop counts") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("drop counts are whole numbers from 1")
    return values


def main() -> None:
    summary = "\n\n".join(__doc__.split("\n\n")[:2]) + "\n\n(more: the module's docstring)"
    parser = argparse.ArgumentParser(description=summary,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes, default=[5, 20, 50, 100], help="drop counts K, e.g. 5,20,50,100")
    parser.add_argument("--articles-per-drop", type=int, default=40, help="articles in each small drop (default 40)")
    parser.add_argument("--seed", type=int, default=1, help="of the articles' shuffle")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/many-drops"))
    parser.add_argument("--profile", type=Path, metavar="FILE", help="py-spy raw output of a last drop's `dvc repro`")
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT", help="also measure the code of this checkout")
    args = parser.parse_args()
    if args.articles_per_drop < 1:
        parser.error("--articles-per-drop must be at least 1")
    work = args.workdir.resolve() / f"{args.articles_per_drop}-seed{args.seed}"
    drops = Drops(work / "drops", args.articles_per_drop, args.seed)
    projects = {"ours": project_copy(REPO, work / "project", drops[1])}
    if args.baseline:
        projects["baseline"] = project_copy(args.baseline.resolve(), work / "baseline-project", drops[1])
    print(f"projects {projects}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    # Each project's rows, so that a run going on prints the earlier sizes too.
    saved = {side: work / ("results.json" if side == "ours" else f"results-{side}.json") for side in projects}
    rows = {side: json.loads(path.read_text()) if path.exists() else [] for side, path in saved.items()}
    with tempfile.TemporaryDirectory() as wrapper_dir:
        wrapper, times = Path(wrapper_dir) / "corpus", Path(wrapper_dir) / "times.tsv"
        wrapper.write_text(WRAPPER)
        wrapper.chmod(0o755)
        times.write_text("")
        env = {"DVC_NO_ANALYTICS": "1", "DROP_STAGES_TIMES": str(times),
               "PATH": f"{wrapper_dir}{os.pathsep}{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
        for k in args.sizes:
            for side, project in projects.items():
                if (have := drop_count(project)) > k:
                    print(f"K={k}: the {side} project has {have} drops already, skipped")
                    continue
                for number in range(have + 1, k + 1):
                    add_directly(project, drops[number])
                rows[side].append(at_size(project, k, drops, env, times))
                saved[side].write_text(json.dumps(rows[side], indent=1))
                print(f"  {side}: " + ", ".join(f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value}"
                                                for key, value in rows[side][-1].items()), flush=True)
        for side, side_rows in rows.items():
            if side_rows:
                print(f"\n{side} ({projects[side]})")
                report(side_rows, args.articles_per_drop)
        if args.baseline:
            compare(rows)
        if args.profile:
            project = projects["ours"]
            profile(project, drops[drop_count(project) + 1], env, args.profile.resolve())


if __name__ == "__main__":
    main()
