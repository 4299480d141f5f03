"""Word hashing of the dedup stage: numpy over the Arrow buffer vs a Python call per word.

    python benchmarks/dedup_word_hashing.py              # 2 SaudiNewsNet days, 3 rounds
    python benchmarks/dedup_word_hashing.py --days 5

The words: the match-key words of real SaudiNewsNet articles (the daily zips of the shared
corpus), in batches of ``dedup.batch_size`` articles as the stage signs them. Compared, on
the same batches, alternating, best of the rounds: ``minhash.word_hashes`` (each distinct
word of a batch hashed by numpy over the batch's Arrow buffer) and the previous way (each
distinct word hashed by a Python call to xxh3). Prints CPU seconds and the ratios, for
hashing the distinct words alone and for the whole step (finding the distinct words and
mapping the hashes back dominate it), and the hash collisions among the distinct words of
each way (both should be 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from pathlib import Path

import polars as pl
import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a script from anywhere
from benchmarks.shared_corpus import SAUDI_ZIPS  # noqa: E402
from pipeline.plumbing.params import load_params  # noqa: E402
from pipeline.text import arabic_text, minhash  # noqa: E402


def xxh3_per_word(words: pl.Series) -> pl.Series:
    """The previous word hashing: one Python call per distinct word."""
    distinct = words.unique()
    hashes = pl.Series([xxhash.xxh3_64_intdigest(word.encode("utf-8")) for word in distinct.to_list()], dtype=pl.UInt64)
    return words.replace_strict(distinct, hashes, return_dtype=pl.UInt64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=2, help="daily zips of SaudiNewsNet to read")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    batch_size = int(load_params(Path(__file__).resolve().parents[1] / "params.yaml")["dedup"]["batch_size"])
    texts = []
    for archive in sorted(SAUDI_ZIPS.glob("*.zip"))[: args.days]:
        with zipfile.ZipFile(archive) as zipped:
            texts += [record["content"] or "" for record in json.loads(zipped.read(zipped.namelist()[0]))]
    words = pl.DataFrame({"text": texts}).select(w=arabic_text.key_words(arabic_text.match_key(pl.col("text"))))["w"]
    batches = [words.slice(start, batch_size).explode().drop_nulls() for start in range(0, words.len(), batch_size)]
    n_words = sum(batch.len() for batch in batches)
    print(f"{len(texts):,} articles, {n_words:,} words in {len(batches)} batch(es) of up to {batch_size:,} articles")

    distinct = [batch.unique() for batch in batches]
    ways = {  # name: (hash the distinct words, the whole step: distinct words, hashes, mapped back)
        "numpy over Arrow (now)": (lambda d: minhash._utf8_hashes(d.to_arrow()), minhash.word_hashes),
        "xxh3 per word (before)": (lambda d: [xxhash.xxh3_64_intdigest(w.encode("utf-8")) for w in d.to_list()],
                                   xxh3_per_word),
    }
    best = {(name, part): float("inf") for name in ways for part in (0, 1)}
    for _ in range(args.rounds):
        for name, steps in ways.items():
            for part, inputs in ((0, distinct), (1, batches)):
                started = time.process_time()
                for words_of_batch in inputs:
                    steps[part](words_of_batch)
                best[name, part] = min(best[name, part], time.process_time() - started)
    print(f"{'':<24} {'distinct words hashed':>22} {'whole step (unique + hash + map)':>34}")
    for name, steps in ways.items():
        collisions = sum(d.len() - pl.Series(steps[0](d)).n_unique() for d in distinct)
        print(f"{name:<24} {best[name, 0]:>16.3f} CPU s {best[name, 1]:>28.3f} CPU s   collisions: {collisions}")
    now, before = "numpy over Arrow (now)", "xxh3 per word (before)"
    print(f"now / before: {best[now, 0] / best[before, 0]:.2f}x the CPU time to hash the distinct words, "
          f"{best[now, 1] / best[before, 1]:.2f}x for the whole step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
