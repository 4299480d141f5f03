"""What a new drop costs: a full `dvc repro` of a generated corpus, then a 1 % drop added
with `corpus add-drop` and `dvc repro` again, stage by stage, side by side.

    .venv/bin/python benchmarks/incremental.py --articles 2000 --workdir /tmp/incremental
    .venv/bin/python benchmarks/incremental.py --articles 100000 --articles 300000 --articles 1000000

The corpus (``generate``, seeded): real SaudiNewsNet sentences (the 18 daily zips) grouped
by outlet, recombined into articles of 150-600 words of one outlet, each with a title (its
first sentence) and a date; one in 20 is a reprint of an earlier article under another
outlet with a sentence dropped (a near duplicate for dedup). The corpus is written as JSONL
drops: ``base`` (99 % of the articles) and ``new`` (1 %).

Each stage group of dvc.yaml (``ingest`` = every ``ingest@<drop>``...) runs as
``dvc repro --single-item <group>``, in pipeline order, in a fresh copy of the project; for
each the script prints wall time, CPU time (user + sys of DVC and the stage command) and
peak RSS (the largest of the two processes), for the full run and for the run after the
new drop, and the ratio incremental / full. DVC's own start-up (about 1-2 s a call) is in
both runs: at small sizes it dominates the incremental figures.
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
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.shared_corpus import SAUDI_ZIPS  # noqa: E402
from pipeline.plumbing.params import with_list_item  # noqa: E402

# dvc.yaml's stage groups in pipeline order; a foreach group runs every drop's stage.
STAGE_GROUPS = ("ingest", "line_counts", "repeated_lines", "clean", "totals", "dedup", "validate_rows", "validate",
                "split", "publish")
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


def generate(articles: int, seed: int, folder: Path, per_file: int = 5000) -> dict[str, int]:
    """The corpus as two JSONL drops under `folder`: ``base`` and ``new``; their sizes."""
    rng = random.Random(seed)
    sentences = outlet_sentences()
    outlets = list(sentences)
    sizes = {"new": max(1, round(articles * NEW_DROP_SHARE))}
    sizes["base"] = articles - sizes["new"]
    made: list[dict[str, str]] = []
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
            if len(rows) == per_file:
                _write_jsonl(rows, out / f"part-{number // per_file:05d}.jsonl")
                rows = []
        if rows:
            _write_jsonl(rows, out / f"part-{sizes[drop] // per_file:05d}.jsonl")
    return sizes


def _write_jsonl(rows: list[dict[str, str]], path: Path) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def project_copy(root: Path, base: Path) -> Path:
    """The repository's pipeline in a fresh git + DVC repo at `root`, with drop `base` added."""
    ignore = shutil.ignore_patterns(".venv", ".git", "build", "__pycache__", ".pytest_cache", "*.egg-info", "tmp", "cache")
    shutil.copytree(REPO, root, ignore=ignore)
    shutil.copytree(base, root / "data" / "raw" / "base")
    params = root / "params.yaml"
    params.write_text(with_list_item(params.read_text(encoding="utf-8"), "split", "drop_order", "base"), encoding="utf-8")
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-qm", "bench"]):
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    return root


def measured(command: list[str], cwd: Path) -> dict[str, float]:
    """Wall s, CPU s and peak RSS (GiB) of a command and the processes it waited for."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read()}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 2**20}


def run_stages(project: Path) -> dict[str, dict[str, float]]:
    return {group: measured([str(Path(sys.executable).parent / "dvc"), "repro", "--single-item", group], project)
            for group in STAGE_GROUPS}


def report(articles: int, full: dict[str, dict[str, float]], added: dict[str, float],
           incremental: dict[str, dict[str, float]]) -> None:
    print(f"\n{articles:,} articles, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'stage':<16}{'full wall s':>12}{'CPU s':>9}{'RSS GiB':>9}{'new drop wall s':>17}{'CPU s':>9}{'RSS GiB':>9}"
          f"{'CPU incr/full':>15}")
    rows = [*full.items(), ("all stages", {k: sum(s[k] for s in full.values()) if k != "rss" else max(
        s[k] for s in full.values()) for k in ("wall", "cpu", "rss")})]
    totals = {k: sum(s[k] for s in incremental.values()) if k != "rss" else max(s[k] for s in incremental.values())
              for k in ("wall", "cpu", "rss")}
    for group, figures in rows:
        incr = incremental.get(group, totals)
        print(f"{group:<16}{figures['wall']:>12.1f}{figures['cpu']:>9.1f}{figures['rss']:>9.2f}"
              f"{incr['wall']:>17.1f}{incr['cpu']:>9.1f}{incr['rss']:>9.2f}{incr['cpu'] / max(figures['cpu'], 1e-9):>15.2f}")
    print(f"{'add-drop':<16}{'':>30}{added['wall']:>17.1f}{added['cpu']:>9.1f}{added['rss']:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, action="append", help="corpus size (repeatable; default 2000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/incremental-bench"))
    args = parser.parse_args()
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    for articles in args.articles or [2000]:
        work = args.workdir / str(articles)
        shutil.rmtree(work, ignore_errors=True)
        sizes = generate(articles, args.seed, work / "corpus")
        project = project_copy(work / "project", work / "corpus" / "base")
        full = run_stages(project)
        added = measured([str(Path(sys.executable).parent / "corpus"), "add-drop", str(work / "corpus" / "new"),
                          "--name", "new"], project)
        incremental = run_stages(project)
        print(f"drops: base {sizes['base']:,} articles, new {sizes['new']:,}")
        report(articles, full, added, incremental)


if __name__ == "__main__":
    main()
