"""MinHash + LSH over word n-gram shingles, vectorised with numpy (no per-shingle Python).

The pieces, in the order the dedup stage uses them:

* ``shingle_hashes``: a batch of word lists -> one uint64 hash per word n-gram, flat, with
  the offset of each document's first shingle. Words are hashed once per distinct word of
  the batch (xxh3, stable across versions and machines); n-grams are combined from word
  hashes with numpy arithmetic.
* ``signatures``: MinHash signatures, ``permutations`` uint32 values a document. Each
  permutation is ``h -> a*h + b (mod 2**64)`` with odd ``a`` on an already well-mixed 64-bit
  shingle hash; the minimum over a document's shingles is kept (its top 32 bits).
* ``band_keys``: one uint64 key per (document, band) of ``rows`` signature values.
* ``candidate_pairs``: pairs of documents that share a band key (LSH).
* ``fingerprint_keys`` / ``jaccard``: the real Jaccard similarity of the shingle sets of
  given pairs, from a sorted array of (document, shingle) keys that can live on disk.

Memory: a batch holds its own shingles only; what stays for the whole corpus is the
signature matrix (``permutations * 4`` bytes a document) and the band keys.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import xxhash

# Version of the shingle/signature scheme; an index built with another scheme is refused.
SCHEME = "xxh3-words/poly-ngrams/affine-minhash/v1"
_NGRAM_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio)
_SHIFT_30, _SHIFT_27, _SHIFT_31, _SHIFT_32 = (np.uint64(s) for s in (30, 27, 31, 32))
_MIX_1, _MIX_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class MinHashParams:
    ngram: int
    permutations: int
    bands: int
    rows: int
    seed: int

    def __post_init__(self) -> None:
        if self.ngram < 1:
            raise ValueError("dedup.ngram must be >= 1")
        if self.bands * self.rows != self.permutations:
            raise ValueError(
                f"dedup: bands x rows ({self.bands} x {self.rows}) must equal permutations ({self.permutations})"
            )

    @classmethod
    def from_params(cls, dedup: dict[str, Any]) -> "MinHashParams":
        return cls(
            ngram=int(dedup["ngram"]),
            permutations=int(dedup["permutations"]),
            bands=int(dedup["bands"]),
            rows=int(dedup["rows"]),
            seed=int(dedup["seed"]),
        )

    def as_dict(self) -> dict[str, Any]:
        return {"scheme": SCHEME, "ngram": self.ngram, "permutations": self.permutations,
                "bands": self.bands, "rows": self.rows, "seed": self.seed}

    def collision_probability(self, similarity: float) -> float:
        """Probability that two documents of this Jaccard similarity share a band."""
        return 1.0 - (1.0 - similarity**self.rows) ** self.bands

    def permutation_coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.Generator(np.random.PCG64(self.seed))
        a = rng.integers(0, np.iinfo(np.uint64).max, size=self.permutations, dtype=np.uint64, endpoint=True) | np.uint64(1)
        b = rng.integers(0, np.iinfo(np.uint64).max, size=self.permutations, dtype=np.uint64, endpoint=True)
        return a, b


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, in place: spreads every input bit over the whole word."""
    values ^= values >> _SHIFT_30
    values *= _MIX_1
    values ^= values >> _SHIFT_27
    values *= _MIX_2
    values ^= values >> _SHIFT_31
    return values


def word_hashes(words: pl.Series) -> np.ndarray:
    """uint64 hash of every word of a flat String series (each distinct word hashed once)."""
    distinct = words.unique()
    hashes = pl.Series(
        [xxhash.xxh3_64_intdigest(word.encode("utf-8")) for word in distinct.to_list()], dtype=pl.UInt64
    )
    return words.replace_strict(distinct, hashes, return_dtype=pl.UInt64).to_numpy()


@dataclass
class Shingles:
    """Flat shingle hashes of a batch: document ``i`` owns ``hashes[offsets[i]:offsets[i+1]]``."""

    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, len = documents + 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def shingle_hashes(word_lists: pl.Series, ngram: int) -> Shingles:
    """Word n-gram shingles of every document (a List[String] series).

    A document with fewer than ``ngram`` words (but at least one) has one shingle: all its
    words. An empty document has none.
    """
    lengths = word_lists.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = word_hashes(word_lists.explode(empty_as_null=False).drop_nulls())
    word_starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=word_starts[1:])
    counts = np.where(lengths >= ngram, lengths - ngram + 1, np.minimum(lengths, 1))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    if total == 0:
        return Shingles(np.zeros(0, dtype=np.uint64), offsets)
    doc_of_shingle = np.repeat(np.arange(len(lengths)), counts)
    starts = word_starts[:-1][doc_of_shingle] + (np.arange(total) - offsets[:-1][doc_of_shingle])
    ends = word_starts[1:][doc_of_shingle]
    combined = np.zeros(total, dtype=np.uint64)
    last = len(flat) - 1
    for k in range(ngram):
        position = starts + k
        inside = position < ends
        step = combined * _NGRAM_MULTIPLIER + flat[np.minimum(position, last)]
        combined = np.where(inside, step, combined)
    return Shingles(_mix64(combined), offsets)


