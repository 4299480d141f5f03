"""What a new drop costs in dedup, this code beside another revision's, on a project's drops.

    .venv/bin/python benchmarks/dedup_drop.py --clean /tmp/perf-bench/300000/project/build/clean \
        --workdir /tmp/dedup-drop --rounds 2

The drops: the clean stage's drop folders of a project (e.g. benchmarks/incremental.py's, whose
last drop, ``new``, is 1 % of its corpus), in the order of the project's params.yaml (two
folders above ``--clean``) when there is one, then by name; this checkout's params otherwise.
With each code (this checkout's, and ``git archive`` of ``--baseline`` under WORKDIR, or the
folder ``--baseline-code``, first on PYTHONPATH), the earlier drops are deduplicated once into
an output folder of its own (WORKDIR/out-this, out-baseline: kept between runs, a drop's
folder is reused while its fingerprint holds, so one copied there from a run of the same code
and params saves that run); then, ``--rounds`` times, alternating between the codes:

1. ``corpus dedup`` of all the drops into that folder: only the last drop is computed;
2. add-drop's lookup: ``dedup.match_against_index`` of the last drop's articles against the
   index of the earlier drops (what ``corpus add-drop`` asks; drops.py calls it).

Printed: wall time, CPU time (user + sys) and peak RSS (the process tree) of each run, the
ratios this / baseline, and whether both codes decided the same: every file of the last
drop's folder and of the corpus-wide outputs but the index and the stored sets (the index's
format differs between codes; report.json as ``dedup_memory.comparable_report``), and the
lookup's matches.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.dedup_memory import comparable_report  # noqa: E402
from benchmarks.incremental import measured  # noqa: E402
from pipeline.plumbing.io import partition, partition_drops, read_json, write_json  # noqa: E402
from pipeline.plumbing.params import drop_order, load_params, with_list_item  # noqa: E402
from pipeline.stages import dedup  # noqa: E402

LOOKUP = """
import sys
import polars as pl
from pipeline.plumbing.params import load_params
from pipeline.stages import dedup
matches = dedup.match_against_index(pl.scan_parquet(sys.argv[1]), sys.argv[2], load_params(sys.argv[3]))
matches.write_parquet(sys.argv[4])
"""


def revision_code(revision: str, folder: Path) -> Path:
    """`folder`, emptied, with the files of this repository's git `revision`."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


# What older code also wrote at the top of its output: every drop's duplicates and review
# pairs again, in one table each (the drops' tables, compared in their folders).
CORPUS_COPIES = (dedup.DUPLICATES_FILE, dedup.REVIEW_FILE)


def decisions(folder: Path, drop: str) -> dict[str, bytes]:
    """The decision outputs of the last drop and of the corpus (not the index: see INDEX_FILES)."""
    files = {}
    corpus_files = [path for path in folder.iterdir() if path.name not in CORPUS_COPIES]
    for path in sorted(p for p in [*partition(folder, drop).iterdir(), *corpus_files] if p.is_file()):
        if path.name in dedup.INDEX_FILES:
            continue
        data = path.read_bytes()
        if path.name == "report.json":
            data = json.dumps(comparable_report(json.loads(data)), sort_keys=True).encode()
        files[path.relative_to(folder).as_posix()] = data
    for path in sorted((folder / "plots").glob("*")):
        files[f"plots/{path.name}"] = path.read_bytes()
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clean", type=Path, required=True, help="the clean stage's output folder (drop=NAME/...)")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--baseline", default="main", help="git revision to compare with")
    parser.add_argument("--baseline-code", type=Path, help="a folder with the code to compare with (instead of --baseline)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    params_file = work / "params.yaml"
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    project_params = args.clean.resolve().parents[1] / "params.yaml"
    listed = drop_order(load_params(project_params)) if project_params.is_file() else []
    for drop in partition_drops(args.clean.resolve(), listed):
        text = with_list_item(text, "split", "drop_order", drop)
    params_file.write_text(text, encoding="utf-8")
    drops = partition_drops(args.clean.resolve(), drop_order(load_params(params_file)))
    *earlier, last = drops
    before = work / "clean-before"  # the earlier drops only
    shutil.rmtree(before, ignore_errors=True)
    before.mkdir()
    for drop in earlier:
        partition(before, drop).symlink_to(partition(args.clean.resolve(), drop), target_is_directory=True)

    baseline_code = args.baseline_code or revision_code(args.baseline, work / "baseline-code")
    codes = {"this": REPO, "baseline": baseline_code}
    corpus = [str(Path(sys.executable).parent / "corpus"), "--params", str(params_file), "dedup"]

    def dedup_run(name: str, input_dir: Path) -> dict[str, float]:
        output = work / f"out-{name}"
        return measured([*corpus, "--input", str(input_dir), "--output", str(output),
                         "--metrics", str(work / f"metrics-{name}.json")], work, codes[name])

    for name in codes:  # the earlier drops (once; a folder whose fingerprint holds is reused)
        print(f"  {name}: the earlier drops {earlier} ...", flush=True)
        dedup_run(name, before)
        index = work / f"index-{name}"  # the earlier drops' index, as add-drop finds it
        meta = read_json(work / f"out-{name}" / dedup.INDEX_DIR / dedup.INDEX_META)
        write_json(index / dedup.INDEX_META, meta | {"articles": str((work / f"out-{name}").resolve())})

    figures: dict[str, dict[str, list[dict[str, float]]]] = {"dedup": {n: [] for n in codes}, "lookup": {n: [] for n in codes}}
    outputs, matches = {}, {}
    new_articles = partition(args.clean.resolve(), last) / dedup.KEPT_FILE
    for _ in range(args.rounds):
        for name in codes:
            shutil.rmtree(partition(work / f"out-{name}", last), ignore_errors=True)
            print(f"  {name}: dedup of drop {last} ...", flush=True)
            figures["dedup"][name].append(dedup_run(name, args.clean.resolve()))
            outputs[name] = decisions(work / f"out-{name}", last)
            print(f"  {name}: add-drop's lookup of drop {last} ...", flush=True)
            found = work / f"matches-{name}.parquet"
            figures["lookup"][name].append(measured(
                [sys.executable, "-c", LOOKUP, str(new_articles), str(work / f"index-{name}"), str(params_file), str(found)],
                work, codes[name]))
            matches[name] = found.read_bytes()

    print(f"\nA new drop ({last}) after {earlier}, this code vs {args.baseline_code or args.baseline}, runs alternating "
          f"(drops of {args.clean})")
    print(f"{'step':<8} {'code':<9} {'wall s':>8} {'CPU s':>8} {'peak RSS GiB':>13}")
    for step, runs in figures.items():
        for name in codes:
            for run in runs[name]:
                print(f"{step:<8} {name:<9} {run['wall']:>8.1f} {run['cpu']:>8.1f} {run['rss']:>13.3f}")
        ratio = {key: sum(r[key] for r in runs["this"]) / sum(r[key] for r in runs["baseline"])
                 for key in ("wall", "cpu", "rss")}
        print(f"{step:<8} this / baseline: " + ", ".join(f"{key} {value:.3f}" for key, value in ratio.items()))
    print(f"same decisions (drop {last}'s folder and the corpus-wide files but the index): "
          f"{outputs['this'] == outputs['baseline']}; same lookup matches: {matches['this'] == matches['baseline']}")
    sizes = {path.name: path.stat().st_size for path in partition(work / "out-this", last).iterdir()}
    print(json.dumps({"figures": figures, "files_of_the_new_drop": sizes}))


if __name__ == "__main__":
    main()
