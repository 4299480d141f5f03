"""The real stages before publish, run in-process on a set of drops as `dvc repro` runs them.

For tests and benchmarks that need what the publish stage reads: split tables, every
stage's report and the validation results, all from one run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipeline.plumbing.params import section
from pipeline.release.card_figures import REPORTING_STAGES
from pipeline.stages import clean, dedup, ingest, split, validate

REPO = Path(__file__).resolve().parents[1]
GX_DIR = REPO / "gx"


def run_pipeline(raw_dir: Path, work_dir: Path, params: dict[str, Any], drops: list[str] | None = None) -> Path:
    """ingest -> clean -> dedup -> validate -> split on the drops under `raw_dir` (or only
    `drops`). Outputs (each with its report.json) go to `work_dir`/{ingest,clean,dedup,validate,split},
    headline metrics to `work_dir`/metrics. Stops, like `dvc repro`, when the validation fails."""
    metrics = work_dir / "metrics"
    ingest.run(raw_dir, work_dir / "ingest", metrics / "ingest.json", section(params, "ingest"), drops)
    clean.run(work_dir / "ingest", work_dir / "clean", metrics / "clean.json", params)
    dedup.run(work_dir / "clean" / "articles.parquet", work_dir / "dedup", metrics / "dedup.json", params)
    report = validate.run(work_dir / "dedup", work_dir / "validate", metrics / "validate.json", params, GX_DIR)
    if not report.success:
        raise AssertionError(f"the validation of {work_dir} failed: {[check.name for check in report.failed]}")
    split.run(work_dir / "dedup", work_dir / "split", metrics / "split.json", params)
    return work_dir


def check_headline_funnel(metrics: dict[str, dict[str, Any]]) -> None:
    """The metrics of one run (stage -> its metrics/<stage>.json; publish's optional) are
    flat figures (and quarantine counts by reason), and the articles add up from stage to stage."""
    for stage, figures in metrics.items():
        by_reason = figures.get("quarantine", {})
        assert all(isinstance(count, int) and count > 0 for count in by_reason.values()), (stage, by_reason)
        assert sum(by_reason.values()) == figures.get("quarantined", 0), (stage, figures)
        flat = {name: value for name, value in figures.items() if name != "quarantine"}
        assert all(isinstance(value, (int, float, str)) for value in flat.values()), (stage, figures)
    ingest, clean, dedup, validate, split = (metrics[stage] for stage in REPORTING_STAGES)
    assert ingest["input"] == ingest["articles"] + ingest["quarantined"]
    assert clean["input"] == ingest["articles"] and clean["input"] == clean["articles"] + clean["quarantined"]
    assert dedup["input"] == clean["articles"] and dedup["input"] == dedup["articles"] + dedup["duplicates"]
    assert validate["articles"] == dedup["articles"] and (validate["failed"] == 0) is validate["passed"]
    assert split["train"] + split["validation"] + split["test"] == split["articles"]
    assert split["input"] == dedup["articles"] == split["articles"] + split["quarantined"]
    if "publish" in metrics:
        assert metrics["publish"]["articles"] == split["articles"]


# GX stamps its Data Docs and result files with the run time (the corpus's, and each
# drop's under drop=<name>/); the stages' memo of file digests holds inodes and times
# (fingerprint.DigestMemo). DVC tracks neither.
_RUN_STAMPED = re.compile(r"build/(validate/(drop=[^/]+/)?(data_docs|gx_results)/|file_digests\.json$)")


def output_files(root: Path) -> dict[str, bytes]:
    """Every file of a project's build/ that `dvc repro` makes the same for the same inputs."""
    files = (p for p in sorted((root / "build").rglob("*")) if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files if not _RUN_STAMPED.match(str(p.relative_to(root)))}


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (path relative to it: bytes)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
