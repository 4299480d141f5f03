r"""The verifying tasks' reads of the set parts (``minhash.SetParts.read``) on a local path
and on ``s3://``: ``--baseline``'s reads (one ``read_at`` a set) against this checkout's
(ranges close together read as one block, ``minhash.coalesced``), at several gaps.

    .venv/bin/python benchmarks/set_parts_reads.py --workdir /tmp/set-parts-reads --days 6 --rounds 3

The articles: the first ``--days`` daily zips of SaudiNewsNet (the shared corpus: real
reprints across outlets), through the real ingest and clean (once, kept in WORKDIR). Their
real dedup (local engine) gives the candidate pairs in the order they are verified; the
articles are signed into set parts (``signature_table`` with ``set_parts``, a part a
``dedup.batch_size`` batch), which are also uploaded to a moto S3 server
(tests/s3_server.py). Each verifying step (``dedup.verify_task_items``, as
``verify_on_engine`` sends them) reads its shingle sets and detail sets as ``_verify_task``
does; the ways run in turn, ``--rounds`` times, the order alternating.

Printed: on each storage, what a ``read_at`` costs (4 bytes, and the bytes a second of 8
MiB reads beyond that), hence the gap below which reading is cheaper than another request;
then per storage and way: reads (``read_at`` calls, counted by wrapping the opened
pyarrow files) and bytes read (the same on both storages: the reads do not depend on
them), CPU s and wall s over all the steps, and the ratios to the baseline. Checks that
every way returns the same values. Then the local engine's reads of the driver's files
(``ShingleSets._read``: ``minhash._read_ranges``, a ``preadv`` a run of documents) against
the same coalescing with a scatter ``preadv`` (wanted bytes into the values, the gaps
into a scratch buffer), at the same gaps, CPU s.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
from fsspec.implementations.arrow import ArrowFSWrapper

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from benchmarks.dedup_eval import cleaned_articles  # noqa: E402
from benchmarks.shared_corpus import SAUDI_ZIPS  # noqa: E402
from pipeline.plumbing.io import Location, arrow_file  # noqa: E402
from pipeline.plumbing.params import load_params  # noqa: E402
from pipeline.stages import dedup  # noqa: E402
from pipeline.text import minhash  # noqa: E402
from s3_server import BUCKET, S3Server, environment_with  # noqa: E402

BASELINE = "35e2c18"  # main before coalescing: one read_at a set
KiB = 1 << 10


class CountedReads(pafs.FSSpecHandler):
    """The handler of a pyarrow file system (``pafs.PyFileSystem(CountedReads(filesystem))``)
    that is `filesystem` but counts the reads of the files it opens for random access
    (``read_at`` is a seek and a read of the file object wrapped), their bytes and the
    largest."""

    def __init__(self, filesystem: pafs.FileSystem) -> None:
        super().__init__(ArrowFSWrapper(filesystem))
        self.filesystem, self.reads, self.bytes, self.largest = filesystem, 0, 0, 0

    def open_input_file(self, path: str) -> pa.PythonFile:
        return pa.PythonFile(_CountedFile(self.filesystem.open_input_file(path), self), mode="r")


class _CountedFile:
    def __init__(self, file: pa.NativeFile, counts: CountedReads) -> None:
        self._file, self._counts = file, counts

    def read(self, nbytes: int = -1) -> bytes:
        data = self._file.read(nbytes)
        self._counts.reads += 1
        self._counts.bytes += len(data)
        self._counts.largest = max(self._counts.largest, len(data))
        return data

    def __getattr__(self, name: str) -> Any:  # seek, tell, size, close...: the file's own
        return getattr(self._file, name)


def counted(folder: Path | Location) -> tuple[Location, CountedReads]:
    """`folder` (local or at a URL) read through a `CountedReads` file system."""
    filesystem, path = (pafs.LocalFileSystem(), str(folder)) if isinstance(folder, Path) else (
        folder.filesystem, folder.path)
    counts = CountedReads(filesystem)
    return Location(f"counted://{path}", (pafs.PyFileSystem(counts), path)), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="the cleaned articles are kept here")
    parser.add_argument("--days", type=int, default=6, help="SaudiNewsNet daily zips, the first ones")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--baseline", default=BASELINE, help="the revision whose SetParts.read is the baseline")
    parser.add_argument("--gaps-kib", type=int, nargs="+", default=[0, 64, 256, 1024, 4096])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--verify-batch-pairs", type=int, help="pairs a step (default: params.yaml's): fewer, sparser steps")
    args = parser.parse_args()
    if not 1 <= args.days <= len(list(SAUDI_ZIPS.glob("*.zip"))) or args.rounds < 1 or min(args.gaps_kib) < 0:
        parser.error(f"--days must be 1 to the number of zips in {SAUDI_ZIPS}, --rounds at least 1, gaps 0 or more")

    params = load_params(args.params)
    dedup_params = dedup.DedupParams.from_params(params)
    if args.verify_batch_pairs:
        dedup_params = replace(dedup_params, verify_batch_pairs=args.verify_batch_pairs)
    articles = saudi_articles(args.workdir, args.days, params)
    ways: dict[str, Callable] = {"baseline": baseline_read(args.baseline)}
    ways.update({f"gap {gap} KiB": gap_read(gap * KiB) for gap in args.gaps_kib})
    with tempfile.TemporaryDirectory(prefix="set-parts-reads-") as folder, ExitStack() as files:
        shingle_sets = files.enter_context(minhash.ShingleSets())
        details = files.enter_context(minhash.ShingleSets())
        parts = signed_parts(articles, dedup_params, Path(folder) / "parts", shingle_sets, details)
        steps = verifying_steps(articles, dedup_params, shingle_sets, details)
        n_docs = [len(docs) for docs, _, _ in steps]
        print(f"{articles.height:,} articles ({args.days} days of SaudiNewsNet), {len(parts.rows)} parts of "
              f"{dedup_params.batch_size:,}, {sum(part_bytes(parts).values()) / 2**20:.1f} MiB of shingle and detail "
              f"sets; {len(steps)} verifying steps of {dedup_params.verify_batch_pairs:,} pairs, "
              f"{min(n_docs):,}-{max(n_docs):,} articles a step")
        rows = np.array(parts.rows, dtype=np.int64)
        starts = (shingle_sets.ranges(rows)[0], details.ranges(3 * rows)[0])
        with S3Server(REPO / ".venv" / "bin" / "moto_server") as server, environment_with(server.env):
            server.upload(Path(folder) / "parts", f"s3://{BUCKET}/parts")
            storages = {"local path": parts, "s3 (moto)": replace(parts, folder=Location(f"s3://{BUCKET}/parts"))}
            for storage, stored in storages.items():
                latency, bandwidth = request_costs(stored.path(parts.SHINGLE_SETS, 0))
                print(f"{storage}: a read_at of 4 bytes {latency * 1e6:,.0f} µs, {bandwidth / 2**20:.0f} MiB/s beyond: "
                      f"a gap below {latency * bandwidth / KiB:,.0f} KiB is cheaper read than skipped")
            counts = {way: read_counts(read, parts, starts, steps, (shingle_sets, details))
                      for way, read in ways.items()}
            timed = {storage: {way: [] for way in ways} for storage in storages}
            for round_number in range(args.rounds):
                order = list(ways) if round_number % 2 == 0 else list(reversed(ways))
                for storage, stored in storages.items():
                    for way in order:
                        timed[storage][way].append(read_steps(ways[way], stored, starts, steps))
        print_reads(counts, timed, args.rounds)
        local_reads(shingle_sets, details, steps, args.gaps_kib, args.rounds)


def saudi_articles(workdir: Path, days: int, params: dict[str, Any]) -> pl.DataFrame:
    """The clean articles of the first `days` daily zips of SaudiNewsNet (made once in `workdir`)."""
    made = workdir / f"days-{days}"
    if not (made / "clean" / "articles.parquet").exists():
        (made / "zips").mkdir(parents=True, exist_ok=True)
        for archive in sorted(SAUDI_ZIPS.glob("*.zip"))[:days]:
            zipfile.ZipFile(archive).extractall(made / "zips")
        cleaned_articles({"saudi": sorted((made / "zips").glob("*.json"))}, made, params)
    return pl.read_parquet(made / "clean" / "articles.parquet")


def signed_parts(articles: pl.DataFrame, params: dedup.DedupParams, folder: Path, shingle_sets: minhash.ShingleSets,
                 details: minhash.ShingleSets) -> minhash.SetParts:
    """The articles signed into set parts in `folder`, as a cluster's signing tasks write them,
    and copied into the driver's `shingle_sets` and `details`."""
    parts = minhash.SetParts(folder)
    signed = dedup.signature_table(articles.lazy().select("id", "text"), params, "articles", shingle_sets, [], details,
                                   minhash.SignatureFile(params.minhash.width), set_parts=parts)
    return replace(parts, rows=tuple(range(0, signed.height, params.batch_size)))


