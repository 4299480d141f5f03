"""The publish stage: the release folder it builds, and the round trip through a Hub.

The Hub is tests/hub_server.py on 127.0.0.1. `corpus publish`, `corpus diff` and the
`datasets` loads run in subprocesses, so that huggingface_hub and datasets read
HF_ENDPOINT and a fresh HF_HOME when they are imported.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, SAUDI_SAMPLE, SEED, VENV_BIN
from hub_server import LocalHub, metadata_errors
from pipeline_runs import GX_DIR, check_headline_funnel, run_pipeline

from pipeline.plumbing.io import partition, write_json
from pipeline.plumbing.params import load_params, section
from pipeline.plumbing.schema import (
    ARTICLE_SCHEMA,
    CLUSTER_ID,
    CLUSTERED_ARTICLE_SCHEMA,
    QUARANTINE_REASONS,
    SPLITS,
    conform,
)
from pipeline.release import card, card_figures, manifests, publish
from pipeline.release.versions import MANIFEST_DIR, RELEASE_PATH, SINGLE_FILE_MANIFEST_PATH, is_manifest_file
from pipeline.stages import dedup, validate
from pipeline.stages import split as split_stage

TEMPLATE = REPO / "dataset_card.md"
REPO_ID = "tests/arabic-news"
TOKEN = "hf_test_0123456789_do_not_leak"
SHARD_ROWS = 200
SAUDI_LICENSE = "cc-by-nc-sa-4.0"  # publish.provenance of the saudinewsnet* drops


@pytest.fixture(scope="module")
def generations(tmp_path_factory) -> dict[str, Path]:
    """Runs of the real pipeline (ingest -> clean -> dedup -> validate -> split), each with
    every stage's output folder (report.json in each) and metrics/: 'first' on the
    SaudiNewsNet sample, 'second' with the seed drop added, 'seed' on the seed drop alone
    (5 articles: train 3, validation 2, test empty)."""
    root = tmp_path_factory.mktemp("pipeline")
    raw = root / "raw"
    shutil.copytree(SAUDI_SAMPLE, raw / "saudinewsnet", ignore=shutil.ignore_patterns("*.tsv"))
    shutil.copytree(SEED, raw / "seed")
    params = load_params(REPO / "params.yaml")
    return {name: run_pipeline(raw, root / name, params, drops)
            for name, drops in (("first", ["saudinewsnet"]), ("second", ["saudinewsnet", "seed"]), ("seed", ["seed"]))}


@pytest.fixture(scope="module")
def gate_failures(generations, tmp_path_factory) -> dict[str, Path]:
    """Runs of 'first' whose gates failed, as the real stages leave them: 'validation failed'
    (validate re-run with a mean length bound the sample misses; the split tables are
    those of the earlier, passing run, as `dvc repro` leaves them when validate stops it)
    and 'contaminated' (split re-run with a contamination gate the sample fails)."""
    first, root = generations["first"], tmp_path_factory.mktemp("gates")
    params = load_params(REPO / "params.yaml")
    runs = {}
    for name in ("validation failed", "contaminated"):
        run = runs[name] = root / name
        run.mkdir()
        for folder in card_figures.REPORTING_STAGES:
            (run / folder).symlink_to(first / folder)

    strict = copy.deepcopy(params)
    strict["validate"]["mean_chars"]["min"] = 5000
    failed = runs["validation failed"]
    (failed / "validate").unlink()
    assert not validate.run(first / "dedup", failed / "validate", None, strict, GX_DIR).success

    strict = copy.deepcopy(params)
    strict["split"]["contamination"] |= {"article_overlap": 0.01, "max_contaminated_share": 0.0}
    contaminated = runs["contaminated"]
    (contaminated / "split").unlink()
    split_report = split_stage.run(first / "dedup", contaminated / "split", None, strict)
    assert split_report["contamination"]["gate"]["passed"] is False
    return runs


def split_tables(run: Path) -> dict[str, pl.DataFrame]:
    return {name: split_stage.split_table(run / "split", name).collect() for name in SPLITS}


def stage_dirs(run: Path) -> dict[str, Path]:
    return {stage: run / stage for stage in card_figures.REPORTING_STAGES}


def run_reports(run: Path) -> dict[str, dict]:
    return card_figures.stage_reports(stage_dirs(run))


def settings(**card) -> publish.Settings:
    publish_params = section(load_params(REPO / "params.yaml"), "publish")
    publish_params = publish_params | {"repo_id": REPO_ID, "shard_rows": SHARD_ROWS, "card": publish_params["card"] | card}
    return publish.Settings.from_params(publish_params)


def build(run: Path, folder: Path, **card) -> publish.Build:
    return publish.build(run / "split", stage_dirs(run), run / "validate" / "results.json", folder, settings(**card), TEMPLATE)


def shard_count(rows: int, shard_rows: int = SHARD_ROWS) -> int:
    return -(-rows // shard_rows)


@pytest.fixture(scope="module")
def built(generations, tmp_path_factory) -> publish.Build:
    """'first' (SaudiNewsNet only) with the licence of its one source declared."""
    return build(generations["first"], tmp_path_factory.mktemp("hub") / "hub", license=SAUDI_LICENSE)


@pytest.fixture(scope="module")
def built_seed(generations, tmp_path_factory) -> publish.Build:
    """The bundled seed corpus with params.yaml as it is."""
    return build(generations["seed"], tmp_path_factory.mktemp("hub-seed") / "hub")


# --------------------------------------------------------------------------- the build


def prose(markdown: str) -> str:
    """Text with line breaks and runs of spaces as single spaces (as Markdown renders it)."""
    return " ".join(markdown.split())


def test_shards_hold_every_article_of_each_split_in_order(built, generations):
    tables = split_tables(generations["first"])
    for split, table in tables.items():
        shards = sorted(built.folder.glob(f"data/{split}-*.parquet"))
        assert [f"data/{p.name}" for p in shards] == shard_names(table, split)
        rows = [pq.ParquetFile(p).metadata.num_rows for p in shards]
        assert all(n <= SHARD_ROWS for n in rows) and sum(rows) == table.height
        published = pl.concat([pl.read_parquet(p) for p in shards])
        assert published.equals(table)
    schema = pq.read_schema(next(built.folder.glob("data/train-*.parquet")))
    assert str(schema.field("text").type) == "string"  # not large_string: datasets reads Value('string')
    assert list(schema.names) == CLUSTERED_ARTICLE_SCHEMA.names() == list(ARTICLE_SCHEMA.names()) + [CLUSTER_ID]


# Runs write_shards alone in a fresh interpreter: its peak RSS (VmHWM, which unlike
# ru_maxrss does not start from the forking parent's size) above what it held before.
_SHARD_MEMORY = """
import json, sys
from pathlib import Path
import psutil
from pipeline.plumbing.io import partition, write_json
from pipeline.plumbing.params import load_params, section
from pipeline.release import publish
settings = publish.Settings.from_params(section(load_params(sys.argv[3]), "publish") | {"shard_rows": int(sys.argv[4])})
before = psutil.Process().memory_info().rss
shards, _ = publish.write_shards(Path(sys.argv[1]), Path(sys.argv[2]), settings)
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"shards": len(shards), "grew": peak - before}))
"""


def test_shards_are_built_a_row_group_at_a_time_whatever_their_size(tmp_path):
    """The build's memory follows neither publish.shard_rows nor the split: here one shard
    holds the whole split (issue 10: a 100k-row shard was held about 5 times while written,
    2.5 GB at 300k articles)."""
    rows, chars = 40_000, 2_500
    text = "خبر " * (chars // 4)  # 2,500 characters, 4.6 KB in UTF-8: the split holds about 185 MB of text
    train = pl.select(pl.int_range(rows).alias("n")).select(
        id=pl.format("{}", "n"), drop=pl.lit("big"), source_file=pl.format("f{}", "n"), title=pl.lit("عنوان"),
        text=pl.format("{} {}", "n", pl.lit(text)), **{c: pl.lit(None) for c in ("url", "source", "published_date", "raw_sha256")},
        n_chars=pl.lit(chars), n_words=pl.lit(chars // 4), language=pl.lit("ar"), language_score=pl.lit(1.0),
        cluster_id=pl.format("{}", "n"),
    )
    split_dir, folder = tmp_path / "split", tmp_path / "release"
    (folder / "data").mkdir(parents=True)
    partition(split_dir, "big").mkdir(parents=True)
    write_json(split_dir / "report.json", {"drops": ["big"]})  # the split stage's layout, as split_table reads it
    for name in SPLITS:
        table = train if name == "train" else train.head(0)
        conform(table, CLUSTERED_ARTICLE_SCHEMA).write_parquet(partition(split_dir, "big") / f"{name}.parquet",
                                                               row_group_size=10_000)
    measured = subprocess.run([sys.executable, "-c", _SHARD_MEMORY, str(split_dir), str(folder), str(REPO / "params.yaml"),
                               str(rows)], capture_output=True, text=True, check=True, cwd=REPO)
    figures = json.loads(measured.stdout.splitlines()[-1])
    assert figures["shards"] == 1
    # Measured: 370-390 MiB with shards of 10,000, 20,000 or 40,000 rows (a 10,000-row batch
    # of the split, 46 MB of text, held several times over while it is read, converted,
    # hashed for the manifest and written); 750 MiB when a shard was converted and written whole.
    assert figures["grew"] < 520 * 2**20, f"grew {figures['grew'] / 2**20:.0f} MiB while writing a 40,000-row shard"


def test_manifest_and_validation_results_ship_with_the_release(built, generations):
    tables = split_tables(generations["first"])
    # A part a split and drop, holding that drop's articles in that split.
    parts = {path.relative_to(built.folder).as_posix(): pl.read_parquet(path)
             for path in (built.folder / MANIFEST_DIR).iterdir()}
    assert set(parts) == {f"{MANIFEST_DIR}/{split}-{drop}.parquet"
                          for split, table in tables.items() for drop in table["drop"].unique()}
    for path, rows in parts.items():
        split, drop = path.removeprefix(f"{MANIFEST_DIR}/").removesuffix(".parquet").split("-", 1)
        assert rows["id"].to_list() == tables[split].filter(pl.col("drop") == drop)["id"].to_list(), path
        assert rows["split"].unique().to_list() == [split] and rows["drop"].unique().to_list() == [drop]
    manifest = manifests.read_manifest(built.folder)
    expected = pl.concat([t.select("id", split=pl.lit(s)) for s, t in tables.items()])
    assert manifest.select("id", "split").sort("id").equals(expected.sort("id"))
    assert manifest["content_sha256"].str.len_chars().unique().to_list() == [64]
    results = generations["first"] / "validate" / "results.json"
    assert (built.folder / publish.VALIDATION_PATH).read_bytes() == results.read_bytes()
    record = json.loads((built.folder / RELEASE_PATH).read_text())
    assert record["version"] == "1.0.0" and record["articles"] == manifest.height
    assert set(record["files"]) == {p.relative_to(built.folder).as_posix() for p in built.folder.rglob("*")
                                    if p.is_file() and p.name not in ("README.md", "release.json")
                                    and publish.STATE_DIR not in p.parts}  # what the build keeps for the next
    assert publish.VALIDATION_PATH in record["files"]


def test_card_metadata_is_what_the_hub_and_datasets_read(built, generations):
    metadata, body = card.split_card((built.folder / "README.md").read_text())
    tables = split_tables(generations["first"])
    assert metadata["language"] == ["ar"] and metadata["license"] == SAUDI_LICENSE
    assert metadata["pretty_name"] and metadata["tags"] and metadata["task_categories"]
    assert metadata["size_categories"] == ["n<1K"]
    assert metadata["configs"] == [{"config_name": "default", "default": True, "data_files": [
        {"split": s, "path": f"data/{s}-*"} for s in SPLITS]}]
    info = metadata["dataset_info"]
    assert [f["name"] for f in info["features"]] == CLUSTERED_ARTICLE_SCHEMA.names()
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {s: t.height for s, t in tables.items()}
    assert info["download_size"] == sum(p.stat().st_size for p in built.folder.glob("data/*.parquet"))


@pytest.mark.parametrize("release", ["built", "built_seed"])
def test_card_metadata_is_what_the_hub_allows(release, request):
    """Issue 14.3: huggingface_hub reads the header as DatasetCardData, and every licence,
    task, size category and language is one of the Hub's values (hub_rules.json)."""
    from huggingface_hub import DatasetCard

    text = (request.getfixturevalue(release).folder / "README.md").read_text()
    metadata, _ = card.split_card(text)
    assert DatasetCard(text).data.to_dict() == metadata
    assert metadata_errors(metadata) == []


