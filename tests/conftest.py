"""Shared test fixtures: paths to the real corpus samples and a way to run the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.shared_corpus import CP1256, SAUDI_SAMPLE, SAUDI_ZIPS, SEED, SHARED_CORPUS  # noqa: F401  (tests import them from here)

REPO = Path(__file__).resolve().parents[1]

VENV_BIN = Path(sys.executable).parent

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"


def pytest_sessionstart(session) -> None:
    if not SEED.is_dir():
        pytest.exit(f"shared corpus not found at {SHARED_CORPUS}; set CORPUS_SHARED", returncode=2)


def run_corpus(*args: str, cwd: Path | str = REPO, check: bool = True) -> subprocess.CompletedProcess:
    """Run the installed `corpus` command, as a user would."""
    result = subprocess.run(
        [str(VENV_BIN / "corpus"), *args], cwd=cwd, capture_output=True, text=True, env=os.environ.copy()
    )
    if check and result.returncode != 0:
        raise AssertionError(f"corpus {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def run_command(*command: str, cwd: Path) -> str:
    """Run a command (dvc, git...) in `cwd`; its stdout, or a failure showing its output."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of this repository's pipeline (code, params, dvc.yaml, seed drop) in a
    fresh git + DVC repo, for tests that run stages or `dvc repro` end to end."""
    return copy_project(tmp_path / "project")


@pytest.fixture(scope="session")
def reproduced_seed(tmp_path_factory) -> Path:
    """The `project` copy after `dvc repro` (the seed drop through every stage), built once
    a session: a full run costs tens of seconds. Tests work on their own `built_copy`."""
    root = copy_project(tmp_path_factory.mktemp("reproduced-seed") / "project")
    run_command("dvc", "repro", cwd=root)
    return root


@pytest.fixture(scope="module")
def s3_server():
    """A local S3-API server (tests/s3_server.py) for a module's tests, its AWS variables in
    the environment meanwhile (a Ray cluster started after it gives them to its nodes)."""
    from s3_server import S3Server, environment_with

    with S3Server(VENV_BIN / "moto_server") as server, environment_with(server.env):
        yield server


def built_copy(project: Path, root: Path) -> Path:
    """A copy of a project (git repo, DVC cache, build/) at `root`, to change freely."""
    shutil.copytree(project, root, symlinks=True)
    return root


def copy_project(root: Path) -> Path:
    """The `project` fixture's copy of the repository at `root`."""
    ignore = shutil.ignore_patterns(".venv", ".git", "node_modules", "build", "__pycache__", ".pytest_cache", "*.egg-info", "tmp", "cache")
    shutil.copytree(REPO, root, ignore=ignore)
    for command in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "tests@example.invalid"],
        ["git", "config", "user.name", "tests"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "fixture"],
    ):
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    return root
