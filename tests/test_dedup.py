"""The dedup stage on real articles: quality floors on the labelled evaluation, nothing
lost, deterministic outputs, the signature index, and the five seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks import dedup_eval
from pipeline import arabic_text, dedup, minhash
from pipeline.io import read_json, scan_partitions, scan_table
from pipeline.params import load_params
from pipeline.schema import ARTICLE_SCHEMA
from conftest import REPO, run_corpus

PARAMS = load_params(REPO / "params.yaml")


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory) -> dedup_eval.Evaluation:
    """The labelled evaluation of benchmarks/dedup_eval.py (real sample + seeds + variants)."""
    return dedup_eval.build_sample_evaluation(tmp_path_factory.mktemp("eval"), PARAMS)


@pytest.fixture(scope="module")
def stage_run(evaluation, tmp_path_factory) -> Path:
    """`corpus dedup` on the evaluation corpus, as a user runs it."""
    root = tmp_path_factory.mktemp("stage")
    evaluation.articles.write_parquet(root / "articles.parquet")
    run_corpus("--params", str(REPO / "params.yaml"), "dedup", "--input", str(root / "articles.parquet"),
               "--output", str(root / "out"), "--metrics", str(root / "dedup.json"))
    return root


def test_quality_floors_on_the_labelled_evaluation(evaluation):
    decisions, _ = dedup_eval.run_dedup(evaluation, PARAMS)
    score = dedup_eval.score(evaluation, decisions)
    assert score["precision"] >= 0.98, score
    assert score["recall"] >= 0.95, score
    # the evaluation is what it claims: real articles, edited variants, same-story negatives
    assert evaluation.info["bases"] >= 570 and evaluation.info["variants"] >= 700
    assert evaluation.info["groups"]["libya"] >= 100 and evaluation.info["groups"]["seed"] == 5


def test_five_seeds_survive_as_five_articles(evaluation):
    seeds = evaluation.articles.join(
        evaluation.family.filter(pl.col("edits").list.len() == 0), on="id", how="semi"
    ).filter(pl.col("drop") == "seed")
    assert seeds.height == 5
    result = dedup.deduplicate(seeds.lazy(), dedup.DedupParams.from_params(PARAMS))
    assert result.assignment["kind"].null_count() == 5
    assert sorted(result.assignment["cluster_id"]) == sorted(seeds["id"])


def test_kept_plus_duplicates_is_the_input(stage_run, evaluation):
    out = stage_run / "out"
    kept = scan_partitions(out, (), "articles.parquet").collect()
    dups = pl.read_parquet(out / "duplicates.parquet")
    assert kept.height + dups.height == evaluation.articles.height
    assert sorted(kept["id"].to_list() + dups["id"].to_list()) == sorted(evaluation.articles["id"])
    # contract: schemas, pointers to kept articles, kinds and similarities
    assert kept.columns == [*ARTICLE_SCHEMA.names(), "cluster_id"]
    assert dups.columns == [*ARTICLE_SCHEMA.names(), "cluster_id", "duplicate_of", "similarity", "kind"]
    assert dups["duplicate_of"].is_in(kept["id"].implode()).all()
    assert (dups["cluster_id"] == dups["duplicate_of"]).all()
    assert set(kept["cluster_id"]) <= set(kept["id"]) and (kept["cluster_id"] == kept["id"]).all()
    threshold = PARAMS["dedup"]["threshold"]
    assert set(dups["kind"]) == {"exact", "near"}
    assert (dups.filter(pl.col("kind") == "exact")["similarity"] == 1.0).all()
    assert dups.filter(pl.col("kind") == "near")["similarity"].is_between(threshold, 1.0).all()
    report = read_json(out / "report.json")
    assert report["input"] == kept.height + dups.height and report["kept"] == kept.height
    assert sum(report["duplicates_by_kind"].values()) == dups.height
    assert sum(int(size) * n for size, n in report["cluster_size_histogram"].items()) == (
        dups.height + report["clusters_with_duplicates"]
    )
    headline = read_json(stage_run / "dedup.json")
    assert headline == {"input": report["input"], "articles": kept.height, "duplicates": dups.height}


def test_no_two_kept_articles_are_duplicates(stage_run):
    """Every removed article duplicates its kept article directly (no chains), and the
    kept set holds no pair at or above the threshold among the verified candidates."""
    out = stage_run / "out"
    review = pl.read_parquet(out / "review.parquet")
    kept = set(scan_partitions(out, (), "articles.parquet").collect()["id"])
    threshold, review_min = PARAMS["dedup"]["threshold"], PARAMS["dedup"]["review_min"]
    in_band = review["similarity"].is_between(review_min, threshold, closed="left")
    # above the band only pairs the star clustering split between two clusters
    assert (in_band | ((review["similarity"] >= threshold) & ~review["same_cluster"])).all()
    assert review.height > 0 and review["title_a"].null_count() == 0
    # a pair of kept articles above the threshold would have been a duplicate
    texts = scan_partitions(out, (), "articles.parquet").collect().select("id", "text").lazy()
    kept_pairs = review.filter(pl.col("id_a").is_in(list(kept)) & pl.col("id_b").is_in(list(kept)))
    again = dedup.pair_similarity(kept_pairs.select("id_a", "id_b"), texts, dedup.DedupParams.from_params(PARAMS))
    assert (again["similarity"] < threshold).all()


def test_rerun_gives_byte_identical_outputs(stage_run, evaluation, tmp_path):
    run_corpus("--params", str(REPO / "params.yaml"), "dedup", "--input", str(stage_run / "articles.parquet"),
               "--output", str(tmp_path / "out"), "--metrics", str(tmp_path / "dedup.json"))
    first = {p.relative_to(stage_run / "out"): p.read_bytes() for p in sorted((stage_run / "out").rglob("*")) if p.is_file()}
    second = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in sorted((tmp_path / "out").rglob("*")) if p.is_file()}
    assert first.keys() == second.keys() and len(first) >= 6
    assert first == second
    assert (stage_run / "dedup.json").read_bytes() == (tmp_path / "dedup.json").read_bytes()


def test_match_against_index_finds_what_is_already_in_the_corpus(stage_run, evaluation):
    out = stage_run / "out"
    kept = scan_partitions(out, (), "articles.parquet").collect().drop("cluster_id").sort("id")
    rng = np.random.default_rng(7)
    vocabulary = np.array(["وزارة", "الصحة", "اليوم", "مجلس", "الوزراء", "الرياض"])
    copy = kept.slice(0, 1).with_columns(id=pl.lit("new-exact"), text=pl.col("text").str.replace_all("ا", "أ"))
    base = kept.slice(1, 1)
    edited = base.with_columns(id=pl.lit("new-near"), text=pl.lit(dedup_eval.change_words(base["text"][0], 0.1, vocabulary, rng)))
    unseen_text = " ".join(f"كلمة{i} جديدة{i % 7} تماما{i % 5}" for i in range(60))
    unseen = base.with_columns(id=pl.lit("new-unseen"), text=pl.lit(unseen_text))
    drop = pl.concat([copy, edited, unseen])

    matches = dedup.match_against_index(drop.lazy(), out / "index", PARAMS)
    assert matches.columns == ["id", "duplicate_of", "similarity", "kind"]
    found = {row["id"]: row for row in matches.iter_rows(named=True)}
    assert set(found) == {"new-exact", "new-near"}
    assert found["new-exact"]["duplicate_of"] == kept["id"][0] and found["new-exact"]["kind"] == "exact"
    assert found["new-exact"]["similarity"] == 1.0
    assert found["new-near"]["duplicate_of"] == base["id"][0] and found["new-near"]["kind"] == "near"
    assert PARAMS["dedup"]["threshold"] <= found["new-near"]["similarity"] < 1.0

    other = dedup_eval.with_dedup_params(PARAMS, ngram=5)
    with pytest.raises(ValueError, match="rebuild the index"):
        dedup.match_against_index(drop.lazy(), out / "index", other)


def test_index_holds_the_kept_articles(stage_run):
    out = stage_run / "out"
    index = scan_table(out / "index" / "signatures.parquet").collect()
    kept = scan_partitions(out, (), "articles.parquet").collect()
    assert sorted(index["id"]) == sorted(kept["id"])
    assert index.schema["signature"] == pl.Array(pl.UInt32, PARAMS["dedup"]["permutations"])
    meta = read_json(out / "index" / "meta.json")
    assert (out / "index" / meta["articles"]).resolve() == out.resolve()  # its drops' folders


def test_shingles_stay_inside_their_document():
    words = pl.Series([["a", "b", "c", "d"], ["x"], [], ["a", "b", "c"]], dtype=pl.List(pl.String))
    shingles = minhash.shingle_hashes(words, 3)
    assert shingles.counts.tolist() == [2, 1, 0, 1]
    first, last = shingles.hashes[0], shingles.hashes[3]
    assert first == last  # "a b c" is the same shingle wherever it stands
    assert len(set(shingles.hashes.tolist())) == 3


def test_minhash_estimates_the_real_jaccard(evaluation):
    """The signature agreement of candidate pairs is an unbiased estimate of their real
    Jaccard similarity, with the binomial spread of `permutations` samples."""
    params = dedup.DedupParams.from_params(PARAMS)
    result = dedup.deduplicate(evaluation.articles.lazy(), params)
    signed = dedup.signature_table(evaluation.articles.lazy(), params, "articles")
    sig = dict(zip(signed["id"], signed["signature"].to_numpy()))
    pairs = result.pair_ids().filter(pl.col("similarity") > 0)
    estimate = np.array([(sig[a] == sig[b]).mean() for a, b in zip(pairs["id_a"], pairs["id_b"])])
    true = pairs["similarity"].to_numpy()
    spread = np.sqrt((true * (1 - true)).mean() / params.minhash.permutations)
    assert pairs.height > 500
    assert abs((estimate - true).mean()) < 0.01
    assert (estimate - true).std() < 1.3 * spread


def test_letter_forms_and_diacritics_make_exact_duplicates():
    text = " ".join(["أعلنت وزارة الصحة عن حالات جديدة في المنطقة الشرقية اليوم"] * 5)
    variant = arabic_text.match_key_of(text)  # no hamza, no taa marbuta, no punctuation
    articles = pl.DataFrame({
        "id": ["a", "b"], "text": [text, variant], "n_chars": [len(text), len(variant)],
        "published_date": [None, None],
    }, schema_overrides={"published_date": pl.Date})
    result = dedup.deduplicate(articles.lazy(), dedup.DedupParams.from_params(PARAMS))
    removed = result.assignment.filter(pl.col("kind").is_not_null())
    assert removed.select("id", "duplicate_of", "kind", "similarity").row(0) == ("b", "a", "exact", 1.0)
