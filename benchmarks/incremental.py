"""What a new drop costs: a full `dvc repro` of a generated corpus, then a 1 % drop added
with `corpus add-drop` and `dvc repro` again, stage by stage, side by side.

    .venv/bin/python benchmarks/incremental.py --articles 2000 --workdir /tmp/incremental
    .venv/bin/python benchmarks/incremental.py --articles 100000 --articles 300000 --articles 1000000
    # today's code beside an older revision (a `git worktree` of REV), full runs, one after the other
    .venv/bin/python benchmarks/incremental.py --articles 300000 --baseline main~20

The corpus (``generate``, seeded): real SaudiNewsNet sentences (the 18 daily zips) grouped
by outlet, recombined into articles of 150-600 words of one outlet, each with a title (its
first sentence) and a date; one in 20 is a reprint of an earlier article under another
outlet with a sentence dropped (a near duplicate for dedup). The corpus is written as JSONL
drops: ``base`` (99 % of the articles) and ``new`` (1 %); its mean length is printed.

Each stage of dvc.yaml (a stage group: a `foreach` stage's every item, for the older
revisions that had them) runs as ``dvc repro --single-item <group>``, in dvc.yaml's order, in a fresh copy of the project
(its own code: the copy is first on PYTHONPATH); for each the script prints wall time, CPU
time (user + sys of DVC and everything it ran) and peak RSS of the whole process tree
(the sum over its processes, sampled every 0.1 s), for the full run
and for the run after the new drop, and the ratio incremental / full. DVC's own start-up
(about 1-2 s a call) is in both runs: at small sizes it dominates the incremental figures.

Beside that breakdown, what a user runs: one ``dvc repro`` of the whole pipeline in a second
fresh copy (``project-whole``), then ``corpus add-drop`` and one ``dvc repro`` again; the
script prints the ratio the user sees, (add-drop + dvc repro) / full dvc repro, in CPU and
wall time (``--no-breakdown`` measures only this).

Resumable: everything of a size lives under ``WORKDIR/<articles>/``: the corpus is
generated once (kept while the seed is the same), and each measured step is saved to
``results.json`` as it finishes, so a killed run goes on from the next stage group and a
finished one only prints its figures (``--fresh`` measures again on the same corpus).
``--baseline REV`` also runs REV's code (checked out with ``git worktree`` under WORKDIR) the
same way on the same corpus (full runs only with ``--full-only``), in copies of their own
(``baseline``, ``baseline-whole``), and prints both side by side, with the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.shared_corpus import SAUDI_ZIPS  # noqa: E402
from pipeline.plumbing.params import with_list_item  # noqa: E402

NEW_DROP_SHARE = 0.01
REPRINT_SHARE = 0.05
REPRINT_SOURCES = 10_000
_SENTENCE_END = re.compile(r"(?<=[.!؟?])\s+|\n+")


def outlet_sentences() -> dict[str, list[str]]:
    """Every sentence of 8 words or more of the SaudiNewsNet zips, by outlet."""
    by_outlet: dict[str, list[str]] = {}
    for archive in sorted(SAUDI_ZIPS.glob("*.zip")):
        with zipfile.ZipFile(archive) as bundle:
            for name in bundle.namelist():
                for record in json.loads(bundle.read(name)):
                    sentences = (s.strip() for s in _SENTENCE_END.split(record.get("content") or ""))
                    by_outlet.setdefault(record["source"], []).extend(s for s in sentences if len(s.split()) >= 8)
    return {outlet: sentences for outlet, sentences in sorted(by_outlet.items()) if len(sentences) > 50}


def generate(articles: int, seed: int, folder: Path, per_file: int = 5000) -> dict[str, float]:
    """The corpus as two JSONL drops under `folder`: ``base`` and ``new``; their sizes and the
    mean article's words and characters (of its text)."""
    rng = random.Random(seed)
    sentences = outlet_sentences()
    outlets = list(sentences)
    sizes = {"new": max(1, round(articles * NEW_DROP_SHARE))}
    sizes["base"] = articles - sizes["new"]
    made: list[dict[str, str]] = []
    words = chars = 0
    for drop in ("base", "new"):
        out = folder / drop
        out.mkdir(parents=True)
        rows: list[dict[str, str]] = []
        for number in range(sizes[drop]):
            if made and rng.random() < REPRINT_SHARE:
                original = rng.choice(made)
                lines = original["content"].split("\n")
                lines.pop(rng.randrange(len(lines)))
                outlet, title, body = rng.choice(outlets), original["title"], lines
            else:
                outlet = rng.choice(outlets)
                target, body = rng.randint(150, 600), []
                while sum(len(line.split()) for line in body) < target:
                    body.append(rng.choice(sentences[outlet]))
                title = " ".join(body[0].split()[:12])
            row = {"source": outlet, "url": f"https://example.invalid/{drop}/{number}", "title": title,
                   "date_extracted": f"2015-07-{rng.randint(1, 31):02d}", "content": "\n".join(body)}
            # Reprints copy one of a bounded sample of earlier articles (memory stays flat).
            if len(made) < REPRINT_SOURCES:
                made.append(row)
            else:
                made[rng.randrange(REPRINT_SOURCES)] = row
            rows.append(row)
            words += len(row["content"].split())
            chars += len(row["content"])
            if len(rows) == per_file:
                _write_jsonl(rows, out / f"part-{number // per_file:05d}.jsonl")
                rows = []
        if rows:
            _write_jsonl(rows, out / f"part-{sizes[drop] // per_file:05d}.jsonl")
    return {**sizes, "seed": seed, "mean_words": words / articles, "mean_chars": chars / articles}