def test_the_test_hub_refuses_metadata_the_hub_does_not_allow(built):
    from huggingface_hub import HfApi

    metadata, body = card.split_card((built.folder / "README.md").read_text())
    wrong = metadata | {"license": "cc-by-nc-sa", "task_categories": ["text-generation", "text-classificaton"],
                        "size_categories": ["1K-10K"], "language": ["arabic"]}
    with LocalHub(TOKEN) as hub:
        api = HfApi(endpoint=hub.url, token=TOKEN)
        api.create_repo(REPO_ID, repo_type="dataset")
        with pytest.raises(ValueError, match="Invalid metadata in README.md") as refused:
            api.upload_file(path_or_fileobj=f"---\n{card.dump_metadata(wrong)}\n---\n{body}".encode(), path_in_repo="README.md",
                            repo_id=REPO_ID, repo_type="dataset")
        for value in ("cc-by-nc-sa", "text-classificaton", "1K-10K", "arabic"):
            assert repr(value) in str(refused.value)
        assert "README.md" not in hub.files(REPO_ID)
        api.upload_file(path_or_fileobj=built.folder / "README.md", path_in_repo="README.md", repo_id=REPO_ID,
                        repo_type="dataset")
        assert "README.md" in hub.files(REPO_ID)


def test_card_accounts_for_every_input(built, generations):
    """inputs = published + duplicates + quarantined, each figure counted here from the
    stages' tables, not read from their reports."""
    run, body = generations["first"], prose((built.folder / "README.md").read_text())
    inputs = run_reports(run)["ingest"]["inputs"]
    assert inputs == len(list(SAUDI_SAMPLE.glob("*.json")))  # one article a file
    published = sum(t.height for t in split_tables(run).values())
    duplicates = dedup.scan_corpus(run / "dedup", dedup.DUPLICATES_FILE).select(pl.len()).collect().item()
    quarantine = pl.concat([pl.read_parquet(run / "clean" / "quarantine.parquet").select("stage", "reason"),  # ingest's and clean's
                            split_stage.split_table(run / "split", "quarantine").select("stage", "reason").collect()])
    assert duplicates and quarantine.height and inputs == published + duplicates + quarantine.height
    at = quarantine["stage"].value_counts()
    at = dict(zip(at["stage"], at["count"]))
    assert (f"**{inputs:,} inputs = {published:,} published + {duplicates:,} duplicates removed + "
            f"{quarantine.height:,} quarantined** ({at.get('ingest', 0):,} at ingest, {at.get('clean', 0):,} at clean, "
            f"{at.get('split', 0):,} at split)") in body
    for (stage, reason), rows in quarantine.group_by("stage", "reason"):
        assert f"| {stage} | `{reason}` | {rows.height:,} | {QUARANTINE_REASONS[reason]} |" in body
    assert (f"| {published:,} | {' / '.join(f'{t.height:,}' for t in split_tables(run).values())} | "
            f"{at.get('split', 0):,} quarantined (similar to published articles of two splits) |") in body


