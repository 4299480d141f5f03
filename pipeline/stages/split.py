"""Split: every kept article to train, validation or test; leakage-free and stable.

Groups, not articles, are assigned. A dedup cluster is a kept article and every article
the dedup stage removed as its duplicate (``cluster_id`` on both tables); with
``split.group_review_pairs``, clusters joined by a pair listed in the dedup stage's
``review.parquet`` form one group: a pair of the review band (similar, but under the
duplicate threshold, typically an edited reprint), or a duplicate pair that dedup's star
clustering left in two clusters. All kept members of a group land in one split, so no
pair the dedup stage found similar crosses splits.

Each group is decided by its **anchor**: the member that entered the corpus first, i.e.
the member from the earliest drop (``split.drop_order`` lists drops in the order they
arrived, appended by ``corpus add-drop``; drops not listed come after them, by name); within that drop, the earliest
published, then the smallest id. The representative the dedup stage keeps plays no part
(dedup goes drop by drop: a longer reprint in a new drop is removed for the existing
article, and inherits its split). Adding a
drop therefore moves no article already in the dataset, with one unavoidable exception:
a new article similar to two existing groups in different splits joins them, the merged
group follows the older anchor, and the other group's members move (2 of 14,336 published
articles, 7 of 17,268 counting removed duplicates, when 8 days of SaudiNewsNet were added
to its first 10: benchmarks/split_snn.py).

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
batch of ``memory_ngrams`` words, then one of ``partitions`` partitions). The report says
whether the contaminated share of validation and test is within ``max_contaminated_share``
(``contamination.gate``).

Outputs: {train,validation,test}.parquet (article columns + cluster_id),
assignments.parquet (every kept and removed article: cluster, anchor, split),
contamination.parquet (held-out articles sharing n-grams with train), report.json (the
figures of each split, the contamination figures and gate); the index (``--index``,
params.yaml ``paths.split_index``); metrics/split.json (articles per
split, the gate) and, beside it, split_by_date.csv and split_by_source.csv for ``dvc plots``.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline.plumbing.io import (
    ParquetAppender,
    partition,
    partition_drops,
    read_json,
    reset_dir,
    scan_table,
    scratch_folder,
    write_json,
    write_stage_report,
    write_table,
    write_tables,
    write_text,
)
from pipeline.plumbing.params import ParamsError, drop_order, path_of, section
from pipeline.plumbing.progress import Progress, log
from pipeline.plumbing.schema import CLUSTER_ID, CLUSTERED_ARTICLE_SCHEMA, SPLITS, conform
from pipeline.plumbing.stage_command import StagePaths, add_stage_command
from pipeline.text import arabic_text

STAGE = "split"
# Headline figures for `dvc metrics show` (name: key in the report): articles = train +
# validation + test; contaminated_share and passed: the contamination gate.
HEADLINE = {
    "articles": "input.kept",
    **{name: f"splits.{name}.rows" for name in SPLITS},
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
# Seed of Polars' hash for words and n-grams. That hash may change between Polars
# versions, which is fine: n-gram hashes only meet other hashes of the same run.
NGRAM_HASH_SEED = 13


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
    # scipy takes 0.4 s to import: only a split that has links to join pays for it.
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix(
        (np.ones(edges.height, dtype=np.int8), (edges["ia"].to_numpy(), edges["ib"].to_numpy())),
        shape=(nodes.len(), nodes.len()),
    )
    component = connected_components(graph, directed=False)[1]
    return (
        pl.DataFrame({CLUSTER_ID: nodes, "component": component})
        .with_columns(group=pl.col(CLUSTER_ID).min().over("component"))
        .select(CLUSTER_ID, "group")
    )


def drop_rank(drop_order: tuple[str, ...]) -> pl.Expr:
    """A drop's place in ``drop_order``; drops not listed share the place after them (then go by name)."""
    return pl.col("drop").replace_strict(
        list(drop_order), list(range(len(drop_order))), default=len(drop_order), return_dtype=pl.UInt32
    )


