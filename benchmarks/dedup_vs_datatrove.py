"""Our dedup stage side by side with datatrove's (and text-dedup's) MinHash dedup.

    python benchmarks/dedup_vs_datatrove.py                    # >= 100k articles, all tools found
    python benchmarks/dedup_vs_datatrove.py --variants 1 1     # smaller corpus

The corpus: the 31,030 SaudiNewsNet articles (the 18 daily zips of the shared corpus) run
through the real ingest and clean stages, plus 2-3 edited variants of each
(``dedup_eval.make_variant``: new headline, boilerplate, a sentence in or out, diacritics /
letter forms / punctuation, 10-20 % of words changed). Labels as in dedup_eval: a base
article and its variants are one family; base articles that are natural reprints of one
another (exact 5-shingle Jaccard >= 0.3) are neither positives nor negatives.

Every tool runs as a separate process on the same Parquet data (2 workers where the tool
has them); the script samples the resident memory of its whole process tree. Printed per
run: wall seconds, documents per second, peak RSS, and precision / recall / F1 of the
removals (and of the pairs in the final clusters).

datatrove and text-dedup are not project dependencies: they run from their own virtual
environments (``--datatrove-python``, ``--textdedup-python``; see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import polars as pl
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a script from anywhere
from benchmarks import dedup_eval  # noqa: E402
from benchmarks.shared_corpus import SAUDI_ZIPS  # noqa: E402
from pipeline.plumbing.io import write_table  # noqa: E402
from pipeline.plumbing.params import load_params  # noqa: E402
from pipeline.stages import dedup  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ZIPS = SAUDI_ZIPS
SHARDS = 8  # Parquet files the external tools read (one datatrove task each)


def build_corpus(workdir: Path, params: dict[str, Any], variants: tuple[int, int]) -> dedup_eval.Evaluation:
    files = []
    raw = workdir / "zips"
    raw.mkdir(parents=True, exist_ok=True)
    for archive in sorted(ZIPS.glob("*.zip")):
        with zipfile.ZipFile(archive) as zipped:
            for name in zipped.namelist():
                (raw / name).write_bytes(zipped.read(name))
                files.append(raw / name)
    bases = dedup_eval.cleaned_articles({"saudinewsnet": files}, workdir / "pipeline", params).drop("file")
    return dedup_eval.build_evaluation(bases, variants_per_article=variants)


class PeakMemory:
    """Peak total RSS of a process and all its descendants, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.process, self.peak = psutil.Process(pid), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            self._stop.wait(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's waited-for descendants (a tool's worker
    processes count once their parent has waited for them)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(command: list[str], log: Path, timeout: float,
            env: dict[str, str] | None = None) -> tuple[float, float, int] | None:
    """Run a command; (wall seconds, CPU seconds, peak RSS bytes), or None if it ran out of
    time (it is then stopped, with its process tree). Its output goes to `log`."""
    started, cpu_before = time.perf_counter(), children_cpu_seconds()
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        memory = PeakMemory(process.pid)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
            for member in reversed(tree):
                member.kill()
            process.wait()
            memory.stop()
            return None
    peak = memory.stop()
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({code}); see {log}")
    return time.perf_counter() - started, children_cpu_seconds() - cpu_before, peak


def decisions_from_csv(path: Path, all_ids: pl.Series) -> pl.DataFrame:
    """(id, duplicate_of) from a tool's decisions.csv (id, cluster, removed)."""
    rows = pl.read_csv(path, schema={"id": pl.String, "cluster": pl.String, "removed": pl.Int8})
    kept_of = rows.filter(pl.col("removed") == 0).select("cluster", kept="id").unique("cluster", keep="first")
    removed = rows.filter(pl.col("removed") == 1).join(kept_of, on="cluster", how="left")
    return pl.DataFrame({"id": all_ids}).join(
        removed.select("id", duplicate_of="kept"), on="id", how="left"
    )


