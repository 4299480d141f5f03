"""The whole DVC pipeline, as a user runs it: `dvc repro` in a fresh copy of the repo."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, built_copy, run_command
from pipeline_runs import check_headline_funnel

from pipeline.plumbing.fingerprint import NOT_SHAPING_OUTPUTS, code_sources
from pipeline.plumbing.io import partition_report
from pipeline.release.card_figures import REPORTING_STAGES


@pytest.fixture(scope="module")
def reproduced(reproduced_seed: Path, tmp_path_factory) -> Path:
    """A fresh copy of the repo after `dvc repro`."""
    return built_copy(reproduced_seed, tmp_path_factory.mktemp("repro") / "project")


def test_dvc_repro_runs_end_to_end_and_is_deterministic(reproduced: Path):
    project = reproduced
    # Same stage list as dvc.yaml, every stage ran.
    assert run_command("dvc", "status", cwd=project).strip().endswith("Data and pipelines are up to date.")
    # The committed dvc.lock (the hash of every output) and metrics are what a fresh
    # checkout reproduces, in another folder on another machine: byte-identical outputs.
    # (A rebuild from nothing in one checkout: tests/test_partitions.py, incremental = from scratch.)
    assert run_command("git", "status", "--porcelain", "--", "dvc.lock", "metrics", cwd=project) == "", (
        "the committed dvc.lock/metrics are stale: run `dvc repro` and commit them"
    )


def test_dvc_metrics_show_is_one_short_funnel_table(reproduced: Path):
    """Headline figures, one row per stage; the details are in build/<stage>/report.json."""
    project = reproduced
    shown = json.loads(run_command("dvc", "metrics", "show", "--json", cwd=project))[""]["data"]
    metrics = {Path(path).stem: entry["data"] for path, entry in shown.items()}
    assert list(metrics) == [*REPORTING_STAGES, "publish"]
    check_headline_funnel(metrics)
    assert metrics["clean"]["articles"] == 5 and metrics["clean"]["quarantined"] == 0
    for stage in REPORTING_STAGES:  # ingest's and clean's a drop at a time
        assert partition_report(project / "build" / stage), stage

    table = run_command("dvc", "metrics", "show", cwd=project).splitlines()
    assert table[0].split() == [
        "Path", "articles", "contaminated_share", "duplicates", "expectations", "failed", "input", "parquet_bytes",
        "passed", "quarantined", "shards", "test", "train", "validation", "version",
    ]
    assert len(table) == 7 and max(len(line) for line in table) < 200


# Stages named otherwise than the module whose command they run.
_STAGE_MODULES = {"clean": "stages/clean_drops", "publish": "release/publish"}


def _pipeline_imports(path: str, seen: set[str]) -> set[str]:
    """The module at `path` (pipeline/...py) and every pipeline module it imports, transitively."""
    if path not in seen:
        seen.add(path)
        for node in ast.walk(ast.parse((REPO / path).read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline"):
                for name in [node.module + "." + alias.name for alias in node.names] + [node.module]:
                    module = Path(*name.split("."))
                    if (REPO / module.with_suffix(".py")).is_file():
                        _pipeline_imports(str(module.with_suffix(".py")), seen)
    return seen


def test_dvc_lock_has_only_the_stages_of_dvc_yaml():
    """DVC never removes the entry of a stage dvc.yaml no longer has; a stale entry is
    rewritten with the lock after every stage `dvc repro` runs, at a cost for nothing."""
    defined = set(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
    locked = set(yaml.safe_load((REPO / "dvc.lock").read_text())["stages"])
    assert locked == defined, f"dvc.lock's stale entries {sorted(locked - defined)}, missing {sorted(defined - locked)}"


def test_every_stage_depends_on_the_code_it_runs():
    """A stage's outputs go stale silently if `dvc repro` does not see a change to code it imports."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage, spec in stages.items():
        declared = {str(dep) for dep in spec["deps"] if str(dep).startswith("pipeline/")}
        entry = f"pipeline/{_STAGE_MODULES.get(stage, f'stages/{stage}')}.py"
        missing = _pipeline_imports(entry, set()) - NOT_SHAPING_OUTPUTS - declared
        assert not missing, f"dvc.yaml stage {stage} imports {sorted(missing)} but does not list them in deps"


@pytest.mark.parametrize("stage, module", [("clean", "pipeline.stages.clean_drops"),
                                           ("dedup", "pipeline.stages.dedup"), ("validate", "pipeline.stages.validate"),
                                           ("split", "pipeline.stages.split"), ("publish", "pipeline.release.publish")])
def test_a_stage_fingerprint_hashes_the_code_dvc_sees(stage, module):
    """The stages that keep state by fingerprint hash their code (``code_digest``) and write
    the fingerprint into their outputs: it must cover only code dvc.yaml lists for the stage,
    or a change DVC does not see (say, to an engine) would change outputs it keeps as up to
    date, and a fresh clone's `dvc repro` would not reproduce the committed dvc.lock."""
    declared = {str(dep) for dep in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["deps"]}
    hashed = set(code_sources(module))
    assert hashed and not hashed & NOT_SHAPING_OUTPUTS
    assert hashed <= declared, sorted(hashed - declared)
