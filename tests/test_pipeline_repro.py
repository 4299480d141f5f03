"""The whole DVC pipeline, as a user runs it: `dvc repro` in a fresh copy of the repo."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path


def _run(*command: str, cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _output_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "build").rglob("*")) if p.is_file()}


def test_dvc_repro_runs_end_to_end_and_is_deterministic(project: Path):
    _run("dvc", "repro", cwd=project)
    first_lock = (project / "dvc.lock").read_text()
    first_outputs = _output_files(project)
    # Same stage list as dvc.yaml, every stage ran.
    assert _run("dvc", "status", cwd=project).strip().endswith("Data and pipelines are up to date.")

    # Rebuild from nothing: byte-identical outputs, so dvc.lock does not change.
    shutil.rmtree(project / "build")
    _run("dvc", "repro", "--force", cwd=project)
    assert (project / "dvc.lock").read_text() == first_lock
    assert _output_files(project) == first_outputs
    # The committed dvc.lock is what a fresh checkout reproduces.
    assert _run("git", "status", "--porcelain", "--", "dvc.lock", "metrics", cwd=project) == "", (
        "the committed dvc.lock/metrics are stale: run `dvc repro` and commit them"
    )

    metrics = json.loads(_run("dvc", "metrics", "show", "--json", cwd=project))
    clean_metrics = next(v for k, v in metrics[""]["data"].items() if k.endswith("clean.json"))["data"]
    assert clean_metrics["kept"] == 5 and clean_metrics["quarantined"] == 0