def first_dated_drop(members: pl.LazyFrame, drop_order: tuple[str, ...]) -> pl.DataFrame:
    """anchor_date, rows: the articles (kept and removed) of the earliest drop that has a
    dated one, by published date (null: undated). Later drops do not change it."""
    ranked = members.with_columns(rank=drop_rank(drop_order))
    first = ranked.filter(pl.col("published_date").is_not_null()).sort("rank", "drop").select("rank", "drop").head(1)
    return (
        ranked.join(first, on=["rank", "drop"])
        .group_by(anchor_date="published_date")
        .agg(rows=pl.len())
        .collect()
    )


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
class Assignment:
    members: pl.LazyFrame  # ASSIGNMENT_SCHEMA: every article of every cluster and its split
    validation_from: date | None = None  # the time cut-offs used (time strategy)
    test_from: date | None = None
    cutoffs_derived: bool = False


def assign_splits(
    kept: pl.LazyFrame, duplicates: pl.LazyFrame | None, rules: SplitRules, review: pl.LazyFrame | None = None
) -> Assignment:
    """The split of every cluster member, decided by its group's anchor.

    A group is a dedup cluster, or (given the dedup review pairs) the clusters that
    pairs of its review.parquet join.
    """
    members = cluster_members(kept, duplicates)
    if review is None:
        members = members.with_columns(group=pl.col(CLUSTER_ID))
    else:
        groups = review_groups(members, review).lazy()
        members = members.join(groups, on=CLUSTER_ID, how="left", maintain_order="left").with_columns(
            group=pl.coalesce("group", CLUSTER_ID)
        )
    anchors = group_anchors(members, rules.drop_order)
    assignment = Assignment(members)
    if rules.strategy == "hash":
        split = hash_split(salted_unit(pl.col("anchor_id"), rules.salt), rules.ratios)
    else:
        assignment.validation_from, assignment.test_from = rules.validation_from, rules.test_from
        if rules.test_from is None:
            derived = derive_cutoffs(first_dated_drop(members, rules.drop_order), rules.ratios)
            assignment.cutoffs_derived = True
            if derived is not None:
                assignment.validation_from, assignment.test_from = derived
        if assignment.test_from is None:
            log(STAGE, "time split: no article is dated, every article goes to train")
            split = pl.lit(UNDATED_SPLIT, dtype=SPLIT_TYPE)
        else:
            split = time_split(pl.col("anchor_date"), assignment.validation_from, assignment.test_from)
    assignment.members = conform(
        members.join(anchors.with_columns(split=split), on="group", how="left", maintain_order="left"),
        ASSIGNMENT_SCHEMA,
    )
    return assignment


# ---------------------------------------------------------------------------- contamination


def article_ngrams(articles: pl.DataFrame, n: int) -> pl.DataFrame:
    """Distinct word n-gram hashes of each article: key, split, ngram (UInt64).

    Words are hashed first, then each run of n word hashes; an article with fewer than n
    words has none. Works on a batch in memory (the shifts run across the whole batch and
    n-grams that would straddle two articles are dropped).
    """
    words = arabic_text.key_words(arabic_text.match_key(pl.col("text")))
    return (
        articles.lazy()
        .select("key", "split", word=words)
        .with_columns(n_words=pl.col("word").list.len(), pos=pl.int_ranges(0, pl.col("word").list.len()))
        .explode("word", "pos")
        .with_columns(word=pl.col("word").hash(NGRAM_HASH_SEED))
        .select(
            "key",
            "split",
            ngram=pl.struct([pl.col("word").shift(-k).alias(f"w{k}") for k in range(n)]).hash(NGRAM_HASH_SEED),
            complete=pl.col("pos") + n <= pl.col("n_words"),
        )
        .filter("complete")
        .drop("complete")
        .unique(["key", "ngram"], maintain_order=True)
        .collect()
    )


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


