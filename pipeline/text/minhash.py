"""MinHash + LSH over word n-gram shingles, vectorised with numpy (no per-shingle Python).

The pieces, in the order the dedup stage uses them:

* ``shingle_hashes``: a batch of word lists -> one uint64 hash per word n-gram, flat, with
  the offset of each document's first shingle. Words are hashed once per distinct word of
  the batch (tabulation hashing of their UTF-8 bytes in numpy, stable across versions and
  machines); n-grams are combined from word hashes with numpy arithmetic.
* ``signatures``: MinHash signatures, ``permutations`` uint32 values a document. Each
  permutation is ``h -> a*h + b (mod 2**64)`` with odd ``a`` on an already well-mixed 64-bit
  shingle hash; the minimum over a document's shingles is kept (its top 32 bits).
* ``band_keys``: one uint64 key per document for a band of ``rows`` signature values.
* ``pair_codes`` (``candidate_pairs`` as a frame): pairs of documents that share a band
  key (LSH), band by band, as sorted uint64 codes.
* ``ShingleSets``: the shingle sets, written to a temporary file batch by batch, and the
  real overlap of given pairs (shared shingles, set sizes) read back from it a step of
  pairs at a time. ``SignatureFile``: the signatures, likewise. ``BandPartitions``: the
  band keys as per-band partitions in a folder every worker reaches, written by the
  signing tasks and read by the bands' tasks (``pair_codes``). ``SetParts``: the sets and
  signatures as a part a signed batch in such a folder, written by the signing tasks,
  copied into the driver's files and read by the tasks verifying pairs.

Memory: a batch holds its own shingles only; what stays for the whole corpus is an offset
into the shingle-set file (8 bytes a document), one band's keys at a time (8 bytes a
document) and the candidate pairs (8 bytes a pair).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from pipeline.plumbing.io import Location, arrow_file

# Version of the shingle/signature scheme; an index built with another scheme is refused.
SCHEME = "tabulated-words/poly-ngrams/affine-minhash+lead/v5"  # v4: names on "عبد" joined; v5: sets kept
_NGRAM_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio)
_SHIFT_8, _SHIFT_30, _SHIFT_27, _SHIFT_31, _SHIFT_32 = (np.uint64(s) for s in (8, 30, 27, 31, 32))
_BYTE_SEED = np.uint64(0x2545F4914F6CDD1D)  # any odd constant: (position 0, byte 0) must not map to 0
_LOW_32 = np.uint64(0xFFFFFFFF)
_MIX_1, _MIX_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
SIGNATURE_BLOCK_SHINGLES = 1 << 18  # ``signatures``: 2 MiB of hashes and as much permuted, per thread
COPY_BYTES = 1 << 22  # what a copy of a file of sets or signatures holds at a time
# ``SetParts.read``: ranges this close are read at once, in blocks of at most READ_BLOCK_BYTES
# (what a verifying task holds besides its sets); benchmarks/set_parts_reads.py measured them
READ_GAP_BYTES = 1 << 20  # at a URL: a read is a request (tens of ms), a MiB beyond it costs less
PATH_READ_GAP_BYTES = 1 << 16  # on a path: a read is a system call, bytes read for nothing cost more
READ_BLOCK_BYTES = 1 << 23


@dataclass(frozen=True)
class MinHashParams:
    """Shingles, permutations and LSH bands. Besides its ``bands`` x ``rows`` over the whole
    text, a document's signature has ``lead_bands`` x ``lead_rows`` values over its first
    ``lead_shingles`` shingles (its lead): a teaser and its article share their lead while
    their Jaccard similarity is low, so these bands propose them."""

    ngram: int
    permutations: int
    bands: int
    rows: int
    seed: int
    lead_shingles: int
    lead_bands: int
    lead_rows: int

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
            lead_shingles=int(dedup["lead_shingles"]),
            lead_bands=int(dedup["lead_bands"]),
            lead_rows=int(dedup["lead_rows"]),
        )

    def as_dict(self) -> dict[str, Any]:
        return {"scheme": SCHEME, "ngram": self.ngram, "permutations": self.permutations,
                "bands": self.bands, "rows": self.rows, "seed": self.seed, "lead_shingles": self.lead_shingles,
                "lead_bands": self.lead_bands, "lead_rows": self.lead_rows}

    @property
    def width(self) -> int:
        """Values in a signature: ``permutations`` over the text, then those over its lead."""
        return self.permutations + self.lead_bands * self.lead_rows

    @property
    def all_bands(self) -> int:
        """LSH bands: ``bands`` over the text, then ``lead_bands`` over the lead."""
        return self.bands + self.lead_bands

    def permutation_coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) of the ``width`` permutations (those of the lead drawn after the others)."""
        rng = np.random.Generator(np.random.PCG64(self.seed))
        top = np.iinfo(np.uint64).max
        a = rng.integers(0, top, size=self.permutations, dtype=np.uint64, endpoint=True) | np.uint64(1)
        b = rng.integers(0, top, size=self.permutations, dtype=np.uint64, endpoint=True)
        lead = self.width - self.permutations
        a_lead = rng.integers(0, top, size=lead, dtype=np.uint64, endpoint=True) | np.uint64(1)
        b_lead = rng.integers(0, top, size=lead, dtype=np.uint64, endpoint=True)
        return np.concatenate([a, a_lead]), np.concatenate([b, b_lead])


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, in place: spreads every input bit over the whole word."""
    values ^= values >> _SHIFT_30
    values *= _MIX_1
    values ^= values >> _SHIFT_27
    values *= _MIX_2
    values ^= values >> _SHIFT_31
    return values


def word_hashes(words: pl.Series) -> np.ndarray:
    """uint64 hash of every word of a flat String series without nulls (each distinct word hashed once).

    Tabulation hashing over the UTF-8 bytes, in numpy over the Arrow buffer of the distinct
    words (no Python per word): a word's hash is the splitmix64 mix of the sum of one
    pseudo-random 64-bit value per (position, byte) and its length. Stable across versions
    and machines (it is only integer arithmetic on the bytes). The distinct words come from
    Arrow's dictionary encoding (a third of the CPU of Polars' unique + replace_strict), of
    Polars' string views as they are (a copy of the words as Arrow strings first: 1.3x the CPU)."""
    encoded = pc.dictionary_encode(words.to_arrow(compat_level=pl.CompatLevel.newest()))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    # (the indices through Polars: pyarrow's to_numpy imports pandas, 0.4 s of a drop's dedup)
    return _utf8_hashes(encoded.dictionary)[pl.from_arrow(encoded.indices).to_numpy()]


