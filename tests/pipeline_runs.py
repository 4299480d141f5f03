"""The real stages before publish, run in-process on a set of drops as `dvc repro` runs them.

For tests and benchmarks that need what the publish stage reads: split tables, every
stage's report and the validation results, all from one run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import clean, dedup, ingest, split, validate
from pipeline.params import section

REPO = Path(__file__).resolve().parents[1]
GX_DIR = REPO / "gx"


def run_pipeline(raw_dir: Path, work_dir: Path, params: dict[str, Any], drops: list[str] | None = None) -> Path:
    """ingest -> clean -> dedup -> validate -> split on the drops under `raw_dir` (or only
    `drops`). Outputs (each with its report.json) go to `work_dir`/{ingest,clean,dedup,validate,split},
    metrics to `work_dir`/metrics. Stops, like `dvc repro`, when the validation fails."""
    metrics = work_dir / "metrics"
    ingest.run(raw_dir, work_dir / "ingest", metrics / "ingest.json", section(params, "ingest"), drops)
    clean.run(work_dir / "ingest", work_dir / "clean", metrics / "clean.json", params)
    dedup.run(work_dir / "clean" / "articles.parquet", work_dir / "dedup", metrics / "dedup.json", params)
    report = validate.run(work_dir / "dedup" / "articles.parquet", work_dir / "validate", metrics / "validate.json", params, GX_DIR)
    if not report.success:
        raise AssertionError(f"the validation of {work_dir} failed: {[check.name for check in report.failed]}")
    split.run(work_dir / "dedup", work_dir / "split", metrics / "split.json", params)
    return work_dir