def signatures(shingles: Shingles, params: MinHashParams, threads: int = 2) -> np.ndarray:
    """MinHash signatures, shape (documents, permutations), uint32.

    A document without shingles gets the all-ones signature (it matches nothing but
    another empty document, and the stage never sends empty documents here)."""
    a, b = params.permutation_coefficients()
    n_docs = len(shingles.offsets) - 1
    result = np.full((n_docs, params.permutations), np.iinfo(np.uint32).max, dtype=np.uint32)
    has_shingles = shingles.counts > 0
    if not has_shingles.any():
        return result
    rows = np.flatnonzero(has_shingles)
    starts = shingles.offsets[:-1][rows]

    def fill(permutations: range) -> None:
        buffer = np.empty(len(shingles.hashes), dtype=np.uint64)
        for p in permutations:
            np.multiply(shingles.hashes, a[p], out=buffer)
            buffer += b[p]
            result[rows, p] = (np.minimum.reduceat(buffer, starts) >> _SHIFT_32).astype(np.uint32)

    halves = np.array_split(np.arange(params.permutations), max(1, threads))
    with ThreadPoolExecutor(max_workers=len(halves)) as pool:
        list(pool.map(lambda part: fill(range(part[0], part[-1] + 1)) if len(part) else None, halves))
    return result


def band_keys(signature: np.ndarray, params: MinHashParams) -> np.ndarray:
    """uint64 key per (document, band): shape (documents, bands)."""
    grouped = signature.reshape(len(signature), params.bands, params.rows).astype(np.uint64)
    keys = np.zeros(grouped.shape[:2], dtype=np.uint64)
    for r in range(params.rows):
        keys = keys * _NGRAM_MULTIPLIER + grouped[:, :, r]
    return _mix64(keys)


def candidate_pairs(keys: np.ndarray, max_bucket_size: int) -> pl.DataFrame:
    """Distinct pairs (a < b, row numbers) of documents that share a band key (LSH).

    Rows of ``keys`` are documents in rank order (the preferred kept article first). A bucket
    of more than ``max_bucket_size`` documents pairs each member with the bucket's first
    member only, so a very common band (templated articles) stays linear, not quadratic.
    Bands are taken one at a time: a pair found in many bands is held once."""
    found = pl.DataFrame(schema={"a": pl.Int64, "b": pl.Int64})
    docs = np.arange(len(keys), dtype=np.int64)
    for band in range(keys.shape[1]):
        buckets = pl.DataFrame({"key": keys[:, band], "doc": docs}).filter(pl.len().over("key") > 1)
        if buckets.is_empty():
            continue
        buckets = buckets.with_columns(size=pl.len().over("key"), first=pl.col("doc").min().over("key"))
        small = buckets.filter(pl.col("size") <= max_bucket_size).select("key", "doc")
        pairs = small.join(small, on="key", suffix="_b").filter(pl.col("doc") < pl.col("doc_b"))
        star = buckets.filter((pl.col("size") > max_bucket_size) & (pl.col("doc") != pl.col("first")))
        found = pl.concat([
            found,
            pairs.select(a=pl.col("doc"), b=pl.col("doc_b")),
            star.select(a=pl.col("first"), b=pl.col("doc")),
        ]).unique()
    return found.sort("a", "b")


def fingerprint_keys(shingles: Shingles, first_doc: int) -> np.ndarray:
    """The shingle sets of a batch of documents numbered ``first_doc``, ``first_doc + 1``...
    as one sorted array of distinct keys ``doc << 32 | top 32 bits of the shingle hash``.

    Keys of consecutive batches concatenate into one sorted array: what ``jaccard`` reads.
    (Two different shingles of one document pair share 32 bits with probability about
    |A| |B| / 2**32, 2e-5 for 300-shingle articles: no visible effect on the similarity.)"""
    doc = np.repeat(np.arange(first_doc, first_doc + len(shingles.offsets) - 1, dtype=np.uint64), shingles.counts)
    keys = np.sort((doc << _SHIFT_32) | (shingles.hashes >> _SHIFT_32))
    distinct = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
    return keys[distinct]  # (np.unique would hash first: 5x slower here)


def jaccard(keys: np.ndarray, a: np.ndarray, b: np.ndarray, n_docs: int, chunk: int = 50_000) -> np.ndarray:
    """Jaccard similarity of the shingle sets of documents ``a[i]`` and ``b[i]``.

    ``keys`` is the sorted array of ``fingerprint_keys`` of documents 0..n_docs-1 (a
    memory map is fine: it is only searched). Each step takes ``chunk`` pairs: every
    shingle of ``a[i]`` is looked up among the keys of ``b[i]`` by binary search."""
    starts = np.searchsorted(keys, np.arange(n_docs + 1, dtype=np.uint64) << _SHIFT_32)
    sizes = np.diff(starts)
    result = np.zeros(len(a), dtype=np.float64)
    if len(keys) == 0:
        return result
    low_bits = np.uint64(0xFFFFFFFF)
    for first in range(0, len(a), chunk):
        pa, pb = a[first:first + chunk], b[first:first + chunk]
        counts = sizes[pa]
        ends = np.cumsum(counts)
        owner = np.repeat(np.arange(len(pa)), counts)
        positions = starts[pa][owner] + (np.arange(ends[-1] if len(ends) else 0) - (ends - counts)[owner])
        queries = (pb.astype(np.uint64)[owner] << _SHIFT_32) | (keys[positions] & low_bits)
        found = np.searchsorted(keys, queries)
        hit = keys[np.minimum(found, len(keys) - 1)] == queries
        shared = np.bincount(owner, weights=hit, minlength=len(pa))
        union = counts + sizes[pb] - shared
        result[first:first + chunk] = np.divide(shared, union, out=np.zeros(len(pa)), where=union > 0)
    return result
