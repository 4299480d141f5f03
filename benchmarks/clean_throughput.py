"""Clean's throughput and peak memory, this checkout against another revision (default:
main), on the same ingested corpus, in one run, runs interleaved.

    python benchmarks/clean_throughput.py [--against main] [--rounds 2]

Corpus: the 18 daily SaudiNewsNet zips and the windows-1256 newspapers (shared corpus), as
two drops, ingested once by each revision (not timed). Each round runs `corpus clean` of each revision
as its own process (GNU time gives its CPU time and peak RSS); printed: seconds, articles/s,
CPU seconds and peak RSS per run, and this checkout's articles/s as a ratio of the other's, per round (the two runs of
a round back to back) and their median.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runnable as a script from anywhere

from benchmarks.shared_corpus import CP1256, SAUDI_ZIPS  # noqa: E402


def clean_once(code: Path, ingested: Path, out: Path) -> tuple[float, float, float]:
    """`corpus clean` with the pipeline in ``code``: wall seconds, CPU seconds (user + system,
    less sensitive to the other jobs on the machine) and peak RSS (GB), from GNU time."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-c", "from pipeline.cli import main; raise SystemExit(main())",
               "--params", str(code / "params.yaml"), "clean", "--input", str(ingested), "--output", str(out),
               "--metrics", str(out.parent / "clean-metrics.json")]
    timed = ["/usr/bin/time", "-f", "%M %U %S", *command]
    started = time.monotonic()
    result = subprocess.run(timed, cwd=code, capture_output=True, text=True, env={"PYTHONPATH": str(code), "PATH": "/usr/bin:/bin"})
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"clean with {code} failed:\n{result.stderr[-3000:]}")
    peak, user, system = result.stderr.strip().splitlines()[-1].split()
    return seconds, float(user) + float(system), int(peak) / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default="main")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        raw = work / "raw"
        for archive in sorted(SAUDI_ZIPS.glob("*.zip")):
            with zipfile.ZipFile(archive) as opened:
                opened.extractall(raw / "saudinewsnet")
        shutil.copytree(CP1256, raw / "newspapers")
        other = work / "other"
        other.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.against, "pipeline", "params.yaml"],
                                 check=True, capture_output=True).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(other, filter="data")
        revisions = {"this checkout": REPO, args.against: other}
        # Each revision's own ingest (the article schema may differ), not timed.
        for name, code in revisions.items():
            subprocess.run([sys.executable, "-c", "from pipeline.cli import main; raise SystemExit(main())",
                            "--params", str(code / "params.yaml"), "ingest", "--input", str(raw),
                            "--output", str(work / name / "ingest"), "--metrics", str(work / name / "ingest.json")],
                           cwd=code, check=True, capture_output=True, env={"PYTHONPATH": str(code), "PATH": "/usr/bin:/bin"})
        n_articles = json.loads((work / "this checkout" / "ingest" / "report.json").read_text())["articles"]
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in revisions}
        for _ in range(args.rounds):
            for name, code in revisions.items():
                runs[name].append(clean_once(code, work / name / "ingest", work / name / "clean"))
        print(f"clean of {n_articles:,} ingested articles (SaudiNewsNet + windows-1256 newspapers), {args.rounds} rounds")
        for name, figures in runs.items():
            shown = ", ".join(f"{s:.1f} s ({n_articles / s:,.0f}/s; CPU {c:.1f} s; {p:.2f} GB)" for s, c, p in figures)
            print(f"  {name:15s} {shown}")
        # Paired by round (the two runs of a round share the machine's load of the moment).
        for measure, index in (("wall", 0), ("CPU", 1)):
            ratios = [theirs[index] / ours[index] for ours, theirs in zip(runs["this checkout"], runs[args.against])]
            print(f"throughput ({measure} time) of this checkout / {args.against}, per round: "
                  f"{', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
