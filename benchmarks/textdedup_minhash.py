"""text-dedup's MinHash deduplication (``python -m text_dedup.minhash``), run in-process.

Run by benchmarks/dedup_vs_datatrove.py with the Python of a separate environment that has
text-dedup (it needs Python >= 3.12; see benchmarks/README.md).

    python textdedup_minhash.py INPUT_DIR WORK_DIR --ngram 5 --num-perm 240 --threshold 0.7 [--bands B --rows R]

INPUT_DIR holds Parquet shards (columns id, text). Writes WORK_DIR/decisions.csv
(id, cluster, removed) for every document, cluster being the id of the document kept for it.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--ngram", type=int, default=5)
    parser.add_argument("--num-perm", type=int, default=240)
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--bands", type=int)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    banding = f"bands = {args.bands}\nrows = {args.rows}\n" if args.bands else ""
    (args.work / "config.toml").write_text(f"""
[input]
input_type = "local_files"
file_type = "parquet"

[input.read_arguments]
path = "{args.input}"
split = "train"

[algorithm]
algorithm_name = "minhash"
text_column = "text"
seed = 42
batch_size = 10000
num_perm = {args.num_perm}
threshold = {args.threshold}
{banding}hash_bits = 64
ngram_size = {args.ngram}
check_false_positive = true
num_proc = {args.workers}

[output]
output_dir = "{args.work / 'output'}"
skip_filtering = true
keep_index_column = true
keep_cluster_column = true

[debug]
enable_profiling = false
""")
    os.chdir(args.work)  # text-dedup reads config.toml from the working directory
    from datasets import load_from_disk
    from text_dedup.config import Config
    from text_dedup.minhash import main as minhash_main

    config = Config()
    minhash_main(config)

    table = load_from_disk(str(args.work / "output"))
    index, cluster, ids = table["__INDEX__"], table["__CLUSTER__"], table["id"]
    id_of = dict(zip(index, ids))
    with (args.work / "decisions.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "cluster", "removed"])
        for i, c, doc in zip(index, cluster, ids):
            out.writerow([doc, id_of[c], int(c != i)])


if __name__ == "__main__":
    main()