def verifying_steps(articles: pl.DataFrame, params: dedup.DedupParams, shingle_sets: minhash.ShingleSets,
                    details: minhash.ShingleSets) -> list[tuple]:
    """Each verifying step's articles (rows) and where their sets lie (``verify_task_items``),
    for the candidate pairs of the articles' real dedup, in the order it verifies them."""
    result = dedup.deduplicate(articles.lazy(), params)
    pairs = result.pairs.select("a", "b").collect()
    row = pl.DataFrame({"id": result.ranked_ids}).join(articles.select("id").with_row_index("row"), on="id",
                                                       maintain_order="left")["row"].to_numpy().astype(np.int64)
    a, b = row[pairs["a"].to_numpy()], row[pairs["b"].to_numpy()]
    steps = []
    for first, (shingle_ranges, detail_ranges, x, y) in zip(
            range(0, len(a), params.verify_batch_pairs), dedup.verify_task_items(shingle_sets, details, a, b, params)):
        docs = np.empty(len(shingle_ranges[0]), dtype=np.int64)  # x and y number the step's articles
        docs[x], docs[y] = a[first:first + len(x)], b[first:first + len(y)]
        steps.append((docs, shingle_ranges, detail_ranges))
    return steps


def part_bytes(parts: minhash.SetParts) -> dict[str, int]:
    return {kind: sum(path.stat().st_size for path in (parts.folder / kind).iterdir())
            for kind in (parts.SHINGLE_SETS, parts.DETAIL_SETS)}


