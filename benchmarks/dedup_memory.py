"""Dedup's CPU time and peak RSS on one drop at two sizes, this code beside another revision's.

    .venv/bin/python benchmarks/dedup_memory.py --workdir /tmp/dedup-memory --sizes 100000 300000 --baseline main
    .venv/bin/python benchmarks/dedup_memory.py --workdir /tmp/dedup-memory \
        --input /tmp/perf-bench/300000/project/build/clean/drop=base/articles.parquet --sizes 50000 150000

The drop: the first N articles of ``--input`` (a table of cleaned articles, e.g. the clean
stage's ``drop=base/articles.parquet`` of benchmarks/incremental.py's project), or, without
it, benchmarks/dedup_incremental.py's generated corpus (real SaudiNewsNet sentences recombined
into articles of 150-600 words, 5 % reprints). Each size is laid out as one clean drop folder
and deduplicated by `corpus dedup` with this checkout's code and with the baseline's (``git
archive`` of ``--baseline`` under WORKDIR, first on PYTHONPATH), alternating, ``--rounds``
times; the same params.yaml (this checkout's) for both. Printed: wall time, CPU time (user +
sys) and peak RSS (the process tree, sampled every 0.1 s) of each run, the ratios this /
baseline, the growth of the peak per 1,000 articles between the two sizes and the peak it
extrapolates to at 1M, and whether both codes wrote the same bytes (every file of the output
folder, the index too when both wrote one signature scheme; in the report.json files, all but the
fingerprint, which hashes the code, and the index's scheme version).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.incremental import measured  # noqa: E402
from pipeline.plumbing.io import partition, scan_table, write_table  # noqa: E402
from pipeline.stages.dedup import FINGERPRINT, INDEX_DIR, INDEX_FILES, INDEX_META, KEPT_FILE  # noqa: E402


def comparable_report(report: dict) -> dict:
    """A report.json without what names the code: a drop's fingerprint (it hashes the code)
    and the index's scheme version among the stage's params."""
    report = {k: v for k, v in report.items() if k != FINGERPRINT}
    if "params" in report:
        report["params"] = {k: v for k, v in report["params"].items() if k != "scheme"}
    return report


def index_scheme(folder: Path) -> str:
    """The signature scheme an output folder's index was written with (``minhash.SCHEME``)."""
    return json.loads((folder / INDEX_DIR / INDEX_META).read_text())["minhash"]["scheme"]


def output_files(folder: Path, with_index: bool = False) -> dict[str, bytes]:
    """Every file under an output folder but, unless ``with_index`` (both codes wrote one
    scheme), the index (a drop's INDEX_FILES and index/meta.json: their format changes with
    the scheme); report.json: ``comparable_report``."""
    files = {}
    skipped = () if with_index else (*INDEX_FILES, INDEX_META)
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in skipped):
        data = path.read_bytes()
        if path.name == "report.json":
            data = json.dumps(comparable_report(json.loads(data)), sort_keys=True).encode()
        files[path.relative_to(folder).as_posix()] = data
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--input", type=Path, help="cleaned articles to take the drops from (default: generated)")
    parser.add_argument("--sizes", type=int, nargs=2, default=[100_000, 300_000])
    parser.add_argument("--baseline", default="main", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    source = args.input
    if source is None:  # benchmarks/dedup_incremental.py's corpus, generated in a child process
        generated = work / "generated"
        if not (partition(generated / "clean", "base") / KEPT_FILE).exists():
            subprocess.run([sys.executable, str(REPO / "benchmarks" / "dedup_incremental.py"), "--articles",
                            str(int(max(args.sizes) / 0.99) + 1), "--seed", str(args.seed), "--workdir", str(generated),
                            "--prepare-only"], check=True, capture_output=True)
        source = partition(generated / "clean", "base") / KEPT_FILE
    available = scan_table(source).select(pl.len()).collect().item()
    if max(args.sizes) > available:
        raise SystemExit(f"{source} has {available:,} articles, fewer than {max(args.sizes):,}")
    baseline_code = work / "baseline-code"
    shutil.rmtree(baseline_code, ignore_errors=True)
    baseline_code.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(baseline_code)], input=archive, check=True)
    codes = {"this": REPO, "baseline": baseline_code}
    corpus = str(Path(sys.executable).parent / "corpus")

    figures: dict[int, dict[str, list[dict[str, float]]]] = {}
    words = {}
    for size in args.sizes:
        drop = work / f"clean-{size}"
        if not (partition(drop, "base") / KEPT_FILE).exists():
            write_table(scan_table(source).head(size), partition(drop, "base") / KEPT_FILE)
        words[size] = scan_table(partition(drop, "base") / KEPT_FILE).select(pl.col("n_words").mean()).collect().item()
        figures[size] = {name: [] for name in codes}
        outputs = {}
        for _ in range(args.rounds):
            for name, code in codes.items():
                output = work / f"out-{size}-{name}"
                shutil.rmtree(output, ignore_errors=True)
                print(f"  {size:,} articles, {name} ...", flush=True)
                figures[size][name].append(measured(
                    [corpus, "--params", str(REPO / "params.yaml"), "dedup", "--input", str(drop),
                     "--output", str(output), "--metrics", str(work / f"metrics-{size}-{name}.json")], work, code))
                outputs[name] = output
            with_index = index_scheme(outputs["this"]) == index_scheme(outputs["baseline"])
            same = output_files(outputs["this"], with_index) == output_files(outputs["baseline"], with_index)
            for output in outputs.values():
                shutil.rmtree(output)
        print(f"{size:,} articles (mean {words[size]:.0f} words): same output bytes as {args.baseline}"
              f"{' (index too: same scheme)' if with_index else ' (but the index: another scheme)'}: {same}")

    print(f"\ndedup of one drop, this code vs {args.baseline} (source {source}), runs alternating")
    print(f"{'articles':>9} {'code':<9} {'wall s':>8} {'CPU s':>8} {'peak RSS GiB':>13}")
    peaks = {}
    for size in args.sizes:
        for name in codes:
            for run in figures[size][name]:
                print(f"{size:>9,} {name:<9} {run['wall']:>8.1f} {run['cpu']:>8.1f} {run['rss']:>13.3f}")
            peaks[size, name] = max(run["rss"] for run in figures[size][name])
        ratio = {key: sum(r[key] for r in figures[size]["this"]) / sum(r[key] for r in figures[size]["baseline"])
                 for key in ("wall", "cpu", "rss")}
        print(f"{size:>9,} this / baseline: " + ", ".join(f"{key} {value:.2f}" for key, value in ratio.items()))
    small, large = args.sizes
    for name in codes:
        growth = (peaks[large, name] - peaks[small, name]) / (large - small)
        print(f"{name}: peak RSS grows {growth * 100_000 * 1024:.0f} MiB per 100,000 articles; "
              f"extrapolated to 1M articles: {peaks[large, name] + growth * (1_000_000 - large):.2f} GiB")
    print(json.dumps({"sizes": args.sizes, "mean_words": words, "figures": {str(k): v for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