def _write_jsonl(rows: list[dict[str, str]], path: Path) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def corpus(work: Path, articles: int, seed: int) -> dict[str, float]:
    """The generated corpus of `articles` under `work`, made once per seed."""
    done = work / "corpus.json"
    if done.exists() and (made := json.loads(done.read_text()))["seed"] == seed:
        return made
    shutil.rmtree(work / "corpus", ignore_errors=True)
    made = generate(articles, seed, work / "corpus")
    done.write_text(json.dumps(made))
    return made


def project_copy(code: Path, root: Path, base: Path) -> Path:
    """The pipeline of checkout `code` in a fresh git + DVC repo at `root`, with drop `base` added."""
    if root.exists():  # made by an earlier, interrupted run: DVC skips what it finished
        return root
    building = root.with_name(root.name + ".partial")
    shutil.rmtree(building, ignore_errors=True)
    anywhere = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache", "*.egg-info")

    def ignore(folder: str, names: list[str]) -> set[str]:
        """The checkout's outputs and caches; not a package's own build/ (web_assets/node_modules/vega/build)."""
        top = {"build", "tmp", "cache"} if Path(folder) == code else set()
        return set(anywhere(folder, names)) | (top & set(names))

    shutil.copytree(code, building, ignore=ignore)
    shutil.copytree(base, building / "data" / "raw" / "base")
    params = building / "params.yaml"
    params.write_text(with_list_item(params.read_text(encoding="utf-8"), "split", "drop_order", "base"), encoding="utf-8")
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-qm", "bench"]):
        subprocess.run(command, cwd=building, check=True, capture_output=True)
    building.rename(root)
    return root