def test_card_cleaning_figures_are_the_clean_stage_outputs(built, generations):
    body = prose((built.folder / "README.md").read_text())
    removed = (pl.read_parquet(generations["first"] / "clean" / "removed_lines.parquet")
               .group_by("removed_as").agg(pl.col("n_articles").sum()).sort("removed_as"))
    by_rule = ", ".join(f"{rule.replace('_', ' ')}: {n:,}" for rule, n in removed.iter_rows())
    assert f"{removed['n_articles'].sum():,} boilerplate lines removed from the articles ({by_rule});" in body


def test_card_dedup_figures_are_the_dedup_stage_outputs(built, generations):
    run, body = generations["first"], prose((built.folder / "README.md").read_text())
    duplicates = dedup.scan_corpus(run / "dedup", dedup.DUPLICATES_FILE).collect()
    exact, near = (duplicates.filter(pl.col("kind") == kind) for kind in ("exact", "near"))
    assert exact.height and near.height
    assert (f"Removed: {duplicates.height:,} articles, {exact.height:,} exact copies and {near.height:,} near duplicates "
            f"(lowest similarity {near['similarity'].min():.3f})") in body
    sizes = duplicates.group_by("duplicate_of").len().group_by("len").len(name="clusters").sort("len")
    histogram = ", ".join(f"{size + 1}: {clusters:,}" for size, clusters in sizes.iter_rows())
    clusters = duplicates["duplicate_of"].n_unique()
    assert f"{clusters:,} published articles had duplicates removed; clusters (published article + its duplicates) of {histogram}." in body
    review = dedup.scan_corpus(run / "dedup", dedup.REVIEW_FILE).select(pl.len()).collect().item()
    assert f"{review:,} pairs listed for review" in body


def test_card_validation_summary_is_the_validate_results(built, generations):
    body = prose((built.folder / "README.md").read_text())
    results = json.loads((generations["first"] / "validate" / "results.json").read_text())
    assert results["success"] and f"**{results['passed']} of {results['expectations']} expectations passed**" in body
    for suite in {check["suite"] for check in results["checks"]}:
        n = sum(check["suite"] == suite for check in results["checks"])
        assert f"| `{suite}` | {n} | {n} | 0 |" in body
    assert f"[`{publish.VALIDATION_PATH}`]({publish.VALIDATION_PATH})" in body and "Failed:" not in body


def test_card_split_and_contamination_figures_are_the_split_stage_outputs(built, generations):
    run, body = generations["first"], prose((built.folder / "README.md").read_text())
    tables = split_tables(run)
    total = sum(t.height for t in tables.values())
    ratios = section(load_params(REPO / "params.yaml"), "split")["ratios"]
    for name, table in tables.items():
        share, target = f"{100 * table.height / total:.1f}%", f"{100 * ratios[name]:.1f}%"
        assert f"| {name} | {table.height:,} | {share} ({target}) |" in body
        assert f"| {name} | {table.height:,} | {share} | {target} | {table['source'].n_unique()} |" in body
    contamination = pl.read_parquet(run / "split" / "contamination.parquet")
    overlap = section(load_params(REPO / "params.yaml"), "split")["contamination"]["article_overlap"]
    for name in ("validation", "test"):
        rows = contamination.filter(pl.col("split") == name)
        n = tables[name].height
        sharing, contaminated = rows.height, rows.filter(pl.col("share_in_train") >= overlap).height
        assert sharing  # the sample has held-out articles sharing a 13-gram with train
        assert f"| {name} | {n:,} | {sharing:,} ({100 * sharing / n:.1f}%) | {contaminated:,} ({100 * contaminated / n:.1f}%) |" in body
    assert "train: **passed** (worst:" in body


