"""Split: every kept article to train, validation or test; leakage-free and stable.

Groups, not articles, are assigned. A dedup cluster is a kept article and every article
the dedup stage removed as its duplicate (``cluster_id`` on both tables); with
``split.group_review_pairs``, clusters joined by a pair listed in the dedup stage's
``review.parquet`` form one group: a pair of the review band (similar, but under the
duplicate threshold, typically an edited reprint), or a duplicate pair that dedup's star
clustering left in two clusters. All kept members of a group land in one split, so no
pair the dedup stage found similar crosses splits.

Groups form drop by drop (``split.drop_order`` lists drops in the order they arrived,
appended by ``corpus add-drop``; a folder given with --input may hold drops not listed,
which come after them, by name), each drop
after the ones before it, whose assignments never change (``assign_drop``): a new group
is placed by its **anchor** (its earliest published member, then the smallest id); a group
linked to earlier groups of one split joins that split; a group linked to earlier groups
in different splits is set aside (quarantine, reason ``bridges_splits``), as either split
would leak and a published article never moves. The representative the dedup stage keeps
plays no part (dedup goes drop by drop: a longer reprint in a new drop is removed for the
existing article, and inherits its split).

Strategies (``split.strategy``):

* ``hash``: a group's place in [0, 1) is SHA-256 of ``split.salt`` and the anchor's id;
  [0, train) is train, then validation, then test. A pure function of the anchor: not of
  row order, corpus size or the other groups. Changing the salt reshuffles everything.
* ``time``: test is the newest period, validation the period before it, train the rest,
  by the anchor's ``published_date`` (the date of the story's first printing in the
  corpus). Cut-off dates come from ``split.time``; left empty, they are derived from the
  ratios on the articles of the first drop (in drop order) that has dated ones, so later
  drops never move them (printed, and written to the report). Undated anchors go to train:
  nothing shows they come after the cut-off, and an evaluation set must be newer than
  what a model was trained on.

Contamination report: after assignment, long word n-grams (``split.contamination.ngram``,
13 as in decontamination tools) of the validation and test articles are looked up in
train. Per split: articles sharing any n-gram with train, articles mostly made of train
n-grams (share at or above ``article_overlap``), and the share of the split's distinct
n-grams seen in train. Words are ``arabic_text.key_words`` of ``arabic_text.match_key``;
n-grams are hashed to 64-bit ints. The check is incremental: the index (``update_index``)
keeps one layer a drop, built in drop order from the drop's kept articles and the layers
before it, and reused while they are unchanged; so a new drop's articles are the only ones
hashed, its train n-grams are looked up in the earlier validation and test n-grams and its
held-out ones in every train n-gram, hash partition by hash partition on disk (memory: a
batch of ``memory_ngrams`` words, then one of ``partitions`` partitions, or a run of them
for a small drop). Each batch is
hashed by a task of the engine (params.yaml ``engine``, ``--engine``: on a Ray cluster's
workers with ``ray``), reading its own rows; the index is the same bytes on every engine. The report says
whether the contaminated share of validation and test is within ``max_contaminated_share``
(``contamination.gate``).

Outputs, per drop in drop=<name>/ (reused while the drop's fingerprint holds; ``split_table``
reads them over every drop): {train,validation,test}.parquet (article columns +
cluster_id), assignments.parquet (every kept and removed article: cluster, anchor, split),
quarantine.parquet (the kept articles set aside); corpus-wide: contamination.parquet
(held-out articles sharing n-grams with train), report.json (the drops, the figures of
each split, the contamination figures and gate); the index (``--index``,
params.yaml ``paths.split_index``); metrics/split.json (articles per
split, the gate) and, beside it, split_by_date.csv and split_by_source.csv for ``dvc plots``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import polars as pl

from pipeline.engines.engine import Engine, add_engine_option, open_engine, with_engine
from pipeline.engines.local import LocalEngine
from pipeline.plumbing.fingerprint import DigestMemo, code_digest, digest, files_digest
from pipeline.plumbing.io import (
    PARQUET_OPTIONS,
    REPORT_FILE,
    NpyTable,
    NpyTableAppender,
    batches,
    keep_listed_drops,
    lazy_frames,
    partition,
    partition_drops,
    read_json,
    reset_dir,
    scan_table,
    scratch_folder,
    write_json,
    write_scratch,
    write_stage_report,
    write_table,
    write_text,
)
from pipeline.plumbing.params import ParamsError, drop_order, path_of, section
from pipeline.plumbing.progress import Progress, log
from pipeline.plumbing.schema import CLUSTER_ID, CLUSTERED_ARTICLE_SCHEMA, QUARANTINE_SCHEMA, SPLITS, conform
from pipeline.plumbing.stage_command import StagePaths, add_stage_command, require_listed_drops
from pipeline.text import arabic_text

STAGE = "split"
# Headline figures for `dvc metrics show` (name: key in the report): input = dedup's kept
# articles = articles (train + validation + test) + quarantined (set aside as bridging splits);
# contaminated_share and passed: the contamination gate.
HEADLINE = {
    "input": "input.kept",
    "articles": "published",
    **{name: f"splits.{name}.rows" for name in SPLITS},
    "quarantined": "quarantined",
    "contaminated_share": "contamination.gate.contaminated_share",
    "passed": "contamination.gate.passed",
}
STRATEGIES = ("hash", "time")
UNDATED_SPLIT = "train"
SPLIT_TYPE = pl.Enum(SPLITS)
ASSIGNMENT_SCHEMA = pl.Schema({
    "id": pl.String(),
    CLUSTER_ID: pl.String(),
    "anchor_id": pl.String(),  # names the group; its drop and id decide the group's split
    "split": SPLIT_TYPE,
    "kept": pl.Boolean(),  # False: removed by dedup, its content is in the split through its cluster
})
CONTAMINATION_SCHEMA = pl.Schema({
    "split": SPLIT_TYPE,
    "id": pl.String(),
    "ngrams": pl.Int64(),  # distinct n-grams of the article
    "ngrams_in_train": pl.Int64(),
    "share_in_train": pl.Float64(),
    "closest_train_id": pl.String(),  # the train article that shares most of them
    "ngrams_shared_with_closest": pl.Int64(),
})
# Seed of Polars' hash for words; an n-gram's hash is a polynomial of its words' hashes
# (an odd 64-bit multiplier: the golden ratio's). Polars' hash may change between Polars
# versions, which is fine: n-gram hashes only meet other hashes of the same index, and
# the index is rebuilt when Polars changes (``index_fingerprint``).
NGRAM_HASH_SEED = 13
NGRAM_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class SplitRules:
    """params.yaml ``split``, checked."""

    strategy: str
    ratios: dict[str, float]
    salt: str
    drop_order: tuple[str, ...]
    group_review_pairs: bool
    validation_from: date | None
    test_from: date | None

    @classmethod
    def from_params(cls, split: dict[str, Any]) -> "SplitRules":
        strategy = split.get("strategy")
        if strategy not in STRATEGIES:
            raise ParamsError(f"split.strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
        ratios = split.get("ratios") or {}
        if set(ratios) != set(SPLITS) or any(not isinstance(ratios[s], (int, float)) or ratios[s] < 0 for s in SPLITS):
            raise ParamsError(f"split.ratios needs a non-negative number for each of {', '.join(SPLITS)}")
        if not math.isclose(sum(ratios.values()), 1.0, abs_tol=1e-9):
            raise ParamsError(f"split.ratios must add up to 1, not {sum(ratios.values())}")
        if not isinstance(split.get("group_review_pairs"), bool):
            raise ParamsError("split.group_review_pairs must be true or false")
        drop_order = split.get("drop_order") or []
        if not isinstance(drop_order, list) or not all(isinstance(d, str) for d in drop_order):
            raise ParamsError("split.drop_order must be a list of drop names")
        salt = split.get("salt")
        if not isinstance(salt, str) or not salt:
            raise ParamsError("split.salt must be a non-empty string")
        time = split.get("time") or {}
        validation_from, test_from = (_as_date(time.get(k), f"split.time.{k}") for k in ("validation_from", "test_from"))
        if (validation_from is None) != (test_from is None):
            raise ParamsError("split.time: set both validation_from and test_from, or neither (then they are derived)")
        if validation_from and validation_from > test_from:
            raise ParamsError("split.time.validation_from must not be after test_from")
        return cls(
            strategy=strategy,
            ratios={s: float(ratios[s]) for s in SPLITS},
            salt=salt,
            drop_order=tuple(drop_order),
            group_review_pairs=split.get("group_review_pairs"),
            validation_from=validation_from,
            test_from=test_from,
        )


@dataclass(frozen=True)
class ContaminationRules:
    """params.yaml ``split.contamination``, checked."""

    ngram: int
    article_overlap: float
    max_contaminated_share: float
    memory_ngrams: int
    partitions: int

    @classmethod
    def from_params(cls, split: dict[str, Any]) -> "ContaminationRules":
        params = split.get("contamination")
        if not isinstance(params, dict):
            raise ParamsError("params.yaml has no 'split.contamination' section")
        rules = cls(
            ngram=int(params["ngram"]),
            article_overlap=float(params["article_overlap"]),
            max_contaminated_share=float(params["max_contaminated_share"]),
            memory_ngrams=int(params["memory_ngrams"]),
            partitions=int(params["partitions"]),
        )
        if min(rules.ngram, rules.memory_ngrams, rules.partitions) < 1 or not 0 < rules.article_overlap <= 1:
            raise ParamsError("split.contamination: ngram, memory_ngrams and partitions >= 1, 0 < article_overlap <= 1")
        return rules


def _as_date(value: Any, name: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ParamsError(f"{name} must be a date (YYYY-MM-DD), not {value!r}") from None


# ---------------------------------------------------------------------------- assignment


def cluster_members(kept: pl.LazyFrame, duplicates: pl.LazyFrame | None) -> pl.LazyFrame:
    """Every article of every cluster, kept or removed: id, cluster_id, drop, published_date, kept."""
    columns = ["id", CLUSTER_ID, "drop", "published_date"]
    members = [kept.select(*columns, kept=pl.lit(True))]
    if duplicates is not None:
        members.append(duplicates.select(*columns, kept=pl.lit(False)))
    return pl.concat(members)


def review_groups(members: pl.LazyFrame, review: pl.LazyFrame) -> pl.DataFrame:
    """cluster_id -> group for clusters joined by pairs of dedup's review.parquet (id_a, id_b).

    The groups are the connected components of those links; a group is named after its
    smallest cluster id. Clusters without a link are not listed (each is its own group).
    """
    cluster_of = members.select("id", CLUSTER_ID)
    links = (
        review.select("id_a", "id_b")
        .join(cluster_of.select(id_a="id", a=CLUSTER_ID), on="id_a")
        .join(cluster_of.select(id_b="id", b=CLUSTER_ID), on="id_b")
        .filter(pl.col("a") != pl.col("b"))
        .select("a", "b")
        .collect()
    )
    nodes = pl.concat([links["a"], links["b"]]).unique().sort()
    index = pl.DataFrame({"node": nodes, "index": pl.int_range(nodes.len(), eager=True, dtype=pl.UInt32)})
    edges = links.join(index.rename({"node": "a", "index": "ia"}), on="a").join(
        index.rename({"node": "b", "index": "ib"}), on="b"
    )
    smallest = smallest_in_component(nodes.len(), edges["ia"].to_numpy(), edges["ib"].to_numpy())
    return pl.DataFrame({CLUSTER_ID: nodes, "group": nodes.gather(smallest)})


def smallest_in_component(nodes: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest node of each node's connected component, in the undirected graph of
    nodes 0..nodes-1 and edges (a[i], b[i]). Each node's label starts as itself, falls to
    the smaller label of each of its edges' ends, then to its label's label, until the two
    ends of every edge agree. In numpy: scipy's connected_components costs a drop's split
    0.4 s of imports for the few links of a drop."""
    label = np.arange(nodes)
    while not np.array_equal(label[a], label[b]):
        low = np.minimum(label[a], label[b])
        np.minimum.at(label, a, low)
        np.minimum.at(label, b, low)
        label = label[label]
    return label


