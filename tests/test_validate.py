"""The validate stage: GX suites on the deduplicated corpus, thresholds from params.yaml."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import REPO, SAUDI_SAMPLE, SEED

from pipeline import cli
from pipeline.plumbing.io import read_json, scan_partitions, write_table
from pipeline.plumbing.params import load_params, section
from pipeline.plumbing.schema import ARTICLE_SCHEMA
from pipeline.stages import clean, dedup, ingest, validate
from pipeline.text import arabic_text

GX_DIR = REPO / "gx"
SUITES = {path.stem: read_json(path) for path in sorted((REPO / "expectations").glob("*.json"))}


def project_files() -> dict[str, str]:
    """Hashes of the GX project and the suites: validating must not change them."""
    files = sorted(p for d in (GX_DIR, REPO / "expectations") for p in d.rglob("*") if p.is_file())
    return {str(p.relative_to(REPO)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def params() -> dict:
    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory, params) -> Path:
    """Seed + SaudiNewsNet sample, ingested and cleaned by the real stages."""
    root = tmp_path_factory.mktemp("shared")
    raw = root / "raw"
    raw.mkdir()
    (raw / "seed").symlink_to(SEED)
    (raw / "saudinewsnet").symlink_to(SAUDI_SAMPLE)
    ingest.run(raw, root / "ingest", None, section(params, "ingest"), None)
    clean.run(root / "ingest", root / "clean", None, params)
    return root / "clean" / "articles.parquet"


@pytest.fixture(scope="module")
def corpus(cleaned, params) -> Path:
    """The shared corpus deduplicated by the real dedup stage: what `corpus validate` gates."""
    dedup.run(cleaned, cleaned.parent.parent / "dedup", None, params)
    # Its drops' kept articles as one table.
    kept = scan_partitions(cleaned.parent.parent / "dedup", (), "articles.parquet")
    return write_table(kept, cleaned.parent.parent / "corpus.parquet")


def failed(report: validate.ValidationReport) -> set[str]:
    return {check.name for check in report.failed}


def test_shared_corpus_passes_and_writes_results_and_data_docs(corpus, params, tmp_path):
    before = project_files()
    out, metrics = tmp_path / "validate", tmp_path / "metrics" / "validate.json"

    report = validate.run(corpus, out, metrics, params, GX_DIR)

    assert report.success, [(c.name, c.outcome()) for c in report.failed]
    assert report.articles == pl.scan_parquet(corpus).select(pl.len()).collect().item() > 400
    # Every expectation of every suite ran, once.
    assert len(report.checks) == sum(len(suite["expectations"]) for suite in SUITES.values())
    results = read_json(out / "results.json")
    assert results["success"] is True and results["failed"] == 0 and results["passed"] == len(report.checks)
    assert read_json(out / "report.json") == {"articles": report.articles, "expectations": len(report.checks),
                                              "passed": len(report.checks), "failed": 0, "success": True,
                                              "failed_expectations": []}
    assert read_json(metrics) == {"articles": report.articles, "expectations": len(report.checks), "failed": 0,
                                  "passed": True}
    index = (out / "data_docs" / "index.html").read_text(encoding="utf-8")
    for suite in SUITES:
        assert suite in index
    assert len(list((out / "gx_results").rglob("*.json"))) == 3  # rows, deduplicated rows, table
    assert project_files() == before
    # The DVC output depends on the data and params only (GX's files carry run times).
    validate.run(corpus, tmp_path / "again", None, params, GX_DIR)
    for tracked in ("results.json", "report.json"):
        assert (tmp_path / "again" / tracked).read_bytes() == (out / tracked).read_bytes()


def test_duplicate_texts_fail_the_corpus_gate_with_the_ids(cleaned, params, tmp_path, capsys):
    """The clean table before dedup: reprinted wire stories are exact duplicates."""
    not_deduplicated = write_table(pl.scan_parquet(cleaned).with_columns(cluster_id=pl.col("id")), tmp_path / "articles.parquet")
    frame = pl.read_parquet(not_deduplicated).with_columns(key=arabic_text.match_key(pl.col("text")))
    duplicated = set(frame.filter(pl.col("key").is_duplicated())["id"])

    code = cli.main(["--params", str(REPO / "params.yaml"), "validate", "--input", str(not_deduplicated),
                     "--output", str(tmp_path / "out"), "--metrics", str(tmp_path / "m.json"), "--gx", str(GX_DIR)])

    assert code == 1
    results = read_json(tmp_path / "out" / "results.json")
    [check] = [c for c in results["checks"] if not c["success"]]
    assert check["name"] == "article_table: Normalised texts unique (drops: share at least validate.drop_min_unique_text_share)"
    assert check["failing_rows"] == len(duplicated) > 0
    assert check["examples"] and set(check["examples"]) <= duplicated
    console = capsys.readouterr().err
    assert "FAILED article_table: Normalised texts unique" in console
    # Something shows while GX loads (seconds), before the first articles are checked.
    assert console.index("[validate] setting up Great Expectations") < console.index(f"[validate] {frame.height} articles in")
    assert f"{len(duplicated)} of {frame.height} rows" in console and check["examples"][0] in console
    assert read_json(tmp_path / "out" / "report.json")["failed_expectations"] == [check["name"]]
    assert read_json(tmp_path / "m.json") == {"articles": frame.height, "expectations": len(results["checks"]),
                                              "failed": 1, "passed": False}


def test_thresholds_and_boilerplate_regex_come_from_params(corpus, params, tmp_path):
    """Tightened params turn the same table into failures: the suites hold no literals."""
    frame = pl.read_parquet(corpus)
    # A line clean kept under the current lists: curate it, and validation must find it.
    lines = frame.select("id", line=pl.col("text").str.split("\n")).explode("line")
    line = lines.filter(pl.col("line").str.len_chars().is_between(20, 60)).row(0, named=True)
    holders = set(lines.filter(arabic_text.match_key(pl.col("line")) == arabic_text.match_key_of(line["line"]))["id"])
    stricter = copy.deepcopy(params)
    stricter["boilerplate"]["lines"].append(line["line"])
    stricter["quality"]["min_chars"] = 1000
    stricter["validate"]["mean_chars"]["max"] = 1000

    report = validate.run_suites(pl.scan_parquet(corpus), validate.CORPUS, stricter, GX_DIR, tmp_path)

    checks = {c.name: c for c in report.failed}
    assert set(checks) == {
        "article_rows: No residual boilerplate line in text (params boilerplate)",
        "article_rows: n_chars within quality.min_chars .. max_chars",
        "article_table: Mean n_chars within validate.mean_chars",
    }
    residual = checks["article_rows: No residual boilerplate line in text (params boilerplate)"]
    assert residual.failing_rows == len(holders) and set(residual.examples) <= holders
    assert checks["article_rows: n_chars within quality.min_chars .. max_chars"].failing_rows == frame.filter(pl.col("n_chars") < 1000).height
    assert checks["article_table: Mean n_chars within validate.mean_chars"].observed == pytest.approx(frame["n_chars"].mean())


def test_batches_add_up_to_the_whole_table(cleaned, params, tmp_path):
    """Rows are validated batch by batch; failing rows and examples are summed across them."""
    frame = pl.read_parquet(cleaned).with_columns(cluster_id=pl.col("id"))
    frame = frame.with_columns(published_date=pl.when(pl.int_range(pl.len()) % 97 == 0).then(dt.date(1970, 1, 1)).otherwise("published_date"))
    bad_dates = set(frame.filter(pl.col("published_date") == dt.date(1970, 1, 1))["id"])
    small = copy.deepcopy(params)
    small["validate"]["batch_rows"] = 250

    whole = validate.run_suites(frame.lazy(), validate.CORPUS, params, GX_DIR, tmp_path / "whole")
    batched = validate.run_suites(frame.lazy(), validate.CORPUS, small, GX_DIR, tmp_path / "batched")

    assert whole.batches == 1 and batched.batches == -(-frame.height // 250)
    summary = lambda report: {c.name: (c.success, c.rows_checked, c.failing_rows) for c in report.checks}  # noqa: E731
    assert summary(batched) == summary(whole)
    date_check = next(c for c in batched.failed if c.column == "published_date")
    assert date_check.failing_rows == len(bad_dates) and set(date_check.examples) <= bad_dates
    assert len(date_check.examples) == params["validate"]["examples"]


def test_an_empty_table_fails_on_row_count_only(corpus, params, tmp_path):
    report = validate.run_suites(pl.scan_parquet(corpus).head(0), validate.CORPUS, params, GX_DIR, tmp_path)
    assert failed(report) == {"article_table: At least one article", "article_table: Mean n_chars within validate.mean_chars"}


def test_every_suite_parameter_is_filled_from_params_and_schema(params):
    used = set()

    def collect(value):
        if isinstance(value, dict):
            if "$PARAMETER" in value:
                used.add(value["$PARAMETER"])
            for item in value.values():
                collect(item)

    for suite in SUITES.values():
        collect(suite)
    for target in (validate.CORPUS, validate.DROP):
        assert used <= set(validate.suite_parameters(params, target))
    typed = {e["kwargs"]["column"] for s in SUITES.values() for e in s["expectations"] if e["type"] == "expect_column_values_to_be_of_type"}
    assert typed == {*ARTICLE_SCHEMA.names(), "cluster_id"}
    # No threshold written into a suite: every numeric bound is a parameter.
    for suite in SUITES.values():
        for expectation in suite["expectations"]:
            for key in ("min_value", "max_value", "mostly"):
                value = expectation["kwargs"].get(key)
                assert value is None or isinstance(value, dict) or value == 1, (expectation["type"], key, value)


def test_published_date_bounds(params):
    today = dt.date(2026, 11, 23)
    assert validate.published_date_bounds({"published_date": {"min": "1990-01-01", "max": "today"}}, today) == (dt.date(1990, 1, 1), dt.date(2026, 11, 24))
    assert validate.published_date_bounds({"published_date": {"min": "2000-01-01", "max": "2020-12-31"}}, today) == (dt.date(2000, 1, 1), dt.date(2020, 12, 31))


def test_boilerplate_regex_is_the_line_rule_of_clean(cleaned, params):
    """On the real lines of the shared corpus, the regex finds exactly the lines clean
    removes as curated boilerplate."""
    rules = clean.BoilerplateRules.from_params(params["boilerplate"])
    ingested = pl.scan_parquet(sorted((cleaned.parent.parent / "ingest" / "articles").glob("*.parquet")))
    lines = clean.article_lines(clean.normalise_fields(ingested, rules))
    lines = clean.classify_lines(lines, clean.repeated_lines(clean.short_line_counts(lines, rules), rules), rules)
    # Validate keys the lines that can be boilerplate: up to max_prefix_line_chars.
    keyed = pl.when(pl.col("line").str.len_chars() <= rules.max_prefix_line_chars).then(pl.col("key")).otherwise(pl.lit(""))
    lines = lines.filter(pl.col("key") != "").with_columns(
        flagged=keyed.map_batches(
            lambda keys: keys.to_pandas().str.contains(rules.line_key_regex()).to_numpy(), return_dtype=pl.Boolean
        )
    ).collect()

    curated = lines.filter(pl.col("removed_as") == "curated")
    assert curated.height >= 15 and curated["flagged"].all()
    assert lines.filter(pl.col("removed_as").is_null() & pl.col("flagged")).height == 0


def test_marker_regex_finds_markers_clean_cuts(params):
    """Widget and wire markers are cut from line starts and ends: one left over is found."""
    import re

    regex = re.compile(validate.suite_parameters(params, validate.DROP)["boilerplate_marker_regex"])
    assert regex.search("سطر أول\nقال الوزير إن الاجتماع انتهى // انتهى //")
    assert regex.search("Next Previous الرياض - أعلن")
    assert not regex.search("انتهى الاجتماع مساء أمس\nقال Next إن Previous")


def test_a_table_without_cluster_id_fails_the_corpus_gate(corpus, params, tmp_path):
    """The clean output handed to validate (dedup skipped): the missing column is named."""
    report = validate.run_suites(pl.scan_parquet(corpus).drop("cluster_id"), validate.CORPUS, params, GX_DIR, tmp_path)
    checks = {c.name: c for c in report.failed}
    assert checks["article_rows: Columns: the article schema, cluster_id after dedup, the check columns"].observed == {"missing": ["cluster_id"]}
    assert 'The column "cluster_id" in BatchData does not exist' in checks["deduplicated_rows: cluster_id present"].error
    assert {c.suite for c in report.failed} == {"article_rows", "deduplicated_rows"}


def test_excerpts_show_the_failing_part_and_nothing_that_drives_a_terminal():
    words = "كلمة " * 40
    shown = validate.excerpt(f"سطر أول\n{words}<b>وسم</b> {words}", arabic_text.HTML_TAG)
    assert shown.startswith("…") and "<b>وسم</b>" in shown and shown.endswith("…")
    assert len(shown) == validate.EXCERPT_CHARS + 2
    # ESC (colour codes), a right-to-left override and line breaks from a drop are not passed on.
    assert validate.excerpt("a\x1b[31mred\x1b[0m\u202eb\nc") == "a[31mred[0mb ⏎ c"
    assert validate.excerpt(None) == "null"
    # A failing line key is shown with the original line it was computed from.
    keys, original = "اول سطر\nالرءيسيه\nثالث", "أوّل سطر\nالرئيسية\nثالث"
    assert validate.original_excerpt(keys, original, r"(?m)^(?:الرءيسيه)$") == "الرئيسية"
    assert validate.original_excerpt("الرءيسيه", "الرئيسية", None) == "الرئيسية"


def test_gx_loads_what_it_imports_for_unused_expectations_only_on_use(corpus, tmp_path):
    """scipy.stats and altair (GX's KL-divergence expectation and its chart: a third of
    GX's import) are loaded only when used: a fresh interpreter that runs the row suite on
    the corpus never loads them, and GX's module still reaches them when it is used."""
    code = ("import json, sys\nimport polars as pl\nfrom pathlib import Path\n"
            "from pipeline.plumbing.params import load_params\nfrom pipeline.stages import validate\n"
            "report, _ = validate.run_row_suite(pl.scan_parquet(sys.argv[2]), validate.CORPUS,"
            " load_params(Path('params.yaml')), Path('gx'), Path(sys.argv[1]))\n"
            "loaded = [name for name in ('scipy.stats', 'altair') if name in sys.modules]\n"
            "from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl\n"
            "print(json.dumps({'passed': report.success, 'loaded': loaded,"
            " 'entropy': float(kl.stats.entropy([0.5, 0.5], [0.9, 0.1])), 'chart': kl.alt.Chart.__name__}))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out"), str(corpus)], cwd=REPO,
                            capture_output=True, text=True, check=True)
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["passed"] and outcome["loaded"] == []
    assert outcome["entropy"] == pytest.approx(0.5108, abs=1e-3) and outcome["chart"] == "Chart"