def test_card_says_what_is_known_of_each_drop(built, generations):
    body = prose((built.folder / "README.md").read_text())
    tables = pl.concat(split_tables(generations["first"]).values())
    outlets = tables["source"].value_counts(sort=True)
    assert f"{tables.height:,} articles from 1 drop, {outlets.height} outlets, published" in body
    assert f"| {outlets.row(0)[0]} | {outlets.row(0)[1]:,} |" in body
    provenance = section(load_params(REPO / "params.yaml"), "publish")["provenance"]["saudinewsnet*"]
    assert f"| saudinewsnet | {tables.height:,} | {provenance['origin']} ([source]({provenance['url']})) | `{SAUDI_LICENSE}` |" in body
    assert f"The {tables.height:,} articles of saudinewsnet are under `{SAUDI_LICENSE}`" in body
    assert "No licence is known" not in body and "**Note:**" not in body


def test_card_has_the_sections_of_the_hub_template_filled_from_the_run(built, generations):
    """Issue 14.2: uses, out-of-scope uses, curation rationale, personal and sensitive
    information, recommendations, authors and contact, an example record; limitations
    with the run's own shares; the true row group size."""
    markdown = (built.folder / "README.md").read_text()
    headings = [line.lstrip("#").strip() for line in markdown.splitlines() if line.startswith(("## ", "### "))]
    for heading in ("Uses", "Direct use", "Out-of-scope use", "Curation rationale", "Personal and sensitive information",
                    "Limitations and biases", "Recommendations", "Card authors and contact", "Citation"):
        assert heading in headings, heading
    body = prose(markdown)
    tables = pl.concat(split_tables(generations["first"]).values())
    first_train = split_tables(generations["first"])["train"].row(0, named=True)
    assert f'"id": "{first_train["id"]}"' in markdown and f'"title": {json.dumps(first_train["title"], ensure_ascii=False)}' in markdown
    outlets = tables["source"].value_counts(sort=True)
    largest, largest_n = outlets.row(0)
    assert f"Outlets: {outlets.height} outlets; the largest, {largest}, has {100 * largest_n / tables.height:.1f}% of the articles" in body
    years = tables["published_date"].dt.year().value_counts()
    assert "Countries of the outlets (as recorded for each drop): Saudi Arabia 100.0%." in body
    assert "Publication years: " + ", ".join(f"{year} {100 * n / tables.height:.1f}%" for year, n in sorted(years.rows())) + "." in body
    assert "Commercial use of the articles under a NonCommercial licence" in body  # SaudiNewsNet is CC BY-NC-SA
    assert f"row groups of {settings().row_group_rows:,} rows" in body and "a few thousand" not in body
    assert f"Arabic News Corpus maintainers. Contact: [https://huggingface.co/datasets/{REPO_ID}/discussions]" in body
    citations = markdown.split("## Citation", 1)[1]
    assert "author = {{Arabic News Corpus maintainers}}" in citations
    assert "author = {Alhagri, Mohammed}" in citations and "year = {2015}" in citations
    metadata, _ = card.split_card(markdown)
    assert "text-classification" not in metadata["task_categories"]


def test_card_shows_the_language_mix_when_clean_reports_it(generations, tmp_path):
    """clean's report.json gains counts per identified language (report["languages"])."""
    first, run = generations["first"], tmp_path / "run"
    run.mkdir()
    for stage in card_figures.REPORTING_STAGES:
        if stage != "clean":
            (run / stage).symlink_to(first / stage)
    (run / "clean").mkdir()
    report = json.loads((first / "clean" / "report.json").read_text())
    (run / "clean" / "report.json").write_text(json.dumps(report | {"languages": {"en": 5, "ar": 190, "fa": 5}}))
    result = publish.build(run / "split", stage_dirs(run), run / "validate" / "results.json", tmp_path / "hub",
                           settings(license=SAUDI_LICENSE), TEMPLATE)
    body = prose((result.folder / "README.md").read_text())
    assert "Languages (identified by the clean stage, of its input): ar 95.0%, en 2.5%, fa 2.5%." in body


def test_seed_corpus_card_is_honest_about_what_it_lacks_and_loads(built_seed, generations):
    """The bundled corpus: 5 articles of one drop, no outlet, no date, no licence, and an
    empty test split. (`datasets` loads this folder in test_datasets_loads_each_release...)"""
    tables = split_tables(generations["seed"])
    assert {name: t.height for name, t in tables.items()} == {"train": 3, "validation": 2, "test": 0}
    metadata, body = card.split_card((built_seed.folder / "README.md").read_text())
    body = prose(body)
    assert "**v1.0.0**: 5 articles from 1 drop, outlets not recorded, publication dates not recorded." in body
    assert "**Test is empty in this release.**" in body and "| test | 0 | 0.0% (10.0%) | – | – | 0 | – |" in body
    assert [f["split"] for f in metadata["configs"][0]["data_files"]] == ["train", "validation"]
    assert [s["name"] for s in metadata["dataset_info"]["splits"]] == ["train", "validation"]
    assert not list(built_seed.folder.glob("data/test-*"))
    assert "| test | 0 | – | – | – |" in body  # no contamination figures for an empty split
    assert metadata["license"] == "unknown"
    assert "| seed | 5 | Five Arabic news articles" in body and "| `unknown` |" in body
    assert "No licence is known for the 5 articles of seed: they remain the work of their publishers" in body
    assert "1 outlets" not in body and "(date unknown)" not in body
    assert "Removed: none; no two texts reach the threshold." in body and "No input was quarantined." in body


def test_headline_metrics_are_flat_and_add_up(generations):
    """What `dvc metrics show` lists of a run with quarantined articles and duplicates."""
    metrics = {path.stem: json.loads(path.read_text()) for path in (generations["second"] / "metrics").glob("*.json")}
    check_headline_funnel(metrics)
    assert metrics["clean"]["quarantined"] and metrics["dedup"]["duplicates"]


def test_a_licence_the_drops_do_not_have_is_flagged(generations, tmp_path):
    result = build(generations["second"], tmp_path / "hub", license=SAUDI_LICENSE)
    body = prose((result.folder / "README.md").read_text())
    assert "No licence is known for the 5 articles of seed" in body
    assert f"**Note:** the `license` metadata (`{SAUDI_LICENSE}`) is not what is known of the drops" in body