def drop_rank(drop_order: tuple[str, ...]) -> pl.Expr:
    """A drop's place in ``drop_order``; drops not listed share the place after them (then go by name)."""
    return pl.col("drop").replace_strict(
        list(drop_order), list(range(len(drop_order))), default=len(drop_order), return_dtype=pl.UInt32
    )


def drop_rows_by_date(members: pl.LazyFrame) -> pl.DataFrame:
    """anchor_date, rows: a drop's articles (kept and removed) by published date (null: undated)."""
    return members.group_by(anchor_date="published_date").agg(rows=pl.len()).collect()


def group_anchors(members: pl.LazyFrame, drop_order: tuple[str, ...]) -> pl.LazyFrame:
    """One row per group (column ``group``): group, anchor_id, anchor_date.

    The anchor is the member of the earliest drop (listed drops first, in list order,
    then the others by name); among members of that drop, the earliest published (undated
    last), then the smallest id. Only the drop decides between old and new members, so
    a new drop never changes an anchor; the date makes a group's date its first printing.
    """
    order = [drop_rank(drop_order), pl.col("drop"), pl.col("published_date"), pl.col("id")]
    return members.group_by("group").agg(
        anchor_id=pl.col("id").sort_by(order, nulls_last=True).first(),
        anchor_date=pl.col("published_date").sort_by(order, nulls_last=True).first(),
    )


def salted_unit(key: pl.Expr, salt: str) -> pl.Expr:
    """A number in [0, 1) from SHA-256 of the salt and the key.

    SHA-256 rather than Polars' hash: the assignment must be the same on every machine
    and with every library version, for as long as the dataset lives.
    """

    def unit(keys: pl.Series) -> pl.Series:
        prefix = salt.encode("utf-8") + b"\x1f"
        top53 = [int.from_bytes(hashlib.sha256(prefix + k.encode("utf-8")).digest()[:8], "big") >> 11 for k in keys]
        return pl.Series(top53, dtype=pl.UInt64) / float(2**53)

    return key.map_batches(unit, return_dtype=pl.Float64, is_elementwise=True)


def hash_split(unit: pl.Expr, ratios: dict[str, float]) -> pl.Expr:
    """train below ratios.train, then validation, then test."""
    train_end = ratios["train"]
    validation_end = train_end + ratios["validation"]
    return (
        pl.when(unit < train_end)
        .then(pl.lit("train"))
        .when(unit < validation_end)
        .then(pl.lit("validation"))
        .otherwise(pl.lit("test"))
        .cast(SPLIT_TYPE)
    )


def time_split(anchor_date: pl.Expr, validation_from: date, test_from: date) -> pl.Expr:
    """test from test_from on, validation from validation_from on, else (and undated) train."""
    return (
        pl.when(anchor_date >= test_from)
        .then(pl.lit("test"))
        .when(anchor_date >= validation_from)
        .then(pl.lit("validation"))
        .otherwise(pl.lit(UNDATED_SPLIT))
        .cast(SPLIT_TYPE)
    )


def derive_cutoffs(rows_by_date: pl.DataFrame, ratios: dict[str, float]) -> tuple[date, date] | None:
    """(validation_from, test_from) whose periods hold shares of all rows closest to the ratios.

    ``rows_by_date``: anchor_date (null for undated) and rows. Whole days only: articles of
    one day are never split between periods, so a ratio is met within one day's share.
    None when nothing is dated.
    """
    total = int(rows_by_date["rows"].sum())
    dated = rows_by_date.filter(pl.col("anchor_date").is_not_null()).sort("anchor_date", descending=True)
    if dated.is_empty():
        return None
    # Candidate periods "from this date on", newest first; the first is empty (after the newest day).
    starts = [dated["anchor_date"][0] + timedelta(days=1), *dated["anchor_date"]]
    shares = [0.0, *(dated["rows"].cum_sum() / total)]

    def closest(target: float) -> date:
        best = min(range(len(starts)), key=lambda i: (abs(shares[i] - target), i))
        return starts[best]

    test_from = closest(ratios["test"])
    validation_from = min(closest(ratios["test"] + ratios["validation"]), test_from)
    return validation_from, test_from