def test_data_docs_templates_are_compiled_once_not_per_page(corpus, tmp_path):
    """GX's project builds its Data Docs with views (pipeline/stages/data_docs_views.py) that
    keep GX's compiled Jinja templates in Jinja's bytecode cache: a first process compiles
    them into it, the next loads them from it and compiles none (no cache file rewritten),
    and the pages are still built."""
    code = ("import sys\nimport polars as pl\nfrom pathlib import Path\n"
            "from pipeline.plumbing.params import load_params\nfrom pipeline.stages import validate\n"
            "validate.run_row_suite(pl.scan_parquet(sys.argv[2]).head(50), validate.CORPUS,"
            " load_params(Path('params.yaml')), Path('gx'), Path(sys.argv[1]))\n")
    environment = {**os.environ, "TMPDIR": str(tmp_path)}  # Jinja's cache folder is in the temp directory

    def build(out: str) -> dict[str, int]:
        subprocess.run([sys.executable, "-c", code, str(tmp_path / out), str(corpus)], cwd=REPO, env=environment,
                       capture_output=True, text=True, check=True)
        assert "article_rows" in (tmp_path / out / "data_docs" / "index.html").read_text(encoding="utf-8")
        return {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("_jinja2-cache-*/*.cache")}

    compiled = build("first")
    assert len(compiled) >= 5  # the page, index and section templates GX renders with
    assert build("second") == compiled
