r"""Dedup's LSH bands on the two paths: what the driver receives and sends per article on
the Ray engine (measured on one signing batch of real articles, scaled to 50M articles),
and what handing the band keys over through partitions costs the local engine.

    .venv/bin/python benchmarks/dedup_bands.py --input /tmp/s15/b300/300000/project-whole/build/clean/drop=base/articles.parquet

* Signing: a ``sign_batch`` task's result comes back to the driver pickled (Ray's object
  store): its ids, match-key hashes, MinHash signatures, shingles (the driver writes the
  shingle sets and their details to its files) and figures; each part pickled alone.
* LSH bands: before, the driver read each band's keys of the drop's distinct texts from its
  signature file (``SignatureFile.band_keys``, since removed) and sent them to the band's
  task (8 bytes an article a band); now the
  signing tasks write them as per-band partitions (``minhash.BandPartitions``) and the
  driver sends each band's task the band's number, and all of them once the rank order of
  the distinct texts (8 bytes an article). The partitions' bytes go from the signing
  workers to storage and from there to the band tasks, not through the driver.

Prints bytes an article of each part, and the total for 50M articles. Then, with
``--local-batches N`` (default 3), the band keys of N signing batches two ways, in one
run, CPU seconds and their ratio: every band's keys computed from the signature file, read
back 65,536 articles at a time (the removed ``SignatureFile.band_keys``, what the local
engine did before), against the signing
batches writing per-band partitions and each band reading them back (what both engines do
now, in a temporary folder); the bands' grouping itself (``bucket_pairs``) is the same on
both and is left out.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.plumbing.io import scan_table  # noqa: E402
from pipeline.plumbing.params import load_params  # noqa: E402
from pipeline.stages import dedup  # noqa: E402
from pipeline.text import minhash  # noqa: E402

AT_SCALE = 50_000_000
READ_ROWS = 1 << 16  # signatures read back at a time (the removed ``SignatureFile.band_keys``)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True, help="a drop's clean articles (Parquet file or folder)")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--local-batches", type=int, default=3, help="signing batches for the local comparison")
    args = parser.parse_args()

    params = dedup.DedupParams.from_params(load_params(args.params))
    articles = scan_table(args.input).select("id", "text")
    batch = dedup.signing_input(articles.head(params.batch_size)).collect()
    started = time.process_time()
    signed = dedup.sign_batch(batch, 0, params, keep_shingles=True, with_figures=True)
    n = batch.height
    parts = {
        "ids": signed.ids, "key hashes": signed.key_hashes, "signatures": signed.signatures,
        "shingles": replace(signed.shingles, words=None, word_offsets=None),
        "word hashes (details)": (signed.shingles.words, signed.shingles.word_offsets), "figures": signed.figures,
    }
    sizes = {name: len(pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)) / n for name, part in parts.items()}
    whole = len(pickle.dumps(signed, protocol=pickle.HIGHEST_PROTOCOL)) / n
    bands = params.minhash.all_bands
    print(f"{n:,} articles signed in {time.process_time() - started:.1f} CPU s; bytes an article through the driver:")
    print(f"| what | bytes an article | at {AT_SCALE / 1e6:.0f}M articles |")
    print("|---|---|---|")
    for name, size in sizes.items():
        print(f"| signing result: {name} | {size:,.0f} | {size * AT_SCALE / 1e9:,.1f} GB |")
    print(f"| signing result, whole | {whole:,.0f} | {whole * AT_SCALE / 1e9:,.1f} GB |")
    keys, order = 8 * bands, np.dtype(np.int64).itemsize
    print(f"| LSH bands before: each band's keys sent to its task ({bands} bands) | {keys} "
          f"| {keys * AT_SCALE / 1e9:,.1f} GB |")
    print(f"| LSH bands now: the rank order, once | {order} | {order * AT_SCALE / 1e9:,.1f} GB |")
    print(f"LSH bands: now / before = {order / keys:.3f}; band keys written to storage by the signing tasks: "
          f"{keys} bytes an article ({keys * AT_SCALE / 1e9:,.1f} GB at {AT_SCALE / 1e6:.0f}M)")

    local_band_keys(articles, params, args.local_batches)


def removed_band_keys(signature_file: minhash.SignatureFile, params: minhash.MinHashParams, band: int) -> np.ndarray:
    """The removed ``SignatureFile.band_keys``: a band's keys of every stored signature, read READ_ROWS at a time."""
    keys = np.empty(signature_file.rows, dtype=np.uint64)
    width = signature_file.width
    for first in range(0, signature_file.rows, READ_ROWS):
        last = min(first + READ_ROWS, signature_file.rows)
        block = minhash._read_ranges(signature_file._file, np.array([first * width]), np.array([last * width]))
        keys[first:last] = minhash.band_keys(block.reshape(-1, width), params, band)
    return keys


def local_band_keys(articles: pl.LazyFrame, params: dedup.DedupParams, batches: int) -> None:
    """CPU s of the local engine's band keys: from its signature file, and through partitions."""
    batch_signatures = []
    for first in range(0, batches * params.batch_size, params.batch_size):
        words = dedup.with_match_words(articles.slice(first, params.batch_size)).select("words").collect()["words"]
        batch_signatures.append(minhash.signatures(minhash.shingle_hashes(words, params.minhash.ngram), params.minhash))
    rows = sum(len(signature) for signature in batch_signatures)
    docs = np.random.default_rng(1).permutation(rows)  # a rank order
    bands = range(params.minhash.all_bands)

    started = time.process_time()
    signature_file = minhash.SignatureFile(params.minhash.width)
    for signature in batch_signatures:
        signature_file.add(signature)
    from_file = [removed_band_keys(signature_file, params.minhash, band)[docs] for band in bands]
    file_cpu = time.process_time() - started

    with tempfile.TemporaryDirectory(prefix="dedup-bands-") as folder:
        started = time.process_time()
        partitions = minhash.BandPartitions(Path(folder), rows)
        first = 0
        for signature in batch_signatures:
            partitions.add(first, signature, params.minhash)
            first += len(signature)
        from_partitions = [partitions.keys(band, docs) for band in bands]
        partitions_cpu = time.process_time() - started
    assert all(np.array_equal(x, y) for x, y in zip(from_file, from_partitions))
    print(f"local engine, band keys of {rows:,} articles ({batches} signing batches, {len(bands)} bands): "
          f"signature file {file_cpu:.2f} CPU s, partitions {partitions_cpu:.2f} CPU s "
          f"(partitions / signature file = {partitions_cpu / file_cpu:.2f})")


if __name__ == "__main__":
    main()
