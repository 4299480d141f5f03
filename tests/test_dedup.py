"""The dedup stage on real articles: quality floors on the labelled evaluation, nothing
lost, deterministic outputs, the signature index, and the five seeds."""

from __future__ import annotations

import dataclasses
import gc
import json
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xxhash
from conftest import REPO, run_corpus
from pipeline_runs import folder_files

from benchmarks import dedup_eval
from benchmarks.set_parts_reads import CountedReads, counted
from benchmarks.shared_corpus import SAUDI_SAMPLE
from pipeline import drops
from pipeline.engines.local import LocalEngine
from pipeline.plumbing.io import lazy_frames, partition, read_json, scan_partitions, write_table
from pipeline.plumbing.params import load_params
from pipeline.plumbing.schema import ARTICLE_SCHEMA
from pipeline.stages import dedup
from pipeline.text import arabic_text, minhash

PARAMS = load_params(REPO / "params.yaml")


# Draws of the variants the floors are checked on (dedup_eval --seeds): the same bases.
DRAWS = (dedup_eval.SEED, 1, 2, 3, 4)


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory) -> list[dedup_eval.Evaluation]:
    """The labelled evaluation of benchmarks/dedup_eval.py (real sample + seeds + variants),
    one per draw of the variants."""
    return dedup_eval.sample_evaluations(tmp_path_factory.mktemp("eval"), PARAMS, DRAWS)


@pytest.fixture(scope="module")
def evaluation(evaluations) -> dedup_eval.Evaluation:
    return evaluations[0]


@pytest.fixture(scope="module")
def stage_run(evaluation, tmp_path_factory) -> Path:
    """`corpus dedup` on the evaluation corpus, as a user runs it."""
    root = tmp_path_factory.mktemp("stage")
    evaluation.articles.write_parquet(root / "articles.parquet")
    run_corpus("--params", str(REPO / "params.yaml"), "dedup", "--input", str(root / "articles.parquet"),
               "--output", str(root / "out"), "--metrics", str(root / "dedup.json"))
    return root


@pytest.mark.parametrize("draw", range(len(DRAWS)), ids=[f"seed {seed}" for seed in DRAWS])
def test_quality_floors_on_the_labelled_evaluation(evaluations, draw):
    evaluation = evaluations[draw]
    decisions, _ = dedup_eval.run_dedup(evaluation, PARAMS)
    score = dedup_eval.score(evaluation, decisions)
    # pairs within the final clusters (what a user of the clusters sees), and removals. The
    # floors are what holds on every draw (worst of five: pairs 1.000 / 0.981, removals
    # 1.000 / 0.990, teasers 0.971, with a paragraph changed 0.917, two reprints 0.976): the
    # issue's goals (pairs recall and teasers >= 0.97) on each draw.
    assert score["pairs_precision"] >= 0.999 and score["pairs_recall"] >= 0.975, score
    assert score["precision"] >= 0.999 and score["recall"] >= 0.985, score
    # teasers / truncations, and two reprints of one base ending in one cluster
    assert score["recall_teasers"]["teaser"] >= 0.97 and score["recall_teasers"]["teaser+paragraph"] >= 0.91, score
    assert score["reprint_pairs_recall"] >= 0.97, score
    # templated reports of different events whose figures differ: never merged
    assert score["templated_figures_differ_pairs"] >= 25 and score["templated_figures_differ_merged"] == [], score
    # nor those of one formula about other names (congratulation cables: no figure to compare)
    assert score["templated_pairs_merged"] == [], score
    # the evaluation is what it claims: real articles, edited variants, same-story negatives
    assert evaluation.info["bases"] >= 590 and evaluation.info["variants"] >= 700
    assert evaluation.info["groups"]["libya"] >= 100 and evaluation.info["groups"]["seed"] == 5
    assert score["reprint_pairs"] >= 200 and score["templated_pairs"] >= 30


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
    dups = dedup.scan_corpus(out, dedup.DUPLICATES_FILE).collect()
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
    near = dups.filter(pl.col("kind") == "near")["similarity"]
    # Jaccard to the kept article: mostly at or above the threshold; below it only teasers
    # (contained in the kept one) and articles whose cluster joined the kept one's
    assert near.is_between(0.0, 1.0, closed="right").all() and (near >= threshold).mean() > 0.75
    report = read_json(out / "report.json")
    assert report["input"] == kept.height + dups.height and report["kept"] == kept.height
    assert sum(report["duplicates_by_kind"].values()) == dups.height
    assert sum(int(size) * n for size, n in report["cluster_size_histogram"].items()) == (
        dups.height + report["clusters_with_duplicates"]
    )
    headline = read_json(stage_run / "dedup.json")
    assert headline == {"input": report["input"], "articles": kept.height, "duplicates": dups.height}


def test_the_drops_tables_are_the_only_copy_and_the_readme_line_reads_them_as_one(stage_run):
    """The duplicates and review pairs are each drop's tables, with no corpus-wide copy
    written again after every drop (issue 10); the README's one line reads every drop's
    table as one, and its counts are the report's, drop by drop."""
    out = stage_run / "out"
    assert sorted(path.name for path in out.iterdir()) == [
        "drop=sample", "drop=seed", "drop=templated", dedup.INDEX_DIR, "plots", "report.json"]
    report = read_json(out / "report.json")
    readme = (REPO / "README.md").read_text()
    assert f'pl.read_parquet("build/dedup/drop=*/{dedup.DUPLICATES_FILE}", hive_partitioning=True)' in readme
    for table, count in ((dedup.DUPLICATES_FILE, "duplicates"), (dedup.REVIEW_FILE, "review_pairs")):
        rows = pl.read_parquet(f"{out}/drop=*/{table}", hive_partitioning=True)
        assert rows.height == report[count] > 0
        by_drop = dict(rows.group_by("drop").len().iter_rows())
        assert by_drop == {drop: n for drop in report["drops"]
                           if (n := read_json(partition(out, drop) / "report.json")[count])}
        in_order = dedup.scan_corpus(out, table).collect()  # the same rows (and columns, the hive `drop` aside)
        assert rows.select(in_order.columns).sort(in_order.columns).equals(in_order.sort(in_order.columns))


