"""Release the SaudiNewsNet corpus twice, with `corpus publish` and with
`datasets.DatasetDict.push_to_hub` (what a user would otherwise run), against the same
local Hub (tests/hub_server.py), and print time, commits and bytes sent for each.

Release 1 holds the first 16 days (one drop); release 2 adds the last 2 days (a second
drop). Both tools get the same split tables; `push_to_hub` writes its own shards and
card. Run from the repository root with the project's environment:

    .venv/bin/python benchmarks/publish_vs_push_to_hub.py [--days 18]

The split here is a stand-in (by a hash of the article id, every article its own
cluster) until the split stage is on main: publishing does not depend on how the split
was made.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from hub_server import LocalHub  # noqa: E402

from benchmarks.shared_corpus import SAUDI_ZIPS  # noqa: E402

from pipeline import clean, ingest  # noqa: E402
from pipeline.params import load_params, section  # noqa: E402
from pipeline.schema import CLUSTER_ID, SPLITS  # noqa: E402

ZIPS = SAUDI_ZIPS
TOKEN = "hf_benchmark_token"

PUSH_TO_HUB = """
import sys, time, datasets
datasets.disable_progress_bars()
repo_id, split_dir = sys.argv[1:]
started = time.perf_counter()
corpus = datasets.DatasetDict({s: datasets.Dataset.from_parquet(f"{split_dir}/{s}.parquet") for s in ("train", "validation", "test")})
corpus.push_to_hub(repo_id, commit_message="release")
print(time.perf_counter() - started)
"""


def make_drops(root: Path, days: int) -> None:
    archives = sorted(ZIPS.glob("*.zip"))[:days]
    for number, archive in enumerate(archives):
        drop = root / "raw" / ("snn-a" if number < len(archives) - 2 else "snn-b")
        drop.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(drop)


def split_tables(run: Path) -> None:
    articles = pl.read_parquet(run / "clean" / "articles.parquet").with_columns(pl.col("id").alias(CLUSTER_ID))
    bucket = pl.col("id").str.slice(0, 2).str.to_integer(base=16) % 10
    articles = articles.with_columns(split=pl.when(bucket < 8).then(pl.lit("train")).when(bucket == 8)
                                     .then(pl.lit("validation")).otherwise(pl.lit("test")))
    (run / "split").mkdir()
    for split in SPLITS:
        articles.filter(pl.col("split") == split).drop("split").sort("id").write_parquet(run / "split" / f"{split}.parquet")


def environment(hub: LocalHub, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return env | {"HF_ENDPOINT": hub.url, "HF_HOME": str(home), "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1",
                  "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def measure(hub: LocalHub, repo_id: str, command: list[str], env: dict[str, str]) -> dict[str, float]:
    commits, sent, started = hub.commit_count(repo_id), hub.bytes_received, time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return {"seconds": time.perf_counter() - started, "commits": hub.commit_count(repo_id) - commits,
            "mb_sent": (hub.bytes_received - sent) / 1e6,
            "files": len([p for p in hub.files(repo_id) if p.endswith(".parquet")])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=18, help="daily zips to use (3..18, default: %(default)s)")
    args = parser.parse_args()
    params = load_params(REPO / "params.yaml")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        make_drops(root, args.days)
        for name, drops in (("release-1", ["snn-a"]), ("release-2", ["snn-a", "snn-b"])):
            ingest.run(root / "raw", root / name / "ingest", root / name / "metrics" / "ingest.json", section(params, "ingest"), drops)
            clean.run(root / name / "ingest", root / name / "clean", root / name / "metrics" / "clean.json", params)
            split_tables(root / name)
        rows = []
        with LocalHub(TOKEN) as hub:
            env = environment(hub, root / "hf-home")
            for version, name in (("1.0.0", "release-1"), ("1.1.0", "release-2")):
                run = root / name
                articles = sum(pl.scan_parquet(run / "split" / f"{s}.parquet").select(pl.len()).collect().item() for s in SPLITS)
                ours = measure(hub, "bench/corpus-publish", [
                    str(REPO / ".venv" / "bin" / "corpus"), "publish", "--version", version, "--repo-id", "bench/corpus-publish",
                    "--input", str(run / "split"), "--metrics-dir", str(run / "metrics"), "--output", str(root / "hub"),
                    "--release-dir", str(root / "release"), "--metrics", str(root / "publish.json")], env)
                theirs = measure(hub, "bench/push-to-hub", [sys.executable, "-c", PUSH_TO_HUB, "bench/push-to-hub", str(run / "split")], env)
                rows += [{"release": version, "articles": articles, "tool": "corpus publish", **ours},
                         {"release": version, "articles": articles, "tool": "DatasetDict.push_to_hub", **theirs}]
    print(f"{'release':8} {'articles':>9} {'tool':24} {'seconds':>8} {'commits':>8} {'MB sent':>8} {'parquet files':>14}")
    for row in rows:
        print(f"{row['release']:8} {row['articles']:>9,} {row['tool']:24} {row['seconds']:>8.1f} {row['commits']:>8} "
              f"{row['mb_sent']:>8.1f} {row['files']:>14}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
