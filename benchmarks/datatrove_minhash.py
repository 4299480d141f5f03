"""datatrove's MinHash deduplication, its four stages as its docs run them locally.

Run by benchmarks/dedup_vs_datatrove.py with the Python of a separate environment that has
datatrove (see benchmarks/README.md); not importable from the project's environment.

    python datatrove_minhash.py INPUT_DIR WORK_DIR --ngram 5 --buckets 14 --rows 8 --workers 2

INPUT_DIR holds Parquet shards (columns id, text), one task per shard. Writes the
deduplicated corpus to WORK_DIR/output and the decisions to WORK_DIR/decisions.csv
(id, cluster, removed) for every document that datatrove put in a cluster.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter
from datatrove.utils.hashing import HashConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--ngram", type=int, default=5)
    parser.add_argument("--buckets", type=int, default=14)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--language", default="ar")
    args = parser.parse_args()

    shards = sorted(args.input.glob("*.parquet"))
    config = MinhashConfig(
        n_grams=args.ngram, num_buckets=args.buckets, hashes_per_bucket=args.rows,
        hash_config=HashConfig(precision=64),
    )
    work = args.work
    reader = ParquetReader(str(args.input), glob_pattern="*.parquet", text_key="text", id_key="id")
    def common(step: str) -> dict:  # each executor keeps its own completion markers
        return {"workers": args.workers, "logging_dir": str(work / "logs" / step), "start_method": "fork"}

    signatures = LocalPipelineExecutor(
        pipeline=[reader, MinhashDedupSignature(output_folder=str(work / "signatures"), config=config, language=args.language)],
        tasks=len(shards), **common("signatures"),
    )
    buckets = LocalPipelineExecutor(
        pipeline=[MinhashDedupBuckets(input_folder=str(work / "signatures"), output_folder=str(work / "buckets"), config=config)],
        tasks=config.num_buckets, depends=signatures, **common("buckets"),
    )
    clusters = LocalPipelineExecutor(
        pipeline=[MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove_ids"),
                                      config=config, save_cluster_id=True)],
        tasks=1, depends=buckets, **{**common("clusters"), "workers": 1},
    )
    filtered = LocalPipelineExecutor(
        pipeline=[reader, MinhashDedupFilter(input_folder=str(work / "remove_ids")),
                  ParquetWriter(output_folder=str(work / "output"))],
        tasks=len(shards), depends=clusters, **common("filter"),
    )
    filtered.run()

    with (work / "decisions.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "cluster", "removed"])
        for rank, shard in enumerate(shards):
            ids = pq.read_table(shard, columns=["id"]).column("id").to_pylist()
            cluster_file = work / "remove_ids" / f"{rank:06d}.clusters"
            remove_file = work / "remove_ids" / f"{rank:06d}.remove"
            if not cluster_file.exists():
                continue
            pairs = np.fromfile(cluster_file, dtype="<u4").reshape(-1, 2)
            removed = set(np.fromfile(remove_file, dtype="<u4").tolist()) if remove_file.exists() else set()
            for doc, cluster in pairs.tolist():
                out.writerow([ids[doc], cluster, int(doc in removed)])


if __name__ == "__main__":
    main()