def test_no_two_kept_articles_are_duplicates(stage_run):
    """Every review pair carries its reason, and the kept set holds no pair at or above the
    threshold among the verified candidates but pairs whose figures or names differ."""
    out = stage_run / "out"
    review = dedup.scan_corpus(out, dedup.REVIEW_FILE).collect()
    kept = set(scan_partitions(out, (), "articles.parquet").collect()["id"])
    threshold, review_min = PARAMS["dedup"]["threshold"], PARAMS["dedup"]["review_min"]
    assert review.columns == list(dedup.REVIEW_SCHEMA.names())
    assert set(review["reason"]) <= set(dedup.REVIEW_REASONS) and review["reason"].null_count() == 0
    assert {"below_threshold", "left_by_clustering", "figures_differ"} <= set(review["reason"])
    by_reason = {reason: rows for (reason,), rows in review.group_by("reason")}
    assert by_reason["below_threshold"]["similarity"].is_between(review_min, threshold, closed="left").all()
    assert (~by_reason["left_by_clustering"]["same_cluster"]).all()
    assert review["title_a"].null_count() == 0
    # a pair of kept articles above the threshold would have been a duplicate, unless its figures differ
    texts = scan_partitions(out, (), "articles.parquet").collect().select("id", "text").lazy()
    kept_pairs = review.filter(pl.col("id_a").is_in(list(kept)) & pl.col("id_b").is_in(list(kept))
                               & ~pl.col("reason").is_in(["figures_differ", "names_differ"]))
    again = dedup.pair_similarity(kept_pairs.select("id_a", "id_b"), texts, dedup.DedupParams.from_params(PARAMS))
    assert kept_pairs.height > 0 and (again["similarity"] < threshold).all()


def test_pair_similarity_checks_figures_and_names_of_similar_pairs_only(stage_run, evaluation):
    """pair_similarity compares figures and names only where they can decide (as the stage
    does): on the evaluation's pairs the stage listed for review, the near duplicates it
    removed, and pairs of articles far apart, shuffled together, each pair's columns are
    those it gets among similar pairs only; the reasons and removals of the stage hold; a
    dissimilar pair's checks are null and decide nothing."""
    out = stage_run / "out"
    params = dedup.DedupParams.from_params(PARAMS)
    review = dedup.scan_corpus(out, dedup.REVIEW_FILE).collect()
    reviewed = review.select("id_a", "id_b", "reason")
    removed = dedup.scan_corpus(out, dedup.DUPLICATES_FILE).collect().filter(
        (pl.col("kind") == "near") & (pl.col("similarity") >= params.threshold))
    near = removed.select(id_a="duplicate_of", id_b="id", reason=pl.lit("removed"))
    ids = evaluation.articles["id"].sort()
    apart = pl.DataFrame({"id_a": ids.head(200), "id_b": ids.tail(200).reverse()}).with_columns(reason=pl.lit("apart"))
    pairs = pl.concat([reviewed, near, apart]).sample(fraction=1.0, shuffle=True, seed=5)
    texts = evaluation.articles.select("id", "text").lazy()
    found = dedup.pair_similarity(pairs, texts, params).with_columns(reason=pairs["reason"])
    assert found.select("id_a", "id_b").equals(pairs.select("id_a", "id_b"))
    by_reason = {reason: rows for (reason,), rows in found.group_by("reason")}
    assert by_reason.keys() == {*dedup.REVIEW_REASONS, "removed", "apart"}
    other_figures = by_reason["figures_differ"]
    assert other_figures["figures_differ"].all() and other_figures["names_differ"].is_null().all()
    other_names = by_reason["names_differ"]
    assert (~other_names["figures_differ"]).all() and other_names["names_differ"].all()
    duplicates = by_reason["removed"]
    assert duplicates["duplicate"].all() and not duplicates["figures_differ"].any() and not duplicates["names_differ"].any()
    dissimilar = found.filter(pl.col("figures_differ").is_null())
    assert dissimilar.height >= 150 and not dissimilar["duplicate"].any()
    assert (dissimilar["similarity"] < params.threshold).all() and dissimilar["names_differ"].is_null().all()
    # every decision is the checks' where they ran: a pair is a duplicate iff both ran and found nothing
    assert found["duplicate"].equals((~found["figures_differ"] & ~found["names_differ"]).fill_null(False), check_names=False)
    # the checks of the similar pairs do not depend on the dissimilar pairs beside them
    similar = found.filter(pl.col("figures_differ").is_not_null())
    alone = dedup.pair_similarity(similar.select("id_a", "id_b"), texts, params)
    assert alone.equals(similar.drop("reason"))
    # some dissimilar pairs do state other figures: compared, they would say so (and decide nothing)
    articles = evaluation.articles.select("id", figures=dedup.figure_snippets(pl.col("text"))).with_row_index("doc")
    doc = dissimilar.join(articles.select(id_a="id", a="doc"), on="id_a").join(articles.select(id_b="id", b="doc"), on="id_b")
    assert dedup.figures_differ(dedup.figure_table(articles["figures"]), doc["a"].to_numpy(), doc["b"].to_numpy(),
                                params).any()


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
    meta = read_json(out / "index" / "meta.json")
    assert (out / "index" / meta["articles"]).resolve() == out.resolve()  # its drops' folders
    assert meta["drops"] == ["seed", "sample", "templated"]  # split.drop_order, then the others by name
    for drop in meta["drops"]:
        index = pl.read_parquet(partition(out, drop) / dedup.INDEX_FILE)
        kept = pl.read_parquet(partition(out, drop) / dedup.KEPT_FILE)
        assert sorted(index["id"]) == sorted(kept["id"]) and index["key_hash"].n_unique() == index.height
        d = PARAMS["dedup"]  # the bands of the text, then those of its lead
        assert index.columns[2:-1] == [dedup.band_column(band) for band in range(d["bands"] + d["lead_bands"])]
        assert all(dtype == pl.UInt64 for dtype in index.dtypes[2:-1])
        # row: where the article's sets are among those the folder keeps, one an input article
        sizes = pl.read_parquet(partition(out, drop) / dedup.SETS_FILE)
        removed = pl.scan_parquet(partition(out, drop) / dedup.DUPLICATES_FILE).select(pl.len()).collect().item()
        assert sizes.height == kept.height + removed
        assert index["row"].n_unique() == index.height and index["row"].max() < sizes.height


def test_a_drops_folder_keeps_the_sets_that_verify_its_kept_articles(stage_run):
    """A later drop verifies its candidates among a drop's kept articles with the sets and
    figures the drop's folder keeps (issue 10: not reading and signing their texts again):
    the very sets, figures and key hashes that signing their texts gives."""
    params = dedup.DedupParams.from_params(PARAMS)
    folder = partition(stage_run / "out", "sample")
    kept = pl.read_parquet(folder / dedup.KEPT_FILE)
    figures: list[pl.DataFrame] = []
    signed_figures: list[pl.DataFrame] = []
    with minhash.ShingleSets() as stored, minhash.ShingleSets() as stored_details, \
            minhash.ShingleSets() as sets, minhash.ShingleSets() as details:
        found = dedup.CorpusIndex((folder,)).stored_sets(kept["id"].sample(fraction=1.0, seed=5), stored, stored_details,
                                                         figures, 0, 97)
        assert sorted(found["id"]) == sorted(kept["id"]) and found.height > 300
        texts = found.select("id").join(kept, on="id", how="left", maintain_order="left")
        signed = dedup.signature_table(texts.lazy(), params, "texts", sets, signed_figures, details)
        assert signed["key_hash"].equals(found["key_hash"])
        assert found.select("n_chars", "published_date").equals(texts.select("n_chars", "published_date"))
        docs = np.arange(found.height)
        for mine, theirs in ((stored, sets), (stored_details, details)):
            many = len(docs) * (3 if mine is stored_details else 1)
            assert all(np.array_equal(x, y) for x, y in zip(mine.subset(np.arange(many)), theirs.subset(np.arange(many))))
    assert pl.concat(figures).sort(pl.all()).equals(pl.concat(signed_figures).sort(pl.all()))
    assert pl.concat(figures).height > 100