def utf8_bytes(strings: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of Arrow strings without a copy of their bytes: string ``i`` is
    ``data[offsets[i]:offsets[i + 1]]``, its UTF-8 (a null one empty)."""
    array = strings.cast(pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if len(array) == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64, count=len(array) + 1, offset=array.offset * 8)
    return offsets - offsets[0], np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]


def _utf8_hashes(strings: pa.Array) -> np.ndarray:
    offsets, data = utf8_bytes(strings)
    if len(offsets) == 1:
        return np.zeros(0, dtype=np.uint64)
    starts, lengths = offsets[:-1], np.diff(offsets)
    # each byte's position in its word, then one well-mixed value per (position, byte)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    position = (np.arange(len(data)) - starts[owner]).astype(np.uint64)
    sums = np.zeros(len(lengths), dtype=np.uint64)
    nonempty = lengths > 0
    if nonempty.any():
        table = _mix64((position << _SHIFT_8) ^ data.astype(np.uint64) ^ _BYTE_SEED)
        sums[nonempty] = np.add.reduceat(table, starts[nonempty])
    return _mix64(sums + lengths.astype(np.uint64) * _NGRAM_MULTIPLIER)


@dataclass
class Shingles:
    """Flat shingle hashes of a batch: document ``i`` owns ``hashes[offsets[i]:offsets[i+1]]``
    (and, from ``shingle_hashes``, the hashes of its words ``words[word_offsets[i]:word_offsets[i+1]]``)."""

    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, len = documents + 1
    words: np.ndarray | None = None  # uint64
    word_offsets: np.ndarray | None = None  # int64, len = documents + 1

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
        return Shingles(np.zeros(0, dtype=np.uint64), offsets, flat, word_starts)
    # The n-gram of every run of `ngram` words of the batch, by slices (no gather a word);
    # a document's shingles are the runs from its words but the last ngram - 1 ...
    windows = flat[:max(len(flat) - ngram + 1, 0)].copy()
    for k in range(1, ngram):
        windows *= _NGRAM_MULTIPLIER
        windows += flat[k:k + len(windows)]
    starts = np.arange(total) + np.repeat(word_starts[:-1] - offsets[:-1], counts)  # each shingle's first word
    combined = windows[np.minimum(starts, len(windows) - 1)] if len(windows) else np.zeros(total, dtype=np.uint64)
    # ... and a document shorter than ngram has one shingle: all its words
    short = np.flatnonzero((lengths < ngram) & (lengths > 0))
    if len(short):
        first, length, last = word_starts[short], lengths[short], len(flat) - 1
        short_hash = np.zeros(len(short), dtype=np.uint64)
        for k in range(ngram):
            short_hash = np.where(k < length, short_hash * _NGRAM_MULTIPLIER + flat[np.minimum(first + k, last)], short_hash)
        combined[offsets[short]] = short_hash
    return Shingles(_mix64(combined), offsets, flat, word_starts)


def detail_sets(shingles: Shingles, lead: int) -> tuple[np.ndarray, np.ndarray]:
    """Three sets per document of ``shingle_hashes``, for ``ShingleSets.add_sets``: set ``3i``
    holds the words document ``i`` repeats (twice or more), ``3i + 1`` all its distinct
    words, ``3i + 2`` its first ``lead`` shingles. Returns (fingerprints, each set sorted and
    distinct, uint32; the size of each set)."""
    n = len(shingles.word_offsets) - 1
    keys = (np.repeat(np.arange(n, dtype=np.uint64), np.diff(shingles.word_offsets)) << _SHIFT_32) | (
        shingles.words >> _SHIFT_32)
    _sort_by_document(keys)
    first = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    repeated = np.diff(np.append(starts, len(keys))) >= 2
    distinct = keys[starts]
    del keys, first, starts
    leads = lead_shingles(shingles, lead)
    lead_keys = (np.repeat(np.arange(n, dtype=np.uint64), leads.counts) << _SHIFT_32) | (leads.hashes >> _SHIFT_32)
    _sort_by_document(lead_keys)
    lead_first = np.ones(len(lead_keys), dtype=bool)
    np.not_equal(lead_keys[1:], lead_keys[:-1], out=lead_first[1:])
    lead_keys = lead_keys[lead_first]
    # each part is sorted by document: place it in the document's slot of the output
    parts = [distinct[repeated], distinct, lead_keys]
    docs = [(part >> _SHIFT_32).astype(np.int64) for part in parts]
    sizes = np.stack([np.bincount(d, minlength=n) for d in docs], axis=1).reshape(-1)  # set 3i + k
    offsets = np.zeros(3 * n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    values = np.empty(int(offsets[-1]), dtype=np.uint32)
    for k, (part, doc) in enumerate(zip(parts, docs)):
        part_starts = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(sizes[k::3], out=part_starts[1:])
        values[offsets[3 * doc + k] + np.arange(len(part)) - part_starts[doc]] = (part & _LOW_32).astype(np.uint32)
    return values, sizes


def _sort_by_document(keys: np.ndarray) -> None:
    """Sorts keys (document << 32 | value), their documents already in order, in place. A
    stable sort: timsort sees the documents' keys as runs in order and merges them at no
    cost, so it sorts within each document (0.4x the CPU of numpy's quicksort of them)."""
    keys.sort(kind="stable")


def lead_shingles(shingles: Shingles, lead: int) -> Shingles:
    """The first ``lead`` shingles of each document."""
    counts = np.minimum(shingles.counts, lead)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    doc = np.repeat(np.arange(len(counts)), counts)
    return Shingles(shingles.hashes[shingles.offsets[:-1][doc] + np.arange(int(offsets[-1])) - offsets[:-1][doc]], offsets)


def signatures(shingles: Shingles, params: MinHashParams, threads: int = 2) -> np.ndarray:
    """MinHash signatures, shape (documents, ``params.width``), uint32: ``permutations``
    values over all the shingles of a document, then ``lead_bands * lead_rows`` over its
    first ``lead_shingles``.

    A document without shingles gets the all-ones signature (it matches nothing but
    another empty document, and the stage never sends empty documents here)."""
    a, b = params.permutation_coefficients()
    n_docs = len(shingles.offsets) - 1
    rows = np.flatnonzero(shingles.counts > 0)
    signed = np.empty((len(rows), params.width), dtype=np.uint32)  # the rows with shingles
    if len(rows):
        lead = lead_shingles(shingles, params.lead_shingles)

        def fill(permutations: range) -> None:
            for sets, chosen in ((shingles, [p for p in permutations if p < params.permutations]),
                                 (lead, [p for p in permutations if p >= params.permutations])):
                if chosen:
                    _min_hashes(sets.hashes, sets.offsets[:-1][rows], a, b, chosen, signed)

        parts = np.array_split(np.arange(params.width), max(1, threads))
        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            list(pool.map(lambda part: fill(range(part[0], part[-1] + 1)) if len(part) else None, parts))
    if len(rows) == n_docs:
        return signed
    result = np.full((n_docs, params.width), np.iinfo(np.uint32).max, dtype=np.uint32)
    result[rows] = signed
    return result


def _min_hashes(hashes: np.ndarray, starts: np.ndarray, a: np.ndarray, b: np.ndarray, permutations: list[int],
                out: np.ndarray) -> None:
    """``out[i, p]``: the top 32 bits of the minimum of ``a[p] * h + b[p]`` over the hashes
    ``h`` of document ``i`` (``hashes[starts[i]:starts[i + 1]]``, the last to the end), for
    each permutation ``p``. Documents go a block of about SIGNATURE_BLOCK_SHINGLES shingles
    at a time through every permutation: the block and its permuted copy stay in the CPU's
    cache (over a whole batch, each permutation streams them through memory: 1.8x the CPU)."""
    cuts = np.unique(np.append(np.searchsorted(starts, np.arange(0, len(hashes), SIGNATURE_BLOCK_SHINGLES)),
                               len(starts)))
    ends = np.append(starts[1:], len(hashes))
    buffer = np.empty(int(max(ends[last - 1] - starts[first] for first, last in zip(cuts[:-1], cuts[1:]))),
                      dtype=np.uint64)
    for first, last in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
        lo, hi = starts[first], ends[last - 1]
        block, permuted, block_starts = hashes[lo:hi], buffer[:hi - lo], starts[first:last] - lo
        for p in permutations:
            np.multiply(block, a[p], out=permuted)
            permuted += b[p]
            out[first:last, p] = np.minimum.reduceat(permuted, block_starts) >> _SHIFT_32


def band_keys(signature: np.ndarray, params: MinHashParams, band: int, docs: np.ndarray | None = None) -> np.ndarray:
    """uint64 key of one band (``band`` < ``all_bands``: its ``rows`` signature values, or
    ``lead_rows`` for a band of the lead) of each document, or of the rows ``docs`` of
    ``signature``: one band at a time, so only one key per document is held."""
    if band < params.bands:
        first, rows = band * params.rows, params.rows
    else:
        first, rows = params.permutations + (band - params.bands) * params.lead_rows, params.lead_rows
    values = (signature[:, first:first + rows] if docs is None else signature[docs, first:first + rows]).astype(np.uint64)
    keys = np.zeros(len(values), dtype=np.uint64)
    for r in range(rows):
        keys = keys * _NGRAM_MULTIPLIER + values[:, r]
    return _mix64(keys)


def candidate_pairs(signature: np.ndarray, params: MinHashParams, max_bucket_size: int,
                    map_tasks: MapTasks, docs: np.ndarray | None = None) -> pl.DataFrame:
    """Distinct pairs (a < b, positions in ``docs``) of documents that share a band key (LSH),
    over all the bands (``all_bands``: of the text and of its lead), sorted: ``pair_codes``
    of the rows ``docs`` of ``signature`` (default: all), as a frame."""
    keys = (band_keys(signature, params, band, docs) for band in range(params.all_bands))
    a, b = pair_parts(pair_codes(keys, max_bucket_size, map_tasks))
    return pl.DataFrame({"a": a, "b": b})


def pair_code(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """uint64 code ``a << 32 | b`` of pairs of document numbers (< 2**32): codes sort as the pairs do."""
    return (np.asarray(a).astype(np.uint64) << _SHIFT_32) | np.asarray(b).astype(np.uint64)


def pair_parts(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b), int64, of ``pair_code`` codes."""
    return (codes >> _SHIFT_32).astype(np.int64), (codes & _LOW_32).astype(np.int64)


def pair_codes(keys_of_bands: Iterable[Any], max_bucket_size: int, map_tasks: MapTasks,
               partitions: "BandPartitions | None" = None, docs: np.ndarray | None = None) -> np.ndarray:
    """Distinct pairs of documents that share a band key (LSH), as sorted uint64 codes
    (``pair_code`` of a < b, positions in the key arrays), given each band's keys of the
    documents (``band_keys``), documents in rank order (the preferred kept article first);
    or, with ``partitions``, each band's number: its task reads the band's keys of the rows
    ``docs`` (in rank order) from the partitions the signing tasks wrote (``BandPartitions``),
    and no key passes through this process.

    A bucket of more than ``max_bucket_size`` documents pairs each member with the bucket's
    first member only, so a very common band (templated articles) stays linear, not
    quadratic. Each band is grouped on its own (``bucket_pairs``, one task a band through
    ``map_tasks``, an engine's: the local one groups them here, one after the other, a
    cluster on its workers; a band's keys are read as its task starts); a pair found in
    many bands is held once (8 bytes: the pairs grow faster than the documents, and
    another copy of them while a band is merged in)."""
    found = np.zeros(0, dtype=np.uint64)
    work = bucket_pairs if partitions is None else partitions.band_pairs
    for codes in map_tasks(partial(work, max_bucket_size=max_bucket_size), docs, keys_of_bands):
        if not codes.flags.writeable:  # a Ray task's result, read from the object store without a copy
            codes = codes.copy()
        merged = np.concatenate([found, _distinct(codes)])
        del found
        found = _distinct(merged, kind="stable")  # two sorted runs: timsort merges them in linear time
        del merged
    return found


def _distinct(codes: np.ndarray, kind: str = "quicksort") -> np.ndarray:
    """Sorted distinct values, sorting ``codes`` in place (np.unique copies first)."""
    codes.sort(kind=kind)
    keep = np.ones(len(codes), dtype=bool)
    np.not_equal(codes[1:], codes[:-1], out=keep[1:])
    return codes[keep]


def bucket_pairs(_: None, keys: np.ndarray, max_bucket_size: int) -> np.ndarray:
    """The pairs of ``pair_codes`` that share a key of one band (``keys``: one a document),
    as codes, not distinct."""
    order = np.argsort(keys, kind="stable")  # by key, then position: a bucket's first member is its smallest
    keys = keys[order]
    bucket_start = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=bucket_start[1:])
    starts = np.flatnonzero(bucket_start)
    bucket = np.cumsum(bucket_start) - 1
    size = np.diff(np.append(starts, len(keys)))[bucket]
    place = np.arange(len(keys)) - starts[bucket]  # a member's place in its bucket
    # a small bucket: each member with every later one; a big one: its first with each other
    later = np.where((size >= 2) & (size <= max_bucket_size), size - 1 - place, 0)
    member = np.repeat(np.arange(len(keys)), later)
    partner = member + 1 + np.arange(len(member)) - np.repeat(np.cumsum(later) - later, later)
    star = np.flatnonzero((size > max_bucket_size) & (place > 0))
    return np.concatenate([pair_code(order[member], order[partner]),
                           pair_code(order[starts[bucket[star]]], order[star])])


# ``map_tasks`` of an engine (pipeline/engines/): ``work(shared, item)`` for each item, in order.
MapTasks = Callable[[Callable[[Any, Any], Any], Any, Iterable[Any]], Iterable[Any]]


def shingle_sets(shingles: Shingles) -> tuple[np.ndarray, np.ndarray]:
    """The shingle sets of a batch of documents as ``ShingleSets.add_sets`` takes them: each
    document's distinct fingerprints (the top 32 bits of its shingle hashes), sorted, uint32;
    the size of each set."""
    n = len(shingles.offsets) - 1
    doc = np.repeat(np.arange(n, dtype=np.uint64), shingles.counts)
    keys = (doc << _SHIFT_32) | (shingles.hashes >> _SHIFT_32)
    _sort_by_document(keys)
    distinct = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
    keys = keys[distinct]  # (np.unique would hash first: 5x slower here)
    return (keys & _LOW_32).astype(np.uint32), np.bincount((keys >> _SHIFT_32).astype(np.int64), minlength=n)


class ShingleSets:
    """The shingle sets of documents 0, 1, 2... in a temporary file, for the real overlap
    of pairs (``overlap``).

    A document's set is stored as its distinct shingle fingerprints (the top 32 bits of the
    shingle hash), sorted; only the offset of each document stays in memory (8 bytes). Two
    different shingles of one document pair share 32 bits with probability about
    |A| |B| / 2**32 (2e-5 for 300-shingle articles: no visible effect on the similarity).
    Use as a context manager: the file is closed on exit (a temporary one deleted)."""

    def __init__(self, path: Path | None = None) -> None:
        """Sets in a temporary file, or in the file ``path`` (which stays: see ``keep``)."""
        self._file = tempfile.TemporaryFile(prefix="dedup-shingle-sets-") if path is None else open(path, "w+b")
        self._ends = [np.zeros(1, dtype=np.int64)]

    @classmethod
    def stored(cls, path: Path, sizes: np.ndarray) -> "ShingleSets":
        """The sets a ShingleSets kept in the file ``path`` (``keep``), given the size of each, to read."""
        sets = cls.__new__(cls)
        sets._file = open(path, "rb")
        sets._ends = [np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(sizes, dtype=np.int64)])]
        return sets

    def keep(self, n_sets: int) -> np.ndarray:
        """Cuts the file after its first ``n_sets`` sets (those added after them are dropped)
        and returns the size of each of those: with the file, what ``stored`` reads."""
        offsets = self._offsets()
        self._file.flush()
        self._file.truncate(int(offsets[n_sets]) * 4)
        self._ends = [offsets[:n_sets + 1]]
        return np.diff(self._ends[0])

    def __enter__(self) -> "ShingleSets":
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def add(self, shingles: Shingles) -> None:
        """Appends the sets of a batch of documents (numbered on from those already added)."""
        self.add_sets(shingle_sets(shingles))

    def add_sets(self, sets: tuple[np.ndarray, np.ndarray]) -> None:
        """Appends sets given as (fingerprints, uint32, each set sorted and distinct; the size
        of each set), as ``shingle_sets`` and ``detail_sets`` make them."""
        values, sizes = sets
        self._file.write(values.tobytes())
        self._ends.append(self._ends[-1][-1] + np.cumsum(sizes, dtype=np.int64))

    def add_part(self, part: Path | Location, sizes: np.ndarray) -> None:
        """Appends the sets a signing task wrote to the file ``part`` (``SetParts``), given the
        size of each: a copy of the file's bytes, a few MB at a time."""
        copied = _append_file(self._file, part)
        if copied != 4 * int(sizes.sum()):
            raise ValueError(f"{part} holds {copied // 4:,} fingerprints, not {int(sizes.sum()):,}")
        self._ends.append(self._ends[-1][-1] + np.cumsum(sizes, dtype=np.int64))

    def write_from(self, first_set: int, part: Path | Location) -> None:
        """Writes the sets from the ``first_set``-th on to the file ``part`` (a copy of bytes,
        a few MB at a time), in the layout ``add_part`` and ``SetParts.read`` read."""
        offsets = self._offsets()
        begin, end = int(offsets[first_set]) * 4, int(offsets[-1]) * 4
        part.parent.mkdir(parents=True, exist_ok=True)  # (the first part of its kind, when no task wrote one)
        with part.open("wb") as out:
            for at in range(begin, end, COPY_BYTES):
                out.write(os.pread(self._file.fileno(), min(COPY_BYTES, end - at), at))

    def ranges(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the sets of ``docs`` begin and end, in fingerprints from the first set's start."""
        offsets = self._offsets()
        return offsets[docs], offsets[np.asarray(docs) + 1]

    def overlap(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shared, size of a, size of b): the fingerprints the sets of documents ``a[i]``
        and ``b[i]`` share, and the size of each set.

        Only the sets of the documents of these pairs are read (the caller bounds memory by
        asking for a step of pairs at a time), as the rows of a sparse matrix (a fingerprint
        its column): the element-wise product of the rows of the two sides keeps the
        fingerprints both hold, a linear merge of two sorted rows in scipy's compiled code
        (a third of the CPU of laying the pairs' sets out and sorting them in numpy)."""
        from scipy.sparse import csr_matrix  # 0.4 s to import: only when pairs are verified

        offsets = self._offsets()
        sizes = np.diff(offsets)
        docs = np.unique(np.concatenate([a, b]))
        starts = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(sizes[docs], out=starts[1:])
        values = self._read(docs, offsets).astype(np.int64)
        # each set is sorted and distinct: canonical rows, which scipy merges
        sets = csr_matrix((np.ones(len(values), dtype=np.int8), values, starts), shape=(len(docs), 1 << 32))
        both = sets[np.searchsorted(docs, a)].multiply(sets[np.searchsorted(docs, b)])
        return np.diff(both.indptr).astype(np.int64), sizes[a], sizes[b]

    def subset(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sets of ``docs`` (sorted, distinct) as ``add_sets`` takes them: a ShingleSets
        they are added to numbers them 0, 1, ... (what a worker verifying a step of pairs
        gets, ``np.searchsorted(docs, a)`` its pairs)."""
        offsets = self._offsets()
        return self._read(docs, offsets), np.diff(offsets)[docs]

    def _offsets(self) -> np.ndarray:
        """Where each document's set begins in the file (and the end of the last), once the
        sets added so far are written."""
        if len(self._ends) > 1:
            self._file.flush()
            self._ends = [np.concatenate(self._ends)]
        return self._ends[0]

    def _read(self, docs: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The stored sets of ``docs`` (sorted), concatenated: one read per run of
        consecutive documents, so memory holds only what this step needs."""
        run_first, run_last = _runs(docs)
        return _read_ranges(self._file, offsets[run_first], offsets[run_last + 1])


def _runs(docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first and last document of each run of consecutive ones of ``docs`` (sorted, distinct)."""
    if not len(docs):
        return docs, docs
    breaks = np.flatnonzero(np.diff(docs) != 1) + 1
    return docs[np.concatenate([[0], breaks])], docs[np.concatenate([breaks - 1, [len(docs) - 1]])]


def _append_file(target: Any, source: Path | Location) -> int:
    """Appends the bytes of the file ``source`` (a path or a URL) to the open file ``target``,
    a few MB at a time; returns how many."""
    before = target.tell()
    with source.open("rb") as stream:
        shutil.copyfileobj(stream, target, COPY_BYTES)
    return target.tell() - before


def _write_part(path: Path | Location, data: bytes) -> None:
    """Writes a part a task hands on (``BandPartitions``, ``SetParts``), its folder made first
    (on an object store folders are only its keys' prefixes: nothing is made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _read_ranges(file: Any, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The uint32 values ``begin[i]:end[i]`` of ``file``, concatenated."""
    values = np.empty(int((end - begin).sum()), dtype=np.uint32)
    view = memoryview(values).cast("B")
    fd, at = file.fileno(), 0
    for lo, hi in zip((begin * 4).tolist(), (end * 4).tolist()):
        if hi > lo and os.preadv(fd, [view[at:at + hi - lo]], lo) != hi - lo:
            raise OSError(f"short read of {file.name} at byte {lo}")
        at += hi - lo
    return values


class SignatureFile:
    """The signatures (``signatures``) of documents 0, 1, 2... in a temporary file, deleted
    with this object: what a drop would otherwise hold whole (``width * 4`` bytes a
    document). Read back as the rows of given documents."""

    def __init__(self, width: int) -> None:
        self.width, self.rows = width, 0
        self._file = tempfile.TemporaryFile(prefix="dedup-signatures-")

    def add(self, signature: np.ndarray) -> None:
        """Appends the signatures of a batch of documents (numbered on from those already added)."""
        self._file.write(np.ascontiguousarray(signature, dtype=np.uint32).tobytes())
        self._file.flush()
        self.rows += len(signature)

    def add_part(self, part: Path | Location, rows: int) -> None:
        """Appends the signatures of ``rows`` documents a signing task wrote to the file ``part``
        (``SetParts``): a copy of its bytes."""
        copied = _append_file(self._file, part)
        self._file.flush()
        if copied != 4 * rows * self.width:
            raise ValueError(f"{part} holds {copied // (4 * self.width):,} signatures, not {rows:,}")
        self.rows += rows

    def read(self, docs: np.ndarray) -> np.ndarray:
        """The signatures of ``docs`` (distinct, any order), shape (len(docs), width)."""
        order = np.argsort(docs, kind="stable")
        run_first, run_last = _runs(np.asarray(docs, dtype=np.int64)[order])
        rows = np.empty((len(docs), self.width), dtype=np.uint32)
        values = _read_ranges(self._file, run_first * self.width, (run_last + 1) * self.width)
        rows[order] = values.reshape(-1, self.width)
        return rows


@dataclass(frozen=True)
class BandPartitions:
    """The LSH band keys of documents 0, 1, 2... as per-band partitions in ``folder`` (a path
    every worker reads and writes, or a URL: ``io.Location``), datatrove's layout between its
    signing and bucketing steps: the task that signs a batch writes each band's keys of its
    documents (``add``: ``band=NNN/rows-FIRSTROW.u64``, raw uint64), and a band's task reads
    that band's partitions itself (``band_pairs``). The keys go from the signing workers to
    the grouping ones through storage; the driver only names the bands."""

    folder: Path | Location
    rows: int = 0  # documents signed (``signed``), known once every batch is

    def add(self, first_row: int, signature: np.ndarray, params: MinHashParams) -> None:
        """Writes the keys of every band of the documents ``first_row``, ``first_row + 1``... (their ``signature``)."""
        for band in range(params.all_bands):
            _write_part(self.folder / f"band={band:03d}" / f"rows-{first_row:012d}.u64",
                        band_keys(signature, params, band).astype("<u8").tobytes())

    def keys(self, band: int, docs: np.ndarray) -> np.ndarray:
        """The keys of band ``band`` of the documents ``docs``, read from its partitions."""
        folder = self.folder / f"band={band:03d}"
        keys, filled = np.empty(self.rows, dtype=np.uint64), 0
        for part in sorted(folder.iterdir()) if self.rows else []:  # zero-padded first rows: in row order
            values = np.frombuffer(part.read_bytes(), dtype="<u8")
            if filled + len(values) <= self.rows:
                keys[filled:filled + len(values)] = values
            filled += len(values)
        if filled != self.rows:
            raise ValueError(f"{folder} holds the keys of {filled:,} documents, not {self.rows:,}")
        return keys[docs]

    def band_pairs(self, docs: np.ndarray, band: int, max_bucket_size: int) -> np.ndarray:
        """``bucket_pairs`` of band ``band`` of the documents ``docs`` (in rank order), its keys read here."""
        return bucket_pairs(None, self.keys(band, docs), max_bucket_size)


@dataclass(frozen=True)
class SetParts:
    """The shingle sets (``shingle_sets``), ``detail_sets`` and signatures of documents 0, 1,
    2... as a part a signed batch in ``folder`` (a path every worker reads and writes, or a
    URL: ``io.Location``), datatrove's model: workers write, later workers read storage, the
    driver holds only small things. The task that signs a batch writes its parts (``add``:
    ``KIND/rows-FIRSTROW.u32``, raw uint32, the layout of ``ShingleSets`` and
    ``SignatureFile``) and returns the sizes of its sets only; the driver appends the parts'
    bytes to its own files (``ShingleSets.add_part``, ``SignatureFile.add_part``), and a task
    verifying pairs reads the sets of its documents from the parts itself (``read``)."""

    folder: Path | Location
    rows: tuple[int, ...] = ()  # the first document of each part, in order (known once every batch is signed)

    SHINGLE_SETS, DETAIL_SETS, SIGNATURES = "shingle_sets", "detail_sets", "signatures"

    def path(self, kind: str, first_row: int) -> Path | Location:
        return self.folder / kind / f"rows-{first_row:012d}.u32"

    def add(self, first_row: int, shingles: Shingles, signature: np.ndarray,
            lead: int) -> tuple[np.ndarray, np.ndarray]:
        """Writes the parts of the documents ``first_row``, ``first_row + 1``... (their
        ``shingles`` and ``signature``); returns the size of each shingle set and of each of
        their ``detail_sets`` (``lead``: ``lead_shingles``), uint32."""
        sets, details = shingle_sets(shingles), detail_sets(shingles, lead)
        for kind, values in ((self.SHINGLE_SETS, sets[0]), (self.DETAIL_SETS, details[0]),
                             (self.SIGNATURES, signature)):
            _write_part(self.path(kind, first_row), np.ascontiguousarray(values, dtype=np.uint32).tobytes())
        return sets[1].astype(np.uint32), details[1].astype(np.uint32)

    def read(self, kind: str, starts: np.ndarray, begin: np.ndarray, end: np.ndarray,
             gap_bytes: int | None = None, block_bytes: int = READ_BLOCK_BYTES) -> np.ndarray:
        """The values ``begin[i]:end[i]`` of the parts of ``kind`` read as one file, concatenated
        (``starts``: where each part of ``rows`` begins in that file, ``ShingleSets.ranges``).
        A step's sets lie scattered over the parts, and on an object store every read is a
        request: ranges at most ``gap_bytes`` apart (READ_GAP_BYTES at a URL, else
        PATH_READ_GAP_BYTES) are read as one block of at most ``block_bytes`` (``coalesced``)
        and sliced out of it, a block running on into the next part read on there; a task
        holds one block at a time."""
        if gap_bytes is None:
            gap_bytes = READ_GAP_BYTES if isinstance(self.folder, Location) else PATH_READ_GAP_BYTES
        at = np.zeros(len(begin) + 1, dtype=np.int64)  # where each range goes in the values
        np.cumsum(end - begin, out=at[1:])
        values, files = np.empty(int(at[-1]), dtype=np.uint32), {}
        at, lows, highs = at.tolist(), begin.tolist(), end.tolist()
        try:
            for block_begin, block_end, ranges in coalesced(begin, end, gap_bytes // 4, block_bytes // 4):
                block = self._read_block(kind, starts, block_begin, block_end, files)
                for i in ranges:
                    values[at[i]:at[i + 1]] = block[lows[i] - block_begin:highs[i] - block_begin]
        finally:
            for file in files.values():
                file.close()
        return values

    def _read_block(self, kind: str, starts: np.ndarray, begin: int, end: int, files: dict[int, Any]) -> np.ndarray:
        """The values ``begin:end`` of the parts of ``kind`` as one file: a read of each part
        they lie in (``files``: the parts opened so far, by number)."""
        pieces = []
        first, last = (np.searchsorted(starts, [begin, end - 1], side="right") - 1).tolist()
        for part in range(first, last + 1):
            lo, hi = max(begin, int(starts[part])), (min(end, int(starts[part + 1])) if part < last else end)
            if hi > lo:
                if part not in files:
                    path, filesystem = arrow_file(self.path(kind, self.rows[part]))
                    files[part] = (filesystem or pafs.LocalFileSystem()).open_input_file(str(path))
                data = files[part].read_at(4 * (hi - lo), 4 * (lo - int(starts[part])))
                if len(data) != 4 * (hi - lo):
                    raise ValueError(f"{self.path(kind, self.rows[part])} ends before value {hi - int(starts[part]):,}")
                pieces.append(np.frombuffer(data, dtype=np.uint32))
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def coalesced(begin: np.ndarray, end: np.ndarray, gap: int, most: int) -> Iterator[tuple[int, int, list[int]]]:
    """The blocks that cover the non-empty ranges ``begin[i]:end[i]``, as (begin, end, the
    ranges ``i`` inside): ranges taken by where they begin, each joining the block before
    when it begins at most ``gap`` after that block's end and the block stays within
    ``most`` (a longer range is a block of its own)."""
    ranges = np.flatnonzero(end > begin)
    ranges = ranges[np.argsort(begin[ranges], kind="stable")]
    block: list[int] = []
    for i, lo, hi in zip(ranges.tolist(), begin[ranges].tolist(), end[ranges].tolist()):
        if block and lo - block_end <= gap and max(hi, block_end) - block_begin <= most:
            block.append(i)
            block_end = max(hi, block_end)
        else:
            if block:
                yield block_begin, block_end, block
            block, block_begin, block_end = [i], lo, hi
    if block:
        yield block_begin, block_end, block