def print_ratios_to_ours(results: list[dict[str, Any]]) -> None:
    """Each other tool's wall time, CPU time and peak RSS as multiples of our first run's."""
    ours = next((r for r in results if r["tool"].startswith("ours") and r["seconds"]), None)
    others = [r for r in results if not r["tool"].startswith(("ours", "baseline"))]
    if ours is None or not others:
        return
    print(f"\nas multiples of ours (load average now {os.getloadavg()[0]:.1f}):")
    for r in others:
        if r["seconds"] is None:
            print(f"{r['tool']:<62} did not finish")
            continue
        print(f"{r['tool']:<62} wall {r['seconds'] / ours['seconds']:.1f}x, CPU {r['cpu_seconds'] / ours['cpu_seconds']:.1f}x, "
              f"peak RSS {r['peak_rss_mib'] / ours['peak_rss_mib']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, nargs=2, default=(2, 3), metavar=("MIN", "MAX"))
    parser.add_argument("--datatrove-python", default="/work/bench-venv/bin/python")
    parser.add_argument("--datatrove-runs", nargs="+", choices=["defaults", "ours"], default=["defaults", "ours"],
                        help="datatrove at its defaults and/or with our shingles and bands (each takes minutes)")
    parser.add_argument("--textdedup-python", default="/work/bench-venv-textdedup/bin/python")
    parser.add_argument("--workdir", type=Path, help="keep the corpus and outputs here (default: a temp dir)")
    parser.add_argument("--tools", nargs="+", choices=["ours", "datatrove", "text-dedup"],
                        default=["ours", "datatrove", "text-dedup"])
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds a run may take (default: %(default)s; datatrove's defaults took "
                             "over 1,500 s on a loaded machine)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also run the dedup of another checkout (e.g. `git worktree add DIR main`), "
                             "alternating with ours, and print the ratios")
    parser.add_argument("--repeat", type=int, default=1, help="runs of ours (and of the baseline) each, alternating")
    args = parser.parse_args(argv)
    params = load_params(REPO / "params.yaml")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dedup-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    labelled = workdir / f"evaluation-{args.variants[0]}-{args.variants[1]}"
    if (labelled / "info.json").exists():  # built by an earlier run in this workdir
        evaluation = dedup_eval.Evaluation.load(labelled)
    else:
        evaluation = build_corpus(workdir, params, tuple(args.variants))
        evaluation.save(labelled)
    corpus = workdir / "corpus.parquet"
    write_table(evaluation.articles, corpus)  # laid out as the clean stage writes its table
    shards = workdir / "shards"
    shards.mkdir(exist_ok=True)
    size = -(-evaluation.articles.height // SHARDS)
    for k in range(SHARDS):
        evaluation.articles.slice(k * size, size).select("id", "text").write_parquet(shards / f"part-{k:02d}.parquet")
    n = evaluation.articles.height
    print(f"corpus: {n:,} articles = {evaluation.info['bases']:,} SaudiNewsNet (ingested + cleaned) + "
          f"{evaluation.info['variants']:,} variants; {evaluation.info['variants']:,} removals needed; "
          f"built in {time.perf_counter() - started:.0f} s in {workdir}", flush=True)

    d = params["dedup"]
    ours = f"{d['ngram']}-grams, {d['bands']}x{d['rows']}"
    runs: list[tuple[str, list[str], Path | None, dict[str, str]]] = []
    checkouts = [("ours", REPO)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    for k in range(args.repeat if "ours" in args.tools else 0):
        for name, checkout in checkouts:  # alternating, so both see the same load
            runs.append((f"{name} ({ours}, Jaccard >= {d['threshold']}) run {k + 1}",
                         [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(checkout)!r}); "
                                                "from pipeline.cli import main; sys.exit(main())",
                          "--params", str(checkout / "params.yaml"), "dedup", "--input", str(corpus),
                          "--output", str(workdir / name), "--metrics", str(workdir / f"{name}.json")],
                         workdir / name, {}))
    if "datatrove" in args.tools and not Path(args.datatrove_python).exists():
        print(f"datatrove skipped: no {args.datatrove_python}")
    elif "datatrove" in args.tools:
        configs = {"defaults": ("defaults: 5-grams, 14x8", 5, 14, 8),
                   "ours": (f"our shingles/bands: {ours}", d["ngram"], d["bands"], d["rows"])}
        for label, ngram, buckets, rows in (configs[name] for name in args.datatrove_runs):
            out = workdir / f"datatrove-{ngram}-{buckets}x{rows}"
            runs.append((f"datatrove ({label})", [args.datatrove_python, str(HERE / "datatrove_minhash.py"), str(shards),
                                                  str(out), "--ngram", str(ngram), "--buckets", str(buckets),
                                                  "--rows", str(rows), "--workers", "2"], out, {}))
    if "text-dedup" in args.tools and not Path(args.textdedup_python).exists():
        print(f"text-dedup skipped: no {args.textdedup_python}")
    elif "text-dedup" in args.tools:
        for label, extra in (("README config: 5-grams, 240 perms, 0.7", ["--ngram", "5", "--num-perm", "240", "--threshold", "0.7"]),
                             (f"our shingles/bands: {ours}, {d['threshold']}",
                              ["--ngram", str(d["ngram"]), "--num-perm", str(d["permutations"]), "--threshold",
                               str(d["threshold"]), "--bands", str(d["bands"]), "--rows", str(d["rows"])])):
            out = workdir / f"textdedup-{len(runs)}"
            runs.append((f"text-dedup ({label})", [args.textdedup_python, str(HERE / "textdedup_minhash.py"),
                                                   str(shards), str(out), *extra], out, {}))

    print(f"load average before the runs: {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"\n{'tool':<62} {'wall s':>7} {'CPU s':>7} {'docs/s':>8} {'peak RSS':>9} {'P':>6} {'R':>6} {'F1':>6} "
          f"{'pairs P':>8} {'pairs R':>8}")
    results = []
    for label, command, out, extra_env in runs:
        env = {**os.environ, "PYTHONHASHSEED": "0", **extra_env}
        if out is not None and out.exists():  # our stage would reuse the drop folders of an earlier run
            shutil.rmtree(out)
        measured = measure(command, workdir / f"{len(results)}.log", args.timeout, env)
        if measured is None:
            results.append({"tool": label, "seconds": None})
            print(f"{label:<62} did not finish in {args.timeout:.0f} s", flush=True)
            continue
        seconds, cpu, peak = measured
        if (out / "report.json").exists():  # our stage's output
            removed = dedup.scan_corpus(out, dedup.DUPLICATES_FILE).select("id", "duplicate_of").collect()
            decisions = pl.DataFrame({"id": evaluation.articles["id"]}).join(removed, on="id", how="left")
        else:
            decisions = decisions_from_csv(out / "decisions.csv", evaluation.articles["id"])
        s = dedup_eval.score(evaluation, decisions)
        results.append({"tool": label, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
                        "docs_per_s": round(n / seconds),
                        "peak_rss_mib": round(peak / 2**20), **{k: s[k] for k in ("precision", "recall", "f1",
                                                                                  "pairs_precision", "pairs_recall")}})
        r = results[-1]
        print(f"{label:<62} {r['seconds']:>7.1f} {r['cpu_seconds']:>7.1f} {r['docs_per_s']:>8,} {r['peak_rss_mib']:>6,} MiB {r['precision']:>6.3f} "
              f"{r['recall']:>6.3f} {r['f1']:>6.3f} {r['pairs_precision']:>8.3f} {r['pairs_recall']:>8.3f}", flush=True)
    (workdir / "results.json").write_text(json.dumps(results, indent=2))
    print_ratios_to_ours(results)
    if args.baseline:
        timed = [r for r in results if r["tool"].startswith(("ours", "baseline")) and r["seconds"]]
        mean = {name: [r for r in timed if r["tool"].startswith(name)] for name in ("ours", "baseline")}
        seconds = {name: sum(r["seconds"] for r in rows) / len(rows) for name, rows in mean.items() if rows}
        peak = {name: max(r["peak_rss_mib"] for r in rows) for name, rows in mean.items() if rows}
        if len(seconds) == 2:
            print(f"ours / baseline: wall time {seconds['ours'] / seconds['baseline']:.2f}x, "
                  f"throughput {seconds['baseline'] / seconds['ours']:.2f}x, peak RSS {peak['ours'] / peak['baseline']:.2f}x "
                  f"(mean of {args.repeat} alternating run(s) each; load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