@dataclass
class Cutoffs:
    """The time strategy's cut-off dates: from params, derived from the first dated drop
    (and then kept for every later drop), or none yet (no dated article so far)."""

    validation_from: date | None = None
    test_from: date | None = None
    derived: bool = False

    @classmethod
    def from_rules(cls, rules: SplitRules) -> "Cutoffs":
        return cls(rules.validation_from, rules.test_from, derived=rules.strategy == "time" and rules.test_from is None)

    def as_dict(self) -> dict[str, Any]:
        return {"validation_from": _iso(self.validation_from), "test_from": _iso(self.test_from), "derived": self.derived}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> "Cutoffs":
        return cls(_as_date(saved["validation_from"], "validation_from"), _as_date(saved["test_from"], "test_from"),
                   saved["derived"])


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


@dataclass
class DropAssignment:
    members: pl.DataFrame  # ASSIGNMENT_SCHEMA: the drop's articles and their split
    bridging: pl.DataFrame  # BRIDGING_SCHEMA: the drop's articles set aside (in no split)
    cutoffs: Cutoffs  # those in force after the drop


BRIDGING_SCHEMA = pl.Schema({"id": pl.String(), "kept": pl.Boolean(), "detail": pl.String()})
BRIDGES_SPLITS = "bridges_splits"  # the quarantine reason (schema.QUARANTINE_REASONS)


def assign_drop(
    members: pl.LazyFrame, review: pl.LazyFrame | None, earlier: pl.LazyFrame, rules: SplitRules, cutoffs: Cutoffs
) -> DropAssignment:
    """The split of one drop's cluster members (``cluster_members`` of the drop), given the
    assignments of the drops before it (``earlier``, ASSIGNMENT_SCHEMA), which never change.

    The drop's clusters, joined by its review pairs among them, form its groups. A group
    linked to no earlier article (by a shared cluster or a review pair) is new: its anchor
    (``group_anchors``) decides its split. A group linked to earlier groups of one split
    joins that split (named after the smallest of their anchor ids). A group linked to
    earlier groups in different splits bridges them: its articles would leak in either split
    and the earlier ones are published, so they are set aside (``bridging``, naming the
    groups it links) and later drops do not see them. So a drop moves no earlier article.
    """
    if review is None:
        grouped = members.with_columns(group=pl.col(CLUSTER_ID))
    else:
        joined = review_groups(members, review).lazy()  # pairs with an earlier article have no cluster here
        grouped = members.join(joined, on=CLUSTER_ID, how="left", maintain_order="left").with_columns(
            group=pl.coalesce("group", CLUSTER_ID)
        )
    grouped = grouped.collect()
    group_of = grouped.lazy().select("id", CLUSTER_ID, "group")
    old = earlier.select("id", CLUSTER_ID, "anchor_id", "split")
    links = [group_of.select("group", CLUSTER_ID).unique().join(old.drop("id").unique(), on=CLUSTER_ID)
             .select("group", "anchor_id", "split")]
    if review is not None:
        for new, other in (("id_a", "id_b"), ("id_b", "id_a")):
            links.append(review.select(new, other).join(group_of.select(pl.col("id").alias(new), "group"), on=new)
                         .join(old.select(pl.col("id").alias(other), "anchor_id", "split"), on=other)
                         .select("group", "anchor_id", "split"))
    linked = (
        pl.concat(links).unique().sort("group", "split", "anchor_id")
        .group_by("group", maintain_order=True)
        .agg(splits=pl.col("split").n_unique(), anchor_id=pl.col("anchor_id").first(), split=pl.col("split").first(),
             detail=pl.format("{} ({})", "anchor_id", "split").str.join(", "))
        .collect()
    )
    bridging = linked.filter(pl.col("splits") > 1)
    joins = linked.filter(pl.col("splits") == 1).select("group", "anchor_id", "split")

    new_groups = grouped.lazy().join(linked.lazy(), on="group", how="anti")
    if rules.strategy == "time" and cutoffs.test_from is None and cutoffs.derived:
        derived = derive_cutoffs(drop_rows_by_date(members), rules.ratios)
        if derived is not None:
            cutoffs = Cutoffs(*derived, derived=True)
            log(STAGE, f"time split: derived validation_from {cutoffs.validation_from}, test_from {cutoffs.test_from} "
                       "(from the first dated drop; later drops do not move them)")
    if rules.strategy == "hash":
        split = hash_split(salted_unit(pl.col("anchor_id"), rules.salt), rules.ratios)
    elif cutoffs.test_from is None:
        split = pl.lit(UNDATED_SPLIT, dtype=SPLIT_TYPE)  # no article dated so far
    else:
        split = time_split(pl.col("anchor_date"), cutoffs.validation_from, cutoffs.test_from)
    decided = pl.concat([
        group_anchors(new_groups, rules.drop_order).select("group", "anchor_id", split.alias("split")),
        joins.lazy(),
    ])
    return DropAssignment(
        members=conform(grouped.lazy().join(decided, on="group", maintain_order="left"), ASSIGNMENT_SCHEMA).collect(),
        bridging=grouped.join(bridging.select("group", detail=pl.lit("links earlier groups in different splits: ")
                                              + pl.col("detail")), on="group", maintain_order="left")
        .pipe(conform, BRIDGING_SCHEMA),
        cutoffs=cutoffs,
    )


@dataclass
class Assignment:
    members: pl.DataFrame  # ASSIGNMENT_SCHEMA: every article of every cluster and its split
    bridging: pl.DataFrame  # BRIDGING_SCHEMA: the articles set aside
    cutoffs: Cutoffs


def assign_splits(
    kept: pl.LazyFrame, duplicates: pl.LazyFrame | None, rules: SplitRules, review: pl.LazyFrame | None = None
) -> Assignment:
    """``assign_drop`` on each drop in drop order, in memory: the splits of a corpus given as
    frames (the stage keeps each drop's assignment on disk instead)."""
    members = cluster_members(kept, duplicates).with_columns(rank=drop_rank(rules.drop_order)).collect()
    drops = members.select("rank", "drop").unique().sort("rank", "drop")
    cutoffs, assigned, bridging = Cutoffs.from_rules(rules), [], []
    for name in drops["drop"]:
        done = pl.concat(assigned).lazy() if assigned else pl.LazyFrame(schema=ASSIGNMENT_SCHEMA)
        drop = assign_drop(members.lazy().filter(pl.col("drop") == name).drop("rank"), review, done, rules, cutoffs)
        assigned.append(drop.members)
        bridging.append(drop.bridging)
        cutoffs = drop.cutoffs
    return Assignment(pl.concat(assigned) if assigned else pl.DataFrame(schema=ASSIGNMENT_SCHEMA),
                      pl.concat(bridging) if bridging else pl.DataFrame(schema=BRIDGING_SCHEMA), cutoffs)


# ---------------------------------------------------------------------------- contamination


def article_ngrams(articles: pl.DataFrame, n: int) -> pl.DataFrame:
    """Word n-gram hashes of each article (key, text): key, ngram (UInt64), repeats included.

    Words are hashed by Polars (one pass over the batch's words), then each run of n word
    hashes by a polynomial in numpy (n vectorised passes over the flat array, no frame of
    n shifted columns); an article with fewer than n words has none. Works on a batch in
    memory: 8 bytes a word for the hashes, 16 an n-gram for the result.
    """
    # The match key in a column of its own: inside ``key_words`` (which reads its argument
    # twice) the expression would be computed twice, half of the words' cost.
    words = articles.select(pl.col("key").cast(pl.UInt64), match_key=arabic_text.match_key(pl.col("text"))).select(
        "key", word=arabic_text.key_words(pl.col("match_key")))
    lengths = words["word"].list.len().fill_null(0).to_numpy().astype(np.int64)
    hashes = words["word"].explode(empty_as_null=False).drop_nulls().hash(NGRAM_HASH_SEED).to_numpy()
    counts = np.maximum(lengths - n + 1, 0)  # n-grams an article has
    if int(counts.sum()) == 0:
        return pl.DataFrame(schema={"key": pl.UInt64, "ngram": pl.UInt64})
    # The n-gram starting at word i of the batch: (((h[i] * M + h[i+1]) * M + ...) + h[i+n-1]),
    # computed for every i of the batch on contiguous slices (no gathers), then kept for the
    # i whose n-gram ends inside its article: all but the last n - 1 words of each article
    # (marked article by article, n - 1 small scatters; a mask, not a gather of each start).
    windows = len(hashes) - n + 1
    ngrams = hashes[:windows].copy()
    for k in range(1, n):
        ngrams *= NGRAM_MULTIPLIER
        ngrams += hashes[k:k + windows]
    ends = np.cumsum(lengths)
    starts_ngram = np.ones(len(hashes), dtype=bool)
    for k in range(1, n):
        starts_ngram[ends[lengths >= k] - k] = False
    article = np.repeat(np.arange(len(lengths)), counts)
    return pl.DataFrame({"key": words["key"].gather(article), "ngram": ngrams[starts_ngram[:windows]]})


