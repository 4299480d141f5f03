"""What the publish build (`corpus publish --build-only`, the DVC stage) costs after a new
drop, beside a full build, and beside another revision's code.

    .venv/bin/python benchmarks/incremental.py --articles 30000 --workdir /tmp/bench --full-only
    cp -a /tmp/bench/30000/project /tmp/bench/30000-before
    .venv/bin/python benchmarks/incremental.py --articles 30000 --workdir /tmp/bench
    .venv/bin/python benchmarks/publish_build.py --before /tmp/bench/30000-before \\
        --after /tmp/bench/30000/project --baseline main --workdir /tmp/bench/publish

`--before` and `--after` are projects of benchmarks/incremental.py: the full run of the
base drop, and the same after the 1 % drop and `dvc repro`. For each code (this checkout
and REV's, exported with `git archive`), one after the other in one run: a build of
`--before` into an empty folder (full), then of `--after` into that folder (the build after
the drop), then of `--after` into an empty folder (full, for the equality check), then of
`--after` into a copy of that folder without the new drop's shards ("drop only": what the
build after a drop costs when the split moved no earlier article, so that the earlier
drops' shards all hold; "after drop" rewrites those an article left or joined). Each
prints wall time, CPU time and peak RSS of the process; the ratios are after-drop / full
and this checkout / REV. The after-drop folder of this checkout must equal its full build
of `--after` byte for byte, and both codes' folders must hold the same shards.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.incremental import measured  # noqa: E402


def exported(revision: str, workdir: Path) -> Path:
    """The code of `revision` (git archive) under `workdir`."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.strip()
    folder = workdir / f"code-{commit[:12]}"
    if not folder.exists():
        archive = subprocess.run(["git", "archive", commit], cwd=REPO, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder.with_name(folder.name + ".partial"), filter="data")
        folder.with_name(folder.name + ".partial").rename(folder)
    return folder


def build_command(code: Path, project: Path, output: Path) -> list[str]:
    """`corpus publish --build-only` of `project`'s outputs with `code`'s pipeline (-P: the
    working directory is not put before PYTHONPATH)."""
    build = project / "build"
    return [sys.executable, "-P", "-m", "pipeline.cli", "--params", str(project / "params.yaml"), "publish",
            "--build-only", "--input", str(build / "split"), "--stage-outputs", str(build),
            "--validation", str(build / "validate" / "results.json"), "--output", str(output),
            "--metrics", str(output.with_suffix(".metrics.json")), "--card-template", str(code / "dataset_card.md")]


def run(code: Path, project: Path, output: Path) -> dict[str, float]:
    return measured(build_command(code, project, output), code)


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="incremental.py's project after the full run")
    parser.add_argument("--after", type=Path, required=True, help="the same project after the new drop")
    parser.add_argument("--baseline", metavar="REV", default="main", help="the other code (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/publish-build-bench"))
    parser.add_argument("--drop", default="new", help="the new drop's name (default: %(default)s)")
    args = parser.parse_args()
    shutil.rmtree(args.workdir / "out", ignore_errors=True)
    codes = {args.baseline: exported(args.baseline, args.workdir), "this checkout": REPO}
    figures: dict[str, dict[str, dict[str, float]]] = {}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    for name, code in codes.items():
        out = args.workdir / "out" / name.replace(" ", "-")
        figures[name] = {
            "full": run(code, args.before, out / "hub"),
            "after drop": run(code, args.after, out / "hub"),
            "full after": run(code, args.after, out / "scratch"),
        }
        # The build when the new drop's shards are the only ones to write (the split moved
        # no earlier article): the full build of --after with those shards deleted.
        shutil.copytree(out / "scratch", out / "drop-only")
        for shard in (out / "drop-only" / "data").glob(f"*-{args.drop}-*.parquet"):
            shard.unlink()
        figures[name]["drop only"] = run(code, args.after, out / "drop-only")
    ours = args.workdir / "out" / "this-checkout"
    hidden = sorted({name.split("/")[0] for name in files(ours / "hub") if name.startswith(".")})  # the build's state
    for folder in ("hub", "drop-only"):
        assert files(ours / folder) == files(ours / "scratch"), f"{folder} differs from a build from scratch"
    base = args.workdir / "out" / args.baseline.replace(" ", "-")
    shards = {k: v for k, v in files(ours / "hub").items() if k.startswith("data/")}
    assert shards == {k: v for k, v in files(base / "hub").items() if k.startswith("data/")}, "the codes' shards differ"
    print(f"load average {os.getloadavg()[0]:.1f}; {len(shards)} shards, equal in both codes; the after-drop build "
          f"equals a build from scratch (with {', '.join(hidden) or 'nothing'}, the state it keeps, not released)")
    print(f"\n{'code':<16}{'step':<12}{'wall s':>9}{'CPU s':>9}{'RSS GiB':>9}{'CPU / full':>12}{'wall / full':>12}")
    for name, steps in figures.items():
        for step, row in steps.items():
            print(f"{name:<16}{step:<12}{row['wall']:>9.1f}{row['cpu']:>9.1f}{row['rss']:>9.2f}"
                  f"{row['cpu'] / steps['full']['cpu']:>12.2f}{row['wall'] / steps['full']['wall']:>12.2f}")
    ours_figures, base_figures = figures["this checkout"], figures[args.baseline]
    print(f"\nthis checkout / {args.baseline}: " + ", ".join(
        f"{step} CPU {ours_figures[step]['cpu'] / base_figures[step]['cpu']:.2f}, "
        f"RSS {ours_figures[step]['rss'] / base_figures[step]['rss']:.2f}" for step in ours_figures))


if __name__ == "__main__":
    main()