def write_ngram_partitions(docs: pl.LazyFrame, rules: ContaminationRules, work_dir: Path) -> None:
    """Hash every article's n-grams and write them partitioned by hash (``ngram`` modulo
    ``partitions``), and each article's count of distinct n-grams (``counts/``).

    ``docs``: key, split, text, n_words. Articles are read in batches of ``memory_ngrams`` words.
    The partitions hold key and ngram only: an article that changes split is re-labelled, not re-hashed.
    """
    n_words = docs.select("n_words").collect()["n_words"]
    progress = Progress(STAGE, "articles hashed to n-grams", total=n_words.len())
    for batch, (offset, length) in enumerate(batch_bounds(n_words, rules.memory_ngrams)):
        ngrams = article_ngrams(docs.slice(offset, length).select("key", "split", "text").collect(), rules.ngram)
        ngrams = ngrams.with_columns(partition=(pl.col("ngram") % rules.partitions).cast(pl.UInt32))
        for (bucket,), part in ngrams.select("key", "ngram", "partition").partition_by("partition", as_dict=True, include_key=False).items():
            write_table(part, work_dir / f"ngrams-{bucket:05d}" / f"batch-{batch:05d}.parquet")
        write_table(ngrams.group_by("key").agg(ngrams=pl.len().cast(pl.Int64)).sort("key"), work_dir / "counts" / f"batch-{batch:05d}.parquet")
        progress.advance(length)
    progress.done()


# The contamination index: one layer a drop, build/split_index/drop=<name>/, built in drop
# order, each from its drop's kept articles and the layers before it, and never changed once
# built. An article's key is its drop's place in that order (high 32 bits) and its row in
# the drop's articles.parquet: so keys grow with arrival, and "the train article that holds
# an n-gram" (its owner: the smallest key) is fixed by the first drop that brought it to train.
LAYER_FILE = "layer.json"
KEY_BITS = 32
LAYER_ARTICLES = pl.Schema({"key": pl.UInt64(), "id": pl.String(), "split": SPLIT_TYPE, "ngrams": pl.Int64()})
OWNED_NGRAMS = pl.Schema({"partition": pl.UInt32(), "ngram": pl.UInt64(), "owner": pl.UInt64()})
HELD_OUT_NGRAMS = pl.Schema({"partition": pl.UInt32(), "ngram": pl.UInt64(), "key": pl.UInt64(), "split": SPLIT_TYPE})
SHARED_NGRAMS = pl.Schema({"key": pl.UInt64(), "owner": pl.UInt64(), "shared": pl.Int64()})
NEW_NGRAMS = pl.Schema({"key": pl.UInt64(), "split": SPLIT_TYPE, "ngram": pl.UInt64()})
# Bumped when what a layer holds changes: every layer is then rebuilt.
INDEX_FORMAT = 2
# A layer's hashed n-grams (key, ngram by hash partition, and each article's count), kept
# so that a layer rebuilt because its articles changed split joins them again unhashed.
HASHED_DIR, HASHED_FILE = "ngrams", "hashed.json"


def _layer_tables(layers: list[Path], name: str, schema: pl.Schema, partition: int | None = None) -> pl.LazyFrame:
    """One table of the given layers (row groups of other hash partitions skipped)."""
    if not layers:
        return pl.LazyFrame(schema=schema)
    table = pl.scan_parquet([layer / name for layer in layers])
    return table if partition is None else table.filter(pl.col("partition") == partition)