@dataclass
class NgramBatch:
    parts: dict[int, pl.DataFrame]  # hash partition -> the distinct (key, ngram) pairs in it
    counts: pl.DataFrame  # key, ngrams: an article's distinct n-grams


def hash_partition(partitions: int) -> pl.Expr:
    """The hash partition of each n-gram (column ``ngram``), of ``partitions``."""
    return (pl.col("ngram") % partitions).cast(pl.UInt32)


def ngram_batch(texts: pl.LazyFrame, rows: tuple[int, int], rules: ContaminationRules) -> NgramBatch:
    """The n-grams of rows [offset, offset + length) of ``texts`` (key, text), by hash
    partition: a task of ``write_ngram_partitions`` (on an engine's worker, which reads its
    rows itself). Repeats are dropped partition by partition (a pair is in one partition):
    hash tables of a partition's size are three times faster than one of the batch's, and
    a pair packed in one 128-bit number is hashed in three quarters of the time of two
    columns. The batch's keys are consecutive (``drop_rows``): its articles' counts are a
    count of each key's offset."""
    offset, length = rows
    # Chained: the batch's n-grams are not held beside their packed pairs.
    parts = article_ngrams(texts.slice(offset, length).collect(), rules.ngram).select(
        pair=pl.col("key").cast(pl.UInt128) * 2**64 + pl.col("ngram").cast(pl.UInt128),
        partition=hash_partition(rules.partitions),
    ).partition_by("partition", as_dict=True, include_key=False)
    parts = {
        bucket: part.select(pl.col("pair").unique()).select(
            key=(pl.col("pair") // 2**64).cast(pl.UInt64), ngram=(pl.col("pair") % 2**64).cast(pl.UInt64))
        for (bucket,), part in parts.items()
    }
    keys = np.concatenate([part["key"].to_numpy() for part in parts.values()] or [np.zeros(0, np.uint64)])
    first = keys.min() if len(keys) else np.uint64(0)
    per_offset = np.bincount((keys - first).astype(np.int64))
    found = np.flatnonzero(per_offset)
    counts = pl.DataFrame({"key": found.astype(np.uint64) + first, "ngrams": per_offset[found].astype(np.int64)})
    return NgramBatch(parts, counts)


def batch_bounds(n_words: pl.Series, words_per_batch: int) -> list[tuple[int, int]]:
    """(offset, length) row ranges holding about ``words_per_batch`` words each."""
    bounds, start, words = [], 0, 0
    for row, count in enumerate(n_words.to_list()):
        words += count
        if words >= words_per_batch:
            bounds.append((start, row + 1 - start))
            start, words = row + 1, 0
    if start < len(n_words):
        bounds.append((start, len(n_words) - start))
    return bounds


def write_ngram_partitions(texts: pl.LazyFrame, rules: ContaminationRules, work_dir: Path,
                           engine: Engine) -> dict[int, int]:
    """Hash every article's n-grams and write them partitioned by hash (``ngram`` modulo
    ``partitions``), and each article's count of distinct n-grams (``counts/``); returns the
    (key, ngram) pairs written to each partition.

    ``texts``: key, text, n_words of the articles to hash, a plain scan of their file (a
    slice of it reads those rows alone). Batches of ``memory_ngrams`` words are hashed by
    ``engine``'s tasks (``ngram_batch``) and written here, in their order.
    """
    n_words = texts.select("n_words").collect()["n_words"]
    progress = Progress(STAGE, "articles hashed to n-grams", total=n_words.len())
    bounds = batch_bounds(n_words, rules.memory_ngrams)
    found = engine.map_tasks(partial(ngram_batch, rules=rules), texts.select("key", "text"), bounds)
    pairs: dict[int, int] = {}
    for batch, ((_, length), ngrams) in enumerate(zip(bounds, found)):
        for bucket, part in ngrams.parts.items():  # n-gram hashes do not compress anyway
            write_scratch(part, work_dir / f"ngrams-{bucket:05d}" / f"batch-{batch:05d}.parquet")
            pairs[bucket] = pairs.get(bucket, 0) + part.height
        write_scratch(ngrams.counts, work_dir / "counts" / f"batch-{batch:05d}.parquet")
        progress.advance(length)
    progress.done()
    return pairs


def partition_ranges(pairs: dict[int, int], limit: int) -> list[tuple[int, int]]:
    """(first, last) runs of consecutive hash partitions holding at most ``limit`` n-grams
    in all (``pairs``: partition -> n-grams; a larger partition is a run of its own), in
    partition order; partitions without n-grams are in none."""
    ranges: list[tuple[int, int]] = []
    held = 0
    for bucket in sorted(pairs):
        if ranges and held + pairs[bucket] <= limit:
            ranges[-1], held = (ranges[-1][0], bucket), held + pairs[bucket]
        else:
            ranges.append((bucket, bucket))
            held = pairs[bucket]
    return ranges


# The contamination index: one layer a drop, build/split_index/drop=<name>/, built in drop
# order, each from its drop's kept articles and the layers before it, and never changed once
# built. An article's key is its drop's place in that order (high 32 bits) and its row in
# the drop's articles.parquet: so keys grow with arrival, and "the train article that holds
# an n-gram" (its owner: the smallest key) is fixed by the first drop that brought it to train.
LAYER_FILE = "layer.json"
KEY_BITS = 32
LAYER_ARTICLES = pl.Schema({"key": pl.UInt64(), "id": pl.String(), "split": SPLIT_TYPE, "ngrams": pl.Int64()})
# A layer's n-grams, ``owned`` (ngram -> owner) and ``held_out`` (ngram, key, split), are
# arrays searched in place (``NpyTable``: a .npy file a column, rows by hash partition then
# n-gram, and where each partition starts): a new drop's n-grams are looked up in the
# memory-mapped n-gram column (``rows_with_ngrams``), the other columns read at the rows found.
# So the lookup reads the pages the drop's n-grams touch, and decodes nothing: as Parquet,
# every earlier row was decoded and probed (48.5M rows for a 1 % drop at 300k articles).
OWNED_NGRAMS = pl.Schema({"ngram": pl.UInt64(), "owner": pl.UInt64()})
HELD_OUT_NGRAMS = pl.Schema({"ngram": pl.UInt64(), "key": pl.UInt64(), "split": SPLIT_TYPE})
NGRAM_TABLES = {"owned": OWNED_NGRAMS, "held_out": HELD_OUT_NGRAMS}
SHARED_NGRAMS = pl.Schema({"key": pl.UInt64(), "owner": pl.UInt64(), "shared": pl.Int64()})
# Bumped when what a layer holds changes: every layer is then rebuilt (``update_index`` says so).
INDEX_FORMAT = 5  # 4: n-grams hashed by a polynomial of the word hashes; 5: n-gram tables as arrays


def _layer_tables(layers: list[Path], name: str, schema: pl.Schema) -> pl.LazyFrame:
    """One Parquet table of the given layers."""
    if not layers:
        return pl.LazyFrame(schema=schema)
    return pl.scan_parquet([layer / name for layer in layers])


def wanted_ngrams(ngrams: pl.Series, partitions: int) -> dict[int, np.ndarray]:
    """The distinct n-grams, sorted, by hash partition (ascending)."""
    distinct = ngrams.unique().to_frame("ngram").with_columns(partition=hash_partition(partitions))
    parts = distinct.sort("partition", "ngram").partition_by("partition", as_dict=True, maintain_order=True)
    return {bucket: part["ngram"].to_numpy() for (bucket,), part in parts.items()}


def ngram_tables(layers: list[Path], name: str) -> list[NpyTable]:
    """Table ``name`` (of NGRAM_TABLES) of each layer, mapped."""
    tables = []
    for layer in layers:
        try:
            tables.append(NpyTable(layer, name, NGRAM_TABLES[name]))
        except ValueError as error:
            raise ValueError(f"the contamination index is damaged: {error}; delete {layer} (or the index) "
                             "and run again to build it") from None
    return tables


def rows_with_ngrams(tables: list[NpyTable], name: str, wanted: dict[int, np.ndarray]) -> pl.DataFrame:
    """The rows of the layers' tables ``name`` (``ngram_tables``) whose n-gram is one of
    ``wanted`` (``wanted_ngrams``), in the layers' order (layer, partition, row).

    Each partition of each layer is a sorted n-gram column: the wanted n-grams are found in
    it (``rows_at_most``), then the rows of each n-gram found (an owned n-gram has one; a
    held-out one, one per article that has it) are read; then the partition's pages are
    released."""
    frames = []
    for table in tables:
        found = {column: [values[:0]] for column, values in table.columns.items()}
        for bucket, ngrams in wanted.items():
            span = table.group(bucket)
            column = table.columns["ngram"][span]
            end = rows_at_most(column, ngrams)
            hit = end > 0
            hit[hit] = column[end[hit] - 1] == ngrams[hit]
            end = end[hit]
            start = end - 1 if name == "owned" else np.searchsorted(column, ngrams[hit])
            rows = span.start + consecutive(start, end)
            for column_name, values in table.columns.items():
                found[column_name].append(values[rows])
            table.release(span)  # memory: a partition's pages at a time
        table.release()  # and those the kernel mapped around them (a fault maps its neighbours too)
        frames.append(table.frame({column: np.concatenate(values) for column, values in found.items()}))
    return pl.concat(frames) if frames else pl.DataFrame(schema=NGRAM_TABLES[name])


def rows_at_most(column: np.ndarray, ngrams: np.ndarray) -> np.ndarray:
    """How many values of ``column`` (sorted) are at most each of ``ngrams`` (sorted, distinct):
    ``np.searchsorted(column, ngrams, side="right")``. When the column is not much longer
    than the n-grams (a small layer's partition), by one merge of the two instead (a stable
    sort of two sorted runs is a merge: linear), four times faster at equal sizes than the
    binary searches, whose probes miss the cache."""
    if len(column) > 4 * len(ngrams):
        return np.searchsorted(column, ngrams, side="right")
    merged = np.concatenate([column, ngrams]).argsort(kind="stable")  # a column value before an equal n-gram
    return np.flatnonzero(merged >= len(column)) - np.arange(len(ngrams))


def consecutive(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The positions of the ranges [start[i], end[i]), one after the other."""
    lengths = end - start
    return np.arange(int(lengths.sum())) + np.repeat(start - (np.cumsum(lengths) - lengths), lengths)


def join_partitions(
    new: pl.DataFrame, owned_before: pl.DataFrame, held_before: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Hash partitions of a new layer, given the n-grams of the layers before it in them.

    ``new``: the drop's n-grams (key, split, ngram); ``owned_before``: ngram -> owner (the
    earliest train article that holds it); ``held_before``: the earlier validation and test
    n-grams (ngram, key, split). Returns the n-grams the drop's train articles own first
    (ngram, owner); the drop's held-out n-grams (ngram, key, split); the n-grams each held-out
    article newly shares with each owner (key, owner, shared): the drop's held-out articles
    against every owner, and earlier held-out articles against the new owners; and per split
    the new distinct held-out n-grams and the new ones among them found in train.

    The earlier rows given are those of the drop's n-grams alone (``rows_with_ngrams``), so
    this works at the drop's size, not the corpus's.
    """
    new, owned_before, held_before = new.lazy(), owned_before.lazy(), held_before.lazy()
    owned = (
        new.filter(pl.col("split") == "train")
        .group_by("ngram")
        .agg(owner=pl.col("key").min())
        .join(owned_before, on="ngram", how="anti")
        .sort("ngram")
    )
    owners = pl.concat([owned_before, owned])
    held = new.filter(pl.col("split") != "train").select("ngram", "key", "split").sort("ngram", "key")
    shared = (
        pl.concat([
            held.join(owners, on="ngram").select("key", "owner"),
            held_before.join(owned, on="ngram").select("key", "owner"),
        ])
        .group_by("key", "owner")
        .agg(shared=pl.len().cast(pl.Int64))
    )
    seen_before = held_before.select("ngram", "split").unique()
    first_seen = held.select("ngram", "split").unique().join(seen_before, on=["ngram", "split"], how="anti")
    distinct = pl.concat([
        first_seen.join(owners.select("ngram", found=pl.lit(1, pl.Int64)), on="ngram", how="left").select(
            "split", ngrams=pl.lit(1, pl.Int64), in_train=pl.col("found").fill_null(0)
        ),
        seen_before.join(owned, on="ngram", how="semi").select("split", ngrams=pl.lit(0, pl.Int64), in_train=pl.lit(1, pl.Int64)),
    ]).group_by("split").agg(pl.col("ngrams", "in_train").sum())
    return tuple(pl.collect_all([owned, held, shared, distinct]))


@dataclass
class ContaminationResult:
    report: pl.DataFrame  # CONTAMINATION_SCHEMA, evaluation articles sharing any n-gram with train
    metrics: dict[str, Any]


@dataclass(frozen=True)
class DropArticles:
    """A drop's kept articles as the index reads them."""

    name: str
    path: Path  # the drop's articles.parquet (dedup's output)
    rank: int  # its place in the drop order
    split_of: pl.LazyFrame  # id, split of its published articles (the others have no n-grams in the index)
    fingerprint: str  # what its articles and their splits were computed from (the split's drop fingerprint)


def drop_rows(drop: DropArticles) -> pl.LazyFrame:
    """key, id, text, n_words of every kept article of the drop, in the file's order: a plain
    scan of its (absolute) path, so a slice of it reads those rows alone (a slice after a
    join would read every row's text)."""
    return (
        scan_table(drop.path.resolve())
        .select("id", "text", "n_words")
        .with_row_index("row")
        .select(key=pl.lit(drop.rank << KEY_BITS, pl.UInt64) + pl.col("row").cast(pl.UInt64), id="id", text="text",
                n_words="n_words")
    )


def by_partition(ngrams: pl.DataFrame, partitions: int) -> list[tuple[int, pl.DataFrame]]:
    """Rows of n-grams of a run of hash partitions, (partition, its rows) in partition order
    (the layer's order; the rows keep theirs within it). The joins go by n-gram alone
    (grouping and sorting by partition too, a full run took 1.1-1.2x the CPU)."""
    tagged = ngrams.with_columns(partition=hash_partition(partitions))
    parts = tagged.partition_by("partition", as_dict=True, maintain_order=True, include_key=False)
    return [(bucket, part) for (bucket,), part in sorted(parts.items())]


def sum_shared(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """key, owner, shared: the n-grams each pair shares, summed over the frames."""
    return pl.concat(frames).group_by("key", "owner").agg(pl.col("shared").sum())


# A run of partitions joined at once holds at most memory_ngrams / RUN_SHARE of the drop's
# n-grams: the join holds them, the earlier layers' rows with the same n-grams (in a corpus of
# reprints, the n-grams of a 3k-article drop met 4.7M earlier held-out rows at 300k articles)
# and the joins' results. A full run's partitions stay one a run (0.5M n-grams each at 100k
# articles, 5M at 1M), a 1 % drop's are a few runs; the runs of a drop read the earlier
# layers once in all, as each reads the row groups of its partitions alone.
RUN_SHARE = 16


def build_layer(drop: DropArticles, earlier: list[Path], rules: ContaminationRules, layer: Path, fingerprint: str,
                engine: Engine) -> None:
    """Write a drop's layer (see LAYER_FILE) from the layers before it.

    Memory holds a batch of ``memory_ngrams`` words' n-grams while hashing, then a run of
    hash partitions holding at most ``memory_ngrams // RUN_SHARE`` of the drop's n-grams (or
    one partition) and the earlier layers' n-grams among them, and the layer's (key, owner)
    pairs. A small drop's partitions are joined in a run or a few: the earlier layers are read
    in a pass or a few, not a scan of each partition (64 scans cost a 1 % drop at 300k
    articles 1 CPU s more).
    """
    reset_dir(layer)
    rows = drop_rows(drop)
    # the published articles (the others' n-grams are dropped by the inner join below)
    docs = rows.select("key", "id").join(drop.split_of, on="id", maintain_order="left")
    split_by_key = docs.select("key", "split").collect().lazy()
    distinct = []
    # The partitions' (key, owner) counts are summed as they come (memory: the layer's
    # distinct pairs and at most as many pending), not at the end from a scratch file: a pair
    # is in many partitions, so their rows are many times the layer's (at 300k articles 12.7M
    # for 0.86M), and one group_by of them all peaked at 2.3 GiB at 1M articles.
    shared_sums, pending = pl.DataFrame(schema=SHARED_NGRAMS), []
    with scratch_folder(layer.parent) as work_dir:
        ngrams_dir = work_dir / "ngrams"
        pairs = write_ngram_partitions(rows, rules, ngrams_dir, engine)
        earlier_tables = {name: ngram_tables(earlier, name) for name in NGRAM_TABLES}
        with (
            NpyTableAppender(layer, "owned", OWNED_NGRAMS, rules.partitions) as owned_out,
            NpyTableAppender(layer, "held_out", HELD_OUT_NGRAMS, rules.partitions) as held_out,
        ):
            for partitions in partition_ranges(pairs, rules.memory_ngrams // RUN_SHARE):
                new = pl.concat([scan_table(ngrams_dir / f"ngrams-{bucket:05d}")
                                 for bucket in range(partitions[0], partitions[1] + 1) if bucket in pairs]
                                ).join(split_by_key, on="key").collect()
                wanted = wanted_ngrams(new["ngram"], rules.partitions)
                owned, held, shared, new_distinct = join_partitions(
                    new, *(rows_with_ngrams(earlier_tables[name], name, wanted) for name in NGRAM_TABLES))
                for bucket, part in by_partition(owned, rules.partitions):
                    owned_out.append(part.select(OWNED_NGRAMS.names()), bucket)
                for bucket, part in by_partition(held, rules.partitions):
                    held_out.append(part.select(HELD_OUT_NGRAMS.names()), bucket)
                pending.append(shared)
                if sum(frame.height for frame in pending) >= shared_sums.height:
                    shared_sums, pending = sum_shared([shared_sums, *pending]), []
                distinct.append(new_distinct)
        write_table(sum_shared([shared_sums, *pending]).lazy().sort("key", "owner"), layer / "shared.parquet")
        counts = scan_table(ngrams_dir / "counts") if (ngrams_dir / "counts").is_dir() else pl.LazyFrame(schema={"key": pl.UInt64, "ngrams": pl.Int64})
        write_table(
            docs.select("key", "id", "split").join(counts, on="key", how="left", maintain_order="left")
            .with_columns(pl.col("ngrams").fill_null(0)).pipe(conform, LAYER_ARTICLES),
            layer / "articles.parquet",
        )
    found = {name: {"ngrams": 0, "in_train": 0} for name in SPLITS[1:]}
    if distinct:
        for name, ngrams, in_train in pl.concat(distinct).group_by("split").agg(pl.col("ngrams", "in_train").sum()).iter_rows():
            found[name] = {"ngrams": ngrams, "in_train": in_train}
    # Written last: a layer interrupted before it has no fingerprint, so it is built again.
    write_json(layer / LAYER_FILE, {"format": INDEX_FORMAT, "fingerprint": fingerprint, "distinct_ngrams": found})


def index_fingerprint(rules: ContaminationRules) -> str:
    """What every layer depends on besides its drop's fingerprint (which covers the code):
    the n-gram rules, Polars' hash and the layout."""
    return digest(str(INDEX_FORMAT), str(rules.ngram), str(rules.partitions), pl.__version__)


def update_index(drops: list[DropArticles], rules: ContaminationRules, index_dir: Path,
                 engine: Engine | None = None) -> list[Path]:
    """Bring the contamination index up to date; returns its layers, in drop order. The
    n-grams are hashed on ``engine`` (default: the local one).

    Drop k's layer is reused when its fingerprint (the contamination rules, drop k's
    fingerprint, which covers the code, and drop k-1's layer fingerprint) is unchanged; otherwise it and every later
    layer are built again. As a new drop moves no earlier article, adding one builds its
    layer alone; whatever was there before, the index is byte for byte the one built from nothing.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    engine = engine or LocalEngine()
    fingerprint = index_fingerprint(rules)
    layers, rebuilding, reused = [], False, []
    for drop in drops:
        fingerprint = digest(fingerprint, drop.name, drop.fingerprint)
        layer = partition(index_dir, drop.name)
        saved = read_json(layer / LAYER_FILE) if (layer / LAYER_FILE).exists() else {}
        if not rebuilding and saved.get("fingerprint") == fingerprint:
            layers.append(layer)
            reused.append(drop.name)
            continue
        if not rebuilding and saved and saved.get("format") != INDEX_FORMAT:
            log(STAGE, f"contamination index: {index_dir} was built by an older version (format "
                       f"{saved.get('format', '4 or before')}, now {INDEX_FORMAT}): building it again from scratch, once")
        rebuilding = True
        build_layer(drop, layers, rules, layer, fingerprint, engine)
        layers.append(layer)
    keep_listed_drops(STAGE, index_dir, [drop.name for drop in drops])  # drops no longer in the corpus go
    log(STAGE, f"contamination index: {len(reused)} drop(s) reused, {len(layers) - len(reused)} built "
               f"(n-grams hashed on the {engine.name} engine)")
    return layers


def contamination(layers: list[Path], rules: ContaminationRules) -> ContaminationResult:
    """Long shared n-grams between train and each of validation and test, from the index."""
    articles = _layer_tables(layers, "articles.parquet", LAYER_ARTICLES)
    held_out = articles.filter(pl.col("split") != "train")
    per_pair = _layer_tables(layers, "shared.parquet", SHARED_NGRAMS).group_by("key", "owner").agg(pl.col("shared").sum())
    per_article = per_pair.group_by("key").agg(
        ngrams_in_train=pl.col("shared").sum(),
        closest=pl.col("owner").sort_by([pl.col("shared"), pl.col("owner")], descending=[True, False]).first(),
        ngrams_shared_with_closest=pl.col("shared").max(),
    )
    report = (
        held_out.join(per_article, on="key")
        .join(articles.select(closest="key", closest_train_id="id"), on="closest", how="left")
        .with_columns(share_in_train=pl.col("ngrams_in_train") / pl.col("ngrams"))
        .pipe(conform, CONTAMINATION_SCHEMA)
        .sort(["split", "share_in_train", "id"], descending=[False, True, False])
        .collect()
    )
    per_split = held_out.group_by("split").agg(articles=pl.len(), with_ngrams=(pl.col("ngrams") > 0).sum()).collect()
    distinct = {name: [read_json(layer / LAYER_FILE)["distinct_ngrams"][name] for layer in layers] for name in SPLITS[1:]}
    metrics = {"ngram": rules.ngram, "article_overlap": rules.article_overlap}
    for name in SPLITS[1:]:
        metrics[name] = contamination_metrics(
            report.filter(pl.col("split") == name),
            per_split.filter(pl.col("split") == name),
            sum(layer["ngrams"] for layer in distinct[name]),
            sum(layer["in_train"] for layer in distinct[name]),
            rules,
        )
    worst = max(metrics[name]["contaminated_share"] for name in SPLITS[1:])
    metrics["gate"] = {
        "max_contaminated_share": rules.max_contaminated_share,
        "contaminated_share": worst,
        "passed": worst <= rules.max_contaminated_share,
    }
    return ContaminationResult(report, metrics)


def contamination_metrics(
    report: pl.DataFrame, per_split: pl.DataFrame, ngrams: int, ngrams_in_train: int, rules: ContaminationRules
) -> dict[str, Any]:
    articles = int(per_split["articles"].sum())
    with_shared = report.height
    contaminated = report.filter(pl.col("share_in_train") >= rules.article_overlap).height
    return {
        "articles": articles,
        "articles_with_ngrams": int(per_split["with_ngrams"].sum()),
        "articles_sharing_any_ngram": with_shared,
        "sharing_any_ngram_share": _share(with_shared, articles),
        "contaminated_articles": contaminated,
        "contaminated_share": _share(contaminated, articles),
        "distinct_ngrams": ngrams,
        "distinct_ngrams_in_train": ngrams_in_train,
        "ngram_share_in_train": _share(ngrams_in_train, ngrams),
    }


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


# ---------------------------------------------------------------------------- stage


def split_statistics(splits: dict[str, pl.LazyFrame], ratios: dict[str, float]) -> dict[str, Any]:
    """Rows, characters, words, sources, clusters and dates of each split."""
    stats = pl.concat([
        frame.select(
            split=pl.lit(name),
            rows=pl.len().cast(pl.Int64),
            characters=pl.col("n_chars").sum(),
            words=pl.col("n_words").sum(),
            sources=pl.col("source").drop_nulls().n_unique().cast(pl.Int64),
            clusters=pl.col(CLUSTER_ID).n_unique().cast(pl.Int64),
            undated=pl.col("published_date").null_count().cast(pl.Int64),
            first_date=pl.col("published_date").min().cast(pl.String),
            last_date=pl.col("published_date").max().cast(pl.String),
        )
        for name, frame in splits.items()
    ]).collect()
    total = int(stats["rows"].sum())
    result = {}
    for row in stats.iter_rows(named=True):
        name = row.pop("split")
        result[name] = row | {"share": _share(row["rows"], total), "target": ratios[name]}
    return result


def rows_by(splits: dict[str, pl.LazyFrame], column: str) -> pl.DataFrame:
    """Rows per value of ``column`` (one column per split), for ``dvc plots``."""
    counts = pl.concat([frame.select(column, split=pl.lit(name)) for name, frame in splits.items()]).collect()
    return (
        counts.drop_nulls(column)
        .pivot("split", index=column, values="split", aggregate_function="len", on_columns=list(splits))
        .fill_null(0)
        .sort(column)
        .with_columns(pl.col(column).cast(pl.String))
    )


@dataclass(frozen=True)
class DedupDrop:
    """One drop of the dedup stage's output, as the split reads it."""

    name: str
    rank: int  # its place in the drop order
    articles: Path  # the kept articles
    duplicates: Path | None  # the articles removed for them (None: clusters are the kept articles alone)
    review: Path | None  # review pairs with one of the drop's articles (None: no pair joins clusters)

    @property
    def files(self) -> list[Path]:
        return [path for path in (self.articles, self.duplicates, self.review) if path is not None]


def dedup_output(input_dir: Path, drops_in_order: list[str], listed_only: bool = False) -> list[DedupDrop]:
    """The drops of the dedup output, in drop order (exactly `drops_in_order` in a project
    run, `listed_only`): drop=<name>/{articles,duplicates,review}.parquet, or one drop
    ``corpus`` when the input is not laid out by drop (a folder with these tables, or an
    articles table)."""
    names = partition_drops(input_dir, drops_in_order, listed_only) if input_dir.is_dir() else []
    folders = [partition(input_dir, name) for name in names]
    if not names:
        names, folders = ["corpus"], [input_dir if input_dir.is_dir() else None]
    drops = []
    for rank, (name, folder) in enumerate(zip(names, folders)):
        tables = [_optional_table(folder, table, without) for table, without in
                  (("duplicates.parquet", "clusters are the kept articles alone"),
                   ("review.parquet", "review pairs join no clusters"))] if folder else [None, None]
        drops.append(DedupDrop(name, rank, folder / "articles.parquet" if folder else input_dir, *tables))
    return drops


def _optional_table(folder: Path, table: str, without: str) -> Path | None:
    if (folder / table).exists():
        return folder / table
    log(STAGE, f"{folder / table} not found: {without}")
    return None


# A drop's outputs, in <output>/drop=<name>/: the split tables, its assignments, its
# quarantine, and DROP_FILE (its figures and its fingerprint, written last).
ASSIGNMENTS, QUARANTINE, DROP_FILE = "assignments.parquet", "quarantine.parquet", "drop.json"
DROP_TABLES = (*SPLITS, "assignments", "quarantine")


def split_drop(drop: DedupDrop, earlier: list[Path], rules: SplitRules, cutoffs: Cutoffs, folder: Path,
               fingerprint: str) -> dict[str, Any]:
    """Assign one drop after the drops whose folders are ``earlier`` and write its folder;
    returns its figures (what DROP_FILE holds)."""
    kept = scan_table(drop.articles)
    missing = kept.select(pl.col(CLUSTER_ID).null_count()).collect().item()
    if missing:
        raise ValueError(f"{missing:,} kept articles of drop {drop.name} have no {CLUSTER_ID} (is it the dedup output?)")
    duplicates = scan_table(drop.duplicates) if drop.duplicates else None
    review = scan_table(drop.review) if drop.review and rules.group_review_pairs else None
    done = pl.concat([scan_table(path / ASSIGNMENTS) for path in earlier]) if earlier else pl.LazyFrame(schema=ASSIGNMENT_SCHEMA)
    assigned = assign_drop(cluster_members(kept, duplicates), review, done, rules, cutoffs)
    set_aside = assigned.bridging.filter("kept").select("id", "detail")
    reset_dir(folder)
    write_table(assigned.members, folder / ASSIGNMENTS)
    write_article_tables(kept, assigned.members.filter("kept").select("id", "split"), set_aside, folder)
    figures = {
        "kept": kept.select(pl.len()).collect().item(),
        "duplicates": duplicates.select(pl.len()).collect().item() if duplicates is not None else 0,
        "quarantined": set_aside.height,
        "cutoffs": assigned.cutoffs.as_dict(),
    }
    if set_aside.height:
        log(STAGE, f"drop {drop.name}: {set_aside.height:,} article(s) set aside ({BRIDGES_SPLITS}): each is similar to "
                   f"articles already in different splits, e.g. {set_aside['id'][0]} {set_aside['detail'][0]}")
    write_json(folder / DROP_FILE, figures | {"fingerprint": fingerprint})
    return figures


def write_article_tables(kept: pl.LazyFrame, split_of: pl.DataFrame, set_aside: pl.DataFrame, folder: Path,
                         rows: int = PARQUET_OPTIONS["row_group_size"]) -> None:
    """A drop's split tables and quarantine, from its kept articles (``kept``, a scan), the
    split of each (``split_of``: id, split) and those set aside (id, detail).

    Each table is sunk from the articles ``rows`` at a time (``lazy_frames``): memory holds
    a few batches, whatever the drop's size, and the file has the bytes of one sink of the
    same rows. (One streaming sink of the scan joined with ``split_of``, order kept, held
    the whole drop's text: 1.3 GiB for 300k articles.) The split of each row is looked up
    once, on the ids alone; each table is a pass over the articles (reading them is a
    small part of writing them)."""
    split_by_row = (kept.select("id").join(split_of.lazy(), on="id", how="left", maintain_order="left")
                    .collect()["split"])

    def tagged() -> Iterator[pl.DataFrame]:
        for offset, batch in enumerate(batches(kept, rows)):
            yield batch.with_columns(split=split_by_row.slice(offset * rows, batch.height))

    articles = lazy_frames(tagged, kept.collect_schema() | {"split": SPLIT_TYPE})
    for name in SPLITS:
        table = conform(articles.filter(pl.col("split") == name), CLUSTERED_ARTICLE_SCHEMA)
        write_table(table, folder / f"{name}.parquet")
    # Usually none: a pass over the articles only when some are set aside.
    quarantined = (articles.filter(pl.col("split").is_null()) if set_aside.height
                   else pl.LazyFrame(schema=articles.collect_schema()))
    quarantine = quarantined.join(set_aside.lazy(), on="id", maintain_order="left").with_columns(
        stage=pl.lit(STAGE), reason=pl.lit(BRIDGES_SPLITS))
    write_table(conform(quarantine, QUARANTINE_SCHEMA), folder / QUARANTINE)


def _finished(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    """A drop folder's figures when its fingerprint is ``fingerprint`` and its tables are there."""
    tables = all((folder / f"{table}.parquet").is_file() for table in DROP_TABLES)
    figures = read_json(folder / DROP_FILE) if tables and (folder / DROP_FILE).is_file() else {}
    return figures if figures.pop("fingerprint", None) == fingerprint else None


def split_table(split_dir: Path, table: str) -> pl.LazyFrame:
    """One of the split stage's per-drop tables over every drop, drops in drop order:
    ``train``, ``validation``, ``test`` (CLUSTERED_ARTICLE_SCHEMA), ``assignments``
    (ASSIGNMENT_SCHEMA) or ``quarantine`` (QUARANTINE_SCHEMA)."""
    return pl.concat([scan_table(path) for _, path in drop_table_files(split_dir, table)])


def drop_table_files(split_dir: Path, table: str) -> list[tuple[str, Path]]:
    """(drop, file) of one of the split stage's per-drop tables, drops in drop order."""
    return [(drop, _drop_table_file(split_dir, drop, table)) for drop in read_json(split_dir / REPORT_FILE)["drops"]]


def _drop_table_file(split_dir: Path, drop: str, table: str) -> Path:
    if table not in DROP_TABLES:
        raise ValueError(f"the split stage has no table {table!r}: one of {', '.join(DROP_TABLES)}")
    return partition(split_dir, drop) / f"{table}.parquet"


def _drop_tables(split_dir: Path, drops: list[str], table: str) -> pl.LazyFrame:
    return pl.concat([scan_table(_drop_table_file(split_dir, drop, table)) for drop in drops])


def run(
    input_dir: Path, output_dir: Path, metrics_path: Path | None, params: dict[str, Any], index_dir: Path | None = None,
    listed_only: bool = False,
) -> dict[str, Any]:
    """The split stage. ``index_dir``: the contamination index to bring up to date (None: one
    built from nothing in a scratch folder). `listed_only`: a project run, exactly the drops
    of ``split.drop_order``.

    Drops go in drop order, each assigned after the ones before it (``assign_drop``). A
    drop's folder is reused while its fingerprint holds: the split params (but the drop
    order and the contamination check), the stage's code, the drop's dedup tables and the
    previous drop's fingerprint. So a new drop is the only one assigned, and the result is
    byte for byte that of a run from an empty output folder."""
    split_params = section(params, STAGE)
    rules = SplitRules.from_params(split_params)
    contamination_rules = ContaminationRules.from_params(split_params)
    drops = dedup_output(input_dir, drop_order(params), listed_only)
    folders = [partition(output_dir, drop.name) for drop in drops]
    # Only the drops' folders are kept (a drop no longer listed goes, as later ones are
    # assigned without it); the corpus-wide files are written again below.
    keep_listed_drops(STAGE, output_dir, [drop.name for drop in drops])
    assignment_params = {key: value for key, value in split_params.items() if key not in ("drop_order", "contamination")}
    memo = DigestMemo.beside(output_dir)
    fingerprint = digest(json.dumps(assignment_params, sort_keys=True, default=str), code_digest(__name__, memo))
    cutoffs, figures, indexed = Cutoffs.from_rules(rules), [], []
    for position, (drop, folder) in enumerate(zip(drops, folders)):
        fingerprint = digest(fingerprint, drop.name, *(files_digest(path, memo) for path in drop.files))
        if (found := _finished(folder, fingerprint)) is not None:
            log(STAGE, f"drop {drop.name}: unchanged since the last run, its folder is reused")
        else:
            found = split_drop(drop, folders[:position], rules, cutoffs, folder, fingerprint)
        cutoffs = Cutoffs.from_dict(found["cutoffs"])
        figures.append(found)
        split_of = scan_table(folder / ASSIGNMENTS).filter("kept").select("id", "split")
        indexed.append(DropArticles(drop.name, drop.articles, drop.rank, split_of, fingerprint))
    memo.save()  # once, after the last fingerprint

    names = [drop.name for drop in drops]
    splits = {name: _drop_tables(output_dir, names, name) for name in SPLITS}
    n_in, n_quarantined = (sum(found[key] for found in figures) for key in ("kept", "quarantined"))
    stats = split_statistics(splits, rules.ratios)
    n_out = sum(s["rows"] for s in stats.values())
    if n_in != n_out + n_quarantined:
        raise RuntimeError(f"split lost articles: {n_in} in, {n_out} in the splits, {n_quarantined} set aside")
    log(STAGE, f"{n_in:,} articles -> " + ", ".join(f"{name} {s['rows']:,} ({s['share']:.1%})" for name, s in stats.items())
        + f", {n_quarantined:,} set aside")

    engine = open_engine(params)
    if index_dir is None:
        with scratch_folder(output_dir) as scratch:
            found = contamination(update_index(indexed, contamination_rules, scratch, engine), contamination_rules)
    else:
        found = contamination(update_index(indexed, contamination_rules, index_dir, engine), contamination_rules)
    write_table(found.report, output_dir / "contamination.parquet")
    gate = found.metrics["gate"]
    log(STAGE, f"contamination: test {found.metrics['test']['contaminated_share']:.2%} and validation "
               f"{found.metrics['validation']['contaminated_share']:.2%} of articles have >= "
               f"{contamination_rules.article_overlap:.0%} of their {contamination_rules.ngram}-grams in train "
               f"(gate {gate['max_contaminated_share']:.2%}: {'passed' if gate['passed'] else 'FAILED'})")

    group_sizes = _drop_tables(output_dir, names, "assignments").filter("kept").group_by("anchor_id").agg(rows=pl.len())
    groups = group_sizes.select(groups=pl.len(), largest=pl.col("rows").max(), joined=(pl.col("rows") > 1).sum()).collect()
    clusters = pl.concat([scan_table(drop.articles).select(CLUSTER_ID) for drop in drops]).select(pl.col(CLUSTER_ID).n_unique())
    report: dict[str, Any] = {
        "strategy": rules.strategy,
        "drops": names,
        "input": {
            "kept": n_in,
            "duplicates": sum(found["duplicates"] for found in figures),
            "clusters": clusters.collect().item(),
            "groups": groups["groups"].item(),
            "groups_of_several_kept_articles": groups["joined"].item(),
            "largest_group": groups["largest"].item(),
        },
        "published": n_out,
        "quarantined": n_quarantined,
        "quarantined_by_reason": {BRIDGES_SPLITS: n_quarantined} if n_quarantined else {},
        "splits": stats,
        "contamination": found.metrics,
    }
    if rules.strategy == "time":
        report["time"] = cutoffs.as_dict()
    write_stage_report(report, output_dir, metrics_path, HEADLINE)
    if metrics_path:
        write_text(metrics_path.parent / "split_by_date.csv", rows_by(splits, "published_date").write_csv())
        write_text(metrics_path.parent / "split_by_source.csv", rows_by(splits, "source").write_csv())
    return report


def add_command(commands) -> None:
    parser = add_stage_command(
        commands, STAGE, input_from=("dedup",), main=_main,
        input_help="dedup output folder: the kept articles (drop=<name>/articles.parquet), and duplicates.parquet "
        "and review.parquet when there",
    )
    parser.add_argument("--index", type=Path, help="the contamination index, one layer a drop, brought up to date "
                        "(default: <paths.split_index>; with --output, none is kept unless --index is given)")
    add_engine_option(parser)


def _main(paths: StagePaths, params: dict[str, Any], args) -> int:
    listed_only = require_listed_drops(paths, params, args, "articles.parquet", "corpus dedup")
    index = args.index or (None if args.output else path_of(params, "split_index"))
    run(paths.input, paths.output, paths.metrics, with_engine(params, args.engine), index, listed_only)
    return 0