def baseline_read(revision: str) -> Callable:
    """``SetParts.read`` of `revision`'s minhash module (loaded from git beside this one's)."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{revision}:pipeline/text/minhash.py"], check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="minhash-baseline-")) / "minhash_baseline.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("minhash_baseline", path)
    module = sys.modules["minhash_baseline"] = importlib.util.module_from_spec(spec)  # (dataclasses look it up)
    spec.loader.exec_module(module)

    def read(parts: minhash.SetParts, kind: str, starts: np.ndarray, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
        return module.SetParts(parts.folder, parts.rows).read(kind, starts, begin, end)

    return read


def gap_read(gap_bytes: int) -> Callable:
    def read(parts: minhash.SetParts, kind: str, starts: np.ndarray, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
        return parts.read(kind, starts, begin, end, gap_bytes=gap_bytes)

    return read


def request_costs(part: Path | Location, small: int = 40, large: int = 4) -> tuple[float, float]:
    """What a read of a part costs: the median wall s of a read of 4 bytes (at spread offsets),
    and the bytes a second of 8 MiB reads beyond that."""
    path, filesystem = arrow_file(part)
    with (filesystem or pafs.LocalFileSystem()).open_input_file(str(path)) as file:
        size = file.size()
        latency = float(np.median([timed_wall(lambda at=at: file.read_at(4, at))
                                   for at in np.linspace(0, size - 4, small).astype(int).tolist()]))
        block = min(size, 8 << 20)
        seconds = float(np.median([timed_wall(lambda: file.read_at(block, 0)) for _ in range(large)]))
    return latency, block / max(seconds - latency, 1e-9)


def timed_wall(work: Callable) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def step_reads(read: Callable, parts: minhash.SetParts, starts: tuple, step: tuple) -> tuple[np.ndarray, np.ndarray]:
    """A verifying step's reads (``dedup._verify_task``'s): its shingle sets and its detail sets."""
    _, (begin, end), (detail_begin, detail_end) = step
    return (read(parts, parts.SHINGLE_SETS, starts[0], begin, end),
            read(parts, parts.DETAIL_SETS, starts[1], detail_begin, detail_end))


def read_steps(read: Callable, parts: minhash.SetParts, starts: tuple, steps: list[tuple]) -> tuple[float, float]:
    """CPU s and wall s of every step's reads."""
    cpu, wall = time.process_time(), time.perf_counter()
    for step in steps:
        step_reads(read, parts, starts, step)
    return time.process_time() - cpu, time.perf_counter() - wall


def read_counts(read: Callable, parts: minhash.SetParts, starts: tuple, steps: list[tuple],
                driver_files: tuple[minhash.ShingleSets, minhash.ShingleSets]) -> dict[str, int]:
    """Reads and bytes read over all the steps, and the most bytes a step read, through
    `CountedReads`; checks the values against the driver's files (the same sets)."""
    location, counts = counted(parts.folder)
    parts, largest = replace(parts, folder=location), 0
    for step in steps:
        before = counts.bytes
        for values, sets, (begin, end) in zip(step_reads(read, parts, starts, step), driver_files, step[1:]):
            assert np.array_equal(values, minhash._read_ranges(sets._file, begin, end))
        largest = max(largest, counts.bytes - before)
    return {"reads": counts.reads, "bytes": counts.bytes, "largest step": largest}


