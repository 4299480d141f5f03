"""LSH bucket work of the dedup stage: candidate pairs with ``max_bucket_size`` and without.

    python benchmarks/dedup_bucket_cap.py CORPUS.parquet      # e.g. the corpus.parquet that
                                                              # dedup_vs_datatrove.py --workdir keeps

The articles (a table with id and text, as the clean stage writes it) are signed as the
stage signs them; then ``minhash.candidate_pairs`` runs twice on the same signatures: with
the cap of params.yaml (a bucket bigger than it pairs its members with its first member
only) and with no cap (every pair of a bucket). Prints the biggest buckets, the candidate
pairs and the seconds of each, and the ratios: what the cap bounds on real news (templated
reports and exact copies make the big buckets).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a script from anywhere
from pipeline.engines.local import LocalEngine  # noqa: E402
from pipeline.plumbing.params import load_params  # noqa: E402
from pipeline.stages import dedup  # noqa: E402
from pipeline.text import minhash  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="Parquet table of articles (id, text)")
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    args = parser.parse_args(argv)
    params = dedup.DedupParams.from_params(load_params(args.params))
    articles = pl.scan_parquet(args.corpus).select("id", "text")
    signature = dedup.signature_table(articles, params, "articles")["signature"].to_numpy()
    sizes = np.concatenate([
        pl.DataFrame({"key": minhash.band_keys(signature, params.minhash, band)}).group_by("key").len()["len"].to_numpy()
        for band in range(params.minhash.bands)
    ])
    over = sizes[sizes > params.max_bucket_size]
    print(f"{len(signature):,} articles, {params.minhash.bands} bands: biggest buckets {sorted(sizes.tolist())[-5:][::-1]}; "
          f"{len(over):,} bucket(s) over the cap of {params.max_bucket_size} "
          f"({int((over * (over - 1) // 2).sum()):,} pairs inside them)")
    counted = {}
    for label, cap in (("capped", params.max_bucket_size), ("uncapped", len(signature))):
        started = time.perf_counter()
        counted[label] = (minhash.candidate_pairs(signature, params.minhash, cap, LocalEngine().map_tasks).height, time.perf_counter() - started)
        print(f"{label:>9} (max_bucket_size {cap:,}): {counted[label][0]:,} candidate pairs in {counted[label][1]:.1f} s")
    (pairs, seconds), (pairs_all, seconds_all) = counted["capped"], counted["uncapped"]
    print(f"capped / uncapped: candidate pairs {pairs / pairs_all:.3f}x, seconds {seconds / seconds_all:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