def stage_groups(project: Path) -> list[str]:
    """dvc.yaml's stages in the file's (pipeline) order; a foreach group runs every drop's stage."""
    return list(yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"])


def tree_rss(process: psutil.Process) -> int:
    """Bytes resident in a process and all its descendants now."""
    total = 0
    for member in (process, *process.children(recursive=True)):
        try:
            total += member.memory_info().rss
        except psutil.Error:  # ended between listing and reading
            pass
    return total


def measured(command: list[str], cwd: Path, code: Path | None = None, env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall s, CPU s and peak RSS (GiB) of the process tree of a command, with the project's
    own code (or the checkout `code`), in this environment updated with `env`."""
    environment = {**os.environ, "PYTHONPATH": str(code or cwd), **(env or {})}
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    peak, finished = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        watched = psutil.Process(process.pid)
        while not finished.wait(0.1):
            try:
                peak = max(peak, tree_rss(watched))
            except psutil.Error:
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    finished.set()
    sampler.join()
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed in {cwd}:\n{process.stderr.read()}")
    # Not ru_maxrss: a child's starts from its parent's peak (kept through fork and exec), here
    # this script's, which held the generated corpus.
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": peak / 2**30}


class Results:
    """Measured steps of one size, saved to a JSON file as each finishes."""

    def __init__(self, path: Path):
        self.path = path
        self.steps = json.loads(path.read_text()) if path.exists() else {}

    def run(self, run: str, step: str, command: list[str], cwd: Path) -> None:
        if step not in self.steps.setdefault(run, {}):
            print(f"  {run}: {step} ...", flush=True)
            self.steps[run][step] = measured(command, cwd)
            self.path.write_text(json.dumps(self.steps, indent=1))


def run_stages(results: Results, run: str, project: Path) -> None:
    for group in stage_groups(project):
        results.run(run, group, ["dvc", "repro", "--single-item", group], project)


def add_drop_command(work: Path) -> list[str]:
    return ["corpus", "add-drop", str(work / "corpus" / "new"), "--name", "new"]


def run_code(results: Results, prefix: str, code: Path, work: Path, args: argparse.Namespace) -> None:
    """The runs of one checkout's code: per stage group and/or one `dvc repro`, full and after the drop.
    Runs are named `<prefix>full`, `<prefix>incremental`, `<prefix>whole`, `<prefix>whole-incremental`."""
    base = work / "corpus" / "base"
    name = prefix.rstrip("-") or "project"
    if not args.no_breakdown:
        project = project_copy(code, work / name, base)
        run_stages(results, f"{prefix}full", project)
        if not args.full_only:
            results.run(f"{prefix}incremental", "add-drop", add_drop_command(work), project)
            run_stages(results, f"{prefix}incremental", project)
    whole = project_copy(code, work / f"{name}-whole", base)
    results.run(f"{prefix}whole", "dvc repro", ["dvc", "repro"], whole)
    if not args.full_only:
        results.run(f"{prefix}whole-incremental", "add-drop", add_drop_command(work), whole)
        results.run(f"{prefix}whole-incremental", "dvc repro", ["dvc", "repro"], whole)


def user_ratio(label: str, full: dict[str, float], after: dict[str, dict[str, float]]) -> None:
    """One row: a full `dvc repro`, then add-drop and `dvc repro` after it, and their ratio."""
    added, repro = after.get("add-drop"), after.get("dvc repro")
    cells = f"{label:<16}{full['wall']:>12.1f}{full['cpu']:>9.1f}"
    if added and repro:
        wall, cpu = added["wall"] + repro["wall"], added["cpu"] + repro["cpu"]
        cells += (f"{added['wall']:>16.1f}{added['cpu']:>9.1f}{repro['wall']:>13.1f}{repro['cpu']:>9.1f}"
                  f"{cpu / full['cpu']:>29.3f}{wall / full['wall']:>7.3f}")
    print(cells)


def total(stages: dict[str, dict[str, float]]) -> dict[str, float]:
    return {"wall": sum(s["wall"] for s in stages.values()), "cpu": sum(s["cpu"] for s in stages.values()),
            "rss": max(s["rss"] for s in stages.values())}


def side_by_side(title: str, left: str, right: str, first: dict[str, dict[str, float]],
                 second: dict[str, dict[str, float]], ratio: str) -> None:
    """Two runs' stage rows (wall s, CPU s, peak RSS GiB) and the ratio of their CPU and wall time."""
    print(f"\n{title}")
    print(f"{'stage':<16}{left + ' wall s':>18}{'CPU s':>9}{'RSS GiB':>9}{right + ' wall s':>20}{'CPU s':>9}"
          f"{'RSS GiB':>9}{ratio + ' CPU':>16}{'wall':>7}")
    rows = {**{s: first[s] for s in first}, **{s: second[s] for s in second if s not in first}}
    for stage in [*rows, "all stages"]:
        a = total(first) if stage == "all stages" else first.get(stage)
        b = (total(second) if second else None) if stage == "all stages" else second.get(stage)
        cells = [f"{stage:<16}"]
        for figures, width in ((a, 18), (b, 20)):
            cells.append(f"{figures['wall']:>{width}.1f}{figures['cpu']:>9.1f}{figures['rss']:>9.2f}" if figures
                         else f"{'-':>{width}}{'-':>9}{'-':>9}")
        if a and b:
            cells.append(f"{b['cpu'] / max(a['cpu'], 1e-9):>16.3f}{b['wall'] / max(a['wall'], 1e-9):>7.3f}")
        print("".join(cells))


def bench(articles: int, args: argparse.Namespace, baseline: Path | None) -> None:
    work = args.workdir / str(articles)
    if args.fresh:
        shutil.rmtree(work / "project", ignore_errors=True)
        for name in ("baseline", "project-whole", "baseline-whole"):
            shutil.rmtree(work / name, ignore_errors=True)
        (work / "results.json").unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    made = corpus(work, articles, args.seed)
    if (work / "results.json").exists() and json.loads((work / "results.json").read_text()).get("seed") != args.seed:
        raise SystemExit(f"{work / 'results.json'} is of another seed: run with --fresh")
    results = Results(work / "results.json")
    results.steps["seed"] = args.seed
    # a results.json of before the `whole` runs named the baseline's full run `baseline`
    if "baseline" in results.steps:
        results.steps.setdefault("baseline-full", results.steps.pop("baseline"))
    print(f"{articles:,} articles (drops: base {made['base']:,}, new {made['new']:,}; mean article "
          f"{made['mean_words']:.0f} words, {made['mean_chars']:,.0f} characters), load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    run_code(results, "", REPO, work, args)
    if baseline:
        run_code(results, "baseline-", baseline, work, args)
    steps = results.steps
    print(f"\n{articles:,} articles, mean {made['mean_words']:.0f} words ({made['mean_chars']:,.0f} characters); "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for prefix, code in (("baseline-", args.baseline), ("", "this checkout")):
        if f"{prefix}full" in steps and f"{prefix}incremental" in steps:
            incremental = {k: v for k, v in steps[f"{prefix}incremental"].items() if k != "add-drop"}
            side_by_side(f"{code}: full run and the run after the 1 % drop", "full", "new drop",
                         steps[f"{prefix}full"], incremental, "incr/full")
            added = steps[f"{prefix}incremental"].get("add-drop")
            if added:
                print(f"{'add-drop':<16}{'':>36}{added['wall']:>20.1f}{added['cpu']:>9.1f}{added['rss']:>9.2f}"
                      f"{added['cpu'] / total(steps[f'{prefix}full'])['cpu']:>16.3f}"
                      f"{added['wall'] / total(steps[f'{prefix}full'])['wall']:>7.3f}")
        elif f"{prefix}full" in steps:
            side_by_side(f"{code}: full run", "full", "", steps[f"{prefix}full"], {}, "")
    if "baseline-full" in steps and "full" in steps:
        side_by_side(f"Full run: {args.baseline} beside this checkout", "base", "ours", steps["baseline-full"],
                     steps["full"], "ours/base")
    if "whole" in steps:
        print("\nWhat a user runs: one `dvc repro`, then `corpus add-drop` + one `dvc repro`")
        print(f"{'code':<16}{'full wall s':>12}{'CPU s':>9}{'add-drop wall s':>16}{'CPU s':>9}{'repro wall s':>13}"
              f"{'CPU s':>9}{'(add-drop + repro)/full CPU':>29}{'wall':>7}")
        for prefix, code in (("baseline-", args.baseline), ("", "this checkout")):
            if f"{prefix}whole" in steps:
                user_ratio(str(code)[:15], steps[f"{prefix}whole"]["dvc repro"], steps.get(f"{prefix}whole-incremental", {}))


def baseline_checkout(revision: str, workdir: Path) -> Path:
    """A `git worktree` of `revision` under `workdir` (made once per revision)."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.strip()
    folder = workdir / f"code-{commit[:12]}"
    if not folder.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(folder), commit], cwd=REPO, check=True,
                       capture_output=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, action="append", help="corpus size (repeatable; default 2000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/incremental-bench"))
    parser.add_argument("--baseline", metavar="REV", help="also run the full pipeline of this git revision's code")
    parser.add_argument("--full-only", action="store_true", help="the full run(s) only, no new drop")
    parser.add_argument("--fresh", action="store_true", help="measure again (the generated corpus is kept)")
    parser.add_argument("--no-breakdown", action="store_true",
                        help="only the whole-pipeline `dvc repro` runs, not stage group by stage group")
    args = parser.parse_args()
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    args.workdir = args.workdir.resolve()
    baseline = baseline_checkout(args.baseline, args.workdir) if args.baseline else None
    for articles in args.articles or [2000]:
        bench(articles, args, baseline)


if __name__ == "__main__":
    main()
