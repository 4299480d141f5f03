r"""Dedup's shingle sets on the two paths: what the driver receives and sends per article on
a cluster (measured on signing batches of real articles, scaled to 50M articles), and what
handing the sets over through storage (``minhash.SetParts``) would cost the local engine.

    .venv/bin/python benchmarks/dedup_sets.py --input /tmp/s16/b300/300000/project-whole/build/clean/drop=base/articles.parquet

Two ways, on the same ``--batches`` signing batches of ``dedup.batch_size`` articles:

* in memory (the local engine's path, and the Ray engine's before): a ``sign_batch`` result
  holds the batch's signatures and shingles; the driver computes the shingle sets and their
  ``detail_sets`` and writes them and the signatures to its files; a verifying task is sent
  the sets of its step's articles (``ShingleSets.subset``);
* parts (the Ray engine's path now): the signing task writes the sets, detail sets and
  signatures to parts in a folder (``SetParts.add``) and returns their sizes; the driver
  appends the parts' bytes to its files (``add_part``); a verifying task is sent where its
  articles' sets are and reads them from the parts (``SetParts.read``).

Prints, per way: the bytes an article of a signing result pickled (what Ray sends the
driver) and of the verifying tasks' items (what the driver sends), also for 50M articles,
and the bytes of the parts the driver copies into its files;
and the CPU seconds, in this one process, of signing with the driver's part and of
verifying the candidate pairs of those articles (``verify_on_engine`` on the local engine,
``verify_batch_pairs`` a step), with the ratio parts / in memory. Checks that both ways
give the same files and overlaps. A few articles are signed and verified first, untimed.
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

from pipeline.engines.local import LocalEngine  # noqa: E402
from pipeline.plumbing.io import scan_table  # noqa: E402
from pipeline.plumbing.params import load_params  # noqa: E402
from pipeline.stages import dedup  # noqa: E402
from pipeline.text import minhash  # noqa: E402

AT_SCALE = 50_000_000
WAYS = ("in memory", "parts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True, help="a drop's clean articles (Parquet file or folder)")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--batches", type=int, default=3, help="signing batches of dedup.batch_size articles")
    args = parser.parse_args()

    params = dedup.DedupParams.from_params(load_params(args.params))
    articles = dedup.signing_input(scan_table(args.input))
    batches = [articles.slice(first, params.batch_size).collect()
               for first in range(0, args.batches * params.batch_size, params.batch_size)]
    n = sum(batch.height for batch in batches)
    warm_up(batches[0].head(500), params)
    sent: dict[str, dict[str, float]] = {way: {} for way in WAYS}
    cpu: dict[str, dict[str, float]] = {way: {} for way in WAYS}
    with tempfile.TemporaryDirectory(prefix="dedup-sets-") as folder:
        files, overlaps, copied = {}, {}, {}
        for way in WAYS:
            parts = minhash.SetParts(Path(folder) / "parts") if way == "parts" else None
            shingle_sets = minhash.ShingleSets(Path(folder) / f"{way}.sets")
            details = minhash.ShingleSets(Path(folder) / f"{way}.details")
            signatures = minhash.SignatureFile(params.minhash.width)
            spent, first, received = 0.0, 0, 0
            for batch in batches:  # the task's work, then the driver's (not the pickling: the local engine's path)
                started = time.process_time()
                signed = dedup.sign_batch(batch, first, params, keep_shingles=True, with_figures=True, set_parts=parts)
                spent += time.process_time() - started
                received += len(pickle.dumps(signed, protocol=pickle.HIGHEST_PROTOCOL))
                started = time.process_time()
                if parts is None:
                    signatures.add(signed.signatures)
                    shingle_sets.add(signed.shingles)
                    details.add_sets(minhash.detail_sets(signed.shingles, params.minhash.lead_shingles))
                else:
                    shingle_sets.add_part(parts.path(parts.SHINGLE_SETS, first), signed.set_sizes[0])
                    details.add_part(parts.path(parts.DETAIL_SETS, first), signed.set_sizes[1])
                    signatures.add_part(parts.path(parts.SIGNATURES, first), batch.height)
                first += batch.height
                spent += time.process_time() - started
            cpu[way]["signing (task + driver)"] = spent
            sent[way]["signing result, received"] = received / n
            signature = signatures.read(np.arange(n))
            pairs = minhash.candidate_pairs(signature, params.minhash, params.max_bucket_size, LocalEngine().map_tasks)
            a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy()
            if parts is not None:
                parts = replace(parts, rows=tuple(range(0, n, params.batch_size)))
            started = time.process_time()
            overlaps[way] = list(dedup.verify_on_engine(LocalEngine(), shingle_sets, details, a, b, params, parts))
            cpu[way]["verifying"] = time.process_time() - started
            sent[way]["verifying tasks' items, sent"] = verify_items(shingle_sets, details, a, b, params, parts) / n
            shingle_sets.keep(n), details.keep(3 * n)  # (written out)
            files[way] = [(Path(folder) / f"{way}.{kind}").read_bytes() for kind in ("sets", "details")]
            files[way].append(signature.tobytes())
            if parts is not None:
                copied[way] = sum(len(data) for data in files[way]) / n
            shingle_sets.__exit__(), details.__exit__()
        assert files["parts"] == files["in memory"]
        assert all(np.array_equal(getattr(x, name), getattr(y, name)) for (_, x), (_, y) in
                   zip(overlaps["parts"], overlaps["in memory"], strict=True) for name in ("jaccard", "lead"))

    print(f"{n:,} articles ({len(batches)} signing batches), {len(a):,} candidate pairs; bytes an article "
          "through the driver:")
    print(f"| what | {' | '.join(WAYS)} | at {AT_SCALE / 1e6:.0f}M articles, {' / '.join(WAYS)} |")
    print("|---|---|---|---|")
    for what in sent["parts"]:
        sizes = [sent[way][what] for way in WAYS]
        print(f"| {what} | {' | '.join(f'{size:,.0f}' for size in sizes)} | "
              f"{' / '.join(f'{size * AT_SCALE / 1e9:,.1f} GB' for size in sizes)} |")
    print(f"parts copied from storage into the driver's files: {copied['parts']:,.0f} bytes an article "
          f"({copied['parts'] * AT_SCALE / 1e9:,.1f} GB at {AT_SCALE / 1e6:.0f}M)")
    print("CPU s in this process (local engine), parts / in memory:")
    for what in cpu["parts"]:
        print(f"  {what}: in memory {cpu['in memory'][what]:.2f}, parts {cpu['parts'][what]:.2f} "
              f"(ratio {cpu['parts'][what] / cpu['in memory'][what]:.2f})")


def warm_up(batch: pl.DataFrame, params: dedup.DedupParams) -> None:
    """Signs and verifies a few articles once, so neither way timed pays the first call's
    imports and set-up (scipy's, Polars' regular expressions)."""
    signed = dedup.sign_batch(batch, 0, params, keep_shingles=True, with_figures=True)
    with minhash.ShingleSets() as shingle_sets, minhash.ShingleSets() as details:
        shingle_sets.add(signed.shingles)
        details.add_sets(minhash.detail_sets(signed.shingles, params.minhash.lead_shingles))
        docs = np.arange(batch.height)
        dedup.verify(shingle_sets, docs[:-1], docs[1:], params, details)


def verify_items(shingle_sets: minhash.ShingleSets, details: minhash.ShingleSets, a: np.ndarray, b: np.ndarray,
                 params: dedup.DedupParams, parts: minhash.SetParts | None) -> int:
    """Bytes of the verifying tasks' items, pickled: the sets of a step's documents (in
    memory, the Ray engine's before), or where they are (parts)."""
    total = 0
    for first in range(0, len(a), params.verify_batch_pairs):
        x, y = a[first:first + params.verify_batch_pairs], b[first:first + params.verify_batch_pairs]
        docs = np.unique(np.concatenate([x, y]))
        detail_docs = (3 * docs[:, None] + np.arange(3)).ravel()
        read = (shingle_sets.subset, details.subset) if parts is None else (shingle_sets.ranges, details.ranges)
        item = (read[0](docs), read[1](detail_docs), np.searchsorted(docs, x), np.searchsorted(docs, y))
        total += len(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))
    return total


if __name__ == "__main__":
    main()
