"""Release the SaudiNewsNet corpus twice, with `corpus publish` and with
`datasets.DatasetDict.push_to_hub` (what a user would otherwise run), against the same
local Hub (tests/hub_server.py), and print time, commits and bytes sent for each.

Release 1 holds the first 16 days (one drop); release 2 adds the last 2 days (a second
drop). Each release is built by the real stages (ingest -> clean -> dedup -> validate ->
split, tests/pipeline_runs.py); both tools then publish the same split tables, and
`push_to_hub` writes its own shards and card. Release 2's version is the smallest the
record diff allows (a new drop can replace a published article by a longer reprint of
it: then it is a major release). Run from the repository root with the project's
environment:

    .venv/bin/python benchmarks/publish_vs_push_to_hub.py [--days 18]
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
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from hub_server import LocalHub  # noqa: E402
from pipeline_runs import run_pipeline  # noqa: E402

from benchmarks.shared_corpus import SAUDI_ZIPS  # noqa: E402
from pipeline.plumbing.params import load_params, section  # noqa: E402
from pipeline.plumbing.schema import SPLITS  # noqa: E402
from pipeline.release import (  # noqa: E402
    card_figures,
    manifests,
    publish,  # noqa: E402
)
from pipeline.release.versions import Version  # noqa: E402
from pipeline.stages.split import split_table  # noqa: E402

TOKEN = "hf_benchmark_token"

PUSH_TO_HUB = """
import json, sys, time, datasets
datasets.disable_progress_bars()
repo_id, split_dir = sys.argv[1:]
drops = json.load(open(f"{split_dir}/report.json"))["drops"]  # the split stage's per-drop tables, as split_table reads them
started = time.perf_counter()
corpus = datasets.DatasetDict({s: datasets.Dataset.from_parquet([f"{split_dir}/drop={d}/{s}.parquet" for d in drops])
                               for s in ("train", "validation", "test")})
corpus.push_to_hub(repo_id, commit_message="release")
print(time.perf_counter() - started)
"""


def make_drops(root: Path, days: int) -> list[str]:
    archives = sorted(SAUDI_ZIPS.glob("*.zip"))[:days]
    names = []
    for number, archive in enumerate(archives):
        name = "saudinewsnet-a" if number < len(archives) - 2 else "saudinewsnet-b"
        names += [name] if name not in names else []
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(root / "raw" / name)
    return names


def release_versions(root: Path, params: dict) -> dict[str, str]:
    """1.0.0, then the smallest version the record diff of release 2 allows."""
    settings = publish.Settings.from_params(section(params, "publish"))
    built_manifests = {}
    for name in ("release-1", "release-2"):
        run = root / name
        stage_dirs = {stage: run / stage for stage in card_figures.REPORTING_STAGES}
        built = publish.build(run / "split", stage_dirs, run / "validate" / "results.json", root / "bench-build" / name,
                              settings, REPO / "dataset_card.md")
        built_manifests[name] = built.manifest()
    diff = manifests.diff_manifests(built_manifests["release-1"], built_manifests["release-2"])
    first = Version(1, 0, 0)
    print(f"release 2 after release 1: {diff.summary()}; needs a {diff.required_bump} release")
    return {"release-1": str(first), "release-2": str(first.bump(diff.required_bump))}


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
    params["publish"]["card"]["license"] = "cc-by-nc-sa-4.0"  # SaudiNewsNet alone (publish.provenance)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
        drops = make_drops(root, args.days)
        for name, included in (("release-1", drops[:1]), ("release-2", drops)):
            run_pipeline(root / "raw", root / name, params, included)
        versions = release_versions(root, params)
        rows = []
        with LocalHub(TOKEN) as hub:
            env = environment(hub, root / "hf-home")
            for name, version in versions.items():
                run = root / name
                articles = sum(split_table(run / "split", s).select(pl.len()).collect().item() for s in SPLITS)
                ours = measure(hub, "bench/corpus-publish", [
                    str(REPO / ".venv" / "bin" / "corpus"), "--params", str(root / "params.yaml"), "publish",
                    "--version", version, "--repo-id", "bench/corpus-publish",
                    "--input", str(run / "split"), "--stage-outputs", str(run),
                    "--validation", str(run / "validate" / "results.json"), "--output", str(root / "hub"),
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
