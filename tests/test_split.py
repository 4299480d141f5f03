"""The split stage: leakage-free, stable across drops, ratios met, contamination measured."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import shutil
import zipfile
from collections import Counter, defaultdict
from datetime import date, timedelta
from itertools import combinations
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import REPO, SAUDI_SAMPLE, SAUDI_ZIPS, run_corpus

from pipeline.plumbing.io import NpyTableAppender, partition, scan_partitions, write_table
from pipeline.plumbing.params import ParamsError, load_params, section
from pipeline.plumbing.schema import CLUSTER_ID, CLUSTERED_ARTICLE_SCHEMA, QUARANTINE_SCHEMA, SPLITS, conform
from pipeline.stages import clean, dedup, ingest, split
from pipeline.text import arabic_text

PARAMS = load_params(REPO / "params.yaml")
SPLIT_PARAMS = section(PARAMS, "split")
RULES = split.SplitRules.from_params(SPLIT_PARAMS)
CONTAMINATION = split.ContaminationRules.from_params(SPLIT_PARAMS)
# What the dedup stage calls a near duplicate (Jaccard of word n-gram shingles) and its review band.
DEDUP = section(PARAMS, "dedup")
THRESHOLD, REVIEW_MIN, SHINGLE = float(DEDUP["threshold"]), float(DEDUP["review_min"]), int(DEDUP["ngram"])


# ---------------------------------------------------------------------------- helpers


def params_with(**split_changes) -> dict:
    params = copy.deepcopy(PARAMS)
    params["split"].update(split_changes)
    return params


def build_version(raw_dir: Path, work_dir: Path) -> Path:
    """The real ingest, clean, dedup and split stages on every drop under ``raw_dir``;
    their outputs in ``work_dir`` (ingest/, clean/, dedup/, split/, metrics/)."""
    ingest.run(raw_dir, work_dir / "ingest", None, section(PARAMS, "ingest"))
    clean.run(work_dir / "ingest", work_dir / "clean", None, PARAMS)
    dedup.run(work_dir / "clean" / "articles.parquet", work_dir / "dedup", None, PARAMS)
    split.run(work_dir / "dedup", work_dir / "split", work_dir / "metrics" / "split.json", PARAMS)
    return work_dir


def shingle_sets(articles: pl.DataFrame) -> dict[str, set[tuple[str, ...]]]:
    """Each article's shingles as params.dedup defines them: ``dedup.ngram`` consecutive
    words of the match key of the text (a text shorter than that is one shingle)."""
    words = dedup.with_match_words(articles.lazy().select("id", "text")).select("id", "words").collect()

    def grams(w: list[str]) -> set[tuple[str, ...]]:
        if len(w) < SHINGLE:
            return {tuple(w)} if w else set()
        return {tuple(w[i : i + SHINGLE]) for i in range(len(w) - SHINGLE + 1)}

    return {doc: grams(w) for doc, w in words.iter_rows()}


def similar_pairs(articles: pl.DataFrame, threshold: float) -> dict[tuple[str, str], float]:
    """Every pair with Jaccard similarity of shingle sets >= threshold, and that similarity.

    A test oracle independent of the stage's MinHash, LSH and hashed verification: Python
    sets, and no pair missed. Candidates by prefix filtering: with shingles ordered rarest
    first, two sets with Jaccard >= t share one among the first |s| - ceil(t |s|) + 1 of each."""
    sets = {doc: shingles for doc, shingles in shingle_sets(articles).items() if shingles}
    frequency = Counter(shingle for shingles in sets.values() for shingle in shingles)
    postings: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for doc, shingles in sets.items():
        ordered = sorted(shingles, key=lambda shingle: (frequency[shingle], shingle))
        for shingle in ordered[: len(ordered) - math.ceil(threshold * len(ordered) - 1e-9) + 1]:
            postings[shingle].append(doc)
    candidates = {tuple(sorted(pair)) for docs in postings.values() for pair in combinations(docs, 2)}
    similarity = {(a, b): len(sets[a] & sets[b]) / len(sets[a] | sets[b]) for a, b in candidates}
    return {pair: value for pair, value in similarity.items() if value >= threshold}


def reprint(text: str, rng: random.Random, extra: str = "") -> str:
    """A realistic reprint by another outlet: an outlet line, a few words changed,
    diacritics and hamza forms varied, optionally a paragraph added."""
    lines = text.split("\n")
    words = lines[0].split(" ")
    for i in rng.sample(range(len(words)), k=max(1, len(words) // 60)):
        words[i] = rng.choice(["وقال", "كما", "أيضاً", "الذي", "اليوم"])
    lines[0] = " ".join(words)
    varied = "\n".join(lines).replace("أن ", "ان ").replace("إلى", "الى").replace("ة ", "ةً ", 2)
    return "\n".join(part for part in ("الرياض - واس", varied, extra) if part)


def copy_sample_drop(target: Path, names: list[str]) -> Path:
    target.mkdir(parents=True)
    for name in names:
        shutil.copy(SAUDI_SAMPLE / name, target / name)
    return target


def write_reprints(target: Path, sources: list[Path], rng: random.Random, extra: str = "", prefix: str = "reprint") -> None:
    target.mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(sources):
        record = json.loads(path.read_text(encoding="utf-8"))
        record["content"] = reprint(record["content"], rng, extra)
        record["source"] = "reprints"
        (target / f"{prefix}-{number:03d}.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")


def _figures(base: int) -> list[str]:
    return [word for k, name in enumerate(["العدد", "النسبة", "المبلغ", "الرقم", "المؤشر", "الحجم", "السعر", "المعدل"])
            for word in (name, str(base + k), "نقطة")]


def write_regrouped_triples(drop_a: Path, drop_b: Path, rng: random.Random, count: int = 12) -> None:
    """Duplicates that dedup's star clustering moves to another cluster when a drop arrives.

    Per triple, texts of random sample words: in ``drop_a`` K (300 words) and X (K's first
    210: Jaccard 0.70, so X is removed as K's duplicate); in ``drop_b`` N, X plus 150 other
    words: now the longest, N keeps X (0.55) but not K (0.42). K and N end on eight figures
    in the same words, all different ("المؤشر 101 نقطة" / "المؤشر 201 نقطة"), so dedup does
    not join K's cluster to N's either. In v2, X is removed for N and K is a cluster of its
    own; only the X-K pair in review.parquet ties them together."""
    vocabulary = sorted({word for path in sorted(SAUDI_SAMPLE.glob("*.json"))[:100]
                         for word in json.loads(path.read_text(encoding="utf-8"))["content"].split()})
    for drop in (drop_a, drop_b):
        drop.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        words = rng.choices(vocabulary, k=450)
        texts = {
            (drop_a, "kept"): words[:300] + _figures(100),
            (drop_a, "removed"): words[:210],
            (drop_b, "longer"): words[:210] + words[300:] + _figures(200),
        }
        for (drop, role), text in texts.items():
            name = f"regrouped-{number:02d}-{role}"
            record = {"id": name, "source": "generated", "url": f"https://example.invalid/{name}",
                      "date_extracted": "2016-01-10 08:00:00" if drop == drop_b else "2015-07-25 08:00:00",
                      "title": f"{role} {number}", "content": " ".join(text)}
            (drop / f"{name}.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")


def split_of(output: Path) -> dict[str, str]:
    assignments = split.split_table(output, "assignments").collect()
    return dict(zip(assignments["id"], assignments["split"].cast(pl.String)))


LONG_PARAGRAPH = " ".join(["وأضاف المتحدث أن الاجتماع تناول عدداً من الملفات المشتركة بين البلدين"] * 6)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def snn_articles(tmp_path_factory) -> pl.DataFrame:
    """All 30k SaudiNewsNet articles, ingested (enough to measure ratios; 18 days of dates)."""
    raw = tmp_path_factory.mktemp("snn") / "raw"
    drop = raw / "snn"
    drop.mkdir(parents=True)
    for archive in sorted(SAUDI_ZIPS.glob("*.zip")):
        with zipfile.ZipFile(archive) as opened:
            opened.extractall(drop)
    ingest.run(raw, raw.parent / "ingest", None, section(PARAMS, "ingest"))
    return pl.read_parquet(raw.parent / "ingest" / "articles").with_columns(**{CLUSTER_ID: pl.col("id")})


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict[str, Path]:
    """Two versions of a corpus, each built by the real ingest, clean, dedup and split
    stages (dedup with params.yaml's settings).

    v1: the SaudiNewsNet sample (with its real cross-outlet reprints) as drop ``a-2015``.
    v2: v1 plus drop ``b-2016``: fresh reprints of v1 articles, half of them longer than the
    original (dedup, drop by drop, still removes them for the original), plus near-duplicates of articles
    that v1 had already removed as duplicates, plus 40 articles only in v2. Both drops
    also hold generated triples that v2 regroups (``write_regrouped_triples``).
    """
    root = tmp_path_factory.mktemp("versions")
    names = sorted(p.name for p in SAUDI_SAMPLE.glob("*.json"))
    rng = random.Random(5)
    fresh = rng.sample(names, 40)
    old = [n for n in names if n not in fresh]
    raw_v1 = root / "raw-v1"
    copy_sample_drop(raw_v1 / "a-2015", old)
    write_regrouped_triples(raw_v1 / "a-2015", root / "regrouped-b", rng)
    v1 = build_version(raw_v1, root / "v1")
    articles_v1 = pl.read_parquet(v1 / "clean" / "articles.parquet")
    kept_ids = set(scan_partitions(v1 / "dedup", (), "articles.parquet").collect()["id"])
    removed_ids = set(dedup.scan_corpus(v1 / "dedup", dedup.DUPLICATES_FILE).collect()["id"])
    assert len(removed_ids) >= 20, "the sample has real reprint clusters"

    raw_v2 = root / "raw-v2"
    shutil.copytree(raw_v1, raw_v2)
    drop_b = copy_sample_drop(raw_v2 / "b-2016", fresh)
    by_file = dict(zip(articles_v1["source_file"].str.replace("#1$", ""), articles_v1["id"]))
    originals = sorted(n for n in old if by_file.get(n) in kept_ids)
    removed = sorted(n for n in old if by_file.get(n) in removed_ids)
    chosen = rng.sample(originals, 60)
    write_reprints(drop_b, [SAUDI_SAMPLE / n for n in chosen[:30]], rng, extra=LONG_PARAGRAPH, prefix="longer")
    write_reprints(drop_b, [SAUDI_SAMPLE / n for n in chosen[30:]], rng, prefix="reprint")
    write_reprints(drop_b, [SAUDI_SAMPLE / n for n in removed[:15]], rng, prefix="of-removed")
    shutil.copytree(root / "regrouped-b", drop_b, dirs_exist_ok=True)
    return {"v1": v1, "v2": build_version(raw_v2, root / "v2")}


# ---------------------------------------------------------------------------- the assignment rule


def test_assignment_is_pinned_to_the_anchor_id_and_salt() -> None:
    """The hash rule must never change silently: these splits are part of the dataset."""
    ids = [f"{n:016x}" for n in range(0, 2**64, 2**60)]
    units = pl.select(split.salted_unit(pl.lit(pl.Series(ids)), "arabic-news-split-v1")).to_series()
    splits = pl.select(split.hash_split(pl.lit(units), RULES.ratios)).to_series().cast(pl.String).to_list()
    assert splits == [
        "train", "train", "test", "train", "train", "train", "train", "train",
        "train", "train", "train", "train", "test", "validation", "train", "train",
    ]
    digest = hashlib.sha256(b"arabic-news-split-v1\x1f" + ids[2].encode()).digest()
    assert units[2] == (int.from_bytes(digest[:8], "big") >> 11) / 2**53 >= 0.9  # documented formula
    other_salt = pl.select(split.salted_unit(pl.lit(pl.Series(ids)), "another-salt")).to_series()
    assert other_salt.to_list() != units.to_list()
    assert units.min() >= 0 and units.max() < 1


def test_anchor_is_the_member_of_the_earliest_drop() -> None:
    members = pl.LazyFrame({
        "id": ["z-old", "a-new", "b-newer", "c-single", "m1", "m0"],
        "group": ["a-new", "a-new", "a-new", "c-single", "m1", "m1"],
        "drop": ["seed", "2026-01", "0-named-to-sort-first", "2026-01", "x", "x"],
        "published_date": [date(2020, 1, 1), date(2026, 1, 1), None, None, date(2021, 5, 5), None],
    })
    anchors = split.group_anchors(members, ("seed",)).collect().sort("group")
    assert anchors.rows() == [
        # listed drop first even though its id sorts last and the kept member is another
        ("a-new", "z-old", date(2020, 1, 1)),
        ("c-single", "c-single", None),
        # same drop: the earliest published before the smallest id (undated last)
        ("m1", "m1", date(2021, 5, 5)),
    ]
    unlisted = split.group_anchors(members, ()).collect().filter(pl.col("group") == "a-new")
    assert unlisted["anchor_id"].item() == "b-newer"  # unlisted drops by name


def test_review_pairs_join_clusters_into_one_group() -> None:
    """In drop seed, c2-c3: one group; a pair inside c4 and a pair with an unknown id change
    nothing; c5 stays alone. Drop later's d2 (in c2, and paired with c1) joins c1 and c2's
    groups when they share a split, and is set aside, naming both, when they do not."""
    kept = pl.LazyFrame({
        "id": ["c1", "c2", "c3", "c4", "c5"],
        CLUSTER_ID: ["c1", "c2", "c3", "c4", "c5"],
        "drop": ["seed"] * 5,
        "published_date": [None] * 5,
    }, schema_overrides={"published_date": pl.Date})
    duplicates = pl.LazyFrame({
        "id": ["d2", "d4"], CLUSTER_ID: ["c2", "c4"], "drop": ["later"] * 2, "published_date": [None, None],
    }, schema_overrides={"published_date": pl.Date})
    review = pl.LazyFrame({"id_a": ["c1", "c3", "c4", "c5"], "id_b": ["d2", "c2", "d4", "unknown"]})
    groups = split.review_groups(split.cluster_members(kept, duplicates), review).sort(CLUSTER_ID)
    assert groups.rows() == [("c1", "c1"), ("c2", "c1"), ("c3", "c1")]
    outcomes = set()
    for salt in range(8):  # whichever salt, nothing linked is in two splits
        rules = split.SplitRules.from_params(params_with(salt=f"salt-{salt}", drop_order=["seed", "later"])["split"])
        assignment = split.assign_splits(kept, duplicates, rules, review)
        split_of = dict(zip(assignment.members["id"], assignment.members["split"].cast(pl.String)))
        anchor_of = dict(zip(assignment.members["id"], assignment.members["anchor_id"]))
        assert split_of["c2"] == split_of["c3"] and anchor_of["c2"] == anchor_of["c3"] == "c2"
        assert anchor_of["c4"] == anchor_of["d4"] == "c4" and split_of["c4"] == split_of["d4"]
        if split_of["c1"] == split_of["c2"]:
            assert split_of["d2"] == split_of["c1"] and anchor_of["d2"] == "c1" and assignment.bridging.is_empty()
        else:
            assert "d2" not in split_of
            assert assignment.bridging["id"].to_list() == ["d2"] and not assignment.bridging["kept"].item()
            assert {"c1", "c2", split_of["c1"], split_of["c2"]} <= set(assignment.bridging["detail"].item().replace(",", " ")
                                                                      .replace("(", " ").replace(")", " ").split())
        outcomes.add(split_of["c1"] == split_of["c2"])
    assert outcomes == {True, False}


def test_components_are_those_a_graph_search_finds() -> None:
    """``smallest_in_component`` (how review pairs join clusters) on chains, stars, a long
    path through the nodes in random order and random graphs: each node's label is the
    smallest node a breadth-first search from it reaches."""
    rng = random.Random(7)
    path = list(range(400))
    rng.shuffle(path)
    graphs = [
        (5, [(0, 1), (3, 4)]),
        (6, [(5, 4), (4, 3), (3, 2), (2, 1), (1, 0)]),  # a chain towards the smallest node
        (7, [(0, 6), (6, 1), (1, 5), (5, 2), (2, 4), (4, 3)]),  # a zigzag
        (9, [(8, k) for k in range(8)]),  # a star around the largest node
        (400, list(zip(path, path[1:]))),
        *((n, [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randrange(1, 2 * n))])
          for n in (10, 50, 300, 2000)),
    ]
    for nodes, edges in graphs:
        neighbours = defaultdict(set)
        for a, b in edges:
            neighbours[a].add(b)
            neighbours[b].add(a)
        expected = []
        for start in range(nodes):
            seen, todo = {start}, [start]
            while todo:
                for other in neighbours[todo.pop()] - seen:
                    seen.add(other)
                    todo.append(other)
            expected.append(min(seen))
        a, b = (np.array(ends, dtype=np.int64) for ends in zip(*edges))
        assert split.smallest_in_component(nodes, a, b).tolist() == expected, nodes


@pytest.mark.parametrize(
    "change, message",
    [
        ({"strategy": "random"}, "strategy"),
        ({"ratios": {"train": 0.8, "validation": 0.1, "test": 0.2}}, "add up to 1"),
        ({"ratios": {"train": 0.9, "test": 0.1}}, "each of"),
        ({"salt": ""}, "salt"),
        ({"group_review_pairs": "yes"}, "true or false"),
        ({"drop_order": "seed"}, "list of drop names"),
        ({"time": {"validation_from": "2015-08-01", "test_from": None}}, "both"),
        ({"time": {"validation_from": "2015-08-05", "test_from": "2015-08-01"}}, "after"),
        ({"time": {"validation_from": "August", "test_from": "2015-08-01"}}, "YYYY-MM-DD"),
    ],
)
def test_bad_params_are_refused(change: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        split.SplitRules.from_params(params_with(**change)["split"])


def test_hash_ratios_are_met_on_the_full_saudinewsnet(snn_articles: pl.DataFrame) -> None:
    """30,676 clusters: a share's standard error is under 0.2 points; tolerance 1 point."""
    assigned = split.assign_splits(snn_articles.lazy(), None, RULES).members
    shares = assigned.group_by("split").len().with_columns(share=pl.col("len") / assigned.height)
    for name, share in zip(shares["split"].cast(pl.String), shares["share"]):
        assert share == pytest.approx(RULES.ratios[name], abs=0.01), name
    per_source = assigned.join(snn_articles.select("id", "source"), on="id").group_by("source").agg(
        test=(pl.col("split") == "test").mean()
    )
    assert per_source["test"].min() > 0.05  # every outlet is represented in test


def test_time_split_puts_the_newest_days_in_test(snn_articles: pl.DataFrame) -> None:
    """Derived cut-offs: test is the newest days, validation the days before, train the
    rest and every undated article; shares within one day's share of the ratios."""
    rng = random.Random(1)
    undated_ids = set(rng.sample(snn_articles["id"].to_list(), 1500))
    articles = snn_articles.with_columns(
        published_date=pl.when(pl.col("id").is_in(undated_ids)).then(None).otherwise(pl.col("published_date"))
    )
    rules = split.SplitRules.from_params(params_with(strategy="time")["split"])
    assignment = split.assign_splits(articles.lazy(), None, rules)
    assigned = assignment.members.join(articles.select("id", "published_date"), on="id")
    assert assignment.cutoffs.derived
    dates = {
        name: assigned.filter((pl.col("split") == name) & pl.col("published_date").is_not_null())["published_date"]
        for name in SPLITS
    }
    assert dates["train"].max() < assignment.cutoffs.validation_from == dates["validation"].min()
    assert dates["validation"].max() < assignment.cutoffs.test_from == dates["test"].min()
    assert dates["test"].max() == articles["published_date"].max()
    assert set(assigned.filter(pl.col("published_date").is_null())["split"].unique().cast(pl.String)) == {"train"}
    largest_day = articles.group_by("published_date").len()["len"].max() / articles.height
    for name in SPLITS:
        share = assigned.filter(pl.col("split") == name).height / assigned.height
        assert share == pytest.approx(RULES.ratios[name], abs=largest_day), name

    pinned = split.SplitRules.from_params(
        params_with(strategy="time", time={"validation_from": "2015-08-01", "test_from": "2015-08-08"})["split"]
    )
    pinned_assigned = split.assign_splits(articles.lazy(), None, pinned).members.join(
        articles.select("id", "published_date"), on="id"
    )
    expected = (
        pl.when(pl.col("published_date") >= date(2015, 8, 8)).then(pl.lit("test"))
        .when(pl.col("published_date") >= date(2015, 8, 1)).then(pl.lit("validation"))
        .otherwise(pl.lit("train"))
    )
    assert (pinned_assigned["split"].cast(pl.String) == pinned_assigned.select(expected).to_series()).all()


def test_derived_cutoffs_do_not_move_when_a_drop_arrives() -> None:
    """Derived from the first dated drop (the undated seed before it does not count), so a
    later drop, however many and however new its articles, leaves every existing
    article's split as it was; its own articles past test_from go to test."""
    def drop(name: str, first: date, days: int, per_day: int) -> pl.DataFrame:
        dates = [first + timedelta(days=day) for day in range(days) for _ in range(per_day)]
        ids = [f"{name}-{number:04d}" for number in range(len(dates))]
        return pl.DataFrame({"id": ids, CLUSTER_ID: ids, "drop": name, "published_date": dates},
                            schema={"id": pl.String, CLUSTER_ID: pl.String, "drop": pl.String, "published_date": pl.Date})

    seed = pl.DataFrame({"id": ["s1", "s2"], CLUSTER_ID: ["s1", "s2"], "drop": "seed", "published_date": [None, None]},
                        schema={"id": pl.String, CLUSTER_ID: pl.String, "drop": pl.String, "published_date": pl.Date})
    rules = split.SplitRules.from_params(params_with(strategy="time", drop_order=["seed", "a", "b"])["split"])
    first = pl.concat([seed, drop("a", date(2015, 7, 1), 20, 10)])
    grown = pl.concat([first, drop("b", date(2015, 7, 15), 30, 50)])
    before, after = (split.assign_splits(frame.lazy(), None, rules) for frame in (first, grown))
    assert (before.cutoffs.validation_from, before.cutoffs.test_from) == (date(2015, 7, 17), date(2015, 7, 19))
    assert (after.cutoffs.validation_from, after.cutoffs.test_from) == (before.cutoffs.validation_from, before.cutoffs.test_from)
    new = pl.col("id").str.starts_with("b-")
    assert before.members.equals(after.members.filter(~new))
    assert after.members.filter(new)["split"].value_counts().sort("split")["count"].to_list() == [100, 100, 1300]


def test_derived_cutoffs_handle_empty_periods() -> None:
    rows = pl.DataFrame(
        {"anchor_date": [date(2020, 1, 1), date(2020, 1, 2), None], "rows": [50, 50, 10]},
        schema={"anchor_date": pl.Date, "rows": pl.Int64},
    )
    assert split.derive_cutoffs(rows, {"train": 1.0, "validation": 0.0, "test": 0.0}) == (date(2020, 1, 3), date(2020, 1, 3))
    assert split.derive_cutoffs(rows, {"train": 0.5, "validation": 0.0, "test": 0.5}) == (date(2020, 1, 2), date(2020, 1, 2))
    assert split.derive_cutoffs(rows.filter(pl.col("anchor_date").is_null()), RULES.ratios) is None


# ---------------------------------------------------------------------------- leakage and stability


def test_no_near_duplicate_pair_crosses_splits(versions: dict[str, Path]) -> None:
    """On the sample with its real reprints plus injected ones, with pairs found apart from
    the dedup stage (exact Jaccard of the shingles params.dedup defines):

    - no pair at or above the dedup threshold is in two splits, published articles or
      removed ones (in the split their content was published in). Some of these pairs join
      two dedup clusters (star clustering leaves a removed article close to another
      cluster's kept one): split keeps those together through review.parquet.
    - no pair of published articles in the review band that dedup lists is in two splits.
      (MinHash proposes a pair at review_min with p = 0.66 only; a pair it never proposed
      is unknown to split, so the test does not require it.)"""
    articles = pl.read_parquet(versions["v2"] / "clean" / "articles.parquet")
    kept = scan_partitions(versions["v2"] / "dedup", (), "articles.parquet").collect()
    published = set(kept["id"])
    assignments = split.split_table(versions["v2"] / "split", "assignments").collect()
    split_of_article = dict(zip(assignments["id"], assignments["split"].cast(pl.String)))
    cluster_of = dict(zip(assignments["id"], assignments[CLUSTER_ID]))
    assert set(split_of_article) == set(articles["id"])
    pairs = similar_pairs(articles, REVIEW_MIN)

    duplicates = [pair for pair, value in pairs.items() if value >= THRESHOLD]
    assert len(duplicates) >= 100  # mostly removed-kept pairs
    assert sum(cluster_of[a] != cluster_of[b] for a, b in duplicates) >= 12  # the generated triples at least
    assert [(a, b) for a, b in duplicates if split_of_article[a] != split_of_article[b]] == []

    review = dedup.scan_corpus(versions["v2"] / "dedup", dedup.REVIEW_FILE).collect()
    listed = {tuple(sorted(pair)) for pair in zip(review["id_a"], review["id_b"])}
    band = [pair for pair, value in pairs.items() if value < THRESHOLD and set(pair) <= published and pair in listed]
    assert len(band) >= 10  # edited reprints dedup keeps both sides of
    assert [(a, b) for a, b in band if split_of_article[a] != split_of_article[b]] == []

    assert assignments.group_by(CLUSTER_ID).agg(pl.col("split").n_unique())["split"].max() == 1
    # and the published split tables hold each kept article exactly once
    tables = pl.concat([split.split_table(versions["v2"] / "split", name).collect() for name in SPLITS])
    assert tables["id"].is_unique().all() and set(tables["id"]) == published


def test_adding_a_drop_moves_no_existing_article(versions: dict[str, Path]) -> None:
    before, after = split_of(versions["v1"] / "split"), split_of(versions["v2"] / "split")
    assert set(before) <= set(after)
    moved = {doc: (before[doc], after[doc]) for doc in before if before[doc] != after[doc]}
    assert moved == {}

    kept_v1 = scan_partitions(versions["v1"] / "dedup", (), "articles.parquet").collect()
    kept_v2 = scan_partitions(versions["v2"] / "dedup", (), "articles.parquet").collect()
    assignments = split.split_table(versions["v2"] / "split", "assignments").collect()
    # Dedup goes drop by drop (issue 10 item 2): no v1 article loses its place, the new
    # drop's longer reprints are removed as duplicates of the v1 articles and take their split.
    assert set(kept_v1["id"]) <= set(kept_v2["id"])
    reprints = dedup.scan_corpus(versions["v2"] / "dedup", dedup.DUPLICATES_FILE).collect().filter(
        (pl.col("drop") == "b-2016") & pl.col("duplicate_of").is_in(kept_v1["id"].implode()))
    assert reprints.filter(pl.col("source_file").str.starts_with("longer")).height >= 20
    for new_id, old_id in zip(reprints["id"], reprints["duplicate_of"]):
        assert after[new_id] == before[old_id]
    # and the duplicates v1 removed stay in their v1 clusters
    cluster_v2 = dict(zip(assignments["id"], assignments[CLUSTER_ID]))
    removed_v1 = split.split_table(versions["v1"] / "split", "assignments").collect().filter(~pl.col("kept"))
    assert [doc for doc, old in zip(removed_v1["id"], removed_v1[CLUSTER_ID]) if cluster_v2[doc] != cluster_v2[old]] == []
    # Clusters that grew, and new clusters, are still whole.
    assert assignments.group_by(CLUSTER_ID).agg(pl.col("split").n_unique())["split"].max() == 1


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_drop_bridging_two_splits_moves_nothing(versions: dict[str, Path], tmp_path: Path) -> None:
    """A new drop's article paired by dedup with two published articles in different splits
    (real v1 articles; the new one holds half of each, and the drop's review.parquet lists
    both pairs, as dedup writes them): it is set aside with the reason bridges_splits,
    naming both groups, and no article moves. The run that reuses the earlier drop's folder
    and index layer equals the run from nothing, byte for byte."""
    dedup_dir, grown, index = tmp_path / "dedup", tmp_path / "grown", tmp_path / "index"
    shutil.copytree(versions["v1"] / "dedup", dedup_dir)
    split.run(dedup_dir, grown, None, PARAMS, index)
    earlier = {name: folder_bytes(partition(base, "a-2015")) for name, base in (("split", grown), ("index", index))}
    assigned = split.split_table(grown, "assignments").collect().filter("kept")
    first, second = (assigned.filter(pl.col("split") == name)["id"][0] for name in ("train", "test"))
    kept = pl.read_parquet(partition(dedup_dir, "a-2015") / "articles.parquet")
    texts = [kept.filter(pl.col("id") == name)["text"].item() for name in (first, second)]
    bridge = kept.filter(pl.col("id") == first).with_columns(
        id=pl.lit("bridge-1"), drop=pl.lit("c-bridge"), source=pl.lit("roundups"), **{CLUSTER_ID: pl.lit("bridge-1")},
        text=pl.lit("\n".join(text[: len(text) // 2] for text in texts)))
    folder = partition(dedup_dir, "c-bridge")
    folder.mkdir()
    bridge.write_parquet(folder / "articles.parquet")
    pl.DataFrame(schema=dedup.DUPLICATE_SCHEMA).write_parquet(folder / "duplicates.parquet")
    pl.DataFrame({"id_a": ["bridge-1", "bridge-1"], "id_b": [first, second], "similarity": [0.3, 0.3],
                  "containment": [0.5, 0.5], "same_cluster": [False, False], "reason": ["review_band", "review_band"]},
                 schema_overrides={name: dtype for name, dtype in dedup.REVIEW_SCHEMA.items() if name.startswith("id")}
                 ).with_columns(pl.lit(None).alias(name) for name in ("title_a", "title_b", "source_a", "source_b")
                 ).pipe(conform, dedup.REVIEW_SCHEMA).write_parquet(folder / "review.parquet")

    report = split.run(dedup_dir, grown, None, PARAMS, index)
    assert report["quarantined"] == 1 and report["quarantined_by_reason"] == {"bridges_splits": 1}
    assert {name: folder_bytes(partition(base, "a-2015")) for name, base in (("split", grown), ("index", index))} == earlier
    quarantine = split.split_table(grown, "quarantine").collect()
    assert quarantine["id"].to_list() == ["bridge-1"] and quarantine["reason"].to_list() == ["bridges_splits"]
    anchor_of = dict(zip(assigned["id"], assigned["anchor_id"]))
    assert f"{anchor_of[first]} (train), {anchor_of[second]} (test)" in quarantine["detail"].item()
    published = pl.concat([split.split_table(grown, name).collect() for name in SPLITS])
    assert "bridge-1" not in set(published["id"]) and published.height == assigned.height
    assert split.split_table(grown, "assignments").collect().filter("kept").equals(assigned)

    scratch = tmp_path / "scratch"
    split.run(dedup_dir, scratch, None, PARAMS, tmp_path / "scratch-index")
    assert folder_bytes(grown) == folder_bytes(scratch)
    assert folder_bytes(index) == folder_bytes(tmp_path / "scratch-index")


# ---------------------------------------------------------------------------- contamination


def reference_contamination(train: list[str], held_out: list[str], n: int) -> list[tuple[int, int]]:
    """(n-grams, n-grams seen in train) per held-out text: Python sets of word tuples."""

    def grams(text: str) -> set[tuple[str, ...]]:
        words = arabic_text.match_key_of(text).split()
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    seen = set().union(*(grams(t) for t in train))
    return [(len(grams(t)), len(grams(t) & seen)) for t in held_out]


@pytest.fixture(scope="module")
def sample_texts() -> list[str]:
    files = sorted(SAUDI_SAMPLE.glob("*.json"))[:40]
    texts = [json.loads(p.read_text(encoding="utf-8"))["content"] for p in files]
    return [t for t in texts if len(t.split()) > 60][:12]


def write_drops(root: Path, drops: dict[str, list[tuple[str, str, str]]]) -> list[split.DropArticles]:
    """Drops of (id, split, text) articles as dedup lays them out, with their splits; a
    drop's fingerprint is its articles and splits."""
    found = []
    for rank, (name, articles) in enumerate(drops.items()):
        ids, names, texts = zip(*articles) if articles else ((), (), ())
        path = root / f"drop={name}" / "articles.parquet"
        path.parent.mkdir(parents=True)
        pl.DataFrame({"id": ids, "text": texts, "n_words": [len(t.split()) for t in texts]},
                     schema={"id": pl.String, "text": pl.String, "n_words": pl.Int64}).write_parquet(path)
        split_of = pl.LazyFrame({"id": ids, "split": names}, schema={"id": pl.String, "split": split.SPLIT_TYPE})
        found.append(split.DropArticles(name, path, rank, split_of, json.dumps(articles)))
    return found


def index_files(index: Path) -> dict[str, bytes]:
    return {str(path.relative_to(index)): path.read_bytes() for path in sorted(index.rglob("*")) if path.is_file()}


def test_contamination_counts_shared_ngrams_exactly(sample_texts: list[str], tmp_path: Path) -> None:
    train = sample_texts[:6]
    diacritised = train[0].replace("ال", "الْ")  # same words for matching
    half = " ".join(train[1].split()[:40]) + " " + " ".join(sample_texts[9].split()[:60])
    test = [diacritised, half, sample_texts[10], "قصير جدا"]
    validation = [train[2], sample_texts[11]]
    articles = [(f"{name}-{i}", name, text) for name, texts in (("train", train), ("validation", validation), ("test", test))
                for i, text in enumerate(texts)]
    n = CONTAMINATION.ngram

    # one drop, then the held-out articles and train[0] first and the rest of train in a
    # later drop (which contaminates the earlier held-out articles); few and many partitions
    layouts = {"one drop": {"all": articles},
               "two drops": {"first": [a for a in articles if a[1] != "train" or a[0] == "train-0"],
                             "later": [a for a in articles if a[1] == "train" and a[0] != "train-0"]}}
    for (layout, drops), partitions in [(item, p) for item in layouts.items() for p in (1, 7)]:
        rules = split.ContaminationRules(n, 0.5, 0.01, 50, partitions)
        found = write_drops(tmp_path / f"{layout}-{partitions}", drops)
        result = split.contamination(split.update_index(found, rules, tmp_path / f"index-{layout}-{partitions}"), rules)
        report = {row["id"]: row for row in result.report.iter_rows(named=True)}
        for name, texts in (("test", test), ("validation", validation)):
            expected = reference_contamination(train, texts, n)
            for i, (grams, in_train) in enumerate(expected):
                row = report.get(f"{name}-{i}")
                assert (row["ngrams_in_train"] if row else 0) == in_train, (layout, name, i)
                if row:
                    assert row["ngrams"] == grams
        assert report["test-0"]["share_in_train"] == 1.0 and report["test-0"]["closest_train_id"] == "train-0"
        assert report["test-1"]["closest_train_id"] == "train-1" and 0 < report["test-1"]["share_in_train"] < 1
        assert report["validation-0"]["closest_train_id"] == "train-2"
        test_metrics = result.metrics["test"]
        assert test_metrics["articles"] == 4 and test_metrics["articles_with_ngrams"] == 3
        assert test_metrics["contaminated_articles"] == sum(
            1 for grams, seen in reference_contamination(train, test, n) if grams and seen / grams >= 0.5
        )
        seen = {grams for text in train for grams in zip(*[arabic_text.match_key_of(text).split()[k:] for k in range(n)])}
        held = {grams for text in test for grams in zip(*[arabic_text.match_key_of(text).split()[k:] for k in range(n)])}
        assert (test_metrics["distinct_ngrams"], test_metrics["distinct_ngrams_in_train"]) == (len(held), len(held & seen))
        assert result.metrics["gate"]["passed"] is False


def test_the_index_grows_drop_by_drop_as_if_built_from_nothing(sample_texts: list[str], tmp_path: Path) -> None:
    """Layers are reused while their drop's fingerprint holds; a drop added, a drop changed
    (here its splits: a new salt) or a drop removed: the index and the report equal those
    of an index built from nothing, byte for byte."""
    rules = split.ContaminationRules(CONTAMINATION.ngram, 0.5, 0.01, 200, 5)
    texts = sample_texts
    first = [("a", "train", texts[0]), ("b", "test", texts[1]), ("c", "validation", texts[2] + " " + texts[3])]
    second = [("d", "train", texts[1] + " " + texts[4]), ("e", "test", texts[0]), ("f", "train", texts[2])]
    third = [("g", "validation", texts[4])]
    moved = [("a", "train", texts[0]), ("b", "train", texts[1]), ("c", "validation", texts[2] + " " + texts[3])]
    grown = tmp_path / "grown"
    history = [{"1": first}, {"1": first, "2": second}, {"1": first, "2": second, "3": third},
               {"1": moved, "2": second, "3": third}, {"1": moved, "3": third}]
    for step, drops in enumerate(history):
        found = write_drops(tmp_path / f"input-{step}", drops)
        before = index_files(grown)
        incremental = split.contamination(split.update_index(found, rules, grown), rules)
        scratch = split.contamination(split.update_index(found, rules, tmp_path / f"scratch-{step}"), rules)
        assert index_files(grown) == index_files(tmp_path / f"scratch-{step}"), step
        assert incremental.report.equals(scratch.report) and incremental.metrics == scratch.metrics, step
        if step in (1, 2):  # a drop added: the earlier layers stay as they were
            assert all(index_files(grown)[name] == content for name, content in before.items()), step
    # the later train article d contaminated the earlier test article b; the moved b no longer counts
    assert step and "b" not in set(scratch.report["id"])


def test_partition_ranges_join_consecutive_partitions_up_to_the_limit() -> None:
    assert split.partition_ranges({0: 3, 1: 4, 2: 9, 5: 1, 6: 2}, 8) == [(0, 1), (2, 2), (5, 6)]
    assert split.partition_ranges({0: 3, 1: 4}, 0) == [(0, 0), (1, 1)]
    assert split.partition_ranges({}, 8) == []


def test_a_layer_is_the_same_joined_a_partition_or_all_partitions_at_a_time(sample_texts: list[str],
                                                                              tmp_path: Path) -> None:
    """A drop's hash partitions joined with the earlier layers' in one run (a small drop) or
    one partition a run (a large one): the same index and report, byte for byte."""
    texts = sample_texts
    drops = {"1": [("a", "train", texts[0]), ("b", "test", texts[1] + " " + texts[5]), ("c", "validation", texts[2])],
             "2": [("d", "train", texts[1] + " " + texts[4]), ("e", "test", texts[0] + " " + texts[2]),
                   ("f", "validation", texts[5]), ("g", "train", texts[3])]}
    found = write_drops(tmp_path / "input", drops)
    built = {}
    for memory_ngrams in (1, 10**9):  # every partition a run of its own; all partitions in one run
        rules = split.ContaminationRules(CONTAMINATION.ngram, 0.5, 0.01, memory_ngrams, 7)
        index = tmp_path / f"index-{memory_ngrams}"
        result = split.contamination(split.update_index(found, rules, index), rules)
        built[memory_ngrams] = (index_files(index), result.report, result.metrics)
    (files, report, metrics), (files_at_once, report_at_once, metrics_at_once) = built.values()
    assert files == files_at_once
    assert report.equals(report_at_once) and metrics == metrics_at_once
    assert report.height and metrics["test"]["distinct_ngrams_in_train"]  # the drops share n-grams


def test_rows_with_ngrams_are_the_rows_a_filter_keeps(tmp_path: Path) -> None:
    """The earlier layers' rows of a drop's n-grams, found by binary search in the layers'
    arrays, are the rows a filter of the same tables keeps, in the same order: n-grams held
    by several articles, n-grams of no layer, partitions and layers without rows."""
    rng = np.random.default_rng(7)
    partitions, layers = 5, []
    for number, rows in enumerate((400, 0, 250)):
        ngrams = rng.integers(0, 2**64, rows, dtype=np.uint64)
        ngrams = ngrams[ngrams % partitions != 3]  # a partition with no rows
        held_ngrams = np.concatenate([ngrams, ngrams[:40]])  # 40 n-grams of two articles
        held = pl.DataFrame({"ngram": held_ngrams, "key": np.arange(len(held_ngrams), dtype=np.uint64),
                             "split": pl.Series(rng.choice(["validation", "test"], len(held_ngrams)),
                                                dtype=split.SPLIT_TYPE)})
        owned = pl.DataFrame({"ngram": ngrams, "owner": rng.integers(0, 2**40, len(ngrams), dtype=np.uint64)})
        layer = tmp_path / f"drop={number}"
        for name, frame in (("owned", owned), ("held_out", held)):
            in_order = frame.with_columns(partition=split.hash_partition(partitions)).sort("partition", "ngram", "key"
                                                                                            if name == "held_out" else "owner")
            with NpyTableAppender(layer, name, split.NGRAM_TABLES[name], partitions) as out:
                for bucket, part in split.by_partition(in_order.drop("partition"), partitions):
                    out.append(part, bucket)
            write_table(in_order, tmp_path / "expected" / f"{number}-{name}.parquet")
        layers.append(layer)
        if rows:
            wanted = pl.Series(np.concatenate([ngrams[::3], ngrams[::3], rng.integers(0, 2**64, 50, dtype=np.uint64)]))
    for name in split.NGRAM_TABLES:
        found = split.rows_with_ngrams(split.ngram_tables(layers, name), name, split.wanted_ngrams(wanted, partitions))
        expected = (pl.scan_parquet(sorted((tmp_path / "expected").glob(f"*-{name}.parquet")))
                    .filter(pl.col("ngram").is_in(wanted.implode())).drop("partition").collect())
        assert found.height > 60 and found.equals(expected), name
    assert split.rows_with_ngrams([], "owned", split.wanted_ngrams(wanted, partitions)).schema == split.OWNED_NGRAMS


def test_rows_at_most_are_those_a_binary_search_finds() -> None:
    """Both ways: a merge (a column not much longer than the n-grams) and binary searches."""
    rng = np.random.default_rng(3)
    for rows, wanted in ((0, 5), (50, 40), (60, 1), (1000, 10)):
        column = np.sort(rng.integers(0, 1000, rows, dtype=np.uint64))  # repeats, and n-grams equal to values
        ngrams = np.unique(np.concatenate([rng.choice(column, min(rows, wanted // 2)) if rows else [],
                                           rng.integers(0, 1100, wanted)]).astype(np.uint64))
        assert np.array_equal(split.rows_at_most(column, ngrams), np.searchsorted(column, ngrams, side="right"))


def two_layer_index(sample_texts: list[str], tmp_path: Path) -> tuple[list[split.DropArticles], split.ContaminationRules]:
    texts = sample_texts
    drops = {"1": [("a", "train", texts[0]), ("b", "test", texts[1]), ("c", "validation", texts[2])],
             "2": [("d", "train", texts[1] + " " + texts[4]), ("e", "test", texts[0] + " " + texts[2])]}
    return write_drops(tmp_path / "input", drops), split.ContaminationRules(CONTAMINATION.ngram, 0.5, 0.01, 200, 7)


def test_a_damaged_earlier_layer_is_named_in_one_line(sample_texts: list[str], tmp_path: Path) -> None:
    found, rules = two_layer_index(sample_texts, tmp_path)
    split.update_index(found[:1], rules, tmp_path / "index")
    column = tmp_path / "index" / "drop=1" / "held_out.ngram.npy"
    for damage in (lambda: column.write_bytes(column.read_bytes()[:-8]), column.unlink):
        damage()
        with pytest.raises(ValueError, match=r"contamination index is damaged: .*drop=1.*delete") as raised:
            split.update_index(found, rules, tmp_path / "index")
        assert "\n" not in str(raised.value)


def test_an_index_of_an_older_format_is_built_again_once(sample_texts: list[str], tmp_path: Path, capsys) -> None:
    """Layers written by the code before INDEX_FORMAT 5 (Parquet n-gram tables, another
    fingerprint, no format in layer.json) are built again, said once; the index is then the
    one built from nothing."""
    found, rules = two_layer_index(sample_texts, tmp_path)
    index = tmp_path / "index"
    split.update_index(found, rules, index)
    for layer in index.iterdir():
        saved = json.loads((layer / split.LAYER_FILE).read_text())
        (layer / split.LAYER_FILE).write_text(json.dumps({"fingerprint": "of format 4",
                                                          "distinct_ngrams": saved["distinct_ngrams"]}))
        (layer / "owned.parquet").write_bytes(b"PAR1")
    capsys.readouterr()
    split.update_index(found, rules, index)
    said = [line for line in capsys.readouterr().err.splitlines() if "older version" in line]
    assert len(said) == 1 and "format 4 or before, now 5" in said[0] and "from scratch" in said[0]
    split.update_index(found, rules, tmp_path / "scratch")
    assert index_files(index) == index_files(tmp_path / "scratch")
    split.update_index(found, rules, index)
    assert "older version" not in capsys.readouterr().err


# ---------------------------------------------------------------------------- the stage


def test_outputs_are_byte_identical_on_rerun(versions: dict[str, Path], tmp_path: Path) -> None:
    first = versions["v2"]
    again = tmp_path / "again"
    run_corpus("--params", str(REPO / "params.yaml"), "split", "--input", str(first / "dedup"),
               "--output", str(again / "split"), "--metrics", str(again / "metrics" / "split.json"))
    for relative in ("split", "metrics"):
        names = sorted(str(p.relative_to(first / relative)) for p in (first / relative).rglob("*") if p.is_file())
        assert names == sorted(str(p.relative_to(again / relative)) for p in (again / relative).rglob("*") if p.is_file())
        assert any(name.startswith("drop=") for name in names) or relative == "metrics"
        for name in names:
            assert (first / relative / name).read_bytes() == (again / relative / name).read_bytes(), name


def test_split_tables_written_in_batches_are_the_rows_written_at_once(versions: dict[str, Path], tmp_path: Path):
    """A drop's split tables and quarantine are written a batch of articles at a time (memory
    bounded by a batch, not by the drop); the files are those of the same rows written at
    once, in the order of the kept articles, whatever the batch size."""
    drop = partition(versions["v2"] / "dedup", "a-2015")
    kept = pl.scan_parquet(drop / "articles.parquet")
    ids = kept.select("id").collect()["id"]
    assert ids.len() > 100
    set_aside = pl.DataFrame({"id": ids.gather([3, 50, 51]), "detail": ["links a (train), b (test)"] * 3})
    assignments = split.split_table(versions["v2"] / "split", "assignments")
    split_of = assignments.filter("kept").select("id", "split").collect().join(set_aside, on="id", how="anti")
    assert split_of["split"].n_unique() == len(SPLITS)
    at_once = tmp_path / "at-once"
    tagged = kept.join(split_of.lazy(), on="id", how="left", maintain_order="left")
    for name in SPLITS:
        table = conform(tagged.filter(pl.col("split") == name), CLUSTERED_ARTICLE_SCHEMA)
        write_table(table, at_once / f"{name}.parquet")
    write_table(conform(kept.join(set_aside.lazy(), on="id", maintain_order="left").with_columns(
        stage=pl.lit("split"), reason=pl.lit(split.BRIDGES_SPLITS)), QUARANTINE_SCHEMA), at_once / split.QUARANTINE)
    for rows in (7, 64, ids.len()):
        batched = tmp_path / f"batches-of-{rows}"
        split.write_article_tables(kept, split_of, set_aside, batched, rows=rows)
        for table in (*SPLITS, "quarantine"):
            written = (batched / f"{table}.parquet").read_bytes()
            assert written == (at_once / f"{table}.parquet").read_bytes(), (rows, table)
    assert pl.read_parquet(at_once / split.QUARANTINE)["id"].to_list() == set_aside["id"].to_list()


def test_a_run_over_an_older_output_folder_keeps_only_what_it_writes(versions: dict[str, Path], tmp_path: Path) -> None:
    """The output folder persists between runs (a DVC `persist` output): what an older
    layout left there (whole-corpus split tables) must go, or dvc.lock differs from a
    fresh clone's."""
    reused = tmp_path / "reused"
    shutil.copytree(versions["v1"] / "split", reused)
    (reused / "train.parquet").write_bytes((reused / "drop=a-2015" / "train.parquet").read_bytes())
    (reused / "old-layer").mkdir()
    (reused / "old-layer" / "part.parquet").write_bytes(b"left by an older run")
    split.run(versions["v1"] / "dedup", reused, None, PARAMS)
    fresh = tmp_path / "fresh"
    split.run(versions["v1"] / "dedup", fresh, None, PARAMS)
    assert folder_bytes(reused) == folder_bytes(fresh)


def test_report_adds_up_and_describes_the_splits(versions: dict[str, Path]) -> None:
    stage_report = json.loads((versions["v2"] / "split" / "report.json").read_text())
    kept = scan_partitions(versions["v2"] / "dedup", (), "articles.parquet").collect()
    assert (sum(stage_report["splits"][name]["rows"] for name in SPLITS) + stage_report["quarantined"]
            == kept.height == stage_report["input"]["kept"])
    for name in SPLITS:
        table = split.split_table(versions["v2"] / "split", name).collect()
        assert table.schema == CLUSTERED_ARTICLE_SCHEMA
        stats = stage_report["splits"][name]
        assert (stats["rows"], stats["characters"], stats["words"]) == (table.height, table["n_chars"].sum(), table["n_words"].sum())
        assert stats["sources"] == table["source"].drop_nulls().n_unique()
    report = pl.read_parquet(versions["v2"] / "split" / "contamination.parquet")
    assert report.schema == split.CONTAMINATION_SCHEMA
    assert stage_report["contamination"]["test"]["articles_sharing_any_ngram"] == report.filter(pl.col("split") == "test").height
    headline = json.loads((versions["v2"] / "metrics" / "split.json").read_text())
    assert headline == {"input": kept.height, "articles": kept.height - stage_report["quarantined"], **{name: stage_report["splits"][name]["rows"] for name in SPLITS},
                        "quarantined": stage_report["quarantined"],
                        "contaminated_share": stage_report["contamination"]["gate"]["contaminated_share"],
                        "passed": stage_report["contamination"]["gate"]["passed"]}
    by_date = pl.read_csv(versions["v2"] / "metrics" / "split_by_date.csv")
    assert by_date.columns == ["published_date", *SPLITS]
    assert by_date.select(pl.sum_horizontal(SPLITS)).to_series().sum() == kept["published_date"].is_not_null().sum()


def test_ngram_batch_is_every_distinct_window_of_each_article():
    """The vectorised n-grams (a mask of each article's last n - 1 words, pairs packed for
    the repeats, counts by key offset) against a plain loop over each article's words, on
    real articles cut to lengths around n (none, exactly n, a repeated window)."""
    n, mask = 13, 2**64 - 1
    texts = [json.loads(path.read_text(encoding="utf-8"))["content"] for path in sorted(SAUDI_SAMPLE.glob("*.json"))[:6]]
    cut = [" ".join(text.split()[:length]) for text, length in zip(texts, (0, 5, 12, 13, 14, 400))]
    cut.append(cut[4] + "\n" + cut[4])  # a window that repeats: counted once
    first_key = (3 << split.KEY_BITS) + 7
    articles = pl.DataFrame({"key": [first_key + row for row in range(len(cut))], "text": cut},
                            schema={"key": pl.UInt64, "text": pl.String})
    expected: dict[int, set[int]] = {}
    for key, text in articles.iter_rows():
        words = arabic_text.match_key_of(text).split()
        hashes = pl.Series(words, dtype=pl.String).hash(split.NGRAM_HASH_SEED).to_list()
        for start in range(len(words) - n + 1):
            value = 0
            for word_hash in hashes[start:start + n]:
                value = (value * int(split.NGRAM_MULTIPLIER) + word_hash) & mask
            expected.setdefault(key, set()).add(value)
    rules = split.ContaminationRules(n, 0.5, 0.03, 10**6, 4)
    batch = split.ngram_batch(articles.lazy(), (0, articles.height), rules)
    found: dict[int, set[int]] = {}
    for bucket, part in batch.parts.items():
        assert (part["ngram"] % 4 == bucket).all() and not part.is_duplicated().any()
        for key, ngram in part.iter_rows():
            found.setdefault(key, set()).add(ngram)
    assert found == expected and set(expected) == {first_key + row for row in (3, 4, 5, 6)}
    assert dict(batch.counts.iter_rows()) == {key: len(values) for key, values in expected.items()}
    assert batch.counts["key"].is_sorted()
