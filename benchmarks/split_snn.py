"""Split benchmark on SaudiNewsNet: `corpus split` side by side with `datasets`' train_test_split.

Builds two versions of the corpus from the 18 daily SaudiNewsNet zips with the pipeline's
own ingest, clean and dedup stages: v1 = the first 10 days (drop ``a-2015-07``), v2 = v1 plus
the last 8 days (drop ``b-2015-08``). Each version is split by

* ``corpus split`` (strategy hash, review pairs grouped: the defaults),
* ``corpus split`` without review-pair grouping, and with strategy time,
* ``datasets.Dataset.train_test_split`` (the row-level random split a Hub user would
  otherwise reach for: 80 %, then the rest halved into validation and test, seed 42),

and prints for v2: the split shares, the contaminated share of test and validation (the
split stage's own 13-gram measure, applied to every method's tables), pairs of dedup's
review.parquet between published articles that cross splits, and how many v1 articles
changed split when v2 was built (published ones, and all of them: a removed duplicate
counts in the split its content was published in);
plus wall time and peak memory of the `corpus split` runs.

    .venv/bin/python benchmarks/split_snn.py [--work DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.shared_corpus import SAUDI_ZIPS  # noqa: E402
from pipeline.plumbing.io import scan_partitions, scan_table, write_table  # noqa: E402
from pipeline.plumbing.params import load_params, section  # noqa: E402
from pipeline.plumbing.schema import SPLITS  # noqa: E402
from pipeline.stages import clean, dedup, ingest, split  # noqa: E402

ZIPS = sorted(SAUDI_ZIPS.glob("*.zip"))
FIRST_DAYS = 10


def build_version(raw: Path, work: Path, params: dict) -> Path:
    """ingest -> clean -> dedup with the pipeline's stages; returns the dedup folder."""
    ingest.run(raw, work / "ingest", None, section(params, "ingest"))
    clean.run(work / "ingest", work / "clean", None, params)
    dedup.run(work / "clean" / "articles.parquet", work / "dedup", None, params)
    return work / "dedup"


