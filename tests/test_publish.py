"""The publish stage: the release folder it builds, and the round trip through a Hub.

The Hub is tests/hub_server.py on 127.0.0.1. `corpus publish`, `corpus diff` and the
`datasets` loads run in subprocesses, so that huggingface_hub and datasets read
HF_ENDPOINT and a fresh HF_HOME when they are imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import REPO, SAUDI_SAMPLE, SEED, VENV_BIN
from hub_server import LocalHub
from pipeline import card, clean, ingest, publish
from pipeline.params import load_params, section
from pipeline.release import MANIFEST_PATH, RELEASE_PATH
from pipeline.schema import ARTICLE_SCHEMA, CLUSTER_ID, SPLITS

TEMPLATE = REPO / "dataset_card.md"
REPO_ID = "tests/arabic-news"
TOKEN = "hf_test_0123456789_do_not_leak"
SHARD_ROWS = 200


def stand_in_split(articles: Path, output: Path) -> None:
    """Split tables by the split stage's contract (ARTICLE_SCHEMA + cluster_id, one file
    per split), until that stage is on main: every article is its own cluster, assigned
    by its id, so adding a drop never moves an article."""
    frame = pl.read_parquet(articles).with_columns(pl.col("id").alias(CLUSTER_ID))
    bucket = pl.col("id").str.slice(0, 2).str.to_integer(base=16) % 10
    frame = frame.with_columns(split=pl.when(bucket < 8).then(pl.lit("train")).when(bucket == 8)
                               .then(pl.lit("validation")).otherwise(pl.lit("test")))
    output.mkdir(parents=True)
    for split in SPLITS:
        frame.filter(pl.col("split") == split).drop("split").sort("id").write_parquet(output / f"{split}.parquet")


@pytest.fixture(scope="module")
def generations(tmp_path_factory) -> dict[str, Path]:
    """Two runs of the pipeline: 'first' on the SaudiNewsNet sample, 'second' with the
    seed drop added. Each holds metrics/ and split/."""
    root = tmp_path_factory.mktemp("pipeline")
    raw = root / "raw"
    shutil.copytree(SAUDI_SAMPLE, raw / "saudi", ignore=shutil.ignore_patterns("*.tsv"))
    shutil.copytree(SEED, raw / "seed")
    params = load_params(REPO / "params.yaml")
    runs = {}
    for name, drops in (("first", ["saudi"]), ("second", ["saudi", "seed"])):
        run = root / name
        ingest.run(raw, run / "ingest", run / "metrics" / "ingest.json", section(params, "ingest"), drops)
        clean.run(run / "ingest", run / "clean", run / "metrics" / "clean.json", params)
        stand_in_split(run / "clean" / "articles.parquet", run / "split")
        runs[name] = run
    return runs


def split_tables(run: Path) -> dict[str, pl.DataFrame]:
    return {split: pl.read_parquet(run / "split" / f"{split}.parquet") for split in SPLITS}


def settings(**overrides) -> publish.Settings:
    publish_params = section(load_params(REPO / "params.yaml"), "publish") | {"repo_id": REPO_ID, "shard_rows": SHARD_ROWS}
    return publish.Settings.from_params(publish_params | overrides)


@pytest.fixture(scope="module")
def built(generations, tmp_path_factory) -> publish.Build:
    run = generations["first"]
    return publish.build(run / "split", run / "metrics", tmp_path_factory.mktemp("hub") / "hub", settings(), TEMPLATE)


# --------------------------------------------------------------------------- the build


def test_shards_hold_every_article_of_each_split_in_order(built, generations):
    tables = split_tables(generations["first"])
    for split, table in tables.items():
        shards = sorted(built.folder.glob(f"data/{split}-*.parquet"))
        count = -(-table.height // SHARD_ROWS)
        assert [p.name for p in shards] == [f"{split}-{i:05d}-of-{count:05d}.parquet" for i in range(count)]
        rows = [pq.ParquetFile(p).metadata.num_rows for p in shards]
        assert all(n <= SHARD_ROWS for n in rows) and sum(rows) == table.height
        published = pl.concat([pl.read_parquet(p) for p in shards])
        assert published.equals(table.select(publish.HUB_SCHEMA.names()))
    schema = pq.read_schema(next(built.folder.glob("data/train-*.parquet")))
    assert str(schema.field("text").type) == "string"  # not large_string: datasets reads Value('string')
    assert list(schema.names) == list(ARTICLE_SCHEMA.names()) + [CLUSTER_ID]


def test_manifest_names_every_published_article(built, generations):
    manifest = pl.read_parquet(built.folder / MANIFEST_PATH)
    expected = pl.concat([t.select("id", split=pl.lit(s)) for s, t in split_tables(generations["first"]).items()])
    assert manifest.select("id", "split").sort("id").equals(expected.sort("id"))
    assert manifest["content_sha256"].str.len_chars().unique().to_list() == [64]
    record = json.loads((built.folder / RELEASE_PATH).read_text())
    assert record["version"] == "1.0.0" and record["articles"] == manifest.height
    assert set(record["files"]) == {p.relative_to(built.folder).as_posix() for p in built.folder.rglob("*")
                                    if p.is_file() and p.name not in ("README.md", "release.json")}


def test_card_metadata_is_what_the_hub_and_datasets_read(built, generations):
    metadata, body = card.split_card((built.folder / "README.md").read_text())
    tables = split_tables(generations["first"])
    assert metadata["language"] == ["ar"] and metadata["license"] == "cc-by-nc-sa-4.0"
    assert metadata["pretty_name"] and metadata["tags"] and metadata["task_categories"]
    assert metadata["size_categories"] == ["n<1K"]
    assert metadata["configs"] == [{"config_name": "default", "default": True, "data_files": [
        {"split": s, "path": f"data/{s}-*"} for s in SPLITS]}]
    info = metadata["dataset_info"]
    assert [f["name"] for f in info["features"]] == publish.HUB_SCHEMA.names()
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {s: t.height for s, t in tables.items()}
    assert info["download_size"] == sum(p.stat().st_size for p in built.folder.glob("data/*.parquet"))


def test_card_sections_carry_the_figures_of_the_run(built, generations):
    body = (built.folder / "README.md").read_text()
    metrics = {stage: json.loads((generations["first"] / "metrics" / f"{stage}.json").read_text()) for stage in ("ingest", "clean")}
    tables = split_tables(generations["first"])
    total = sum(t.height for t in tables.values())
    assert f"This card describes **v1.0.0**: {total:,} articles" in body
    for split, table in tables.items():
        assert f"| {split} | {table.height:,} |" in body
    clean_row = f"| {metrics['clean']['input']:,} | {metrics['clean']['kept']:,} | {metrics['clean']['quarantined']:,} quarantined |"
    assert clean_row in body
    for reason, count in metrics["clean"]["quarantined_by_reason"].items():
        assert f"| clean | `{reason}` | {count:,} |" in body
    top_source = pl.concat(tables.values())["source"].value_counts(sort=True).row(0)
    assert f"| {top_source[0]} | {top_source[1]:,} |" in body
    median_words = pl.concat(tables.values())["n_words"].median()
    assert f"| all | words | {pl.concat(tables.values())['n_words'].min():,} |" in body and f"{median_words:,.0f}" in body
    assert f'load_dataset("{REPO_ID}", revision="v1.0.0")' in body
    assert "| 1.0.0 | not yet released |" in body


def test_build_is_byte_identical(built, generations, tmp_path):
    run = generations["first"]
    again = publish.build(run / "split", run / "metrics", tmp_path / "again", settings(), TEMPLATE)
    files = sorted(p.relative_to(built.folder) for p in built.folder.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again.folder) for p in again.folder.rglob("*") if p.is_file())
    for path in files:
        assert (built.folder / path).read_bytes() == (again.folder / path).read_bytes(), path


def test_croissant_passes_mlcroissant_and_reads_the_shards(built, generations):
    import mlcroissant as mlc

    dataset = mlc.Dataset(jsonld=built.folder / "croissant.json")
    assert not dataset.metadata.issues.errors
    counts: dict[str, int] = {}
    for record in dataset.records("articles"):
        split = record["articles/split"].decode()
        counts[split] = counts.get(split, 0) + 1
    assert counts == {s: t.height for s, t in split_tables(generations["first"]).items()}


def test_an_empty_split_is_left_out_of_the_configs(generations, tmp_path):
    split_dir = tmp_path / "split"
    shutil.copytree(generations["first"] / "split", split_dir)
    pl.read_parquet(split_dir / "test.parquet").clear().write_parquet(split_dir / "test.parquet")
    result = publish.build(split_dir, generations["first"] / "metrics", tmp_path / "hub", settings(), TEMPLATE)
    metadata, _ = card.split_card((result.folder / "README.md").read_text())
    assert [f["split"] for f in metadata["configs"][0]["data_files"]] == ["train", "validation"]
    assert [s["name"] for s in metadata["dataset_info"]["splits"]] == ["train", "validation"]
    assert not list(result.folder.glob("data/test-*"))


def test_the_dvc_stage_builds_offline_and_diff_compares_local_builds(built, generations, tmp_path):
    """`corpus publish --build-only` (what `dvc repro` runs) never calls the Hub: here
    the Hub is an address where nothing listens."""
    run = generations["second"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")} | {
        "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": TOKEN}
    command = [str(VENV_BIN / "corpus"), "publish", "--build-only", "--input", str(run / "split"),
               "--metrics-dir", str(run / "metrics"), "--output", str(tmp_path / "hub"),
               "--metrics", str(tmp_path / "publish.json"), "--card-template", str(TEMPLATE)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "publish.json").read_text())["articles"] == sum(t.height for t in split_tables(run).values())
    diff = subprocess.run([str(VENV_BIN / "corpus"), "diff", str(built.folder), str(tmp_path / "hub")],
                          cwd=REPO, capture_output=True, text=True, env=env)
    assert diff.returncode == 0, diff.stderr
    assert "5 added, 0 removed, 0 changed, 0 moved; needs a minor release" in diff.stdout


# --------------------------------------------------------------------------- the Hub


@dataclass
class Session:
    """What the publishing session against the local Hub produced."""

    hub: LocalHub
    home: Path
    runs: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    commits: dict[str, int] = field(default_factory=dict)  # commit count after each run
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # tags after each run
    heads: dict[str, str] = field(default_factory=dict)  # main's commit after each run


def hub_env(hub: LocalHub, home: Path, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(home), "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_UPDATE_DOWNLOAD_COUNTS": "0", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    if token:
        env["HF_TOKEN"] = token
    return env


@pytest.fixture(scope="module")
def session(generations, tmp_path_factory) -> Session:
    """Release the corpus as a maintainer would: a dry run, v1.0.0, an unchanged re-run,
    an edit of the card on the Hub, a new drop released as v1.0.1 (refused) and then as
    v1.1.0 through three interrupted attempts, an attempt to rewrite v1.1.0, and a
    repackaged v1.1.1 with smaller shards."""
    root = tmp_path_factory.mktemp("releases")
    params = load_params(REPO / "params.yaml")
    params["publish"] |= {"repo_id": REPO_ID, "shard_rows": SHARD_ROWS}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    params["publish"]["shard_rows"] = SHARD_ROWS // 2
    (root / "params-small-shards.yaml").write_text(yaml.safe_dump(params))

    with LocalHub(TOKEN) as hub:
        result = Session(hub, root / "hf-home")

        def corpus(name: str, generation: str, *args: str, token: str | None = TOKEN, params_file: str = "params.yaml"):
            run = generations[generation]
            command = [str(VENV_BIN / "corpus"), "--params", str(root / params_file), "publish",
                       "--input", str(run / "split"), "--metrics-dir", str(run / "metrics"),
                       "--output", str(root / "hub"), "--release-dir", str(root / "release"),
                       "--metrics", str(root / "metrics" / "publish.json"), "--card-template", str(TEMPLATE), *args]
            result.runs[name] = subprocess.run(command, cwd=root, capture_output=True, text=True,
                                               env=hub_env(hub, result.home, token))
            result.commits[name] = hub.commit_count(REPO_ID)
            result.tags[name] = dict(hub.repos[REPO_ID].tags) if REPO_ID in hub.repos else {}
            result.heads[name] = hub.repos[REPO_ID].branches["main"] if REPO_ID in hub.repos else ""

        corpus("dry run", "first", token=None)
        corpus("v1.0.0", "first")
        corpus("v1.0.0 again", "first")
        readme = hub.files(REPO_ID)["README.md"].decode()
        edited = readme.replace("license: cc-by-nc-sa-4.0", "license: cc-by-nc-sa-4.0\nannotations_creators:\n- no-annotation", 1)
        edited = edited.replace("## Licensing", "## Acknowledgements\n\nWritten on the Hub by a maintainer.\n\n## Licensing", 1)
        hub.put_files(REPO_ID, {"README.md": edited.encode()})
        result.commits["card edited on the Hub"] = hub.commit_count(REPO_ID)
        corpus("v1.0.1 understated", "second", "--version", "1.0.1")
        hub.fail_next("lfs-upload", status=403)
        corpus("v1.1.0 upload fails", "second", "--version", "1.1.0")
        hub.fail_next("commit")
        corpus("v1.1.0 commit fails", "second", "--version", "1.1.0")
        hub.fail_next("tag")
        corpus("v1.1.0 tag fails", "second", "--version", "1.1.0")
        corpus("v1.1.0", "second", "--version", "1.1.0")
        corpus("v1.1.0 rewritten", "first", "--version", "1.1.0")
        corpus("v1.1.1", "second", "--version", "1.1.1", params_file="params-small-shards.yaml")
        diff = [str(VENV_BIN / "corpus"), "--params", str(root / "params.yaml"), "diff", "v1.0.0", "v1.1.0", "--limit", "0"]
        result.runs["diff"] = subprocess.run(diff, cwd=root, capture_output=True, text=True, env=hub_env(hub, result.home, None))
        result.runs["load"] = subprocess.run(
            [sys.executable, "-c", LOAD_SCRIPT, REPO_ID, "v1.0.0", "v1.1.0", "v1.1.1", str(root / "hub")],
            cwd=root, capture_output=True, text=True, env=hub_env(hub, root / "hf-home-reader", None),
        )
        yield result


# Loads releases with `datasets`, as a user would, and prints what it got as JSON.
LOAD_SCRIPT = """
import json, sys
import datasets
datasets.disable_progress_bars()
repo_id, *revisions, folder = sys.argv[1:]
loaded = {revision: datasets.load_dataset(repo_id, revision=revision) for revision in revisions}
loaded["folder"] = datasets.load_dataset(folder)
print(json.dumps({name: {split: {"rows": ds.num_rows, "features": {k: repr(v) for k, v in ds.features.items()},
                                 "texts": dict(zip(ds["id"], ds["text"]))}
                         for split, ds in dataset.items()} for name, dataset in loaded.items()}))