def test_shingles_stay_inside_their_document():
    words = pl.Series([["a", "b", "c", "d"], ["x"], [], ["a", "b", "c"]], dtype=pl.List(pl.String))
    shingles = minhash.shingle_hashes(words, 3)
    assert shingles.counts.tolist() == [2, 1, 0, 1]
    first, last = shingles.hashes[0], shingles.hashes[3]
    assert first == last  # "a b c" is the same shingle wherever it stands
    assert len(set(shingles.hashes.tolist())) == 3


def test_signatures_are_each_permutations_minimum_over_the_documents_shingles(monkeypatch):
    """``minhash.signatures`` goes a block of documents at a time through the permutations:
    whatever the blocks (a document across two, one longer than a block, empty ones), each
    value is the minimum of its permutation over the document's shingles (its lead's for
    the lead's values), and an empty document's are all ones."""
    params = dedup.DedupParams.from_params(PARAMS).minhash
    rng = np.random.default_rng(5)
    counts = np.array([0, 40, 3, 0, 130, 1, 57, 0, 64, 22])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    hashes = rng.integers(0, np.iinfo(np.uint64).max, offsets[-1], dtype=np.uint64, endpoint=True)
    monkeypatch.setattr(minhash, "SIGNATURE_BLOCK_SHINGLES", 50)
    signature = minhash.signatures(minhash.Shingles(hashes, offsets), params)
    a, b = params.permutation_coefficients()
    for doc, count in enumerate(counts.tolist()):
        own = hashes[offsets[doc]:offsets[doc + 1]]
        expected = [int((own[:params.lead_shingles if p >= params.permutations else count] * a[p] + b[p]).min()) >> 32
                    if count else 2**32 - 1 for p in range(params.width)]
        assert signature[doc].tolist() == expected


def test_key_hashes_are_the_xxh3_of_each_keys_utf8():
    keys = pl.Series(["", "وزير الخارجية", "a b", "", "عبدالله 2015", "x" * 5000, "é"])
    for part in (keys, keys.slice(2, 4), keys.slice(6, 1), keys.slice(0, 0)):
        assert dedup.key_hashes(part).to_list() == [xxhash.xxh3_128_hexdigest(k.encode()) for k in part.to_list()]


def test_minhash_estimates_the_real_jaccard(evaluation):
    """The signature agreement of candidate pairs is an unbiased estimate of their real
    Jaccard similarity, with the binomial spread of `permutations` samples."""
    params = dedup.DedupParams.from_params(PARAMS)
    result = dedup.deduplicate(evaluation.articles.lazy(), params)
    signed = dedup.signature_table(evaluation.articles.lazy(), params, "articles")
    sig = dict(zip(signed["id"], signed["signature"].to_numpy()[:, :params.minhash.permutations]))  # not the lead's
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