def corpus_split(dedup_dir: Path, out: Path, params: dict) -> tuple[dict, float, float]:
    """`corpus split` as a user runs it; returns its report, seconds, peak RSS (GB) of the run."""
    out.mkdir(parents=True, exist_ok=True)
    params_path = out / "params.yaml"
    params_path.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    command = [str(Path(sys.executable).parent / "corpus"), "--params", str(params_path), "split",
               "--input", str(dedup_dir), "--output", str(out / "split"), "--metrics", str(out / "split.json")]
    # GNU time reports the run's own peak RSS: measured from this (large) process, a child's
    # ru_maxrss would include the memory this process held when it forked.
    timed = ["/usr/bin/time", "-f", "%M", *command] if Path("/usr/bin/time").exists() else command
    started = time.monotonic()
    result = subprocess.run(timed, cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    peak = int(result.stderr.strip().splitlines()[-1]) / 1024**2 if timed is not command else None
    return json.loads((out / "split" / "report.json").read_text()), seconds, peak


def datasets_split(dedup_dir: Path, out: Path, params: dict) -> tuple[dict, float]:
    """train_test_split of `datasets` (and its seconds), then the split stage's
    contamination measure on it."""
    import datasets

    datasets.disable_progress_bars()
    started = time.monotonic()
    kept = datasets.Dataset.from_parquet([str(p) for p in sorted(dedup_dir.glob("drop=*/articles.parquet"))])
    first = kept.train_test_split(test_size=0.2, seed=42)
    rest = first["test"].train_test_split(test_size=0.5, seed=42)
    seconds = time.monotonic() - started
    tables = {"train": first["train"], "validation": rest["train"], "test": rest["test"]}
    out.mkdir(parents=True, exist_ok=True)
    frames = {}
    for name, table in tables.items():
        write_table(table.to_polars(), out / f"{name}.parquet")
        frames[name] = scan_table(out / f"{name}.parquet")
    rules = split.ContaminationRules.from_params(section(params, "split"))
    with tempfile.TemporaryDirectory(dir=out) as work:
        found = split.contamination(frames, rules, Path(work))
    assignments = pl.concat([f.select("id", split=pl.lit(n)) for n, f in frames.items()]).collect()
    write_table(assignments, out / "assignments.parquet")
    total = assignments.height
    return {
        "splits": {n: {"share": f.select(pl.len()).collect().item() / total} for n, f in frames.items()},
        "contamination": found.metrics,
    }, seconds


def assignments(folder: Path, published_only: bool = True) -> dict[str, str]:
    """id -> split of the published (kept) articles, or of every article `corpus split`
    assigned (removed duplicates too: the split their content was published in)."""
    stage_output = (folder / "report.json").exists()  # `corpus split`'s folder, else the datasets baseline's
    table = split.split_table(folder, "assignments").collect() if stage_output else pl.read_parquet(folder / "assignments.parquet")
    if published_only and "kept" in table.columns:
        table = table.filter("kept")
    return dict(zip(table["id"], table["split"].cast(pl.String)))


def moved(before: dict[str, str], after: dict[str, str]) -> int:
    return sum(1 for doc, was in before.items() if doc in after and after[doc] != was)


def crossing_review_pairs(dedup_dir: Path, split_of: dict[str, str]) -> tuple[int, int]:
    review = dedup.scan_corpus(dedup_dir, dedup.REVIEW_FILE).collect().filter(~pl.col("same_cluster"))
    pairs = [(a, b) for a, b in zip(review["id_a"], review["id_b"]) if a in split_of and b in split_of]
    return sum(split_of[a] != split_of[b] for a, b in pairs), len(pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="split-bench-"))
    params = load_params(REPO / "params.yaml")
    variants = {
        "corpus split (hash, default)": params,
        "corpus split (hash, no review grouping)": copy.deepcopy(params),
        "corpus split (time, derived cut-offs)": copy.deepcopy(params),
        "corpus split (time, pinned cut-offs)": copy.deepcopy(params),
        "corpus split (hash, memory_ngrams 2M)": copy.deepcopy(params),
    }
    variants["corpus split (hash, no review grouping)"]["split"]["group_review_pairs"] = False
    variants["corpus split (time, derived cut-offs)"]["split"]["strategy"] = "time"
    variants["corpus split (hash, memory_ngrams 2M)"]["split"]["contamination"]["memory_ngrams"] = 2_000_000
    # pinned to the cut-offs the derived variant finds on v2, as the README advises
    variants["corpus split (time, pinned cut-offs)"]["split"].update(
        strategy="time", time={"validation_from": "2015-08-08", "test_from": "2015-08-10"}
    )

    raw = {"v1": work / "raw-v1", "v2": work / "raw-v2"}
    for version, zips in (("v1", ZIPS[:FIRST_DAYS]), ("v2", ZIPS)):
        for archive in zips:
            drop = raw[version] / ("a-2015-07" if archive in ZIPS[:FIRST_DAYS] else "b-2015-08")
            drop.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(archive) as opened:
                opened.extractall(drop)
    dedup_dirs = {v: build_version(raw[v], work / v, params) for v in raw}
    kept = {v: scan_partitions(d, (), "articles.parquet").select(pl.len()).collect().item()
            for v, d in dedup_dirs.items()}
    print(f"\nv1: {kept['v1']:,} kept articles ({FIRST_DAYS} days); v2: {kept['v2']:,} (18 days)\n")

    rows = []
    for name, variant in [*variants.items(), ("datasets train_test_split (row-level, seed 42)", None)]:
        outputs, figures = {}, {}
        for version in ("v1", "v2"):
            out = work / "splits" / name.split(" (")[0].replace(" ", "_") / name.replace(" ", "_") / version
            if variant is None:
                metrics, seconds = datasets_split(dedup_dirs[version], out, params)
                figures[version] = (metrics, seconds, None)
                outputs[version] = out
            else:
                figures[version] = corpus_split(dedup_dirs[version], out, variant)
                outputs[version] = out / "split"
        metrics, seconds, peak = figures["v2"]
        before, after = assignments(outputs["v1"]), assignments(outputs["v2"])
        every_before = assignments(outputs["v1"], published_only=False)
        every_after = assignments(outputs["v2"], published_only=False)
        crossing, pairs = crossing_review_pairs(dedup_dirs["v2"], after)
        contamination = metrics["contamination"]
        rows.append({
            "method": name,
            "train/val/test %": " / ".join(f"{100 * metrics['splits'][s]['share']:.1f}" for s in SPLITS),
            "contaminated test %": f"{100 * contamination['test']['contaminated_share']:.2f}",
            "contaminated val %": f"{100 * contamination['validation']['contaminated_share']:.2f}",
            "review pairs crossing": f"{crossing:,} / {pairs:,}",
            "v1 articles moved by v2": f"{moved(before, after):,} / {len(before):,}",
            "incl. removed ones": "-" if variant is None else f"{moved(every_before, every_after):,} / {len(every_before):,}",
            "v2 run": f"{seconds:.1f} s" + (" (split only)" if variant is None else f", {peak:.2f} GB peak" if peak else ""),
        })
    table = pl.DataFrame(rows)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=250, fmt_str_lengths=60, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        print(table)
    if not args.work:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