def test_a_drop_nobody_described_is_shown_as_such(generations, tmp_path, capfd):
    run = generations["first"]
    undescribed = dataclasses.replace(settings(), provenance={"seed": {"origin": "x", "license": "mit"}})
    result = publish.build(run / "split", stage_dirs(run), run / "validate" / "results.json", tmp_path / "hub",
                           undescribed, TEMPLATE)
    body = prose((result.folder / "README.md").read_text())
    n = sum(t.height for t in split_tables(run).values())
    assert f"| saudinewsnet | {n:,} | *not documented* | `unknown` |" in body
    assert f"No licence is known for the {n:,} articles of saudinewsnet" in body
    assert "warning: nothing is known of drop(s) saudinewsnet" in capfd.readouterr().err


def test_values_from_the_drops_are_escaped_where_the_card_prints_them(generations, tmp_path):
    """Issue 11.1: outlets, provenance and the like come from the drops; in the card they are
    text, never markup, and a newline or a `|` in them does not break a table."""
    first, run = generations["first"], tmp_path / "run"
    run.mkdir()
    for stage in card_figures.REPORTING_STAGES:
        if stage != "split":
            (run / stage).symlink_to(first / stage)
    shutil.copytree(first / "split", run / "split")
    script, broken = "<script>alert(1)</script>", "Al | Riyadh\nNews"
    (train_file,) = (run / "split").glob("drop=*/train.parquet")  # one drop
    train = pl.read_parquet(train_file)
    row = pl.int_range(pl.len())
    train.with_columns(source=pl.when(row < 60).then(pl.lit(script)).when(row < 100).then(pl.lit(broken))
                       .otherwise("source")).write_parquet(train_file)
    hostile = dataclasses.replace(settings(license=SAUDI_LICENSE), provenance={"saudinewsnet*": {
        "origin": "SNN | <img src=x onerror=alert(2)>\n| forged | row |", "url": "javascript:alert(3)",
        "license": SAUDI_LICENSE, "notes": "<b>bold</b> `code` [link](https://example.org)"}})
    result = publish.build(run / "split", stage_dirs(run), run / "validate" / "results.json", tmp_path / "hub",
                           hostile, TEMPLATE)
    markdown = (result.folder / "README.md").read_text()

    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<script" not in html and "<img" not in html and "<b>" not in html and "javascript:" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    outlets = next(t for t in html.split("<table>") if "<th>Outlet</th>" in t)
    right = '<td style="text-align:right">'
    assert f"<td>{script.replace('<', '&lt;').replace('>', '&gt;')}</td>\n{right}60</td>" in outlets
    assert f"<td>Al | Riyadh News</td>\n{right}40</td>" in outlets
    drops = next(t for t in html.split("<table>") if "<th>Drop</th>" in t)
    assert drops.count("<tr>") == 2  # header and the one drop: no forged row
    assert "<td>SNN | &lt;img src=x onerror=alert(2)&gt; | forged | row |</td>" in drops
    assert "&lt;b&gt;bold&lt;/b&gt; `code` [link](https://example.org)" in html


def test_figures_from_another_run_stop_the_build(generations, tmp_path):
    """Split tables of one run with the reports of another (a stage re-run by hand)."""
    first, second = generations["first"], generations["second"]
    with pytest.raises(card_figures.CountsError, match="not from one run") as refused:
        publish.build(first / "split", stage_dirs(second), second / "validate" / "results.json", tmp_path / "hub",
                      settings(), TEMPLATE)
    assert "published = dedup's kept articles" in str(refused.value)
    assert not (tmp_path / "hub").exists()  # checked before anything is written


def test_build_is_byte_identical(built, generations, tmp_path):
    again = build(generations["first"], tmp_path / "again", license=SAUDI_LICENSE)
    files = sorted(p.relative_to(built.folder) for p in built.folder.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again.folder) for p in again.folder.rglob("*") if p.is_file())
    for path in files:
        assert (built.folder / path).read_bytes() == (again.folder / path).read_bytes(), path


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def shard_stats(folder: Path) -> dict[str, tuple[int, int]]:
    """Inode and modification time of each shard: the same when the build left it alone."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (folder / "data").glob("*.parquet")}


def test_a_new_drop_writes_its_shards_only_and_the_build_equals_one_from_scratch(generations, tmp_path):
    """The build keeps the shards of a drop and split whose rows, params and code are those
    they were built from: after the seed drop is added only its shards are written, and
    the folder is byte for byte a build from an empty folder; a drop gone, a changed row
    group size or a shard deleted by hand make it what a build from scratch makes too."""
    first, second = generations["first"], generations["second"]
    folder = tmp_path / "hub"
    build(first, folder)
    kept = shard_stats(folder)
    assert all(name.split("-")[1] == "saudinewsnet" for name in kept)
    unchanged = {split: table.filter(pl.col("drop") == "saudinewsnet") for split, table in split_tables(first).items()}
    assert all(unchanged[split].equals(table.filter(pl.col("drop") == "saudinewsnet"))
               for split, table in split_tables(second).items())  # the seed drop moves no earlier article

    incremental = build(second, folder)
    assert folder_files(folder) == folder_files(build(second, tmp_path / "scratch").folder)
    # each shard's hash is taken as it is written and kept with it: what release.json lists
    state = json.loads((folder / publish.STATE_FILE).read_text(encoding="utf-8"))
    hashed = {shard["path"]: shard["sha256"] for drop_split in state.values() for shard in drop_split["shards"]}
    assert hashed and hashed == {path: hashlib.sha256((folder / path).read_bytes()).hexdigest() for path in hashed}
    listed = json.loads((folder / RELEASE_PATH).read_text(encoding="utf-8"))["files"]
    assert {path: listed[path]["sha256"] for path in hashed} == hashed
    after = shard_stats(folder)
    assert {name: after[name] for name in kept} == kept  # not rewritten
    assert {shard.path for shard in incremental.shards} - {f"data/{name}" for name in kept} == {
        path for split, table in split_tables(second).items() for path in shard_names(table.filter(pl.col("drop") == "seed"), split)}

    build(first, folder)  # the seed drop gone again
    assert folder_files(folder) == folder_files(build(first, tmp_path / "scratch-first").folder)
    assert shard_stats(folder) == kept

    (folder / "data" / next(iter(kept))).unlink()
    regrouped = dataclasses.replace(settings(), row_group_rows=50)
    publish.build(first / "split", stage_dirs(first), first / "validate" / "results.json", folder, regrouped, TEMPLATE)
    scratch = publish.build(first / "split", stage_dirs(first), first / "validate" / "results.json", tmp_path / "scratch-50",
                            regrouped, TEMPLATE)
    assert folder_files(folder) == folder_files(scratch.folder)
    assert pq.ParquetFile(next(folder.glob("data/train-*"))).metadata.row_group(0).num_rows == 50


def test_shards_written_a_row_group_at_a_time_are_those_of_the_whole_table_at_once(built, tmp_path):
    """Bytes and num_bytes of each shard are what pyarrow writes and counts for the shard's
    rows converted from Polars in one piece (as earlier releases were built), whatever the
    batches they came in."""
    schema = publish.hub_arrow_schema()
    for shard in built.shards:
        rows = pl.read_parquet(built.folder / shard.path)
        table = pa.Table.from_batches(rows.to_arrow().cast(schema).to_batches(), schema=schema).combine_chunks()
        pq.write_table(table, tmp_path / "whole.parquet", row_group_size=built.settings.row_group_rows,
                       **publish.PARQUET_WRITE_OPTIONS)
        assert (tmp_path / "whole.parquet").read_bytes() == (built.folder / shard.path).read_bytes(), shard.path
        assert shard.arrow_bytes == table.nbytes, shard.path


# Reads croissant.json files (paths or addresses) with mlcroissant, as a user would, and
# prints, for each, its errors, records per record set and metadata as JSON.
CROISSANT_SCRIPT = """
import json, sys
import mlcroissant as mlc
def read(jsonld):
    dataset = mlc.Dataset(jsonld=jsonld)
    records = {rs.name: {r[f"{rs.name}/id"].decode(): r[f"{rs.name}/title"].decode() for r in dataset.records(rs.name)}
               for rs in dataset.metadata.record_sets}
    return {"errors": list(dataset.metadata.issues.errors), "records": records,
            "date_published": str(dataset.metadata.date_published or ""),
            "creators": [c.name for c in dataset.metadata.creators], "cite_as": dataset.metadata.cite_as}