def _articles(texts: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame({
        "id": list(texts), "text": list(texts.values()), "n_chars": [len(t) for t in texts.values()],
        "published_date": [None] * len(texts),
    }, schema_overrides={"published_date": pl.Date})


def _snn_text(sample_id: str) -> str:
    """The content of one real SaudiNewsNet sample article."""
    return json.loads((SAUDI_SAMPLE / f"{sample_id}.json").read_text())["content"]


def test_templated_reports_with_other_figures_go_to_review_and_reprints_merge():
    """A weekly report of another week (same words, other amounts and dates) is not a
    duplicate, whatever its similarity; the same report with its figures written in
    Arabic-Indic digits and Arabic separators, or with a figure less, still is."""
    week = ("أعلن بنك المغرب أنه ضخ مبلغ 80,5 مليار درهم، من بينها 39,3 مليار في شكل تسبيقات لمدة 7 أيام، "
            "خلال الأسبوع الممتد من 16 إلى 22 يوليو 2015. وأوضح البنك في نشرته الأسبوعية أن متوسط حجم "
            "التداول في السوق بين البنوك بلغ 3,1 مليار درهم، وأن سعر الفائدة استقر عند 2,50 في المائة. ")
    other_week = (week.replace("80,5", "79,1").replace("39,3", "36,7").replace("16 إلى 22", "23 إلى 29")
                  .replace("3,1", "2,4"))
    # a reprint: Arabic-Indic digits, Arabic decimal comma, the interest rate sentence cut
    reprint = week.split("، وأن سعر")[0].translate(str.maketrans("0123456789,", "٠١٢٣٤٥٦٧٨٩٫")) + ". "
    articles = _articles({"week": week * 3, "other-week": other_week * 3, "reprint": reprint * 3})
    params = dedup.DedupParams.from_params(PARAMS)
    result = dedup.deduplicate(articles.lazy(), params)
    cluster = dict(zip(result.assignment["id"], result.assignment["cluster_id"]))
    assert cluster["reprint"] == cluster["week"] != cluster["other-week"]
    review = result.review.filter(pl.col("reason") == "figures_differ")
    assert {"week", "other-week"} in [set(pair) for pair in review.select("id_a", "id_b").iter_rows()]
    assert (review["similarity"] >= params.threshold).all()


def test_one_formula_about_other_names_goes_to_review_and_its_reprint_merges(evaluation):
    """Two real congratulation cables (SaudiNewsNet: to the president of Côte d'Ivoire, to
    the governor-general of Jamaica) are one formula with other names and no figure, at a
    Jaccard above the threshold: they stay apart (review: names_differ). A reprint of one,
    with a dateline added and words changed, still merges with it."""
    bases = evaluation.articles.join(evaluation.family.filter(pl.col("edits").list.len() == 0), on="id", how="semi")
    cables = bases.filter(pl.col("title").str.contains("جامايكا|كوت ديفوار")).sort("title")
    assert cables.height == 2
    ivory, jamaica = cables["text"].to_list()
    rng = np.random.default_rng(3)
    vocabulary = np.array(["وزارة", "الصحة", "اليوم", "مجلس", "الوزراء", "الرياض"])
    reprint = "الرياض - واس\n" + dedup_eval.change_words(jamaica, 0.08, vocabulary, rng)
    articles = _articles({"ivory": ivory, "jamaica": jamaica, "reprint": reprint})
    params = dedup.DedupParams.from_params(PARAMS)
    result = dedup.deduplicate(articles.lazy(), params)
    cluster = dict(zip(result.assignment["id"], result.assignment["cluster_id"]))
    assert cluster["reprint"] == cluster["jamaica"] != cluster["ivory"]
    review = result.review.filter(pl.col("reason") == "names_differ")
    assert [set(pair) for pair in review.select("id_a", "id_b").iter_rows()] == [{"ivory", "jamaica"}]
    assert review["similarity"][0] >= params.threshold  # Jaccard alone would merge them


def test_a_reprint_without_the_telling_figure_goes_with_the_closer_report():
    """Two weekly reports of one template with other figures stay apart (figures_differ).
    A reprint of the shorter one whose figures were all cut is similar to both (no figure
    left to disagree on): it goes with the one it is closer to, not with the longer one
    (which the kept-article rule would have it removed for)."""
    week = ("أعلن بنك المغرب أنه ضخ مبلغ 80,5 مليار درهم، من بينها 39,3 مليار في شكل تسبيقات لمدة 7 أيام، "
            "خلال الأسبوع الممتد من 16 إلى 22 يوليو 2015. وأوضح البنك في نشرته الأسبوعية أن متوسط حجم "
            "التداول في السوق بين البنوك بلغ 3,1 مليار درهم، وأن سعر الفائدة استقر عند 2,50 في المائة. ")
    other_week = (week.replace("80,5", "79,1").replace("39,3", "36,7").replace("16 إلى 22", "23 إلى 29")
                  .replace("3,1", "2,4").replace("وأوضح البنك في نشرته الأسبوعية", "وأشار البنك في بيانه الصادر أمس"))
    # the rest of the report: one text for both weeks (a real article's words, no figure)
    rest = " ".join(word for word in _snn_text("snn-2015-07-21-0004").split() if not any(c.isdigit() for c in word))
    week, other_week = week + rest, other_week + rest + " وتأتي هذه العمليات في إطار السياسة النقدية للبنك."
    reprint = "".join(c for c in week if not c.isdigit())
    articles = _articles({"week": week, "other-week": other_week, "reprint": reprint})
    params = dedup.DedupParams.from_params(PARAMS)
    pairs = dedup.pair_similarity(pl.DataFrame({"id_a": ["reprint", "reprint", "week"],
                                                "id_b": ["week", "other-week", "other-week"]}), articles.lazy(), params)
    assert pairs["duplicate"].to_list() == [True, True, False] and pairs["figures_differ"][2]
    assert pairs["similarity"][0] > pairs["similarity"][1]
    result = dedup.deduplicate(articles.lazy(), params)
    cluster = dict(zip(result.assignment["id"], result.assignment["cluster_id"]))
    assert cluster == {"other-week": "other-week", "week": "week", "reprint": "week"}
    reasons = {frozenset(pair): reason for *pair, reason in result.review.select("id_a", "id_b", "reason").iter_rows()}
    assert reasons == {frozenset({"week", "other-week"}): "figures_differ",
                       frozenset({"reprint", "other-week"}): "left_by_clustering"}


def test_a_reprint_that_opens_with_another_story_does_not_take_that_story():
    """Real article X (202 words) and a real short article Y (87 words). A reprint of X
    that opens with Y whole (a quoted story) takes X (Jaccard) and holds Y (containment,
    opening alike), but Y lies apart from X: it is no duplicate of the reprint, it stays."""
    x, y = _snn_text("snn-2015-07-21-0102"), _snn_text("snn-2015-07-21-1203")
    articles = _articles({"reprint": y + "\n" + x, "x": x, "y": y})
    params = dedup.DedupParams.from_params(PARAMS)
    pairs = dedup.pair_similarity(pl.DataFrame({"id_a": ["reprint", "reprint"], "id_b": ["x", "y"]}), articles.lazy(), params)
    assert pairs["duplicate"].to_list() == [True, True] and pairs["similarity"][1] < params.threshold
    result = dedup.deduplicate(articles.lazy(), params)
    assert dict(zip(result.assignment["id"], result.assignment["duplicate_of"])) == {
        "reprint": None, "x": "reprint", "y": None}
    assert result.review.filter(pl.col("id_b") == "y")["reason"].to_list() == ["left_by_clustering"]


def test_a_name_on_abd_in_one_or_two_words_is_one_text():
    """Outlets write "عبد العزيز" and "عبدالعزيز" for one name: a real article and its
    reprint that writes every such name the other way are exact duplicates for dedup."""
    text = _snn_text("snn-2015-07-21-0004") + "\nوقال الأمير عبدالعزيز بن عبدالله إن الأمير عبدالرحمن وصل."
    reprint = text.replace("عبدال", "عبد ال")
    assert reprint != text
    result = dedup.deduplicate(_articles({"a": text, "b": reprint}).lazy(), dedup.DedupParams.from_params(PARAMS))
    removed = result.assignment.filter(pl.col("kind").is_not_null())
    assert removed.select("id", "duplicate_of", "kind").row(0) == ("a", "b", "exact")  # b is longer: kept


def test_figures_are_read_in_any_digit_script_and_notation():
    figures = pl.Series(["80,5", "٨٠٫٥", "80.50", "1,000", "١٬٠٠٠", "1000", "05", "21/7/2015", "2015-07-21"])
    values = pl.select(dedup.figure_value(pl.lit(figures))).to_series().to_list()
    assert values[:3] == ["80.5"] * 3 and values[3:6] == ["1000"] * 3 and values[6] == "5"
    assert values[7] == values[8]  # a date day first or year first: one fact
    # a score or range with a hyphen or a dash is one figure, whichever dash
    snippets = pl.select(dedup.figure_snippets(pl.lit(pl.Series(["فاز 2 - 1 على", "فاز 2 – 1 على"])))).to_series()
    assert snippets.to_list() == [["فاز 2 - 1 على"], ["فاز 2 – 1 على"]]
    table = dedup.figure_table(snippets)
    assert table["context"].n_unique() == 1 and table["value"].n_unique() == 1


def test_a_teaser_joins_the_longer_reprint_that_took_its_base():
    """Real article B; S = B plus a paragraph (longer: kept); T = the first 60 % of B.
    T is under the Jaccard threshold from S but lies inside it: it is removed for S."""
    base = _snn_text("snn-2015-07-21-0004")
    words = base.split()
    teaser = " ".join(words[: int(len(words) * 0.6)])
    longer = base + "\n" + _snn_text("snn-2015-07-21-0008").split("\n")[0]
    articles = _articles({"base": base, "longer": longer, "teaser": teaser})
    params = dedup.DedupParams.from_params(PARAMS)
    result = dedup.deduplicate(articles.lazy(), params)
    removed = dict(zip(result.assignment["id"], result.assignment["duplicate_of"]))
    assert removed == {"longer": None, "base": "longer", "teaser": "longer"}
    overlap = dedup.pair_similarity(pl.DataFrame({"id_a": ["longer"], "id_b": ["teaser"]}), articles.lazy(), params)
    assert overlap["similarity"][0] < params.threshold  # found by containment, not by Jaccard


def test_a_teaser_opening_a_much_longer_reprint_joins_it_and_a_quoted_item_does_not():
    """Real article B; L = B with a long article added after it (B is under a third of L);
    T = the first 60 % of B, so under the share floor against L too. T opens as L does: it
    is L's teaser and goes with it. The same words quoted further down a long roundup R
    (another article first) stay apart."""
    base, other = _snn_text("snn-2015-07-21-0004"), _snn_text("snn-2015-07-21-0008")
    words = base.split()
    teaser = " ".join(words[: int(len(words) * 0.6)])
    longer = base + "\n" + other + "\n" + other.replace("\n", " ")[::-1]
    roundup = other + "\n" + teaser + "\n" + other.replace("\n", " ")[::-1]
    params = dedup.DedupParams.from_params(PARAMS)
    for container, merged in ((longer, True), (roundup, False)):
        articles = _articles({"container": container, "teaser": teaser})
        pair = dedup.pair_similarity(pl.DataFrame({"id_a": ["container"], "id_b": ["teaser"]}), articles.lazy(), params)
        assert pair["containment"][0] > params.containment_short and len(teaser) < 0.3 * len(container)
        result = dedup.deduplicate(articles.lazy(), params)
        removed = dict(zip(result.assignment["id"], result.assignment["duplicate_of"]))
        assert removed == {"container": None, "teaser": "container" if merged else None}
        assert pair["duplicate"][0] == merged


def test_a_cluster_joins_a_better_one_through_a_member_that_duplicates_a_member_there():
    """Ranks 0-4: cluster 0 = {0 (a reprint), 1 (its natural reprint B)}; cluster 2 = {2 (a
    teaser of B with a paragraph added, not a duplicate of B), 3 (a plain teaser of B, taken
    by 2, which ranks before it)}, and 4 alone. The edge 3-1 (the teaser inside B) moves
    cluster 2 into cluster 0 when its members are close to 0 and agree with its members;
    not when one of them states other figures."""
    centre = np.array([0, 0, 2, 2, 4])
    a, b = np.array([1]), np.array([3])

    def close(kept, members):
        return np.ones(len(members), dtype=bool), np.full(len(members), 0.4)

    centre_after, moved = dedup.join_clusters(centre, a, b, close, lambda x, y: np.ones(len(x), dtype=bool))
    assert centre_after.tolist() == [0, 0, 0, 0, 4]
    assert sorted(moved["rep"].to_list()) == [2, 3] and set(moved["kept_rank"]) == {0}
    other_figures = lambda x, y: ~((x == 2) & (y == 1))  # noqa: E731
    assert dedup.join_clusters(centre, a, b, close, other_figures)[0].tolist() == centre.tolist()


def test_a_short_teaser_with_a_footer_line_goes_with_its_article():
    """Real articles: T = the first 30 % of B (about 40 shingles) with a footer line added
    lies about 0.76 inside B (the footer is its own), under containment and far under
    containment_short, but opens as B does: T is removed for B. The first 30 % of a shorter
    article C with the same footer is 0.71 inside it (a third of it its own): it stays."""
    footer = "للاشتراك في خدمة الأخبار العاجلة أرسل رقم 1 إلى 88888"
    params = dedup.DedupParams.from_params(PARAMS)
    for number, merged in (("0004", True), ("1203", False)):
        base = _snn_text(f"snn-2015-07-21-{number}")
        words = base.split()
        teaser = " ".join(words[: int(len(words) * 0.3)]) + "\n" + footer
        articles = _articles({"base": base, "teaser": teaser})
        pair = dedup.pair_similarity(pl.DataFrame({"id_a": ["base"], "id_b": ["teaser"]}), articles.lazy(), params)
        assert params.containment_lead - 0.05 < pair["containment"][0] < params.containment
        result = dedup.deduplicate(articles.lazy(), params)
        removed = dict(zip(result.assignment["id"], result.assignment["duplicate_of"]))
        assert removed == {"base": None, "teaser": "base" if merged else None}


def test_a_roundup_of_several_stories_does_not_put_them_in_one_cluster():
    """Real articles X, Y, Z and a roundup R = X + Y + Z: each lies inside R (X opens it),
    each under the Jaccard threshold with it, and they share nothing with one another. R
    would take all three and make one cluster of three stories: they stay apart, their
    pairs with R listed for review (left_by_clustering). A teaser of X and X itself, inside
    a longer reprint of X, still go with it (they overlap each other)."""
    stories = {name: _snn_text(f"snn-2015-07-21-{number}") for name, number in (("x", "0004"), ("y", "0101"), ("z", "0102"))}
    roundup = "\n".join(stories.values())
    params = dedup.DedupParams.from_params(PARAMS)
    result = dedup.deduplicate(_articles({"roundup": roundup, **stories}).lazy(), params)
    assert result.assignment["kind"].null_count() == 4  # all kept
    review = result.review.filter(pl.col("id_a") == "roundup")
    assert review.height >= 2 and set(review["reason"]) == {"left_by_clustering"}  # (pairs LSH proposed)
    assert (review["similarity"] < params.threshold).all()

    words = stories["x"].split()
    longer = stories["x"] + "\n" + stories["y"]
    teaser = " ".join(words[: int(len(words) * 0.6)])
    result = dedup.deduplicate(_articles({"longer": longer, "x": stories["x"], "teaser": teaser}).lazy(), params)
    assert dict(zip(result.assignment["id"], result.assignment["duplicate_of"])) == {
        "longer": None, "x": "longer", "teaser": "longer"}


def test_a_few_shared_sentences_or_a_quoted_item_do_not_make_a_duplicate():
    """Real articles: a short text whose ~40 words lie inside another is under the size
    floor (review: containment_only); a 70-word item quoted whole by a long roundup is a
    small part of it (share floor): both stay."""
    other = _snn_text("snn-2015-07-21-0008").split()
    shared = " ".join(_snn_text("snn-2015-07-21-0004").split()[:40])
    articles = _articles({"big": " ".join(other[:60]) + "\n" + shared, "small": shared + " " + " ".join(other[-8:])})
    result = dedup.deduplicate(articles.lazy(), dedup.DedupParams.from_params(PARAMS))
    assert result.assignment["kind"].null_count() == 2
    assert result.review["reason"].to_list() == ["containment_only"]

    # (LSH seldom proposes such a pair: the rule itself, on the set sizes)
    params = dedup.DedupParams.from_params(PARAMS)
    inside = dedup.Overlap(jaccard=np.array([0.1, 0.6, 0.1]), containment=np.array([1.0, 1.0, 1.0]),
                           smaller=np.array([70, 420, 70]), larger=np.array([700, 700, 700]),
                           lead=np.array([0.0, 0.0, 0.9]))
    # a quoted item; a teaser (60 %); the opening of a much longer reprint (a teaser of it)
    assert inside.contained(params).tolist() == [False, True, True]
    # a short text (under containment_min_shingles) counts only when almost whole inside and
    # opening as the other does: a 30-shingle teaser of an 80-shingle brief is; shared
    # sentences with one of their own, or sentences from further down the other, are not
    # (the lead of a text of 30 shingles or fewer is all of it: its lead share is at most its containment)
    short = dedup.Overlap(jaccard=np.array([0.37, 0.3, 0.15, 0.37]), containment=np.array([1.0, 0.8, 1.0, 1.0]),
                          smaller=np.array([30, 30, 12, 30]), larger=np.array([80, 80, 30, 80]),
                          lead=np.array([1.0, 0.8, 1.0, 0.2]))
    assert short.contained(params).tolist() == [True, False, False, False]
    # either size, opening exactly as the other does (lead_same), counts from containment_lead:
    # a teaser with a footer line or a paragraph of its own; not when it opens otherwise, nor
    # when more of it is its own
    opening = dedup.Overlap(jaccard=np.array([0.25, 0.4, 0.25, 0.2]), containment=np.array([0.76, 0.76, 0.76, 0.7]),
                            smaller=np.array([41, 120, 41, 41]), larger=np.array([120, 200, 120, 120]),
                            lead=np.array([1.0, 0.93, 0.8, 1.0]))
    assert opening.contained(params).tolist() == [True, True, False, False]


def test_word_hashes_are_stable_and_do_not_depend_on_the_batch():
    words = pl.Series(["وزارة", "الصحة", "2015", "", "وزارة"])
    hashes = minhash.word_hashes(words)
    assert hashes[0] == hashes[4] and len(set(hashes[:4].tolist())) == 4
    # the same word in another batch, at another offset of the Arrow buffer: the same hash
    assert minhash.word_hashes(pl.Series(["x", "y", "وزارة"]).slice(2, 1))[0] == hashes[0]
    # pinned: signatures in a stored index depend on it (change SCHEME with it)
    assert hashes[0] == 0xE7AC60AAD953B21D


def test_candidate_pairs_are_every_pair_sharing_a_band_key_with_big_buckets_capped():
    """``minhash.pair_codes`` (numpy, codes merged band by band) against the pairs counted in
    Python: every pair of a bucket of at most ``max_bucket_size``, a bigger one's first
    member with each other; distinct, sorted. Few distinct values make big buckets."""
    params = dedup.DedupParams.from_params(PARAMS).minhash
    signature = np.random.default_rng(7).integers(0, 3, size=(300, params.width)).astype(np.uint32)
    docs = np.sort(np.random.default_rng(8).choice(300, size=200, replace=False))
    for cap in (2, 5, 1000):
        expected = set()
        for band in range(params.all_bands):
            buckets: dict[int, list[int]] = {}
            for position, key in enumerate(minhash.band_keys(signature, params, band, docs).tolist()):
                buckets.setdefault(key, []).append(position)
            for members in buckets.values():
                if len(members) > cap:
                    expected |= {(members[0], other) for other in members[1:]}
                else:
                    expected |= {(x, y) for i, x in enumerate(members) for y in members[i + 1:]}
        found = minhash.candidate_pairs(signature, params, cap, LocalEngine().map_tasks, docs)
        assert list(found.iter_rows()) == sorted(expected)


def test_set_overlap_and_signatures_read_back_from_disk_are_exact(evaluation):
    """``ShingleSets.overlap`` (both sides merged) counts what Python's sets count, and
    ``SignatureFile`` gives back the rows and band keys of the signatures it was given."""
    params = dedup.DedupParams.from_params(PARAMS).minhash
    words = dedup.with_match_words(evaluation.articles.lazy().head(400).select("id", "text")).collect()["words"]
    shingles = minhash.shingle_hashes(words, params.ngram)
    sets = [set((shingles.hashes[shingles.offsets[i]:shingles.offsets[i + 1]] >> np.uint64(32)).tolist())
            for i in range(len(words))]
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, len(words), 3000), rng.integers(0, len(words), 3000)
    a[:50] = b[:50]  # a set with itself
    with minhash.ShingleSets() as shingle_sets:
        shingle_sets.add(shingles)
        shared, size_a, size_b = shingle_sets.overlap(a, b)
    assert shared.tolist() == [len(sets[x] & sets[y]) for x, y in zip(a.tolist(), b.tolist())]
    assert size_a.tolist() == [len(sets[x]) for x in a.tolist()]
    assert size_b.tolist() == [len(sets[y]) for y in b.tolist()]
    signature = minhash.signatures(shingles, params)
    stored = minhash.SignatureFile(params.width)
    for first in range(0, len(signature), 150):
        stored.add(signature[first:first + 150])
    rows = rng.permutation(len(signature))[:120]
    assert np.array_equal(stored.read(rows), signature[rows])


