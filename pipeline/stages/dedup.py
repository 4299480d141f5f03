"""Dedup: exact and near-duplicate articles out, each removed one pointing at the kept one.

How articles are compared: by the ``match_key`` of their text (diacritics, letter forms,
digit scripts, punctuation and case do not matter; the headline is not compared, since
outlets retitle the same story).

1. Exact duplicates: articles whose keys are equal (xxh3-128 of the key).
2. Near duplicates: word n-gram shingles of the key -> MinHash signatures -> LSH bands
   over the whole text and over its lead (``pipeline/text/minhash.py``). Articles that
   share a band are candidates; a candidate pair is a duplicate when the real Jaccard
   similarity of their shingle sets reaches ``dedup.threshold`` or the smaller lies inside
   the other (``Overlap.contained``), and neither other figures (``figures_differ``) nor
   other names (``names_differ``) are stated. The pairs not merged are listed in
   review.parquet with their reason.
3. Clusters: in the order of the kept-article rule (longest text, then earliest date, then
   smallest id), an article not yet in a cluster is kept and gathers every article not
   yet in a cluster that duplicates it (``star_centres``), except that a roundup takes
   none of the stories it holds (``roundup_edges``); then clusters join
   (``join_clusters``). Every removed article lies inside or near its kept article, with
   the Jaccard similarity reported.

Drops go in ``split.drop_order``: drop k against the kept articles of drops 1..k-1, which
are fixed (never removed, never compared with each other), and within itself (``run``).
Each drop's folder keeps the band keys of its kept articles (``index_table``), which later
drops, and ``match_against_index``, look up a band at a time (``CorpusIndex``), and what
verifying a pair with one of its articles takes (shingle sets, ``minhash.detail_sets``,
figures: INDEX_FILES), read back for the candidates found instead of their texts; a folder
is reused while its fingerprint (params, code, the drop's input, the previous drop's
fingerprint) holds, so a new drop signs only its articles and the output equals a run from
scratch.

Articles are read in batches of ``dedup.batch_size``: only one batch's shingles are ever
in memory; their sets, signatures, band keys and figures go to temporary files, read back
a band, a step of pairs or a batch at a time, and a drop's folder is written a batch at a
time. What grows with a drop is its ids, key hashes and ranks (about 100 bytes an article)
and its candidate pairs (8 bytes a pair); on disk, its folder's sets (about 3 KB an article
of 400 words).

On an engine (``dedup.engine``, pipeline/engines/) the batches are signed, the LSH bands
grouped (a task a band, of the drop and against the index; the signing tasks hand a band's
task its keys through storage, ``minhash.BandPartitions``) and the candidate pairs verified
(a task a step of pairs) on the workers; the decisions on the verified pairs and the
clustering stay here. On a cluster the signing tasks also write their sets and signatures
to storage (``minhash.SetParts``), which this process copies into its files and the
verifying tasks read: no set or signature is sent to or from it. Same outputs, byte for byte.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import xxhash

from pipeline.engines.engine import (
    DEFAULT_ENGINE,
    Engine,
    add_engine_option,
    engine_name,
    engine_scratch,
    open_engine,
    shared_folder,
    with_engine,
)
from pipeline.plumbing.fingerprint import DigestMemo, code_digest, digest, files_digest
from pipeline.plumbing.io import (
    REPORT_FILE,
    ParquetAppender,
    batches,
    keep_listed_drops,
    lazy_frames,
    partition,
    partition_drops,
    read_json,
    reset_dir,
    scan_partitions,
    scan_table,
    sum_reports,
    write_json,
    write_stage_report,
    write_table,
    write_text,
)
from pipeline.plumbing.params import drop_order, section
from pipeline.plumbing.progress import Progress, log
from pipeline.plumbing.schema import CLUSTERED_ARTICLE_SCHEMA, DUPLICATE_COLUMNS, conform
from pipeline.plumbing.stage_command import StagePaths, add_stage_command, require_listed_drops
from pipeline.text import arabic_text, minhash

STAGE = "dedup"
# Headline figures for `dvc metrics show` (name: key in the report): input = articles + duplicates.
HEADLINE = {"input": "input", "articles": "kept", "duplicates": "duplicates"}
# Each drop's folder, <output>/drop=<name>/, holds what dedup decided for its articles:
KEPT_FILE = "articles.parquet"  # the kept articles
DUPLICATES_FILE = "duplicates.parquet"  # the removed ones
REVIEW_FILE = "review.parquet"  # pairs with one of its articles to review
INDEX_FILE = "index.parquet"  # the band keys of its kept articles (index_table), for later drops
# What verifying a pair with one of its articles takes (``deduplicate``'s ``store``), for later drops:
SETS_FILE = "sets.parquet"  # the size of each stored set of each article, in input order (SET_COLUMNS)
SHINGLE_SETS_FILE = "shingle_sets.u32"  # their shingle sets (``minhash.ShingleSets``)
DETAIL_SETS_FILE = "detail_sets.u32"  # their ``minhash.detail_sets``
FIGURES_FILE = "figures.parquet"  # their ``figure_table`` (row: the article's, in input order)
INDEX_FILES = (INDEX_FILE, SETS_FILE, SHINGLE_SETS_FILE, DETAIL_SETS_FILE, FIGURES_FILE)
FINGERPRINT = "fingerprint"  # in the drop's report.json: what its folder was computed from
INDEX_DIR = "index"  # <output>/index/meta.json: what `match_against_index` reads the corpus's index with
INDEX_META = "meta.json"
NEW_PREFIX = "new:"
MATCH_SCHEMA = pl.Schema({"id": pl.String(), **DUPLICATE_COLUMNS})
DUPLICATE_SCHEMA = pl.Schema(dict(CLUSTERED_ARTICLE_SCHEMA) | DUPLICATE_COLUMNS)
REVIEW_SCHEMA = pl.Schema({
    "id_a": pl.String(), "id_b": pl.String(), "similarity": pl.Float64(), "containment": pl.Float64(),
    "same_cluster": pl.Boolean(), "reason": pl.String(),
    "title_a": pl.String(), "title_b": pl.String(), "source_a": pl.String(), "source_b": pl.String(),
})
# The verified candidate pairs, as written to disk step by step (a, b: rank numbers, a < b).
VERIFIED_SCHEMA = pl.Schema({
    "a": pl.Int64(), "b": pl.Int64(), "similarity": pl.Float64(), "containment": pl.Float64(),
    "smaller": pl.Int64(), "larger": pl.Int64(), "lead": pl.Float64(),
})
FIGURES_STEP_PAIRS = 100_000  # pairs whose articles' figures are read at a time (``deduplicate``)
VERIFY_CHUNK_PAIRS = 1 << 20  # candidate pairs unpacked to rank numbers at a time (``verify_to_files``)
FIGURE_SCHEMA = pl.Schema({"doc": pl.UInt32(), "context": pl.UInt64(), "value": pl.UInt64()})  # ``figure_table``
# The sets of ``minhash.detail_sets``, three per document: set 3 * doc + one of these.
REPEATED_WORDS, WORDS, LEAD_SHINGLES = 0, 1, 2
SET_COLUMNS = ("shingles", "repeated_words", "words", "lead_shingles")  # SETS_FILE: the shingle set, then the details
SIMILARITY_BINS = [round(0.05 * i, 2) for i in range(21)]
SIMILARITY_LABELS = [f"{lo:.2f}-{hi:.2f}" for lo, hi in zip(SIMILARITY_BINS, SIMILARITY_BINS[1:])]


@dataclass(frozen=True)
class DedupParams:
    minhash: minhash.MinHashParams
    threshold: float
    review_min: float
    batch_size: int
    max_bucket_size: int
    verify_batch_pairs: int
    containment: float
    containment_min_shingles: int
    containment_min_share: float
    containment_short: float
    containment_short_min_shingles: int
    containment_lead: float
    lead_same: float
    join_min: float
    figures_min: int
    figures_tolerance: float
    names_min: int
    names_share: float
    lead_min: float
    # what signs the batches, groups the LSH bands and verifies the candidate pairs
    # (pipeline/engines/; clustering stays here): outputs are the same
    engine: str = DEFAULT_ENGINE
    scratch: str = ""  # where the signing tasks leave the LSH band partitions for the band tasks (``engine_scratch``)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "DedupParams":
        dedup = section(params, STAGE)
        result = cls(
            minhash=minhash.MinHashParams.from_params(dedup),
            threshold=float(dedup["threshold"]),
            review_min=float(dedup["review_min"]),
            batch_size=int(dedup["batch_size"]),
            max_bucket_size=int(dedup["max_bucket_size"]),
            verify_batch_pairs=int(dedup["verify_batch_pairs"]),
            containment=float(dedup["containment"]),
            containment_min_shingles=int(dedup["containment_min_shingles"]),
            containment_min_share=float(dedup["containment_min_share"]),
            containment_short=float(dedup["containment_short"]),
            containment_short_min_shingles=int(dedup["containment_short_min_shingles"]),
            containment_lead=float(dedup["containment_lead"]),
            lead_same=float(dedup["lead_same"]),
            join_min=float(dedup["join_min"]),
            figures_min=int(dedup["figures_min"]),
            figures_tolerance=float(dedup["figures_tolerance"]),
            names_min=int(dedup["names_min"]),
            names_share=float(dedup["names_share"]),
            lead_min=float(dedup["lead_min"]),
            engine=engine_name(params),
            scratch=engine_scratch(params),
        )
        if not 0 < result.review_min <= result.threshold <= 1:
            raise ValueError("dedup: need 0 < review_min <= threshold <= 1")
        if not 0 < result.threshold <= result.containment <= result.containment_short <= 1 or not 0 < result.join_min <= 1:
            raise ValueError("dedup: need 0 < threshold <= containment <= containment_short <= 1 and 0 < join_min <= 1")
        if not 0 < result.containment_lead <= result.containment or not result.lead_min <= result.lead_same <= 1:
            raise ValueError("dedup: need 0 < containment_lead <= containment and lead_min <= lead_same <= 1")
        return result


# ------------------------------------------------------------------ signatures


def with_match_words(articles: pl.LazyFrame) -> pl.LazyFrame:
    """Adds ``key`` (the match key of the text, names on "عبد" joined) and ``words`` (its words)."""
    return articles.with_columns(key=arabic_text.joined_names(arabic_text.match_key(pl.col("text")))).with_columns(
        words=arabic_text.key_words(pl.col("key"))
    )


def signing_input(articles: pl.LazyFrame, with_figures: bool = True) -> pl.LazyFrame:
    """id, key, words (``with_match_words``) and, ``with_figures``, the figure snippets of
    each article (columns id, text): what ``sign_batch`` takes."""
    signed = with_match_words(articles.select("id", "text"))
    return (signed.with_columns(figures=figure_snippets(pl.col("text"))) if with_figures else signed).select(
        "id", "key", "words", *(["figures"] if with_figures else []))


def key_hashes(keys: pl.Series) -> pl.Series:
    """xxh3-128 (hex) of each match key: equal keys <=> exact duplicates. The keys' bytes
    are hashed where Arrow holds them (no Python string a key: a third of the CPU)."""
    offsets, data = minhash.utf8_bytes(keys.to_arrow())
    data, hexdigest = memoryview(data), xxhash.xxh3_128_hexdigest
    bounds = offsets.tolist()
    return pl.Series("key_hash", [hexdigest(data[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])], dtype=pl.String)


def signature_table(articles: pl.LazyFrame, params: DedupParams, what: str,
                    shingle_sets: minhash.ShingleSets | None = None,
                    figures: list[pl.DataFrame] | ParquetAppender | None = None,
                    details: minhash.ShingleSets | None = None,
                    signature_file: minhash.SignatureFile | None = None,
                    band_partitions: minhash.BandPartitions | None = None,
                    set_parts: minhash.SetParts | None = None) -> pl.DataFrame:
    """id, key_hash, signature (Array[UInt32, permutations]) of every article, in input order.

    Articles are read ``batch_size`` at a time; the signatures fill one preallocated array
    (the frame wraps it without a copy), or with ``signature_file`` go to it, and the frame
    has no signature column. With ``shingle_sets``, each batch's shingle sets
    are added to it, for verifying candidate pairs without reading the texts again (and
    their ``minhash.detail_sets`` to ``details``); with ``figures``, each batch's
    ``figure_table`` is appended to it (docs numbered in input order); with ``band_partitions``,
    the task that signs a batch writes its LSH band keys there. With ``set_parts`` (a
    cluster's engine; ``shingle_sets``, ``details`` and ``signature_file`` given) that task
    also writes its sets and signatures there and returns their sizes only: this process
    copies the parts' bytes into its files, and no set or signature is sent to it."""
    n = articles.select(pl.len()).collect().item()
    signature = np.empty((0 if signature_file is not None else n, params.minhash.width), dtype=np.uint32)
    ids: list[pl.Series] = []
    hashes: list[pl.Series] = []
    progress = Progress(STAGE, f"{what} signed", total=n)
    signer = partial(_signer, params, shingle_sets is not None, figures is not None, band_partitions, set_parts)
    for part in open_engine({}, params.engine).map_batches(signing_input(articles, figures is not None), signer,
                                                           params.batch_size):
        if set_parts is not None:  # the task wrote them (``minhash.SetParts``)
            shingle_sets.add_part(set_parts.path(set_parts.SHINGLE_SETS, progress.count), part.set_sizes[0])
            details.add_part(set_parts.path(set_parts.DETAIL_SETS, progress.count), part.set_sizes[1])
            signature_file.add_part(set_parts.path(set_parts.SIGNATURES, progress.count), part.ids.len())
        elif signature_file is not None:
            signature_file.add(part.signatures)
        else:
            signature[progress.count:progress.count + part.ids.len()] = part.signatures
        if shingle_sets is not None and set_parts is None:
            shingle_sets.add(part.shingles)
        if details is not None and set_parts is None:
            details.add_sets(minhash.detail_sets(part.shingles, params.minhash.lead_shingles))
        if figures is not None:
            figures.append(part.figures)
        ids.append(part.ids)
        hashes.append(part.key_hashes)
        progress.advance(part.ids.len())
    progress.done()
    signed = pl.DataFrame({
        "id": pl.concat(ids).rechunk() if ids else pl.Series([], dtype=pl.String),
        "key_hash": pl.concat(hashes).rechunk() if hashes else pl.Series([], dtype=pl.String),
    })
    if signature_file is not None:
        return signed
    return signed.with_columns(signature=pl.Series(signature, dtype=pl.Array(pl.UInt32, params.minhash.width)))


@dataclass
class SignedBatch:
    """``signature_table``'s work on a batch of articles (``sign_batch``)."""

    ids: pl.Series
    key_hashes: pl.Series
    signatures: np.ndarray | None  # None: written to ``minhash.SetParts``
    shingles: minhash.Shingles | None  # when their sets are kept (and not written to ``minhash.SetParts``)
    figures: pl.DataFrame | None  # ``figure_table``, docs numbered from the batch's first row
    set_sizes: tuple[np.ndarray, np.ndarray] | None = None  # of the sets written to ``minhash.SetParts``


def sign_batch(batch: pl.DataFrame, first_row: int, params: DedupParams, keep_shingles: bool,
               with_figures: bool, band_partitions: minhash.BandPartitions | None = None,
               set_parts: minhash.SetParts | None = None) -> SignedBatch:
    shingles = minhash.shingle_hashes(batch["words"], params.minhash.ngram)
    signature = minhash.signatures(shingles, params.minhash)
    if band_partitions is not None:
        band_partitions.add(first_row, signature, params.minhash)
    set_sizes = None if set_parts is None else set_parts.add(first_row, shingles, signature,
                                                             params.minhash.lead_shingles)
    return SignedBatch(
        batch["id"], key_hashes(batch["key"]), signature if set_parts is None else None,
        shingles if keep_shingles and set_parts is None else None,
        figure_table(batch["figures"], first_doc=first_row) if with_figures else None, set_sizes,
    )


def _signer(params: DedupParams, keep_shingles: bool, with_figures: bool,
            band_partitions: minhash.BandPartitions | None, set_parts: minhash.SetParts | None):
    """``sign_batch`` as an engine worker's per-batch function."""
    return partial(sign_batch, params=params, keep_shingles=keep_shingles, with_figures=with_figures,
                   band_partitions=band_partitions, set_parts=set_parts)


# ------------------------------------------------------------------ figures

# A figure in running text with the word before and after it (when a word is there): the
# context that tells which fact the figure states ("مبلغ 80,5 مليار"). Digits of any script
# (\p{Nd}: ASCII, Arabic-Indic, Persian), grouped by . , and the Arabic separators ٫ ٬; a
# run joined by / : or a hyphen or dash (- – — −: a date, a time, a score) is one figure.
_NUMBER = r"\p{Nd}+(?:[.,٫٬]\p{Nd}+)*"
_FIGURE = (rf"(?:[\p{{L}}\p{{M}}]+[^\p{{L}}\p{{M}}\p{{N}}\n]{{0,3}})?{_NUMBER}(?: ?[/:\-‐‒–—−] ?{_NUMBER})*"
           r"(?:[^\p{L}\p{M}\p{N}\n]{0,3}[\p{L}\p{M}]+)?")
_FIGURE_PARTS = r"^([\p{L}\p{M}]*)[^\p{L}\p{M}\p{N}]*(\p{Nd}.*\p{Nd}|\p{Nd})[^\p{L}\p{M}\p{N}]*([\p{L}\p{M}]*)$"
_SEPARATOR = "x"  # stands for . , ٫ ٬ through match_key (which drops punctuation)


def figure_snippets(text: pl.Expr) -> pl.Expr:
    """The figures of a text with their neighbouring words (``_FIGURE``), as a list."""
    return text.str.extract_all(_FIGURE)


def figure_value(figure: pl.Expr) -> pl.Expr:
    """A figure in one notation: its numbers (``number_value``) sorted, so that a date
    written day first or year first is one value (1/8/2015 = 2015/8/1)."""
    return figure.str.extract_all(_NUMBER).list.eval(number_value(pl.element())).list.sort().list.join(" ")


def number_value(number: pl.Expr) -> pl.Expr:
    """A number in one notation: digits of every script as ASCII; groups of exactly three
    digits after the first are thousands (1,000 = 1.000 = ١٬٠٠٠ = 1000); otherwise the
    last separator is the decimal point (80,5 = 80.5 = ٨٠٫٥); leading zeros and trailing
    decimal zeros dropped (05 = 5, 2.50 = 2.5)."""
    folded = arabic_text.match_key(number.str.replace_all(r"[.,٫٬]", _SEPARATOR, literal=False))
    grouped = folded.str.contains(rf"^\d{{1,3}}({_SEPARATOR}\d{{3}})+$")
    decimal = folded.str.replace(rf"^(.*){_SEPARATOR}(\d+)$", "${1}.${2}").str.replace_all(_SEPARATOR, "", literal=True)
    value = pl.when(grouped).then(folded.str.replace_all(_SEPARATOR, "", literal=True)).otherwise(decimal)
    return value.str.replace(r"^0+(\d)", "${1}").str.replace(r"(\.\d*?)0+$", "${1}").str.strip_suffix(".")


def figure_table(snippets: pl.Series, first_doc: int = 0) -> pl.DataFrame:
    """doc, context, value (UInt64 hashes) of the figures of documents ``first_doc``, ... of a
    List[String] of ``figure_snippets``; the context is the match keys of the words around.
    The hashes are stable (``minhash.word_hashes``): a drop's folder keeps them (FIGURES_FILE)."""
    parts = (
        pl.DataFrame({"snippet": snippets}).with_row_index("doc", offset=first_doc).explode("snippet").drop_nulls()
        .select("doc", parts=pl.col("snippet").str.extract_groups(_FIGURE_PARTS)).unnest("parts")
    )
    before, number, after = parts.columns[1:]
    figures = parts.select(
        "doc",
        context=pl.concat_str(arabic_text.match_key(pl.col(before)), arabic_text.match_key(pl.col(after)), separator="|"),
        value=figure_value(pl.col(number)),
    )
    return figures.with_columns(
        pl.Series(name, minhash.word_hashes(figures[name].fill_null("")), dtype=pl.UInt64) for name in ("context", "value")
    ).unique(maintain_order=True)


def figures_differ(figures: pl.DataFrame, a: np.ndarray, b: np.ndarray, params: DedupParams) -> np.ndarray:
    """Whether documents ``a[i]`` and ``b[i]`` state different facts: of the figure contexts
    both carry (at least ``figures_min``), more than ``figures_tolerance`` of them hold no
    common value. A figure only one of them has (a teaser cut it, a paragraph added it) is
    no disagreement; the same words around another figure are (a weekly report's amounts,
    a greeting's year, the date of an otherwise identical notice)."""
    pairs = pl.DataFrame({"pair": np.arange(len(a)), "a": a, "b": b}, schema_overrides={"a": pl.UInt32, "b": pl.UInt32})
    side_a = pairs.join(figures.rename({"doc": "a", "value": "value_a"}), on="a").select("pair", "context", "value_a")
    side_b = pairs.join(figures.rename({"doc": "b", "value": "value_b"}), on="b").select("pair", "context", "value_b")
    compared = (
        side_a.join(side_b, on=["pair", "context"])
        .group_by("pair", "context").agg(agree=(pl.col("value_a") == pl.col("value_b")).any())
        .group_by("pair").agg(compared=pl.len(), conflicts=(~pl.col("agree")).sum())
        .filter((pl.col("compared") >= params.figures_min)
                & (pl.col("conflicts") > params.figures_tolerance * pl.col("compared")))
    )
    differ = np.zeros(len(a), dtype=bool)
    differ[compared["pair"].to_numpy()] = True
    return differ


def facts_differ(similar: np.ndarray, other_figures: Callable[[np.ndarray], np.ndarray],
                 other_names: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Whether pairs state other figures, and whether they are one formula about other
    names, checked where it can decide: figures for the pairs similar enough to be
    duplicates (``similar``), names for those of them whose figures agree.
    ``other_figures(pairs)`` and ``other_names(pairs)`` check the pairs a mask picks
    (``figures_differ``, ``names_differ``); False where not checked."""
    figures = np.zeros(len(similar), dtype=bool)
    figures[similar] = other_figures(similar)
    agree = similar & ~figures
    names = np.zeros(len(similar), dtype=bool)
    names[agree] = other_names(agree)
    return figures, names


def names_differ(details: minhash.ShingleSets, a: np.ndarray, b: np.ndarray, params: DedupParams) -> np.ndarray:
    """Whether documents ``a[i]`` and ``b[i]`` (of ``details``, ``minhash.detail_sets``) are
    one formula about other names: each has at least ``names_min`` words it repeats that
    the other never uses, and those make at least ``names_share`` of the words it has and
    the other lacks. The congratulation cable to another president, the same notice about
    another person: the words that differ are the names, and a name recurs. A reprint's
    edits (words changed, a paragraph added or dropped, a teaser's cut) leave words that
    are mostly used once, or nothing on one side."""
    differ = np.zeros(len(a), dtype=bool)
    for first in range(0, len(a), params.verify_batch_pairs):
        step = slice(first, first + params.verify_batch_pairs)
        x, y = a[step], b[step]
        shared, words_x, words_y = details.overlap(3 * x + WORDS, 3 * y + WORDS)
        repeated_x_in_y, repeated_x, _ = details.overlap(3 * x + REPEATED_WORDS, 3 * y + WORDS)
        repeated_y_in_x, repeated_y, _ = details.overlap(3 * y + REPEATED_WORDS, 3 * x + WORDS)
        names_x, names_y = repeated_x - repeated_x_in_y, repeated_y - repeated_y_in_x
        differ[step] = (
            (names_x >= params.names_min) & (names_y >= params.names_min)
            & (names_x >= params.names_share * (words_x - shared)) & (names_y >= params.names_share * (words_y - shared))
        )
    return differ


# ------------------------------------------------------------------ verification


@dataclass
class Overlap:
    """The real overlap of pairs of shingle sets: Jaccard |A∩B| / |A∪B|, containment
    |A∩B| / |smaller|, the sizes of the smaller and the larger set, and ``lead``: the share
    of the smaller's first ``lead_shingles`` shingles among the larger's first ones (read
    only where the share floor decides, see ``verify_steps``; 0 elsewhere)."""

    jaccard: np.ndarray
    containment: np.ndarray
    smaller: np.ndarray
    larger: np.ndarray
    lead: np.ndarray

    def inside(self, containment: float, params: DedupParams) -> np.ndarray:
        """At least ``containment`` of the smaller set lies inside the other, and the smaller
        is not a small part of it (``containment_min_share``) unless both begin alike
        (``lead_min``): a teaser, a truncation, not a brief that a long roundup quotes."""
        return (self.containment >= containment) & self.sized(params)

    def sized(self, params: DedupParams) -> np.ndarray:
        """The share floor: the smaller is at least ``containment_min_share`` of the larger,
        or it opens as the larger does (a teaser is the lead of its article, whatever the
        length of the reprint that took it; a roundup seldom opens with the item it quotes)."""
        return (self.smaller >= params.containment_min_share * self.larger) | (self.lead >= params.lead_min)

    def contained(self, params: DedupParams) -> np.ndarray:
        """``inside`` at ``containment`` when the smaller is big enough (``containment_min_shingles``)
        for that to be more than a few shared sentences; a shorter one (down to
        ``containment_short_min_shingles``) must lie almost whole inside (``containment_short``)
        and open as the other does (``lead_min``): a short teaser is the lead of its article,
        two or three shared sentences with a sentence of their own around them, or from
        further down the other, are not. Either size counts from ``containment_lead`` when it
        opens as the other does (``lead_same`` of its lead inside the other's): a teaser with
        a footer line or a paragraph of its own added lies 0.75-0.8 inside its article."""
        long_enough = self.smaller >= params.containment_min_shingles
        sized = self.smaller >= params.containment_short_min_shingles
        short = ~long_enough & sized & (self.lead >= params.lead_min)
        same_opening = sized & (self.lead >= params.lead_same) & (self.containment >= params.containment_lead)
        return (self.inside(params.containment, params) & long_enough) | (
            (self.containment >= params.containment_short) & short) | same_opening

    def similar(self, params: DedupParams) -> np.ndarray:
        return (self.jaccard >= params.threshold) | self.contained(params)

    @classmethod
    def of_sets(cls, shared: np.ndarray, size_a: np.ndarray, size_b: np.ndarray) -> "Overlap":
        union, smaller = size_a + size_b - shared, np.minimum(size_a, size_b)
        return cls(
            jaccard=np.divide(shared, union, out=np.zeros(len(shared)), where=union > 0),
            containment=np.divide(shared, smaller, out=np.zeros(len(shared)), where=smaller > 0),
            smaller=smaller, larger=np.maximum(size_a, size_b), lead=np.zeros(len(shared)),
        )

    @classmethod
    def of_frame(cls, verified: pl.DataFrame) -> "Overlap":
        """The overlap of pairs read back from a ``VERIFIED_SCHEMA`` table."""
        return cls(*(verified[name].to_numpy() for name in ("similarity", "containment", "smaller", "larger", "lead")))


def verify_steps(shingle_sets: minhash.ShingleSets, details: minhash.ShingleSets | None, a: np.ndarray, b: np.ndarray,
                 params: DedupParams) -> Iterator[tuple[slice, Overlap]]:
    """Overlap of the sets of documents ``a[i]`` and ``b[i]`` of ``shingle_sets``,
    ``verify_batch_pairs`` pairs at a time (what bounds the memory of verification): the
    step of the pairs and their overlap. Leads (from ``details``) are compared only where
    they can decide: for the pairs whose smaller lies inside the other (``join_min`` or
    ``containment``) and is short or under the share floor, and for those between
    ``containment_lead`` and ``containment``."""
    progress = Progress(STAGE, "pairs verified", total=len(a))
    for first in range(0, len(a), params.verify_batch_pairs):
        step = slice(first, first + params.verify_batch_pairs)
        overlap = Overlap.of_sets(*shingle_sets.overlap(a[step], b[step]))
        if details is not None:
            small = ((overlap.containment >= min(params.join_min, params.containment)) & (
                ~overlap.sized(params) | (overlap.smaller < params.containment_min_shingles))) | (
                (overlap.containment >= params.containment_lead) & (overlap.containment < params.containment))
            x, y = a[step][small], b[step][small]
            shared, lead_x, lead_y = details.overlap(3 * x + LEAD_SHINGLES, 3 * y + LEAD_SHINGLES)
            smaller = np.minimum(lead_x, lead_y)
            overlap.lead[small] = np.divide(shared, smaller, out=np.zeros(len(x)), where=smaller > 0)
        yield step, overlap
        progress.advance(len(a[step]))
    progress.done()


def verify(shingle_sets: minhash.ShingleSets, a: np.ndarray, b: np.ndarray, params: DedupParams,
           details: minhash.ShingleSets | None = None) -> Overlap:
    """The overlap of all the pairs, in memory (``verify_steps``)."""
    steps = [overlap for _, overlap in verify_steps(shingle_sets, details, a, b, params)]
    return Overlap(*(np.concatenate([getattr(o, name) for o in steps]) if steps else np.zeros(0)
                     for name in ("jaccard", "containment", "smaller", "larger", "lead")))


def verify_on_engine(engine: Engine, shingle_sets: minhash.ShingleSets, details: minhash.ShingleSets,
                     a: np.ndarray, b: np.ndarray, params: DedupParams,
                     parts: minhash.SetParts | None = None) -> Iterator[tuple[slice, Overlap]]:
    """``verify_steps`` with each step a task of `engine`: the task gets the step's pairs and
    where the sets of their documents are in ``parts`` (the sets of ``shingle_sets`` and
    ``details`` as the signing tasks wrote them, ``minhash.SetParts``), reads them there and
    runs ``verify`` on them: no set passes through this process. Without ``parts`` (the
    local engine) the steps are verified in place (no copy of the sets)."""
    if parts is None:
        yield from verify_steps(shingle_sets, details, a, b, params)
        return
    step_starts = range(0, len(a), params.verify_batch_pairs)
    rows = np.array(parts.rows, dtype=np.int64)
    starts = (parts, shingle_sets.ranges(rows)[0], details.ranges(3 * rows)[0])
    tasks = verify_task_items(shingle_sets, details, a, b, params)
    progress = Progress(STAGE, f"pairs verified on {engine.name}", total=len(a))
    for first, overlap in zip(step_starts, engine.map_tasks(partial(_verify_task, params=params), starts, tasks)):
        yield slice(first, first + params.verify_batch_pairs), overlap
        progress.advance(len(overlap.jaccard))
    progress.done()


def verify_task_items(shingle_sets: minhash.ShingleSets, details: minhash.ShingleSets, a: np.ndarray, b: np.ndarray,
                      params: DedupParams) -> Iterator[tuple]:
    """``verify_on_engine``'s task items, a step of ``verify_batch_pairs`` pairs each: where the
    sets of the step's documents lie (``ShingleSets.ranges`` of ``shingle_sets`` and of
    ``details``) and its pairs numbered among those documents."""
    for first in range(0, len(a), params.verify_batch_pairs):
        x, y = a[first:first + params.verify_batch_pairs], b[first:first + params.verify_batch_pairs]
        docs = np.unique(np.concatenate([x, y]))
        detail_docs = (3 * docs[:, None] + np.arange(3)).ravel()  # ``minhash.detail_sets``: three a document
        yield (shingle_sets.ranges(docs), details.ranges(detail_docs), np.searchsorted(docs, x),
               np.searchsorted(docs, y))


def _verify_task(starts: tuple, task: tuple, params: DedupParams) -> Overlap:
    """``verify_on_engine``'s task: ``verify`` over the sets it reads from the parts (``starts``:
    the parts and where each begins among the shingle sets and among the detail sets)."""
    parts, shingle_starts, detail_starts = starts
    (begin, end), (detail_begin, detail_end), a, b = task
    with minhash.ShingleSets() as shingle_sets, minhash.ShingleSets() as details:
        shingle_sets.add_sets((parts.read(parts.SHINGLE_SETS, shingle_starts, begin, end), end - begin))
        details.add_sets((parts.read(parts.DETAIL_SETS, detail_starts, detail_begin, detail_end),
                          detail_end - detail_begin))
        return verify(shingle_sets, a, b, params, details)


def verify_to_files(shingle_sets: minhash.ShingleSets, details: minhash.ShingleSets, codes: np.ndarray,
                    doc: np.ndarray, params: DedupParams, folder: Path, engine: Engine,
                    parts: minhash.SetParts | None = None) -> pl.LazyFrame:
    """Verifies candidate pairs of rank numbers a < b (``codes``: ``minhash.pair_code``;
    ``doc``: their rows in ``shingle_sets``) step by step on `engine` (``verify_on_engine``,
    its tasks reading the sets from ``parts`` when given),
    each step written to a Parquet file in ``folder`` (VERIFIED_SCHEMA): the candidate pairs
    grow faster than the corpus (about N^1.8), so only their codes are held (8 bytes a pair),
    unpacked a million or so at a time, and their verified list is read back lazily."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    chunk = params.verify_batch_pairs * max(1, VERIFY_CHUNK_PAIRS // params.verify_batch_pairs)
    for first in range(0, len(codes), chunk):
        a, b = minhash.pair_parts(codes[first:first + chunk])
        for step, overlap in verify_on_engine(engine, shingle_sets, details, doc[a], doc[b], params, parts):
            files.append(folder / f"{len(files):08d}.parquet")
            pl.DataFrame({
                "a": a[step], "b": b[step], "similarity": overlap.jaccard, "containment": overlap.containment,
                "smaller": overlap.smaller, "larger": overlap.larger, "lead": overlap.lead,
            }, schema=VERIFIED_SCHEMA).write_parquet(files[-1])
    return pl.scan_parquet(files) if files else pl.LazyFrame(schema=VERIFIED_SCHEMA)


@dataclass
class SignedSets:
    """What verifying pairs reads of articles signed already (``signature_table`` with
    ``shingle_sets``, ``figures`` and ``details``): their sets, numbered 0, 1, ... in the
    order of ``ids``, and their figure tables (docs numbered alike)."""

    ids: pl.Series
    shingle_sets: minhash.ShingleSets
    details: minhash.ShingleSets
    figures: list[pl.DataFrame]


@dataclass
class SignedArticles:
    """A table of articles signed once (``signature_table`` with their sets, details and
    figures): add-drop compares a drop with the corpus (``match_against_index``) and then
    deduplicates what the corpus lacks within the drop (``deduplicate``'s ``presigned``)
    without signing its articles again. Made by ``of``; sets added after the articles'
    (``pair_similarity`` adds the corpus's) are not theirs."""

    table: pl.DataFrame  # id, key_hash, signature: ``signature_table``, in input order
    shingle_sets: minhash.ShingleSets
    details: minhash.ShingleSets
    figures: list[pl.DataFrame]  # ``figure_table``s, docs numbered as the table's rows

    @classmethod
    @contextmanager
    def of(cls, articles: pl.LazyFrame, params: DedupParams) -> Iterator["SignedArticles"]:
        with minhash.ShingleSets() as shingle_sets, minhash.ShingleSets() as details:
            figures: list[pl.DataFrame] = []
            table = signature_table(articles, params, "new articles", shingle_sets, figures, details)
            yield cls(table, shingle_sets, details, figures)

    def signature_table(self, articles: pl.LazyFrame, params: DedupParams, what: str,
                        shingle_sets: minhash.ShingleSets, figures: list[pl.DataFrame] | ParquetAppender,
                        details: minhash.ShingleSets, signature_file: minhash.SignatureFile,
                        band_partitions: minhash.BandPartitions) -> pl.DataFrame:
        """What ``signature_table`` gives and adds for ``articles``, some of the signed ones
        in their order (the others filtered out), from what was signed: a document's
        signature, sets and figures do not depend on the others."""
        ids = articles.select("id").collect()["id"]
        rows = np.flatnonzero(self.table["id"].is_in(ids.implode()).to_numpy())
        if not self.table["id"].gather(rows).equals(ids):
            raise ValueError(f"{what}: not the signed articles, or not in their order")
        signature = self.table["signature"].to_numpy()[rows]
        signature_file.add(signature)
        band_partitions.add(0, signature, params.minhash)
        shingle_sets.add_sets(self.shingle_sets.subset(rows))
        details.add_sets(self.details.subset((3 * rows[:, None] + np.arange(3)).ravel()))  # ``minhash.detail_sets``
        renumbered = pl.DataFrame({"doc": rows, "new_doc": np.arange(len(rows))},
                                  schema={"doc": pl.UInt32, "new_doc": pl.UInt32})
        signed_figures = pl.concat(self.figures) if self.figures else pl.DataFrame(schema=FIGURE_SCHEMA)
        figures.append(signed_figures.join(renumbered, on="doc", maintain_order="left").select(
            doc="new_doc", context="context", value="value"))
        log(STAGE, f"{what}: {len(rows):,} signed already")
        return self.table[rows].select("id", "key_hash")


def pair_similarity(pairs: pl.DataFrame, texts: pl.LazyFrame | None, params: DedupParams,
                    corpus: CorpusIndex | None = None, signed: SignedSets | None = None) -> pl.DataFrame:
    """Real similarity of the shingle sets of each pair (columns id_a, id_b), and whether
    the pair is a duplicate by the stage's rule (Jaccard or containment, figures and names agreeing).

    ``texts`` (id, text; ids unique) must hold both sides, but for the articles of
    ``corpus``, whose stored sets are read instead (``CorpusIndex.stored_sets``), and those
    of ``signed``, whose sets are there (they are added to it; ``texts`` None when those two
    hold every article of the pairs). The other articles of the pairs are read once, in
    batches, into ``minhash.ShingleSets`` (a temporary file), so no shingle set is held in
    memory per pair. Returns id_a, id_b, similarity (Jaccard), containment,
    figures_differ, names_differ, duplicate, in the order of ``pairs``. As in ``deduplicate``,
    figures are compared only for the pairs similar enough to be duplicates (``Overlap.similar``)
    and names only for those of them whose figures agree: figures_differ is null for the
    others, names_differ also where the figures differ (neither could change their decision)."""
    pairs = pairs.select("id_a", "id_b")
    if pairs.is_empty():
        return pairs.with_columns(similarity=pl.lit(None, dtype=pl.Float64), containment=pl.lit(None, dtype=pl.Float64),
                                  figures_differ=pl.lit(None, dtype=pl.Boolean), names_differ=pl.lit(None, dtype=pl.Boolean),
                                  duplicate=pl.lit(None, dtype=pl.Boolean))
    wanted = pl.concat([pairs["id_a"], pairs["id_b"]]).unique()
    with ExitStack() as opened:
        if signed is None:
            signed = SignedSets(pl.Series([], dtype=pl.String), opened.enter_context(minhash.ShingleSets()),
                                opened.enter_context(minhash.ShingleSets()), [])
        shingle_sets, details, figure_parts = signed.shingle_sets, signed.details, signed.figures
        numbered = [signed.ids]
        unread = wanted.filter(~wanted.is_in(signed.ids.implode()))
        if texts is not None and unread.len():
            total = texts.select(pl.len()).collect().item()
            progress = Progress(STAGE, "articles read to verify pairs", total=total)
            for batch in batches(texts.select("id", "text"), params.batch_size):
                batch = signing_input(batch.lazy().filter(pl.col("id").is_in(unread.implode()))).collect(
                    engine="streaming")
                shingles = minhash.shingle_hashes(batch["words"], params.minhash.ngram)
                shingle_sets.add(shingles)
                details.add_sets(minhash.detail_sets(shingles, params.minhash.lead_shingles))
                figure_parts.append(figure_table(batch["figures"], first_doc=signed.ids.len() + progress.count))
                numbered.append(batch["id"])
                progress.advance(batch.height)
            progress.done(f"{pairs.height:,} pairs")
        if corpus is not None:
            read = pl.concat(numbered)
            numbered.append(corpus.stored_sets(wanted.filter(~wanted.is_in(read.implode())), shingle_sets, details,
                                               figure_parts, read.len(), params.batch_size)["id"])
        number = pl.DataFrame({"id": pl.concat(numbered)})
        number = number.with_row_index("doc")
        missing = wanted.filter(~wanted.is_in(number["id"].implode()))
        if missing.len():
            raise ValueError(f"no text for {missing.len()} article(s) of candidate pairs, e.g. {missing[0]}")
        docs = pairs.join(number.rename({"id": "id_a", "doc": "a"}), on="id_a", how="left", maintain_order="left").join(
            number.rename({"id": "id_b", "doc": "b"}), on="id_b", how="left", maintain_order="left"
        )
        a, b = docs["a"].to_numpy(), docs["b"].to_numpy()
        overlap = verify(shingle_sets, a, b, params, details)
        similar = overlap.similar(params)
        figures = pl.concat(figure_parts)
        differ, other_names = facts_differ(similar, lambda pick: figures_differ(figures, a[pick], b[pick], params),
                                           lambda pick: names_differ(details, a[pick], b[pick], params))
        check = similar & ~differ
    return pairs.with_columns(
        similarity=pl.Series(overlap.jaccard, dtype=pl.Float64), containment=pl.Series(overlap.containment, dtype=pl.Float64),
        figures_differ=pl.Series(differ).set(pl.Series(~similar), None),
        names_differ=pl.Series(other_names).set(pl.Series(~check), None),
        duplicate=pl.Series(check & ~other_names),
    )


# ------------------------------------------------------------------ clustering


@dataclass
class DedupResult:
    assignment: pl.DataFrame  # id, cluster_id, duplicate_of, similarity, kind (nulls on kept rows)
    index: pl.LazyFrame  # ``index_table`` of the kept articles, by id (computed a batch at a time as it is read)
    ranked_ids: pl.Series  # the article ids in the order of the kept-article rule
    # verified candidate pairs (VERIFIED_SCHEMA; a, b: positions in ranked_ids), read from a
    # file in ``scratch``, which lives as long as this result
    pairs: pl.LazyFrame
    review: pl.DataFrame  # REVIEW_SCHEMA without titles/sources
    scratch: tempfile.TemporaryDirectory = field(repr=False)

    def pair_ids(self) -> pl.DataFrame:
        """The verified candidate pairs by id: id_a (the better ranked), id_b, similarity."""
        pairs = self.pairs.select("a", "b", "similarity").collect()
        return pl.DataFrame({
            "id_a": self.ranked_ids.gather(pairs["a"]), "id_b": self.ranked_ids.gather(pairs["b"]),
            "similarity": pairs["similarity"],
        })


def rank_order(articles: pl.LazyFrame) -> pl.LazyFrame:
    """The kept-article rule as a sort: longest text, earliest date, smallest id first."""
    return articles.sort(
        ["n_chars", "published_date", "id"], descending=[True, False, False], nulls_last=[True, True, True]
    )


def star_centres(n_docs: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The kept article of every article, given duplicate edges a-b between rank numbers.

    Greedy in rank order: the best-ranked article not yet taken is kept, and takes every
    not-yet-taken article it is itself a duplicate of. So each removed article is within
    the threshold of the very article it is removed for. (Connected components would chain
    templated news -- execution notices, congratulation cables, "aid plane no. N lands" --
    into clusters of dozens of different events: on SaudiNewsNet 571 articles ended up
    removed for an article they share under 50 % of their shingles with, down to 10 %.)"""
    centre = np.arange(n_docs)
    if len(a) == 0:
        return centre
    ends = np.concatenate([a, b])
    others = np.concatenate([b, a])
    order = np.lexsort((others, ends))
    ends, others = ends[order], others[order]
    starts = np.searchsorted(ends, np.arange(n_docs + 1))
    taken = np.zeros(n_docs, dtype=bool)
    for doc in np.unique(ends).tolist():
        if taken[doc]:
            continue
        taken[doc] = True
        neighbours = others[starts[doc]:starts[doc + 1]]
        free = neighbours[~taken[neighbours]]
        centre[free] = doc
        taken[free] = True
    return centre


def roundup_edges(n_docs: int, a: np.ndarray, b: np.ndarray, is_edge: np.ndarray, inside_only: np.ndarray,
                  apart: Any, rounds: int = 3) -> np.ndarray:
    """The duplicate edges a-b (rank numbers, a < b) to take out because ``a`` is a roundup:
    a kept article that would take two or more articles that lie apart from one another
    (``apart(x, y) -> bool``: under ``join_min`` of the smaller inside the other), one of
    them at least by containment alone (``inside_only``: under the Jaccard threshold). Each
    is a duplicate of a part of it, not of one another: a roundup that opens with one story
    and quotes another further down would put both in one cluster, and so would a reprint
    that quotes the opening of another story (beside that reprint's own base, which the
    quoted story lies apart from). Teasers and reprints of one article inside a longer one
    overlap one another and stay. The inside-only edges of a roundup go
    (their articles stay free for another cluster, and the pairs go to review as
    ``left_by_clustering``); the star is drawn again, up to ``rounds`` times, since a
    freed article may change who takes whom."""
    dropped = np.zeros(len(a), dtype=bool)
    for _ in range(rounds):
        edge = is_edge & ~dropped
        centre = star_centres(n_docs, a[edge], b[edge])
        taken = edge & (centre[b] == a)
        members = pl.DataFrame({"kept": a[taken], "member": b[taken], "inside_only": inside_only[taken]})
        pairs = members.join(members, on="kept", suffix="_2").filter(
            (pl.col("member") < pl.col("member_2")) & (pl.col("inside_only") | pl.col("inside_only_2")))
        far = pairs.filter(pl.Series(apart(pairs["member"].to_numpy(), pairs["member_2"].to_numpy()), dtype=pl.Boolean))
        roundups = edge & inside_only & np.isin(a, far["kept"].unique().to_numpy())
        if not roundups.any():
            break
        dropped |= roundups
    return dropped


def conflicting_edges(a: np.ndarray, b: np.ndarray, is_edge: np.ndarray, conflict: np.ndarray,
                      similarity: np.ndarray) -> np.ndarray:
    """The duplicate edges a-b (rank numbers, a < b) to take out because they join two
    articles that state different facts (``conflict``: a similar pair with other figures or
    names): an article that duplicates both is a duplicate of the closer one only (higher
    ``similarity``; on a tie, the better ranked). A reprint of a templated report that lost
    the figure telling it from the report of another week (a date cut with a sentence)
    otherwise goes with whichever of the two is longer."""
    index = np.flatnonzero(is_edge)
    edges = pl.DataFrame({
        "x": np.concatenate([a[index], b[index]]), "y": np.concatenate([b[index], a[index]]),
        "edge": np.concatenate([index, index]), "similarity": np.concatenate([similarity[index]] * 2),
    })
    pairs = pl.DataFrame({"p": a[conflict], "q": b[conflict]})
    # x duplicates p and q, which differ: the edge to the farther one goes
    both = (
        edges.join(pairs, left_on="y", right_on="p").rename({"y": "p"})
        .join(edges, left_on=["x", "q"], right_on=["x", "y"], suffix="_q")
    )
    farther = np.where(
        (both["similarity"] < both["similarity_q"]).to_numpy()
        | ((both["similarity"] == both["similarity_q"]) & (both["p"] > both["q"])).to_numpy(),
        both["edge"].to_numpy(), both["edge_q"].to_numpy())
    dropped = np.zeros(len(a), dtype=bool)
    dropped[farther] = True
    return dropped


def join_clusters(centre: np.ndarray, a: np.ndarray, b: np.ndarray,
                  close: Any, agree: Any) -> tuple[np.ndarray, pl.DataFrame]:
    """Star clusters (``centre``, from ``star_centres``) after joins: a cluster with an
    article that duplicates a member of a better cluster (edge a-b: the caller passes the
    edges that may join, see ``deduplicate``) moves there with all its members
    when every one of them is close enough to that cluster's kept article
    (``close(kept, members) -> (bool, jaccard)``, checked on the real sets) and none
    states other figures than a member there (``agree(x, y) -> bool``). A teaser of an
    article that a longer reprint took thus joins the reprint; a templated report of
    another week does not. No chains: each check is against the kept article itself, and
    a cluster that took in another never moves.
    Returns the new centres and the moved articles: kept_rank, rep, similarity."""
    ends, others = np.concatenate([a, b]), np.concatenate([b, a])
    wants = centre[others] < centre[ends]
    options = pl.DataFrame({"kept": centre[ends[wants]], "target": centre[others[wants]]}).unique().sort("kept", "target")
    moved = pl.DataFrame(schema={"kept_rank": pl.Int64, "rep": pl.Int64, "similarity": pl.Float64})
    if options.is_empty():
        return centre, moved
    members = pl.DataFrame({"member": np.arange(len(centre)), "kept": centre}).join(options.select("kept").unique(), on="kept")
    checks = options.join(members, on="kept").sort("kept", "target", "member")
    ok, similarity = close(checks["target"].to_numpy(), checks["member"].to_numpy())
    checks = checks.with_columns(ok=pl.Series(ok), similarity=pl.Series(similarity, dtype=pl.Float64))
    # per cluster, the targets all its members are close to, the closest to its kept article first
    fits = (
        checks.group_by("kept", "target").agg(pl.col("ok").all(), to_kept=pl.col("similarity").filter(pl.col("member") == pl.col("kept")).first())
        .filter("ok").sort(["kept", "to_kept", "target"], descending=[False, True, False])
    )
    # Rounds: each target takes at most one cluster a round, checked against the members it
    # has by then, so two clusters that joined one target agree with each other too.
    cluster = centre.copy()
    left, took = set(), set()
    joins: dict[int, int] = {}
    while not fits.is_empty():
        picks = fits.unique("kept", keep="first", maintain_order=True).unique("target", keep="first", maintain_order=True)
        across = (
            picks.select("kept", "target")
            .join(pl.DataFrame({"member": np.arange(len(cluster)), "kept": cluster}), on="kept")
            .join(pl.DataFrame({"other": np.arange(len(cluster)), "target": cluster}), on="target")
        )
        across = across.with_columns(agree=pl.Series(agree(across["member"].to_numpy(), across["other"].to_numpy()), dtype=pl.Boolean))
        accepted = picks.join(across.filter(~pl.col("agree")).select("kept", "target").unique(), on=["kept", "target"], how="anti")
        for kept, target in accepted.select("kept", "target").iter_rows():
            if target in left or kept in took:  # one that moves (or takes) in this round already
                continue
            joins[kept] = target
            left.add(kept)
            took.add(target)
            cluster[cluster == kept] = target
        fits = fits.join(picks.select("kept", "target"), on=["kept", "target"], how="anti", maintain_order="left").filter(
            ~pl.col("kept").is_in(list(left | took)) & ~pl.col("target").is_in(list(left))
        )
    if not joins:
        return centre, moved
    chosen = pl.DataFrame({"kept": list(joins), "target": list(joins.values())}, schema={"kept": pl.Int64, "target": pl.Int64})
    moved = checks.join(chosen, on=["kept", "target"]).select(kept_rank="target", rep="member", similarity="similarity")
    centre = centre.copy()
    centre[moved["rep"].to_numpy()] = moved["kept_rank"].to_numpy()
    return centre, moved


REVIEW_REASONS = ("figures_differ", "names_differ", "left_by_clustering", "containment_only", "below_threshold")


def deduplicate(articles: pl.LazyFrame, params: DedupParams, corpus: CorpusIndex | None = None,
                store: Path | None = None, presigned: SignedArticles | None = None) -> DedupResult:
    """The dedup decision for a table of articles (ARTICLE_SCHEMA), as a function of its rows,
    and with ``corpus``, of the kept articles of earlier drops (``CorpusIndex``).

    Those are fixed: ranked before every new article, never removed, never paired with each
    other. A new article that duplicates one of them is removed for it (the best ranked one
    it duplicates), the others are clustered among themselves as without a corpus. Only the
    corpus articles that are candidates of a new one (or its exact copy) are read back: their
    stored sets, not their texts (``CorpusIndex.stored_sets``). With ``store`` (a drop's
    folder), the sets and figures of every input article are kept there (SETS_FILE ...), for
    the drops after it; the index's ``row`` points into them. With ``presigned`` (articles
    signed already, ``articles`` some of them), they are not signed again.

    What is held for the whole input: ids and key hashes, the rank of each article, the
    candidate pairs (8 bytes each) and the assignment; shingles live one batch at a time,
    their sets, the signatures and the figures on disk (``minhash.ShingleSets``,
    ``minhash.SignatureFile``, a Parquet file) until the pairs are verified, the clusters
    joined and the index written."""
    ranked = rank_order(articles.select("id", "n_chars", "published_date")).select("id").collect(engine="streaming")
    engine = open_engine({}, params.engine)
    scratch = tempfile.TemporaryDirectory(prefix="dedup-verified-pairs-")
    signatures = minhash.SignatureFile(params.minhash.width)  # rows as in `signed`
    # The signing tasks write the LSH band keys to partitions the band tasks read (on a
    # cluster, storage every worker reaches: ``engine.scratch``).
    with minhash.ShingleSets(None if store is None else store / SHINGLE_SETS_FILE) as shingle_sets, \
            minhash.ShingleSets(None if store is None else store / DETAIL_SETS_FILE) as details, \
            shared_folder(params.scratch) as shared:
        partitions = minhash.BandPartitions(shared)
        # On a cluster the signing tasks write the sets and signatures there too, and the
        # verifying tasks read them there (the local engine's tasks run in this process:
        # they hand them over in memory).
        parts = None if engine.name == "local" else minhash.SetParts(shared)
        # The figures go to a file, read back for the pairs of a step (``other_figures``).
        with ParquetAppender(Path(scratch.name) / "figures.parquet", FIGURE_SCHEMA) as figure_rows:
            if presigned is None:
                signed = signature_table(articles, params, "articles", shingle_sets, figure_rows, details, signatures,
                                         partitions, parts)
            else:
                signed = presigned.signature_table(articles, params, "articles", shingle_sets, figure_rows, details,
                                                   signatures, partitions)
            n_own = signed.height
            partitions = replace(partitions, rows=n_own)
            if parts is not None and presigned is not None:  # signed in this process: one part of them
                shingle_sets.write_from(0, parts.path(parts.SHINGLE_SETS, 0))
                details.write_from(0, parts.path(parts.DETAIL_SETS, 0))
                parts = replace(parts, rows=(0,))
            elif parts is not None:  # a part a signed batch (``io.batches``' slices)
                parts = replace(parts, rows=tuple(range(0, max(n_own, 1), params.batch_size)))
                log(STAGE, f"the signing tasks wrote the sets and signatures of {n_own:,} articles to {shared} "
                           f"({len(parts.rows)} parts); no set or signature was sent to this process")
            # Fixed articles of the corpus: the candidates of the new distinct texts, and exact copies.
            cross = pl.DataFrame(schema={"id_a": pl.String, "key_hash": pl.String})
            if corpus is not None and signed.height:
                distinct = signed.select("key_hash").with_row_index("row").unique("key_hash", keep="first",
                                                                                   maintain_order=True)
                distinct_rows = distinct["row"].to_numpy()
                near = corpus.candidates(lambda band: partitions.keys(band, distinct_rows), params, engine.map_tasks)
                cross = pl.concat([
                    corpus.exact(distinct["key_hash"]),
                    near.select("id_a", key_hash=distinct["key_hash"].gather(near["b"])),
                ]).unique(maintain_order=True)
            n_fixed = 0
            if cross.height:  # their sets after the drop's (no signatures: they are not banded again)
                fixed = corpus.stored_sets(cross["id_a"].unique(), shingle_sets, details, figure_rows, n_own,
                                           params.batch_size)
                n_fixed = fixed.height
                if parts is not None and n_fixed:  # their sets as one more part, for the verifying tasks
                    shingle_sets.write_from(n_own, parts.path(parts.SHINGLE_SETS, n_own))
                    details.write_from(3 * n_own, parts.path(parts.DETAIL_SETS, n_own))
                    parts = replace(parts, rows=(*parts.rows, n_own))
                signed = pl.concat([signed, fixed.select("id", "key_hash")])
                ranked = pl.concat([rank_order(fixed.lazy()).select("id").collect(), ranked])
        figures = scan_table(Path(scratch.name) / "figures.parquet")
        if signed["id"].n_unique() != signed.height:
            raise ValueError("dedup: article ids are not unique")
        # Rank r is the r-th preferred article of the corpus; doc[r] its row in `signed`.
        doc = ranked.join(signed.select("id").with_row_index("doc"), on="id", maintain_order="left")["doc"]
        doc = doc.to_numpy().astype(np.int64)
        del ranked
        ids, key_hash = signed["id"].gather(doc), signed["key_hash"].gather(doc)
        # rep[r]: the best-ranked article with the same match key (exact copies are not compared)
        rank = np.arange(len(doc))
        rep = pl.DataFrame({"key_hash": key_hash, "rank": rank}).select(pl.col("rank").min().over("key_hash"))
        rep = rep.to_series().to_numpy()
        reps = np.flatnonzero((rep == rank) & (rank >= n_fixed))

        # Candidate pairs of rank numbers, as sorted codes (``minhash.pair_code``; ``reps``
        # increases, so positions in it map to ranks in order)
        a, b = minhash.pair_parts(minhash.pair_codes(range(params.minhash.all_bands), params.max_bucket_size,
                                                     engine.map_tasks, partitions, doc[reps]))
        codes = minhash.pair_code(reps[a], reps[b])
        del a, b
        # a corpus article (rank < n_fixed) and the new distinct text of that key
        fixed_rank = pl.DataFrame({"id_a": ids[:n_fixed], "a": rank[:n_fixed]})
        text_rank = pl.DataFrame({"key_hash": key_hash, "b": rep}).filter(pl.col("b") >= n_fixed).unique("key_hash")
        crossing = cross.join(fixed_rank, on="id_a").join(text_rank, on="key_hash").select("a", "b")
        if crossing.height:
            codes = np.union1d(codes, minhash.pair_code(crossing["a"].to_numpy(), crossing["b"].to_numpy()))
        log(STAGE, f"{len(reps):,} distinct texts, {len(codes):,} candidate pairs from "
                   f"{params.minhash.bands} bands x {params.minhash.rows} rows"
                   + (f" ({crossing.height:,} with {n_fixed:,} articles of earlier drops)" if corpus is not None else "")
                   + f"; bands grouped and pairs verified on the {engine.name} engine (band keys in {shared})")
        verified = verify_to_files(shingle_sets, details, codes, doc, params, Path(scratch.name) / "verified_pairs",
                                   engine, parts)
        del codes, crossing
        # Only pairs that may be duplicates or listed for review are read back.
        relevant = verified.filter(
            (pl.col("similarity") >= params.review_min) | (pl.col("containment") >= params.containment_lead)
        ).collect()
        a, b, overlap = relevant["a"].to_numpy(), relevant["b"].to_numpy(), Overlap.of_frame(relevant)
        similar = overlap.similar(params)

        def other_figures(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            """``figures_differ`` of the articles of ranks x[i], y[i], with the figures of a step of pairs read."""
            found = np.zeros(len(x), dtype=bool)
            for first in range(0, len(x), FIGURES_STEP_PAIRS):
                step_x, step_y = doc[x[first:first + FIGURES_STEP_PAIRS]], doc[y[first:first + FIGURES_STEP_PAIRS]]
                docs = pl.Series(np.unique(np.concatenate([step_x, step_y])), dtype=pl.UInt32)
                found[first:first + FIGURES_STEP_PAIRS] = figures_differ(
                    figures.filter(pl.col("doc").is_in(docs.implode())).collect(), step_x, step_y, params)
            return found

        differ, other_names = facts_differ(similar, lambda pick: other_figures(a[pick], b[pick]),
                                           lambda pick: names_differ(details, doc[a[pick]], doc[b[pick]], params))
        is_edge = similar & ~differ & ~other_names

        def agree(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            """Neither other figures nor other names."""
            return ~other_figures(x, y) & ~names_differ(details, doc[x], doc[y], params)

        def close(kept: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            near = verify(shingle_sets, doc[kept], doc[member], params, details)
            return near.inside(params.join_min, params) & agree(kept, member), near.jaccard

        # Clusters over distinct texts; exact copies follow their representative. A corpus
        # article keeps its decision: it takes new duplicates, but never joins another cluster.
        def apart(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return verify(shingle_sets, doc[x], doc[y], params).containment < params.join_min

        kept_apart = is_edge & ~conflicting_edges(a, b, is_edge, similar & (differ | other_names), overlap.jaccard)
        clustered = kept_apart & ~roundup_edges(len(doc), a, b, kept_apart, overlap.jaccard < params.threshold, apart)
        edge_a, edge_b = a[clustered], b[clustered]
        movable = edge_a >= n_fixed
        # A cluster joins through its kept article's edges, or through a member that lies
        # inside an article of the other cluster (or holds one): a teaser kept with a longer
        # teaser of its base, when a reprint took the base. Not through an edge between two
        # members by Jaccard alone: two teasers of templated reports share the template's
        # opening (the "aid plane no. N" reports of different planes).
        star = star_centres(len(doc), edge_a, edge_b)
        kept_or_inside = (star[edge_a] == edge_a) | (star[edge_b] == edge_b) | (
            overlap.containment[clustered] >= params.containment)
        # (the cluster that moves is the worse ranked one: never an earlier drop's)
        through = movable & kept_or_inside & (np.maximum(star[edge_a], star[edge_b]) >= n_fixed)
        centre, joined = join_clusters(star, edge_a[through], edge_b[through], close, agree)
        if store is not None:  # the drop's own sets (the corpus's were added after them)
            sizes = [shingle_sets.keep(n_own), *details.keep(3 * n_own).reshape(-1, 3).T]
            write_table(pl.DataFrame(dict(zip(SET_COLUMNS, sizes)), schema=dict.fromkeys(SET_COLUMNS, pl.UInt32)),
                        store / SETS_FILE)
            write_table(figures.filter(pl.col("doc") < n_own).rename({"doc": "row"}), store / FIGURES_FILE)
    kept_rank = centre[rep]
    similarity = overlap.jaccard
    table = pl.DataFrame({"rank": rank, "id": ids, "key_hash": key_hash, "rep": rep, "kept_rank": kept_rank})
    table = table.with_columns(
        kept_id=pl.col("id").gather(pl.col("kept_rank")), kept_key=pl.col("key_hash").gather(pl.col("kept_rank")),
    ).slice(n_fixed)  # the corpus articles are no part of the assignment
    # A removed text's similarity to its kept text: an edge the star was built from, or the
    # check that let its cluster join.
    to_kept = pl.concat([
        relevant.filter(pl.Series(is_edge)).select(kept_rank="a", rep="b", similarity="similarity"), joined,
    ]).unique(["kept_rank", "rep"], keep="first", maintain_order=True)
    removed = table.filter(pl.col("rank") != pl.col("kept_rank")).join(
        to_kept, on=["kept_rank", "rep"], how="left", maintain_order="left"
    )
    assignment = pl.concat([
        table.filter(pl.col("rank") == pl.col("kept_rank")).select(
            "id", cluster_id=pl.col("id"), duplicate_of=pl.lit(None, pl.String),
            similarity=pl.lit(None, pl.Float64), kind=pl.lit(None, pl.String),
        ),
        removed.select(
            "id", cluster_id=pl.col("kept_id"), duplicate_of=pl.col("kept_id"),
            similarity=pl.when(pl.col("key_hash") == pl.col("kept_key")).then(1.0).otherwise(pl.col("similarity")),
            kind=pl.when(pl.col("key_hash") == pl.col("kept_key")).then(pl.lit("exact")).otherwise(pl.lit("near")),
        ),
    ])
    # For review, each pair with why it is there: similar but with different figures;
    # duplicates the star clustering left in two clusters (a removed article close to
    # another cluster too); a small article inside a bigger one; the band below the threshold.
    same_cluster = kept_rank[a] == kept_rank[b]
    contained_only = overlap.inside(params.containment, params) & ~is_edge
    below = (similarity >= params.review_min) & ~is_edge
    reason = np.select(
        [differ, other_names, is_edge & ~same_cluster, contained_only, below], list(REVIEW_REASONS), default=""
    )
    listed = reason != ""
    review = pl.DataFrame({
        "id_a": ids.gather(a[listed]), "id_b": ids.gather(b[listed]), "similarity": similarity[listed],
        "containment": overlap.containment[listed], "same_cluster": same_cluster[listed], "reason": reason[listed],
    }).sort(["similarity", "id_a", "id_b"], descending=[True, False, False])
    kept = np.flatnonzero((kept_rank == rank) & (rank >= n_fixed))
    rows = doc[kept][ids.gather(kept).arg_sort().to_numpy()]  # sorted by id
    empty = index_table(signed.head(0), np.zeros((0, params.minhash.width), np.uint32), rows[:0], params.minhash)
    index = lazy_frames(lambda: (index_table(signed[rows[first:first + params.batch_size]],
                                             signatures.read(rows[first:first + params.batch_size]),
                                             rows[first:first + params.batch_size], params.minhash)
                                 for first in range(0, max(len(rows), 1), params.batch_size)), empty.schema)
    return DedupResult(assignment, index, ids, verified, review, scratch)


# ------------------------------------------------------------------ index


def band_column(band: int) -> str:
    return f"band_{band:03d}"


def index_table(signed: pl.DataFrame, signature: np.ndarray, rows: np.ndarray,
                params: minhash.MinHashParams) -> pl.DataFrame:
    """id, key_hash (of ``signed``) and the key of each LSH band (``band_000``, ...) of their
    ``signature`` rows, and ``row``, where their sets are in the drop's stored ones (``rows``):
    what later drops are looked up in, a band (one column) at a time."""
    return signed.select("id", "key_hash").with_columns(
        pl.Series(band_column(band), minhash.band_keys(signature, params, band), dtype=pl.UInt64)
        for band in range(params.all_bands)
    ).with_columns(row=pl.Series(rows, dtype=pl.UInt32))


@dataclass(frozen=True)
class CorpusIndex:
    """The kept articles of earlier drops, in the folders the stage wrote them to: KEPT_FILE
    (the articles) and INDEX_FILE (``index_table`` of them). A lookup reads one band's keys
    of the corpus at a time (8 bytes an article) and the texts of the articles it finds
    only: memory does not grow with the corpus's signatures."""

    folders: tuple[Path, ...]

    def scan(self, table: str) -> pl.LazyFrame:
        """A table of every drop's folder (KEPT_FILE, DUPLICATES_FILE, INDEX_FILE...), in drop order."""
        return pl.concat([scan_table(folder / table) for folder in self.folders], how="vertical")

    def exact(self, key_hashes: pl.Series) -> pl.DataFrame:
        """id_a, key_hash: the corpus articles with one of these match-key hashes."""
        return self.scan(INDEX_FILE).select(id_a="id", key_hash="key_hash").join(
            pl.LazyFrame({"key_hash": key_hashes}), on="key_hash", how="semi").collect(engine="streaming")

    def candidates(self, band_keys: Any, params: DedupParams, map_tasks: minhash.MapTasks) -> pl.DataFrame:
        """id_a, b: corpus articles sharing a band key with new document ``b`` (``band_keys(band)``:
        the keys of the new documents, ``minhash.band_keys``), as ``minhash.pair_codes`` with
        the corpus ranked first: a bucket of more than ``max_bucket_size`` (corpus and new)
        pairs its new members with its first corpus article only. One task a band
        (``band_candidates``, through an engine's ``map_tasks``), its keys read as it starts."""
        found = pl.DataFrame(schema={"a": pl.UInt32, "b": pl.Int64})
        resolved = CorpusIndex(tuple(Path(folder).resolve() for folder in self.folders))  # for the workers
        work = partial(resolved.band_candidates, params=params)
        bands = ((band, band_keys(band)) for band in range(params.minhash.all_bands))
        for pairs in map_tasks(work, None, bands):
            found = pl.concat([found, pairs]).unique()
        ids = self.scan(INDEX_FILE).select("id").with_row_index("a").join(found.lazy().select("a"), on="a", how="semi")
        return found.join(ids.collect(engine="streaming"), on="a").select(id_a="id", b="b").sort("id_a", "b")

    def band_candidates(self, _: None, band_keys: tuple[int, np.ndarray], params: DedupParams) -> pl.DataFrame:
        """a (row of the corpus index), b (new document): the pairs of ``candidates`` that
        share the key of one band; ``band_keys`` is (the band, the keys of the new documents)."""
        band, keys = band_keys
        new = pl.DataFrame({"key": keys, "b": np.arange(len(keys), dtype=np.int64)})
        old = self.scan(INDEX_FILE).select(key=pl.col(band_column(band))).with_row_index("a").join(
            new.lazy().select("key"), on="key", how="semi").collect(engine="streaming")
        sizes = old.group_by("key").agg(first=pl.col("a").min(), size=pl.len()).join(new.group_by("key").len(), on="key")
        capped = sizes.filter(pl.col("size") + pl.col("len") > params.max_bucket_size).select("key", "first")
        pairs = old.join(new, on="key").join(capped, on="key", how="left").filter(
            pl.col("first").is_null() | (pl.col("a") == pl.col("first")))
        return pairs.select("a", "b")

    def articles(self, ids: pl.Series) -> pl.LazyFrame:
        """The kept corpus articles with these ids, in drop and file order."""
        return self.scan(KEPT_FILE).filter(pl.col("id").is_in(ids.implode()))

    def stored_sets(self, ids: pl.Series, shingle_sets: minhash.ShingleSets, details: minhash.ShingleSets,
                    figures: list[pl.DataFrame] | ParquetAppender, first_doc: int, batch_size: int) -> pl.DataFrame:
        """id, key_hash, n_chars, published_date of the corpus articles ``ids``, whose stored
        sets (``deduplicate``'s ``store``) are added to ``shingle_sets`` and ``details`` in
        the frame's order, ``batch_size`` at a time, and their figures appended to ``figures``
        (docs numbered on from ``first_doc``): what verifying pairs with them takes, without
        reading or signing their texts again."""
        found: list[pl.DataFrame] = []
        for folder in self.folders:
            rows = scan_table(folder / INDEX_FILE).select("id", "key_hash", "row").filter(
                pl.col("id").is_in(ids.implode())).collect().sort("row")
            if rows.is_empty():
                continue
            sizes = pl.read_parquet(folder / SETS_FILE)
            with minhash.ShingleSets.stored(folder / SHINGLE_SETS_FILE, sizes[SET_COLUMNS[0]].to_numpy()) as stored, \
                    minhash.ShingleSets.stored(folder / DETAIL_SETS_FILE,
                                               sizes.select(SET_COLUMNS[1:]).to_numpy().ravel()) as stored_details:
                for first in range(0, rows.height, batch_size):
                    row = rows["row"][first:first + batch_size].to_numpy().astype(np.int64)
                    shingle_sets.add_sets(stored.subset(row))
                    details.add_sets(stored_details.subset((3 * row[:, None] + np.arange(3)).ravel()))
            docs = rows.select("row", doc=pl.int_range(first_doc, first_doc + rows.height, dtype=pl.UInt32))
            figures.append(scan_table(folder / FIGURES_FILE).join(docs.lazy(), on="row").select(
                "doc", "context", "value").collect())
            about = scan_table(folder / KEPT_FILE).select("id", "n_chars", "published_date").join(
                rows.lazy().select("id"), on="id", how="semi").collect()
            found.append(rows.select("id", "key_hash").join(about, on="id", how="left", maintain_order="left"))
            first_doc += rows.height
        return pl.concat(found) if found else pl.DataFrame(schema={
            "id": pl.String, "key_hash": pl.String, "n_chars": pl.Int64, "published_date": pl.Date})


def match_against_index(articles: pl.LazyFrame, index_dir: Path, params: dict[str, Any],
                        signed: SignedArticles | None = None) -> pl.DataFrame:
    """Which of `articles` are already in the corpus indexed at `index_dir`.

    One row per input article that is an exact or near duplicate of a kept corpus article
    (by the stage's rule: Jaccard or containment, figures agreeing): id, duplicate_of (the
    corpus article), similarity (Jaccard, 1.0 for exact), kind. The
    corpus is not recomputed: only the new articles are signed (or ``signed`` holds them:
    ``SignedArticles`` of `articles`), candidates come from the stored band keys
    (``CorpusIndex``), and only candidate corpus articles are read back.
    """
    dedup = DedupParams.from_params(params)
    index_dir = Path(index_dir)
    meta = read_json(index_dir / INDEX_META)
    if meta["minhash"] != dedup.minhash.as_dict():
        raise ValueError(
            f"{index_dir} was built with {meta['minhash']}, params.yaml says {dedup.minhash.as_dict()}: "
            "re-run `corpus dedup` to rebuild the index"
        )
    articles_dir = (index_dir / meta["articles"]).resolve()
    corpus = CorpusIndex(tuple(partition(articles_dir, drop) for drop in meta["drops"]))
    if not corpus.folders:
        return pl.DataFrame(schema=MATCH_SCHEMA)
    # The new articles' sets and figures are kept as they are signed: verifying their
    # candidate pairs does not read and shingle their texts again.
    with ExitStack() as opened:
        if signed is None:
            signed = opened.enter_context(SignedArticles.of(articles, dedup))
        new = signed.table
        if new.is_empty():
            return pl.DataFrame(schema=MATCH_SCHEMA)

        exact = new.join(corpus.exact(new["key_hash"]).rename({"id_a": "duplicate_of"}), on="key_hash").select(
            "id", "duplicate_of", similarity=pl.lit(1.0), kind=pl.lit("exact")
        )
        rest = new.filter(~pl.col("id").is_in(exact["id"].implode()))
        # New articles are verified under a prefixed id: a drop may reuse an id of the corpus.
        signature = rest["signature"].to_numpy()
        found = corpus.candidates(lambda band: minhash.band_keys(signature, dedup.minhash, band), dedup,
                                  open_engine({}, dedup.engine).map_tasks)
        candidates = found.select("id_a", id_b=NEW_PREFIX + rest["id"].gather(found["b"]))
        checked = pair_similarity(candidates, None, dedup, corpus,
                                  SignedSets(NEW_PREFIX + new["id"], signed.shingle_sets, signed.details,
                                             list(signed.figures)))
    near = (
        checked
        .filter("duplicate")
        .sort(["id_b", "similarity", "id_a"], descending=[False, True, False])
        .unique("id_b", keep="first", maintain_order=True)
        .select(id=pl.col("id_b").str.strip_prefix(NEW_PREFIX), duplicate_of="id_a", similarity="similarity",
                kind=pl.lit("near"))
    )
    order = new.select("id").with_row_index("row")
    return (
        pl.concat([exact, near]).join(order, on="id").sort("row").drop("row")
        .pipe(conform, MATCH_SCHEMA)
    )


# ------------------------------------------------------------------ stage


def histogram(values: pl.LazyFrame, edges: list[float]) -> list[int]:
    """Counts of the values (one column) per bin [edges[i], edges[i+1]) (the last bin
    includes its right edge: values lie within the edges), counted lazily."""
    value = pl.first()
    # a value's bin is the number of inner edges at or below it
    bin_index = pl.sum_horizontal([(value >= edge).cast(pl.Int32) for edge in edges[1:-1]])
    counted = values.filter(value.is_not_null()).select(bin=bin_index).group_by("bin").len()
    counts = dict(counted.collect().iter_rows())
    return [counts.get(index, 0) for index in range(len(edges) - 1)]


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def duplicate_cluster_sizes(duplicates: pl.LazyFrame) -> pl.DataFrame:
    """Clusters with removed duplicates by size (kept article + its duplicates): size, clusters."""
    sizes = duplicates.group_by("cluster_id").len().select(size=pl.col("len") + 1)
    return sizes.group_by("size").agg(clusters=pl.len()).sort("size").collect()


def drop_report(n_in: int, result: DedupResult, params: DedupParams) -> dict[str, Any]:
    """The figures of one drop's deduplication (the stage's report adds the drops up)."""
    assignment = result.assignment
    removed = assignment.filter(pl.col("kind").is_not_null())
    verified = result.pairs.select(
        candidates=pl.len(), at_threshold=(pl.col("similarity") >= params.threshold).sum()).collect()
    return {
        "input": n_in,
        "kept": assignment.height - removed.height,
        "duplicates": removed.height,
        "duplicates_by_kind": {kind: removed.filter(pl.col("kind") == kind).height for kind in ("exact", "near")},
        "candidate_pairs": verified["candidates"].item(),
        "pairs_at_or_above_threshold": verified["at_threshold"].item(),
        "review_pairs": result.review.height,
        "near_similarity_min": _rounded(removed.filter(pl.col("kind") == "near")["similarity"].min()),
        "candidate_similarity": histogram(result.pairs.select("similarity"), SIMILARITY_BINS),
    }


def dedup_report(drops: dict[str, dict[str, Any]], sizes: pl.DataFrame, params: DedupParams) -> dict[str, Any]:
    """The stage's report: the drops' reports (``drop_report``) added up, and the clusters."""
    total = sum_reports({key: value for key, value in report.items()
                         if key not in ("near_similarity_min", "candidate_similarity")}
                        for report in drops.values())
    near_minima = [report["near_similarity_min"] for report in drops.values() if report["near_similarity_min"] is not None]
    return {
        **total,
        "clusters_with_duplicates": int(sizes["clusters"].sum()),
        "cluster_size_histogram": {str(size): n for size, n in sizes.iter_rows()},
        "near_similarity_min": min(near_minima, default=None),
        "drops": {name: {key: report[key] for key in ("input", "kept", "duplicates")} for name, report in drops.items()},
        "params": {"threshold": params.threshold, "review_min": params.review_min, **params.minhash.as_dict()},
    }


@dataclass(frozen=True)
class DropInput:
    name: str
    articles: pl.LazyFrame
    source: Path  # the file(s) the articles are read from (a table: all drops'), which its fingerprint hashes


def drop_inputs(input_path: Path, params: dict[str, Any], listed_only: bool = False) -> list[DropInput]:
    """The drops to deduplicate, in order: clean's drop folders (those of ``split.drop_order``
    in its order, then, but in a project run, `listed_only`, the others by name), or the
    drops of one table (its ``drop`` column)."""
    if input_path.is_dir() and (drops := partition_drops(input_path, drop_order(params), listed_only)):
        return [DropInput(drop, scan_table(partition(input_path, drop) / KEPT_FILE), partition(input_path, drop) / KEPT_FILE)
                for drop in drops]
    articles = scan_table(input_path)
    names = set(articles.select(pl.col("drop").unique()).collect()["drop"])
    listed = [drop for drop in dict.fromkeys(drop_order(params)) if drop in names]
    # A table of one drop is read as it is: a slice of a filtered scan (a batch of the drop)
    # scans the table from its start again.
    return [DropInput(drop, articles if len(names) == 1 else articles.filter(pl.col("drop") == drop), input_path)
            for drop in listed + sorted(names - set(listed))]


def deduplicate_drop(drop: DropInput, corpus: CorpusIndex | None, folder: Path, params: DedupParams,
                     fingerprint: str) -> dict[str, Any]:
    """Deduplicates one drop against ``corpus`` (the earlier drops) and writes its folder:
    kept articles, duplicates, review pairs, index, and its report (with its fingerprint,
    written last: a folder without it is not finished). Returns the report."""
    articles = drop.articles
    if corpus is not None:
        earlier = pl.concat([corpus.scan(table).select("id") for table in (KEPT_FILE, DUPLICATES_FILE)])
        clash = articles.select("id").join(earlier, on="id", how="semi").head(1).collect()
        if clash.height:
            raise ValueError(f"dedup: article id {clash['id'][0]} of drop {drop.name} is already in an earlier drop")
    n_in = articles.select(pl.len()).collect().item()
    log(STAGE, f"drop {drop.name}: {n_in:,} articles, against {len(corpus.folders) if corpus else 0} earlier drop(s)")
    result = deduplicate(articles, params, corpus, store=reset_dir(folder))
    labelled = lazy_frames(lambda: (batch.join(result.assignment, on="id", how="left", maintain_order="left")
                                    for batch in batches(articles, params.batch_size)),
                           articles.join(result.assignment.lazy(), on="id", how="left").collect_schema())
    write_table(conform(labelled.filter(pl.col("kind").is_null()), CLUSTERED_ARTICLE_SCHEMA), folder / KEPT_FILE)
    write_table(conform(labelled.filter(pl.col("kind").is_not_null()), DUPLICATE_SCHEMA), folder / DUPLICATES_FILE)
    listed = pl.concat([result.review["id_a"], result.review["id_b"]]).unique()
    about = articles.select("id", "title", "source").filter(pl.col("id").is_in(listed.implode()))
    if corpus is not None:
        about = pl.concat([about, corpus.articles(listed).select("id", "title", "source")])
    about = about.collect()
    review = (
        result.review.join(about.rename({"id": "id_a", "title": "title_a", "source": "source_a"}), on="id_a", how="left", maintain_order="left")
        .join(about.rename({"id": "id_b", "title": "title_b", "source": "source_b"}), on="id_b", how="left", maintain_order="left")
    )
    write_table(conform(review, REVIEW_SCHEMA), folder / REVIEW_FILE)
    write_table(result.index, folder / INDEX_FILE)
    report = drop_report(n_in, result, params)
    write_json(folder / REPORT_FILE, report | {FINGERPRINT: fingerprint})
    return report


def scan_corpus(output_dir: Path, table: str) -> pl.LazyFrame:
    """``table`` (KEPT_FILE, DUPLICATES_FILE, REVIEW_FILE...) of every drop of a dedup output
    folder as one table, in the drop order of its run (INDEX_META's ``drops``)."""
    return scan_partitions(output_dir, read_json(Path(output_dir) / INDEX_DIR / INDEX_META)["drops"], table)


def _finished(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    """The report of a drop's folder when its fingerprint is ``fingerprint`` and its tables are there."""
    tables = all((folder / table).is_file() for table in (KEPT_FILE, DUPLICATES_FILE, REVIEW_FILE, *INDEX_FILES))
    report = read_json(folder / REPORT_FILE) if tables and (folder / REPORT_FILE).is_file() else {}
    return report if report.get(FINGERPRINT) == fingerprint else None


def run(input_path: Path, output_dir: Path, metrics_path: Path | None, params: dict[str, Any],
        listed_only: bool = False) -> dict[str, Any]:
    """Deduplicates the drops in order, each against the kept articles of those before it
    (`listed_only`: a project run, exactly the drops of ``split.drop_order``).

    A drop's folder from an earlier run is reused when its fingerprint holds: the dedup
    params, the stage's code, the drop's input bytes and the fingerprint of the drop before
    it. So adding a drop signs only its articles, a changed drop recomputes it and every
    drop after it, and a changed param or code file recomputes all: the result is the
    same, byte for byte, as a run from an empty output folder."""
    dedup = DedupParams.from_params(params)
    drops = drop_inputs(input_path, params, listed_only)
    if not drops:
        raise ValueError(f"dedup: no articles in {input_path}")
    folders = {drop.name: partition(output_dir, drop.name) for drop in drops}
    # Only the drops' folders are kept (a drop no longer listed goes, as later ones were
    # built without it, and so do the corpus-wide tables of older runs); the index's meta,
    # plots and report are written again below.
    keep_listed_drops(STAGE, output_dir, folders)
    memo, reports = DigestMemo.beside(output_dir), {}
    fingerprint = digest(json.dumps(section(params, STAGE), sort_keys=True), code_digest(__name__, memo))
    for position, drop in enumerate(drops):
        folder = folders[drop.name]
        fingerprint = digest(fingerprint, drop.name, files_digest(drop.source, memo))
        if (report := _finished(folder, fingerprint)) is not None:
            log(STAGE, f"drop {drop.name}: unchanged since the last run, its folder is reused")
        else:
            corpus = CorpusIndex(tuple(folders[d.name] for d in drops[:position])) if position else None
            report = deduplicate_drop(drop, corpus, folder, dedup, fingerprint)
        reports[drop.name] = {key: value for key, value in report.items() if key != FINGERPRINT}
    memo.save()  # once, after the last fingerprint

    # The corpus: the index's meta, the plots and the report. Its duplicates and review
    # pairs are the drops' tables read as one (``scan_corpus``), not written again: a copy
    # would be a new file, and a new object in the DVC cache, after every drop.
    write_json(reset_dir(output_dir / INDEX_DIR) / INDEX_META, {
        "minhash": dedup.minhash.as_dict(), "articles": "..", "drops": list(folders),
        "n_articles": sum(report["kept"] for report in reports.values()),
    })
    sizes = duplicate_cluster_sizes(scan_corpus(output_dir, DUPLICATES_FILE).select("cluster_id"))
    plots = output_dir / "plots"
    plots.mkdir(exist_ok=True)
    counts = [sum(bins) for bins in zip(*(report["candidate_similarity"] for report in reports.values()))]
    write_text(plots / "candidate_similarity.csv",
               pl.DataFrame({"similarity": SIMILARITY_LABELS, "pairs": counts}).write_csv())
    write_text(plots / "cluster_sizes.csv", sizes.write_csv())

    report = dedup_report(reports, sizes, dedup)
    n_in = report["input"]
    n_kept, n_dup = (scan_corpus(output_dir, table).select(pl.len()).collect().item()
                     for table in (KEPT_FILE, DUPLICATES_FILE))
    if n_kept + n_dup != n_in:
        raise RuntimeError(f"dedup lost articles: {n_in} in, {n_kept} kept + {n_dup} duplicates")
    log(STAGE, f"{n_in:,} in -> {n_kept:,} kept, {n_dup:,} duplicates {report['duplicates_by_kind']}, "
               f"{report['review_pairs']:,} pairs to review")
    write_stage_report(report, output_dir, metrics_path, HEADLINE)
    return report


def add_command(commands) -> None:
    parser = add_stage_command(
        commands, STAGE, input_from=("clean",), input_help="cleaned articles (clean's output folder, or a table)",
        main=_main,
    )
    add_engine_option(parser)


def _main(paths: StagePaths, params: dict[str, Any], args) -> int:
    listed_only = require_listed_drops(paths, params, args, KEPT_FILE, "corpus clean")
    run(paths.input, paths.output, paths.metrics, with_engine(params, args.engine), listed_only)
    return 0