"""


def outcome(session: Session, name: str) -> str:
    run = session.runs[name]
    return f"exit {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"


def test_without_a_token_publish_is_a_dry_run(session):
    run = session.runs["dry run"]
    assert run.returncode == 0, outcome(session, "dry run")
    assert "create dataset repo tests/arabic-news" in run.stdout and "upload  data/train-00000-of-00003.parquet" in run.stdout
    assert "dry run, no Hugging Face token" in run.stdout
    assert session.commits["dry run"] == 0 and session.tags["dry run"] == {}


def test_first_release_is_one_commit_and_a_tag(session):
    run = session.runs["v1.0.0"]
    assert run.returncode == 0, outcome(session, "v1.0.0")
    assert session.commits["v1.0.0"] == 2  # the repo's initial commit, then the release
    head = session.heads["v1.0.0"]
    assert session.tags["v1.0.0"] == {"v1.0.0": head}
    assert session.hub.repos[REPO_ID].commits[head].title == "Release v1.0.0"


def test_unchanged_rerun_makes_no_commit(session):
    run = session.runs["v1.0.0 again"]
    assert run.returncode == 0 and "already published" in run.stdout, outcome(session, "v1.0.0 again")
    assert session.commits["v1.0.0 again"] == session.commits["v1.0.0"]


def test_a_version_that_understates_the_change_is_refused(session):
    run = session.runs["v1.0.1 understated"]
    assert run.returncode == 2, outcome(session, "v1.0.1 understated")
    assert "needs a minor release, at least 1.1.0" in run.stderr
    assert session.commits["v1.0.1 understated"] == session.commits["card edited on the Hub"]
    assert set(session.tags["v1.0.1 understated"]) == {"v1.0.0"}


def test_an_interrupted_release_leaves_no_tag_and_the_next_run_completes_it(session):
    for name in ("v1.1.0 upload fails", "v1.1.0 commit fails"):
        assert session.runs[name].returncode == 1, outcome(session, name)
        assert "run `corpus publish` again" in session.runs[name].stderr
        assert session.commits[name] == session.commits["card edited on the Hub"]  # no half release
        assert "v1.1.0" not in session.tags[name]
    # The commit landed, the tag did not: main has the release, untagged.
    assert session.runs["v1.1.0 tag fails"].returncode == 1, outcome(session, "v1.1.0 tag fails")
    assert session.commits["v1.1.0 tag fails"] == session.commits["card edited on the Hub"] + 1
    assert "v1.1.0" not in session.tags["v1.1.0 tag fails"]
    # The next run sends nothing again and tags the release commit.
    run = session.runs["v1.1.0"]
    assert run.returncode == 0, outcome(session, "v1.1.0")
    assert "no commit needed; tag v1.1.0 on main" in run.stdout
    assert session.commits["v1.1.0"] == session.commits["v1.1.0 tag fails"]
    assert session.tags["v1.1.0"]["v1.1.0"] == session.heads["v1.1.0 tag fails"]
    assert session.hub.repos[REPO_ID].commits[session.heads["v1.1.0"]].title == "Release v1.1.0"


def test_an_existing_tag_is_never_rewritten(session):
    run = session.runs["v1.1.0 rewritten"]
    assert run.returncode == 2, outcome(session, "v1.1.0 rewritten")
    assert "v1.1.0 already exists on tests/arabic-news with different data" in run.stderr
    assert session.commits["v1.1.0 rewritten"] == session.commits["v1.1.0"]


def test_a_repackaged_release_is_a_patch_that_removes_stale_shards(session):
    run = session.runs["v1.1.1"]
    assert run.returncode == 0, outcome(session, "v1.1.1")
    assert "patch after v1.1.0: 0 added, 0 removed, 0 changed, 0 moved" in run.stdout
    assert "delete  data/train-00000-of-00003.parquet" in run.stdout
    files = session.hub.files(REPO_ID)
    shards = sorted(p for p in files if p.startswith("data/train-"))
    assert shards == [f"data/train-{i:05d}-of-00005.parquet" for i in range(5)]
    assert ".gitattributes" in files  # not ours: never deleted


def test_card_on_the_hub_keeps_edits_and_gains_the_changelog(session):
    metadata, body = card.split_card(session.hub.files(REPO_ID)["README.md"].decode())
    assert metadata["annotations_creators"] == ["no-annotation"]
    assert "## Acknowledgements\n\nWritten on the Hub by a maintainer." in body
    assert body.index("## Acknowledgements") < body.index("## Licensing")
    changelog = body[body.index("| Version | Kind"):]
    lines = [line for line in changelog.splitlines() if line.startswith("| 1.")]
    assert [line.split(" | ")[0:2] for line in lines] == [["| 1.1.1", "patch"], ["| 1.1.0", "minor"], ["| 1.0.0", "initial"]]
    assert lines[1].endswith("| 5 | 0 | 0 | 0 |")  # the five seed articles added


def test_diff_lists_the_articles_added_by_the_new_drop(session, generations):
    run = session.runs["diff"]
    assert run.returncode == 0, outcome(session, "diff")
    seed_ids = set(pl.concat(split_tables(generations["second"]).values()).filter(pl.col("drop") == "seed")["id"])
    assert run.stdout.startswith("v1.0.0 -> v1.1.0: 5 added, 0 removed, 0 changed, 0 moved; needs a minor release")
    listed = {line.split()[0] for line in run.stdout.splitlines() if line.startswith("  ")}
    assert listed == seed_ids


def test_datasets_loads_each_release_as_the_pipeline_wrote_it(session, generations):
    run = session.runs["load"]
    assert run.returncode == 0, outcome(session, "load")
    loaded = json.loads(run.stdout.splitlines()[-1])
    expected = {"v1.0.0": "first", "v1.1.0": "second", "v1.1.1": "second", "folder": "second"}
    for name, generation in expected.items():
        tables = split_tables(generations[generation])
        assert set(loaded[name]) == set(SPLITS), name
        for split, table in tables.items():
            got = loaded[name][split]
            assert got["rows"] == table.height, (name, split)
            assert got["texts"] == dict(zip(table["id"], table["text"])), (name, split)
            assert got["features"]["text"] == "Value('string')" and got["features"]["published_date"] == "Value('date32')"
            assert got["features"]["n_words"] == "Value('int64')" and list(got["features"]) == publish.HUB_SCHEMA.names()


def test_the_token_is_never_printed_or_written(session, tmp_path_factory):
    for name, run in session.runs.items():
        assert TOKEN not in run.stdout + run.stderr, name
    leaks = [p for p in session.home.parent.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert leaks == []
    assert any(p.is_file() for p in session.home.rglob("*"))  # the cache was used: the scan saw real files