def test_band_partitions_the_signing_batches_write_give_the_pairs_of_the_signatures(evaluation, tmp_path):
    """How the LSH bands get their keys (``minhash.BandPartitions``): each signed batch writes
    every band's keys to a partition of its own, a band's task reads them back (in a rank
    order of the articles) and pairs its buckets; the task is handed the band's number
    only. The same candidate pairs as from the signatures in memory."""
    params = dataclasses.replace(dedup.DedupParams.from_params(PARAMS), batch_size=300)
    articles = evaluation.articles.lazy().select("id", "text")
    partitions = minhash.BandPartitions(tmp_path / "bands")
    signed = dedup.signature_table(articles, params, "articles", band_partitions=partitions)
    signature = signed["signature"].to_numpy()
    batches = -(-signed.height // params.batch_size)
    assert batches > 2 and sorted(path.name for path in (tmp_path / "bands").iterdir()) == [
        f"band={band:03d}" for band in range(params.minhash.all_bands)]
    assert all(len(list(folder.iterdir())) == batches for folder in (tmp_path / "bands").iterdir())
    docs = np.random.default_rng(5).permutation(signed.height)[:signed.height - 100]
    handed: list[object] = []

    def map_tasks(work, shared, items):
        items = list(items)
        handed.extend(items)
        return LocalEngine().map_tasks(work, shared, items)

    bands = range(params.minhash.all_bands)
    from_partitions = minhash.pair_codes(bands, params.max_bucket_size, map_tasks,
                                         dataclasses.replace(partitions, rows=signed.height), docs)
    from_signatures = minhash.pair_codes((minhash.band_keys(signature, params.minhash, band, docs) for band in bands),
                                         params.max_bucket_size, LocalEngine().map_tasks)
    assert handed == list(bands)
    assert len(from_signatures) > 100 and np.array_equal(from_partitions, from_signatures)
    min((tmp_path / "bands" / "band=007").iterdir()).unlink()
    with pytest.raises(ValueError, match="holds the keys of"):  # a missing partition is an error, not fewer pairs
        minhash.pair_codes(bands, params.max_bucket_size, map_tasks,
                           dataclasses.replace(partitions, rows=signed.height), docs)


def test_set_parts_reads_close_ranges_at_once_and_gives_each_ranges_values(tmp_path):
    """``SetParts.read`` (a verifying task's reads on a cluster): the ranges of a part that lie
    close together are read with one ``read_at`` (counted by wrapping the files pyarrow opens)
    and sliced; a range running on into the next part is read there too. The values are
    those of each range read alone, for empty ranges, ranges ending a part or the last part,
    one across two parts; no more than ``block_bytes`` is read at once, and with no gap
    allowed nothing but the ranges is read. A part that is gone is an error."""
    params = dedup.DedupParams.from_params(PARAMS).minhash
    texts = [json.loads(path.read_text())["content"] for path in sorted(SAUDI_SAMPLE.glob("*.json"))]
    words = dedup.with_match_words(pl.LazyFrame({"id": [str(i) for i in range(len(texts))], "text": texts}))
    words = words.collect()["words"]
    parts, sizes = minhash.SetParts(tmp_path / "parts", rows=(0, 200, 400)), []
    for first in parts.rows:  # real sets, a part a batch of 200 articles, as the signing tasks write them
        shingles = minhash.shingle_hashes(words[first:first + 200], params.ngram)
        sizes.append(parts.add(first, shingles, minhash.signatures(shingles, params), params.lead_shingles)[1])
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(sizes), dtype=np.int64)])  # of the detail sets
    starts = offsets[3 * np.array(parts.rows)]
    whole = np.concatenate([np.fromfile(parts.path(parts.DETAIL_SETS, row), dtype=np.uint32) for row in parts.rows])
    empty = np.flatnonzero(np.concatenate(sizes) == 0)  # (the repeated words of an article that repeats none)
    docs = np.unique([3, 4, 9, 57, 120, 199, 201, 250, 398, 430, len(texts) - 1, *(empty[[0, -1]] // 3)])
    sets = (3 * docs[:, None] + np.arange(3)).ravel()
    begin = np.append(offsets[sets], [offsets[3 * 190], offsets[-1]])  # and across parts 0 and 1; empty, at the end
    end = np.append(offsets[sets + 1], [offsets[3 * 210], offsets[-1]])
    assert len(whole) == offsets[-1] and (begin == end).sum() >= 3

    def read(parts: minhash.SetParts, begin: np.ndarray, end: np.ndarray, **limits) -> tuple[np.ndarray, CountedReads]:
        location, counts = counted(parts.folder)
        return dataclasses.replace(parts, folder=location).read(parts.DETAIL_SETS, starts, begin, end, **limits), counts

    alone = [read(parts, begin[i:i + 1], end[i:i + 1])[0] for i in range(len(begin))]
    assert all(np.array_equal(values, whole[lo:hi]) for values, lo, hi in zip(alone, begin, end))
    values, counts = read(parts, begin, end)
    assert np.array_equal(values, np.concatenate(alone))
    assert counts.reads == 3  # a read a part: each is smaller than the gap allowed
    values, counts = read(parts, begin, end, block_bytes=16 << 10)
    assert np.array_equal(values, np.concatenate(alone)) and 3 < counts.reads < len(docs)
    assert counts.largest <= 16 << 10
    values, counts = read(parts, begin, end, gap_bytes=0)
    covered = np.zeros(len(whole), dtype=bool)
    for lo, hi in zip(begin, end):
        covered[lo:hi] = True
    assert np.array_equal(values, np.concatenate(alone)) and counts.bytes == 4 * covered.sum()
    assert np.array_equal(parts.read(parts.DETAIL_SETS, starts, begin, end), values)  # (a path's own gap)
    parts.path(parts.DETAIL_SETS, 200).unlink()
    with pytest.raises(FileNotFoundError):
        read(parts, begin, end)


def test_a_table_written_a_frame_at_a_time_has_the_bytes_of_the_whole(evaluation, tmp_path):
    """``io.lazy_frames``, how dedup writes a drop's folder without holding the drop: the
    same bytes as the rows sunk from one frame, with a filter and a projection pushed down."""
    articles = evaluation.articles.select("id", "title", "n_chars")
    frames = lazy_frames(lambda: (articles.slice(first, 700) for first in range(0, articles.height, 700)),
                         articles.schema)
    for name, frame in {"whole": articles.lazy(), "frames": frames}.items():
        write_table(frame.filter(pl.col("n_chars") > 900).select("title", "id"), tmp_path / f"{name}.parquet")
    assert (tmp_path / "whole.parquet").read_bytes() == (tmp_path / "frames.parquet").read_bytes()
    assert pl.read_parquet(tmp_path / "frames.parquet").height < articles.height


def test_verified_pairs_are_kept_on_disk_and_read_back_lazily(evaluation):
    """The verified candidate pairs go to a Parquet file step by step (issue 10 item 7):
    the decisions do not depend on the step size, and the file goes with the result."""
    params = dedup.DedupParams.from_params(PARAMS)
    whole = dedup.deduplicate(evaluation.articles.lazy(), params)
    stepped = dedup.deduplicate(evaluation.articles.lazy(), dataclasses.replace(params, verify_batch_pairs=499))
    assert whole.assignment.equals(stepped.assignment) and whole.review.equals(stepped.review)
    path = Path(stepped.scratch.name) / "verified_pairs"
    assert isinstance(stepped.pairs, pl.LazyFrame) and len(list(path.glob("*.parquet"))) > 3  # several steps
    assert stepped.pairs.collect().equals(whole.pairs.collect())
    del stepped
    gc.collect()
    assert not path.exists()


def test_a_drop_rewritten_in_place_with_its_size_is_deduplicated_again(evaluation, tmp_path):
    """The drops' clean tables are hashed once while unchanged (``fingerprint.DigestMemo``,
    ``build/file_digests.json`` beside the output): a table rewritten in place with other
    bytes of the same size is not taken for unchanged. The drop is deduplicated again, and
    the output is that of a run from scratch."""
    params = {**PARAMS, "split": {**PARAMS["split"], "drop_order": ["seed", "sample", "templated"]}}
    clean_dir, output = tmp_path / "clean", tmp_path / "build" / "dedup"
    for (drop,), articles in evaluation.articles.group_by("drop"):
        write_table(articles, partition(clean_dir, drop) / dedup.KEPT_FILE)
    table = partition(clean_dir, "sample") / dedup.KEPT_FILE
    sample = pl.read_parquet(table)
    # another title of the same length in bytes, in a table of the same size
    for row in range(sample.height):
        title = sample["title"][row]
        if title and len(set(title)) > 1:
            swapped = title[1] + title[0] + title[2:]
            write_table(sample.with_columns(title=pl.when(pl.int_range(pl.len()) == row).then(pl.lit(swapped))
                                            .otherwise("title")), tmp_path / "edited.parquet")
            if swapped != title and (tmp_path / "edited.parquet").stat().st_size == table.stat().st_size:
                break
    else:
        pytest.fail("no same-size edit of a title found")
    time.sleep(dedup.DigestMemo.SETTLED_NS / 1e9 + 0.1)  # the tables' digests are kept once settled
    dedup.run(clean_dir, output, None, params)
    memo = json.loads((tmp_path / "build" / dedup.DigestMemo.FILE).read_text())
    assert any(key.endswith(str(table)) for key in memo)
    status = table.stat()
    with table.open("r+b") as stream:
        stream.write((tmp_path / "edited.parquet").read_bytes())
    assert (table.stat().st_size, table.stat().st_ino) == (status.st_size, status.st_ino)
    dedup.run(clean_dir, output, None, params)
    assert swapped in pl.read_parquet(partition(output, "sample") / dedup.KEPT_FILE)["title"].to_list() + \
        pl.read_parquet(partition(output, "sample") / dedup.DUPLICATES_FILE)["title"].to_list()
    dedup.run(clean_dir, tmp_path / "scratch", None, params)
    assert folder_files(output) == folder_files(tmp_path / "scratch")


def test_a_drop_added_is_deduplicated_alone_and_equals_a_run_from_scratch(evaluation, tmp_path, monkeypatch):
    """Drops go in drop order, each against the kept articles of those before it (issue 10
    item 2): adding one reuses the earlier drops' folders untouched, signs only its own
    articles, and gives the bytes of a run from scratch; a changed param recomputes all."""
    params = {**PARAMS, "split": {**PARAMS["split"], "drop_order": ["seed", "sample", "templated"]}}
    clean_dir = tmp_path / "clean"
    for (drop,), articles in evaluation.articles.group_by("drop"):
        write_table(articles, partition(clean_dir, drop) / dedup.KEPT_FILE)
    later = tmp_path / "templated"
    shutil.move(partition(clean_dir, "templated"), later)
    grown = tmp_path / "grown"
    dedup.run(clean_dir, grown, None, params)
    before = {drop: {p.name: p.stat().st_mtime_ns for p in partition(grown, drop).iterdir()} for drop in ("seed", "sample")}
    shutil.move(later, partition(clean_dir, "templated"))
    signing, signed = dedup.signature_table, []  # the articles of each signing
    monkeypatch.setattr(dedup, "signature_table", lambda articles, *args, **kwargs: signed.append(
        articles.select(pl.len()).collect().item()) or signing(articles, *args, **kwargs))
    dedup.run(clean_dir, grown, None, params)
    monkeypatch.undo()
    n_templated = evaluation.articles.filter(pl.col("drop") == "templated").height
    assert signed == [n_templated]  # the earlier articles it may duplicate: their stored sets, not signed again
    assert {drop: {p.name: p.stat().st_mtime_ns for p in partition(grown, drop).iterdir()}
            for drop in ("seed", "sample")} == before

    dedup.run(clean_dir, tmp_path / "scratch", None, params)
    assert folder_files(grown) == folder_files(tmp_path / "scratch") and len(folder_files(grown)) > 20

    # a later drop's article duplicating an earlier drop's kept article is removed for it,
    # and pairs across drops are listed for review
    duplicates = dedup.scan_corpus(grown, dedup.DUPLICATES_FILE).collect()
    kept = scan_partitions(grown, params["split"]["drop_order"], dedup.KEPT_FILE).collect()
    drop_of = dict(zip(kept["id"], kept["drop"]))
    across = duplicates.filter(pl.col("duplicate_of").replace_strict(drop_of, default=None) != pl.col("drop"))
    assert across.height > 0 and set(across["drop"]) <= {"sample", "templated"}
    review = dedup.scan_corpus(grown, dedup.REVIEW_FILE).collect()
    assert review.filter(pl.col("id_a").replace_strict(drop_of, default="") != pl.col("id_b").replace_strict(drop_of, default="")).height > 0

    changed = dedup_eval.with_dedup_params(params, review_min=0.35)
    dedup.run(clean_dir, grown, None, changed)
    fingerprints = {drop: read_json(partition(grown, drop) / "report.json")["fingerprint"] for drop in kept["drop"].unique()}
    scratch = {drop: read_json(partition(tmp_path / "scratch", drop) / "report.json")["fingerprint"] for drop in fingerprints}
    assert all(fingerprints[drop] != scratch[drop] for drop in fingerprints)


def test_add_drop_signs_the_drop_once_and_decides_as_when_signing_twice(evaluation, tmp_path, monkeypatch):
    """add-drop's two questions about a drop, what the corpus has already
    (``match_against_index``) and what repeats within the rest of the drop
    (``drops.drop_duplicates``: ``deduplicate``), read one signing of its articles
    (``SignedArticles``): the same matches, repeats, clusters and review as signing it for
    each, on a drop of the evaluation's templated reports and reprints of the corpus's articles."""
    params = {**PARAMS, "split": {**PARAMS["split"], "drop_order": ["seed", "sample"]}}
    clean_dir = tmp_path / "clean"
    for drop in ("seed", "sample"):
        write_table(evaluation.articles.filter(pl.col("drop") == drop), partition(clean_dir, drop) / dedup.KEPT_FILE)
    dedup.run(clean_dir, tmp_path / "out", None, params)
    index = tmp_path / "out" / dedup.INDEX_DIR
    sample = evaluation.articles.filter(pl.col("drop") == "sample")
    new = pl.concat([evaluation.articles.filter(pl.col("drop") == "templated"), sample.gather_every(4)])
    new = new.with_columns(id="new-" + pl.col("id")).sample(fraction=1.0, shuffle=True, seed=3).lazy()

    signing, signed_articles = dedup.signature_table, []
    monkeypatch.setattr(dedup, "signature_table", lambda articles, *args, **kwargs: signed_articles.append(
        articles.select(pl.len()).collect().item()) or signing(articles, *args, **kwargs))
    with dedup.SignedArticles.of(new, dedup.DedupParams.from_params(params)) as signed:
        matches = dedup.match_against_index(new, index, params, signed)
        repeats = drops.drop_duplicates(new, matches, params, signed)
        rest = new.filter(~pl.col("id").is_in(matches["id"].implode()))
        once = dedup.deduplicate(rest, dedup.DedupParams.from_params(params), presigned=signed)
        with pytest.raises(ValueError, match="not in their order"):
            dedup.deduplicate(rest.reverse(), dedup.DedupParams.from_params(params), presigned=signed)
    monkeypatch.undo()
    assert signed_articles == [new.select(pl.len()).collect().item()]

    assert matches.equals(dedup.match_against_index(new, index, params)) and matches.height >= 50
    assert repeats.equals(drops.drop_duplicates(new, matches, params))
    assert set(repeats["kind"]) == {"exact", "near"} and not repeats["id"].is_in(matches["id"].implode()).any()
    twice = dedup.deduplicate(rest, dedup.DedupParams.from_params(params))
    assert once.assignment.equals(twice.assignment) and once.review.equals(twice.review)
    assert once.pair_ids().equals(twice.pair_ids()) and once.review["reason"].n_unique() >= 3