def print_reads(counts: dict[str, dict[str, float]], timed: dict[str, dict[str, list]], rounds: int) -> None:
    print("\nreads of all the steps (the same on both storages; the same values every way, checked):")
    print("| way | read_at calls | MiB read | most a step read, MiB | calls / baseline | bytes / baseline |")
    print("|---|---|---|---|---|---|")
    base = counts["baseline"]
    for way, count in counts.items():
        print(f"| {way} | {count['reads']:,} | {count['bytes'] / 2**20:.1f} | {count['largest step'] / 2**20:.1f} "
              f"| {count['reads'] / base['reads']:.4f} | {count['bytes'] / base['bytes']:.2f} |")
    for storage, by_way in timed.items():
        print(f"\n{storage}, {rounds} rounds (each: CPU s / wall s of all the steps):")
        print("| way | CPU s, each round | wall s, each round | CPU / baseline | wall / baseline |")
        print("|---|---|---|---|---|")
        cpu_base, wall_base = (sum(run[k] for run in by_way["baseline"]) for k in (0, 1))
        for way, runs in by_way.items():
            cpu, wall = (sum(run[k] for run in runs) for k in (0, 1))
            print(f"| {way} | {' / '.join(f'{run[0]:.2f}' for run in runs)} | "
                  f"{' / '.join(f'{run[1]:.2f}' for run in runs)} | {cpu / cpu_base:.3f} | {wall / wall_base:.3f} |")


def local_reads(shingle_sets: minhash.ShingleSets, details: minhash.ShingleSets, steps: list[tuple],
                gaps_kib: list[int], rounds: int, repeats: int = 20) -> None:
    """The driver's local files read as the local engine's steps do (``ShingleSets._read``:
    ``minhash._read_ranges``, a ``preadv`` a run of documents) against the same runs
    coalesced, read with a scatter ``preadv`` a block: CPU s of all the steps, `repeats` times."""
    runs = []  # (file, begin, end) of every read of every step: the runs of its documents' sets
    for docs, _, _ in steps:
        for sets, sets_docs in ((shingle_sets, docs), (details, (3 * docs[:, None] + np.arange(3)).ravel())):
            offsets = sets._offsets()
            first, last = minhash._runs(sets_docs)
            runs.append((sets._file, offsets[first], offsets[last + 1]))
    ways = {"_read_ranges": minhash._read_ranges}
    ways.update({f"preadv, gap {gap} KiB": (lambda f, b, e, gap=gap: scattered_read(f, b, e, gap * KiB))
                 for gap in gaps_kib})
    reference = [minhash._read_ranges(*run) for run in runs]
    spent = {way: [] for way in ways}
    for round_number in range(rounds):
        for way in (list(ways) if round_number % 2 == 0 else list(reversed(ways))):
            started = time.process_time()
            for _ in range(repeats):
                values = [ways[way](*run) for run in runs]
            spent[way].append(time.process_time() - started)
            assert all(np.array_equal(x, y) for x, y in zip(values, reference))
    print(f"\nlocal engine, the driver's files (the runs of every step's documents, {repeats} times), CPU s each round:")
    base = sum(spent["_read_ranges"])
    for way, runs_spent in spent.items():
        print(f"  {way}: {' / '.join(f'{s:.3f}' for s in runs_spent)} (ratio {sum(runs_spent) / base:.2f})")


def scattered_read(file: Any, begin: np.ndarray, end: np.ndarray, gap_bytes: int) -> np.ndarray:
    """``_read_ranges`` with ``coalesced`` blocks: a ``preadv`` a block, the wanted bytes
    into the values and those between into a scratch buffer (at most IOV_MAX buffers a call)."""
    at = np.zeros(len(begin) + 1, dtype=np.int64)
    np.cumsum(end - begin, out=at[1:])
    values = np.empty(int(at[-1]), dtype=np.uint32)
    view, scratch = memoryview(values).cast("B"), memoryview(bytearray(gap_bytes + 4))
    at, lows, highs = (4 * at).tolist(), (4 * begin).tolist(), (4 * end).tolist()
    for block_begin, block_end, ranges in minhash.coalesced(begin, end, gap_bytes // 4, minhash.READ_BLOCK_BYTES // 4):
        buffers, position, offset = [], 4 * block_begin, 4 * block_begin
        for i in ranges:
            if lows[i] > position:
                buffers.append(scratch[:lows[i] - position])
            buffers.append(view[at[i]:at[i + 1]])
            position = highs[i]
            if len(buffers) >= os.sysconf("SC_IOV_MAX") - 1:
                offset += os.preadv(file.fileno(), buffers, offset)
                buffers = []
        if buffers:
            os.preadv(file.fileno(), buffers, offset)
    return values


if __name__ == "__main__":
    main()