print(json.dumps([read(jsonld) for jsonld in sys.argv[1:]]))
"""


def read_croissant(cache: Path, *jsonld: str) -> list[dict]:
    """What mlcroissant reads from each of `jsonld`, in a fresh interpreter whose downloads go to `cache`."""
    result = subprocess.run([sys.executable, "-c", CROISSANT_SCRIPT, *jsonld], capture_output=True, text=True,
                            env=os.environ | {"CROISSANT_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def expected_records(generation: Path, shard_rows: int = SHARD_ROWS) -> dict[str, dict[str, str]]:
    """id -> title of the articles of each shard's record set (train-seed-00000-of-00002...)."""
    expected = {}
    for split, table in split_tables(generation).items():
        for (drop,), of_drop in table.group_by("drop", maintain_order=True):
            count = shard_count(of_drop.height, shard_rows)
            for index in range(count):
                chunk = of_drop.slice(index * shard_rows, shard_rows)
                expected[f"{split}-{drop}-{index:05d}-of-{count:05d}"] = dict(zip(chunk["id"], chunk["title"]))
    return expected


def test_croissant_of_a_build_loads_locally(built, built_seed, generations, tmp_path):
    reads = read_croissant(tmp_path, str(built.folder / "croissant.json"), str(built_seed.folder / "croissant.json"))
    for read, generation in zip(reads, ("first", "seed")):
        assert not read["errors"]
        assert read["records"] == expected_records(generations[generation])
        assert read["creators"] == ["Arabic News Corpus maintainers"] and not read["date_published"]  # not released yet


def test_the_dvc_stage_builds_offline_and_diff_compares_local_builds(built, generations, tmp_path):
    """`corpus publish --build-only` (what `dvc repro` runs) never calls the Hub: here
    the Hub is an address where nothing listens."""
    run = generations["second"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")} | {
        "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": TOKEN}
    command = [str(VENV_BIN / "corpus"), "publish", "--build-only", "--input", str(run / "split"),
               "--stage-outputs", str(run), "--validation", str(run / "validate" / "results.json"),
               "--output", str(tmp_path / "hub"), "--metrics", str(tmp_path / "publish.json"), "--card-template", str(TEMPLATE)]
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
    downloads: dict[str, list[str]] = field(default_factory=dict)  # repo files each run downloaded (`downloaded`)