def join_partition(
    new: pl.LazyFrame, owned_before: pl.LazyFrame, held_before: pl.LazyFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One hash partition of a new layer, given the n-grams of the layers before it.

    ``new``: the drop's n-grams (key, split, ngram); ``owned_before``: ngram -> owner (the
    earliest train article that holds it); ``held_before``: the earlier validation and test
    n-grams (ngram, key, split). Returns the n-grams the drop's train articles own first
    (ngram, owner); the drop's held-out n-grams (ngram, key, split); the n-grams each held-out
    article newly shares with each owner (key, owner, shared): the drop's held-out articles
    against every owner, and earlier held-out articles against the new owners; and per split
    the new distinct held-out n-grams and the new ones among them found in train.
    """
    owned_before = owned_before.select("ngram", "owner")
    held_before = held_before.select("ngram", "key", "split")
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


def drop_docs(drop: DropArticles, split_of: pl.LazyFrame) -> pl.LazyFrame:
    """key, id, split, text, n_words of the drop's kept articles, in the file's order."""
    return (
        scan_table(drop.path)
        .select("id", "text", "n_words")
        .with_row_index("row")
        .join(split_of, on="id", how="left", maintain_order="left")
        .select(key=pl.lit(drop.rank << KEY_BITS, pl.UInt64) + pl.col("row").cast(pl.UInt64), id="id", split="split",
                text="text", n_words="n_words")
    )


def build_layer(
    docs: pl.LazyFrame, earlier: list[Path], rules: ContaminationRules, layer: Path, fingerprint: str, hashed: str
) -> None:
    """Write a drop's layer (see LAYER_FILE) from the layers before it, hashing the drop's
    n-grams unless the layer holds them already (``hashed``: what they were hashed from).

    Memory holds a batch of ``memory_ngrams`` words' n-grams while hashing, then one hash
    partition of the drop and of the earlier layers.
    """
    ngrams_dir = layer / HASHED_DIR
    kept = (ngrams_dir / HASHED_FILE).exists() and read_json(ngrams_dir / HASHED_FILE)["hashed"] == hashed
    if kept:  # everything but the hashed n-grams goes
        for old in layer.iterdir():
            if old != ngrams_dir:
                (shutil.rmtree if old.is_dir() else Path.unlink)(old)
    else:
        reset_dir(layer)
    if not kept:
        write_ngram_partitions(docs, rules, ngrams_dir)
        write_json(ngrams_dir / HASHED_FILE, {"hashed": hashed})  # last: interrupted hashing is done again
    split_by_key = docs.select("key", "split").collect().lazy()
    distinct = []
    with scratch_folder(layer.parent) as work_dir:
        with (
            ParquetAppender(layer / "owned.parquet", OWNED_NGRAMS) as owned_out,
            ParquetAppender(layer / "held_out.parquet", HELD_OUT_NGRAMS) as held_out,
            ParquetAppender(work_dir / "shared.parquet", SHARED_NGRAMS) as shared_out,
        ):
            for bucket in range(rules.partitions):
                folder = ngrams_dir / f"ngrams-{bucket:05d}"
                if not folder.is_dir():
                    continue
                owned, held, shared, new_distinct = join_partition(
                    scan_table(folder).join(split_by_key, on="key", how="left"),
                    _layer_tables(earlier, "owned.parquet", OWNED_NGRAMS, bucket),
                    _layer_tables(earlier, "held_out.parquet", HELD_OUT_NGRAMS, bucket),
                )
                part = pl.lit(bucket, pl.UInt32)
                owned_out.append(owned.select(partition=part, ngram="ngram", owner="owner"))
                held_out.append(held.select(partition=part, ngram="ngram", key="key", split="split"))
                shared_out.append(shared)
                distinct.append(new_distinct)
        write_table(
            scan_table(work_dir / "shared.parquet").group_by("key", "owner").agg(pl.col("shared").sum()).sort("key", "owner"),
            layer / "shared.parquet",
        )
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
    write_json(layer / LAYER_FILE, {"fingerprint": fingerprint, "distinct_ngrams": found})


def index_fingerprint(rules: ContaminationRules) -> str:
    """What every layer depends on besides the drops: the n-gram rules, the code that hashes
    (this module, the word normalisation, Polars' hash) and the layout."""
    code = [Path(__file__), Path(arabic_text.__file__)]
    parts = [INDEX_FORMAT, rules.ngram, rules.partitions, pl.__version__, *(_digest(path) for path in code)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _digest(path: Path) -> str:
    with path.open("rb") as opened:
        return hashlib.file_digest(opened, "sha256").hexdigest()


def update_index(drops: list[DropArticles], split_of: pl.LazyFrame, rules: ContaminationRules, index_dir: Path) -> list[Path]:
    """Bring the contamination index up to date; returns its layers, in drop order.

    Drop k's layer is reused when its fingerprint (the index's, drop k's articles.parquet
    bytes, drop k-1's fingerprint) is unchanged and its articles are still in the splits it
    recorded; otherwise it and every later layer are built again, from the n-grams the layer
    hashed when its drop's bytes, place and the code are unchanged. So the index, whatever
    was there before, is byte for byte the one built from nothing. (An article changes split
    when a new article joins its group to an older group in another split.)
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = code_and_rules = index_fingerprint(rules)
    layers, rebuilding, reused = [], False, []
    for drop in drops:
        drop_digest = _digest(drop.path)
        hashed = hashlib.sha256(f"{code_and_rules}\n{rules.memory_ngrams}\n{drop.rank}\n{drop_digest}".encode()).hexdigest()
        fingerprint = hashlib.sha256(f"{fingerprint}\n{drop.name}\n{drop_digest}".encode()).hexdigest()
        layer = partition(index_dir, drop.name)
        docs = drop_docs(drop, split_of)
        if not rebuilding and (layer / LAYER_FILE).exists() and read_json(layer / LAYER_FILE)["fingerprint"] == fingerprint:
            recorded = scan_table(layer / "articles.parquet").select("key", "split").collect()
            moved = recorded.join(docs.select("key", "split").collect(), on=["key", "split"], how="anti", nulls_equal=True).height
            if moved == 0:
                layers.append(layer)
                reused.append(drop.name)
                continue
            log(STAGE, f"contamination index: {moved:,} article(s) of drop {drop.name} changed split (a new article "
                       "joined their group to an older one): joining again from that drop")
        rebuilding = True
        build_layer(docs, layers, rules, layer, fingerprint, hashed)
        layers.append(layer)
    for stale in set(index_dir.iterdir()) - set(layers):  # drops no longer in the corpus
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    log(STAGE, f"contamination index: {len(reused)} drop(s) reused, {len(layers) - len(reused)} built again")
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


@dataclass
class DedupOutput:
    """What the split reads of the dedup stage's output."""

    drops: list[DropArticles]  # the kept articles, drop by drop in drop order
    duplicates: pl.LazyFrame | None
    review: pl.LazyFrame | None


def dedup_output(input_dir: Path, drops_in_order: list[str]) -> DedupOutput:
    """The kept articles (drop=<name>/articles.parquet, or one articles table when the
    input is not laid out by drop), duplicates.parquet and review.parquet."""
    names = partition_drops(input_dir, drops_in_order) if input_dir.is_dir() else []
    paths = [partition(input_dir, name) / "articles.parquet" for name in names]
    if not names:
        names, paths = ["corpus"], [input_dir / "articles.parquet" if input_dir.is_dir() else input_dir]
    return DedupOutput(
        drops=[DropArticles(name, path, rank) for rank, (name, path) in enumerate(zip(names, paths))],
        duplicates=_optional_table(input_dir / "duplicates.parquet", "clusters are the kept articles alone"),
        review=_optional_table(input_dir / "review.parquet", "review pairs join no clusters"),
    )


def run(
    input_dir: Path, output_dir: Path, metrics_path: Path | None, params: dict[str, Any], index_dir: Path | None = None
) -> dict[str, Any]:
    """The split stage. ``index_dir``: the contamination index to bring up to date (None: one
    built from nothing in a scratch folder)."""
    split_params = section(params, STAGE)
    rules = SplitRules.from_params(split_params)
    contamination_rules = ContaminationRules.from_params(split_params)
    dedup = dedup_output(input_dir, drop_order(params))
    kept = pl.concat([scan_table(drop.path) for drop in dedup.drops])
    duplicates, review = dedup.duplicates, dedup.review if rules.group_review_pairs else None
    counted = kept.select(rows=pl.len(), missing=pl.col(CLUSTER_ID).null_count(), clusters=pl.col(CLUSTER_ID).n_unique())
    n_in, missing_clusters, n_clusters = counted.collect().row(0)
    if missing_clusters:
        raise ValueError(f"{missing_clusters:,} kept articles have no {CLUSTER_ID} (is {input_dir} the dedup output?)")

    assignment = assign_splits(kept, duplicates, rules, review)
    split_of = assignment.members.filter("kept").select("id", "split")
    tagged = kept.join(split_of, on="id", how="left", maintain_order="left")
    split_paths = {name: output_dir / f"{name}.parquet" for name in SPLITS}
    write_tables(
        {path: conform(tagged.filter(pl.col("split") == name), CLUSTERED_ARTICLE_SCHEMA) for name, path in split_paths.items()}
        | {output_dir / "assignments.parquet": assignment.members}
    )
    splits = {name: scan_table(path) for name, path in split_paths.items()}

    stats = split_statistics(splits, rules.ratios)
    n_out = sum(s["rows"] for s in stats.values())
    if n_in != n_out:
        raise RuntimeError(f"split lost articles: {n_in} in, {n_out} in the splits")
    log(STAGE, f"{n_in:,} articles -> " + ", ".join(f"{name} {s['rows']:,} ({s['share']:.1%})" for name, s in stats.items()))

    if index_dir is None:
        with scratch_folder(output_dir) as scratch:
            found = contamination(update_index(dedup.drops, split_of, contamination_rules, scratch), contamination_rules)
    else:
        found = contamination(update_index(dedup.drops, split_of, contamination_rules, index_dir), contamination_rules)
    write_table(found.report, output_dir / "contamination.parquet")
    gate = found.metrics["gate"]
    log(STAGE, f"contamination: test {found.metrics['test']['contaminated_share']:.2%} and validation "
               f"{found.metrics['validation']['contaminated_share']:.2%} of articles have >= "
               f"{contamination_rules.article_overlap:.0%} of their {contamination_rules.ngram}-grams in train "
               f"(gate {gate['max_contaminated_share']:.2%}: {'passed' if gate['passed'] else 'FAILED'})")

    group_sizes = scan_table(output_dir / "assignments.parquet").filter("kept").group_by("anchor_id").agg(rows=pl.len())
    groups = group_sizes.select(groups=pl.len(), largest=pl.col("rows").max(), joined=(pl.col("rows") > 1).sum()).collect()
    report: dict[str, Any] = {
        "strategy": rules.strategy,
        "input": {
            "kept": n_in,
            "duplicates": duplicates.select(pl.len()).collect().item() if duplicates is not None else 0,
            "clusters": n_clusters,
            "groups": groups["groups"].item(),
            "groups_of_several_kept_articles": groups["joined"].item(),
            "largest_group": groups["largest"].item(),
        },
        "splits": stats,
        "contamination": found.metrics,
    }
    if rules.strategy == "time":
        report["time"] = {
            "validation_from": str(assignment.validation_from) if assignment.validation_from else None,
            "test_from": str(assignment.test_from) if assignment.test_from else None,
            "derived": assignment.cutoffs_derived,
        }
        if assignment.cutoffs_derived and assignment.test_from:
            log(STAGE, f"time split: derived validation_from {assignment.validation_from}, test_from "
                       f"{assignment.test_from} (from the first dated drop; later drops do not move them)")
    write_stage_report(report, output_dir, metrics_path, HEADLINE)
    if metrics_path:
        write_text(metrics_path.parent / "split_by_date.csv", rows_by(splits, "published_date").write_csv())
        write_text(metrics_path.parent / "split_by_source.csv", rows_by(splits, "source").write_csv())
    return report


def _optional_table(path: Path, without: str) -> pl.LazyFrame | None:
    if path.exists():
        return scan_table(path)
    log(STAGE, f"{path} not found: {without}")
    return None


def add_command(commands) -> None:
    parser = add_stage_command(
        commands, STAGE, input_from=("dedup",), main=_main,
        input_help="dedup output folder: the kept articles (drop=<name>/articles.parquet), and duplicates.parquet "
        "and review.parquet when there",
    )
    parser.add_argument("--index", type=Path, help="the contamination index, one layer a drop, brought up to date "
                        "(default: <paths.split_index>; with --output, none is kept unless --index is given)")


def _main(paths: StagePaths, params: dict[str, Any], args) -> int:
    index = args.index or (None if args.output else path_of(params, "split_index"))
    run(paths.input, paths.output, paths.metrics, params, index)
    return 0