def hub_env(hub: LocalHub, home: Path, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(home), "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_UPDATE_DOWNLOAD_COUNTS": "0", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    if token:
        env["HF_TOKEN"] = token
    return env


def params_for_hub(shard_rows: int) -> dict:
    """params.yaml with the test Hub's repo and `shard_rows`."""
    params = load_params(REPO / "params.yaml")
    params["publish"] |= {"repo_id": REPO_ID, "shard_rows": shard_rows}
    return params


def publish_command(root: Path, run: Path, params_file: str, *args: str) -> list[str]:
    """`corpus publish` of a pipeline run's outputs, its folders and params file in `root`."""
    return [str(VENV_BIN / "corpus"), "--params", str(root / params_file), "publish",
            "--input", str(run / "split"), "--stage-outputs", str(run),
            "--validation", str(run / "validate" / "results.json"),
            "--output", str(root / "hub"), "--release-dir", str(root / "release"),
            "--metrics", str(root / "metrics" / "publish.json"), "--card-template", str(TEMPLATE), *args]


def downloaded(requests: list[tuple[str, str]]) -> list[str]:
    """The repo files these requests to the local Hub downloaded (GET .../resolve/<revision>/<path>)."""
    return [path.split("/resolve/", 1)[1].split("/", 1)[1] for method, path in requests
            if method == "GET" and "/resolve/" in path]


@pytest.fixture(scope="module")
def session(generations, gate_failures, built_seed, tmp_path_factory) -> Session:
    """Release the corpus as a maintainer would: two runs whose gates failed (refused), a
    dry run, v1.0.0, an unchanged re-run, an edit of the card on the Hub, a new drop
    released as v1.0.1 (refused) and then as v1.1.0 through three interrupted attempts, an
    attempt to rewrite v1.1.0, and a repackaged v1.1.1 with smaller shards."""
    root = tmp_path_factory.mktemp("releases")
    runs = generations | gate_failures
    (root / "params.yaml").write_text(yaml.safe_dump(params_for_hub(SHARD_ROWS)))
    (root / "params-small-shards.yaml").write_text(yaml.safe_dump(params_for_hub(SHARD_ROWS // 2)))

    with LocalHub(TOKEN) as hub:
        result = Session(hub, root / "hf-home")

        def corpus(name: str, run_name: str, *args: str, token: str | None = TOKEN, params_file: str = "params.yaml"):
            requests_before = len(hub.requests)
            result.runs[name] = subprocess.run(publish_command(root, runs[run_name], params_file, *args), cwd=root,
                                               capture_output=True, text=True, env=hub_env(hub, result.home, token))
            result.commits[name] = hub.commit_count(REPO_ID)
            result.tags[name] = dict(hub.repos[REPO_ID].tags) if REPO_ID in hub.repos else {}
            result.heads[name] = hub.repos[REPO_ID].branches["main"] if REPO_ID in hub.repos else ""
            result.downloads[name] = downloaded(hub.requests[requests_before:])

        corpus("validation failed", "validation failed")
        corpus("contaminated", "contaminated")
        corpus("dry run", "first", token=None)
        corpus("v1.0.0", "first")
        corpus("v1.0.0 again", "first")
        readme = hub.files(REPO_ID)["README.md"].decode()
        license_line = f"license: {params_for_hub(SHARD_ROWS)['publish']['card']['license']}"
        edited = readme.replace(license_line, f"{license_line}\nannotations_creators:\n- no-annotation", 1)
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
        requests_before = len(hub.requests)
        result.runs["diff"] = subprocess.run(diff, cwd=root, capture_output=True, text=True, env=hub_env(hub, result.home, None))
        result.downloads["diff"] = downloaded(hub.requests[requests_before:])
        result.runs["load"] = subprocess.run(
            [sys.executable, "-c", LOAD_SCRIPT, REPO_ID, "v1.0.0", "v1.1.0", "v1.1.1", str(root / "hub"), str(built_seed.folder)],
            cwd=root, capture_output=True, text=True, env=hub_env(hub, root / "hf-home-reader", None),
        )
        yield result


# Loads releases with `datasets`, as a user would, and prints what it got as JSON.
LOAD_SCRIPT = """
import json, sys
import datasets
datasets.disable_progress_bars()
repo_id, *revisions, folder, seed_folder = sys.argv[1:]
loaded = {revision: datasets.load_dataset(repo_id, revision=revision) for revision in revisions}
loaded["folder"] = datasets.load_dataset(folder)
loaded["seed folder"] = datasets.load_dataset(seed_folder)
print(json.dumps({name: {split: {"rows": ds.num_rows, "features": {k: repr(v) for k, v in ds.features.items()},
                                 "texts": dict(zip(ds["id"], ds["text"]))}
                         for split, ds in dataset.items()} for name, dataset in loaded.items()}))
"""


def outcome(session: Session, name: str) -> str:
    run = session.runs[name]
    return f"exit {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"


def train_shards(generation: Path, shard_rows: int = SHARD_ROWS) -> list[str]:
    return shard_names(split_tables(generation)["train"], "train", shard_rows)


def shard_names(table: pl.DataFrame, split: str, shard_rows: int = SHARD_ROWS) -> list[str]:
    """The shards of a split table: a drop's articles in shards of its own."""
    names = []
    for drop, rows in table.group_by("drop", maintain_order=True).len().iter_rows():
        count = shard_count(rows, shard_rows)
        names += [f"data/{split}-{drop}-{i:05d}-of-{count:05d}.parquet" for i in range(count)]
    return names


def test_a_run_whose_validation_failed_is_never_released(session, gate_failures):
    run = session.runs["validation failed"]
    assert run.returncode == 2, outcome(session, "validation failed")
    report = run_reports(gate_failures["validation failed"])["validate"]
    assert report["failed"] and not report["success"]
    assert "refusing to release v1.0.0, nothing was uploaded" in run.stderr
    assert f"the validation did not pass: {report['failed']} of {report['expectations']} expectations failed" in run.stderr
    assert report["failed_expectations"][0] in run.stderr
    assert session.heads["validation failed"] == "" and session.commits["validation failed"] == 0  # no repo made


def test_a_run_whose_contamination_gate_failed_is_never_released(session, gate_failures):
    run = session.runs["contaminated"]
    assert run.returncode == 2, outcome(session, "contaminated")
    gate = run_reports(gate_failures["contaminated"])["split"]["contamination"]["gate"]
    assert "refusing to release v1.0.0, nothing was uploaded" in run.stderr
    assert f"the split's contamination gate failed: {gate['contaminated_share']:.2%} of the articles" in run.stderr
    assert "the validation did not pass" not in run.stderr
    assert session.heads["contaminated"] == "" and session.commits["contaminated"] == 0


def test_without_a_token_publish_is_a_dry_run(session, generations):
    run = session.runs["dry run"]
    assert run.returncode == 0, outcome(session, "dry run")
    assert "create dataset repo tests/arabic-news" in run.stdout
    assert f"upload  {train_shards(generations['first'])[0]}" in run.stdout
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


def test_a_release_after_a_new_drop_sends_its_shards_and_the_changed_files_only(session, generations):
    """v1.1.0 adds the seed drop to v1.0.0's SaudiNewsNet sample: its commit adds the seed's
    shards and manifest parts and changes the card and the like; no shard or manifest part
    of the earlier drop is sent (the commit's operations, as the Hub received them) and
    nothing is deleted."""
    repo = session.hub.repos[REPO_ID]
    commit = repo.commits[session.heads["v1.1.0"]]
    before = repo.commits[commit.parent].files
    changed = {path for path, blob in commit.files.items() if path not in before or before[path].oid != blob.oid}
    sent = {path for _, path in commit.operations}
    assert sent == changed and {operation for operation, _ in commit.operations} <= {"file", "lfsFile"}
    shards = {path for path in changed if path.startswith("data/")}
    seed_shards = {path for split in SPLITS for path in shard_names(split_tables(generations["second"])[split].filter(
        pl.col("drop") == "seed"), split)}
    assert shards == seed_shards and len(seed_shards) == 2  # train and validation
    parts = {path for path in changed if path.startswith(f"{MANIFEST_DIR}/")}
    assert parts == {f"{MANIFEST_DIR}/{split}-seed.parquet" for split in ("train", "validation")}
    assert changed - shards - parts <= {"README.md", RELEASE_PATH, "croissant.json", "validation/results.json"}
    assert set(before) <= set(commit.files)  # nothing deleted
    assert not [path for path in commit.files if path.startswith(f"{publish.STATE_DIR}/")]  # the build's state stays home
    first_files = {path for path in before if path.startswith(("data/", f"{MANIFEST_DIR}/"))}
    assert first_files and all(commit.files[path].oid == before[path].oid for path in first_files)


def test_an_existing_tag_is_never_rewritten(session):
    run = session.runs["v1.1.0 rewritten"]
    assert run.returncode == 2, outcome(session, "v1.1.0 rewritten")
    assert "v1.1.0 already exists on tests/arabic-news with different data" in run.stderr
    assert session.commits["v1.1.0 rewritten"] == session.commits["v1.1.0"]


def test_a_repackaged_release_is_a_patch_that_removes_stale_shards(session, generations):
    run = session.runs["v1.1.1"]
    assert run.returncode == 0, outcome(session, "v1.1.1")
    assert "patch after v1.1.0: 0 added, 0 removed, 0 changed, 0 moved" in run.stdout
    before, after = train_shards(generations["second"]), train_shards(generations["second"], SHARD_ROWS // 2)
    assert len(after) > len(before)
    # The seed's one train shard is the same file at either size: it stays, unsent.
    stale = set(before) - set(after)
    assert stale and all(f"delete  {path}" in run.stdout for path in stale)
    kept = set(before) & set(after)
    assert kept and not any(f"delete  {path}" in run.stdout or f"upload  {path}" in run.stdout for path in kept)
    files = session.hub.files(REPO_ID)
    assert sorted(p for p in files if p.startswith("data/train-")) == sorted(after)
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


def test_what_changed_since_the_last_release_is_read_from_the_manifest_parts_that_differ(session):
    """v1.0.1 and v1.1.0 add the seed drop: its manifest parts are new and the earlier drop's
    are the files v1.0.0 has, so finding the 5 added articles downloads no manifest file;
    nor does the repackaged v1.1.1 (same rows). `corpus diff` of two tags reads both whole."""
    understated = session.runs["v1.0.1 understated"]
    assert "(5 added, 0 removed, 0 changed, 0 moved)" in understated.stderr, outcome(session, "v1.0.1 understated")
    for name in ("v1.0.1 understated", "v1.1.0", "v1.1.1"):
        assert not [path for path in session.downloads[name] if is_manifest_file(path)], name
    manifest_files = {tag: {path for path in session.hub.files(REPO_ID, tag) if is_manifest_file(path)}
                      for tag in ("v1.0.0", "v1.1.0")}
    assert manifest_files["v1.0.0"] < manifest_files["v1.1.0"]
    # (a file of the same content in both tags is downloaded once, then read from the cache)
    assert set(session.downloads["diff"]) >= manifest_files["v1.1.0"]


def test_a_release_whose_manifest_is_one_file_is_still_compared_and_its_file_deleted(generations, built, tmp_path):
    """Releases built before the manifest parts carry manifest/records.parquet: the next
    release diffs against it and deletes it."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_for_hub(SHARD_ROWS)))
    whole = tmp_path / "records.parquet"
    manifests.read_manifest(built.folder).write_parquet(whole)
    record = {"version": "1.0.0", "files": {SINGLE_FILE_MANIFEST_PATH: {"sha256": "", "bytes": whole.stat().st_size}}}
    with LocalHub(TOKEN) as hub:
        owner, name = REPO_ID.split("/")
        hub.create_repo({"name": name, "organization": owner, "type": "dataset"})
        hub.put_files(REPO_ID, {SINGLE_FILE_MANIFEST_PATH: whole.read_bytes(), RELEASE_PATH: json.dumps(record).encode()})
        hub.repos[REPO_ID].tags["v1.0.0"] = hub.repos[REPO_ID].branches["main"]
        run = subprocess.run(publish_command(tmp_path, generations["second"], "params.yaml", "--dry-run", "--version", "1.1.0"),
                             cwd=tmp_path, capture_output=True, text=True, env=hub_env(hub, tmp_path / "hf-home", TOKEN))
    assert run.returncode == 0, run.stderr
    assert "minor after v1.0.0: 5 added, 0 removed, 0 changed, 0 moved" in run.stdout
    assert f"delete  {SINGLE_FILE_MANIFEST_PATH}" in run.stdout


def test_datasets_loads_each_release_as_the_pipeline_wrote_it(session, generations):
    run = session.runs["load"]
    assert run.returncode == 0, outcome(session, "load")
    loaded = json.loads(run.stdout.splitlines()[-1])
    expected = {"v1.0.0": "first", "v1.1.0": "second", "v1.1.1": "second", "folder": "second", "seed folder": "seed"}
    for name, generation in expected.items():
        tables = {split: table for split, table in split_tables(generations[generation]).items() if table.height}
        assert set(loaded[name]) == set(tables), name  # an empty split is not there to load
        for split, table in tables.items():
            got = loaded[name][split]
            assert got["rows"] == table.height, (name, split)
            assert got["texts"] == dict(zip(table["id"], table["text"])), (name, split)
            assert got["features"]["text"] == "Value('string')" and got["features"]["published_date"] == "Value('date32')"
            assert got["features"]["n_words"] == "Value('int64')" and list(got["features"]) == CLUSTERED_ARTICLE_SCHEMA.names()


def test_croissant_loads_from_its_hub_address(session, generations, tmp_path):
    """Issue 14.4: mlcroissant reads a release from the address of its croissant.json on the
    Hub (v1.1.1: several shards per split), with the release's date and its creators."""
    assert session.runs["v1.1.1"].returncode == 0, outcome(session, "v1.1.1")
    [read] = read_croissant(tmp_path, f"{session.hub.url}/datasets/{REPO_ID}/resolve/v1.1.1/croissant.json")
    assert not read["errors"]
    assert read["records"] == expected_records(generations["second"], SHARD_ROWS // 2)
    assert read["date_published"].startswith(str(datetime.now(timezone.utc).year))
    assert read["creators"] == ["Arabic News Corpus maintainers"]
    assert "author = {{Arabic News Corpus maintainers}}" in read["cite_as"] and "Alhagri, Mohammed" in read["cite_as"]


def test_the_token_is_never_printed_or_written(session, tmp_path_factory):
    for name, run in session.runs.items():
        assert TOKEN not in run.stdout + run.stderr, name
    leaks = [p for p in session.home.parent.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert leaks == []
    assert any(p.is_file() for p in session.home.rglob("*"))  # the cache was used: the scan saw real files
