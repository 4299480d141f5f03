"""Faults, concurrency and messages (issue 11, items 8-12), with real processes: a full disk,
two add-drops or publishes at once, a kill -9 mid-way, a Hub that refuses or is not a Hub,
and the one line (never a traceback) a user gets for each."""

from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import REPO, SEED, VENV_BIN, run_corpus
from drop_cases import seed_copy
from hub_server import LocalHub
from pipeline_runs import run_pipeline

from pipeline.plumbing import io
from pipeline.plumbing.params import load_params


def corpus_process(*args: str, cwd: Path, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """`corpus ...` as a user starts it, in a process group of its own (with its `dvc`)."""
    return subprocess.Popen([str(VENV_BIN / "corpus"), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env=env, **popen)


def completed(process: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def described(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def wait_until(condition, process: subprocess.Popen, seconds: float = 120, poll: float = 0.05) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        assert process.poll() is None, described(completed(process))
        time.sleep(poll)


def one_line_error(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """The stderr of a run that failed as a user should see it: `code`, one error line, no traceback."""
    stderr = result.stderr
    assert result.returncode == code, f"exit {result.returncode}\n{result.stdout}\n{stderr}"
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("corpus: ")]
    assert len(errors) == 1, stderr
    return errors[0]


# ---------------------------------------------------------------------------- item 8: a full disk


@pytest.fixture
def tiny_disk(tmp_path):
    """A folder on an 8 KiB tmpfs (the seed's article table is 13 KB): a disk that fills up."""
    mount = tmp_path / "tiny-disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def limit_file_size() -> None:
    """In the child: files over 8 KB cannot be written (EFBIG), instead of a killing SIGXFSZ."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))


def ingest_seed(output: Path, tmp_path: Path, **popen) -> subprocess.CompletedProcess:
    raw = tmp_path / "raw"
    if not raw.exists():
        seed_copy(raw / "seed")
    return completed(corpus_process("--params", str(REPO / "params.yaml"), "ingest", "--input", str(raw), "--output",
                                    str(output), "--metrics", str(output.parent / "ingest.json"), cwd=tmp_path, **popen))


@pytest.mark.parametrize("fault", ["disk full", "file size limit"])
def test_a_full_disk_names_what_could_not_be_written_and_leaves_no_partial_output(fault, tmp_path, request):
    if fault == "disk full":
        output, popen, reason = request.getfixturevalue("tiny_disk") / "ingest", {}, "No space left on device (ENOSPC)"
    else:
        output, popen, reason = tmp_path / "out" / "ingest", {"preexec_fn": limit_file_size}, "File too large (EFBIG)"

    result = ingest_seed(output, tmp_path, **popen)

    line = one_line_error(result)
    assert line == f"corpus: error: could not write {output / 'articles'}: {reason}; nothing was left under that name"
    assert [p for p in output.parent.rglob("*") if p.is_file()] == []  # no half-written table, no temporary file


def test_an_appended_table_on_a_full_disk_leaves_nothing(tiny_disk):
    schema = pl.Schema({"text": pl.String})
    incompressible = pl.DataFrame({"text": [random.Random(0).randbytes(20_000).hex()]}, schema=schema)
    with pytest.raises(io.WriteFailed, match=f"could not write {tiny_disk / 'table.parquet'}: No space left on device"):
        with io.ParquetAppender(tiny_disk / "table.parquet", schema) as appender:
            appender.append(incompressible)
    assert list(tiny_disk.iterdir()) == []


def test_outputs_replace_the_previous_ones_whole(tmp_path):
    schema = pl.Schema({"n": pl.Int64})
    batches = [pl.DataFrame({"n": [i]}, schema=schema) for i in range(3)]
    assert io.write_parts(batches, tmp_path / "parts", schema) == 3
    assert io.write_parts(batches[:1], tmp_path / "parts", schema) == 1  # fewer parts: the old ones are gone
    with io.ParquetAppender(tmp_path / "appended.parquet", schema) as appender:
        appender.append(batches[2])
    io.write_json(tmp_path / "report.json", {"rows": 1})
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "appended.parquet", "parts", "parts/part-00000.parquet", "report.json"]  # no temporaries left
    assert io.scan_table(tmp_path / "parts").collect().equals(batches[0])


# ---------------------------------------------------------------------------- item 9: add-drop as a transaction


def test_two_add_drops_at_once_both_join_drop_order_and_keep_a_users_edit(project, tmp_path):
    processes = {name: corpus_process("add-drop", str(seed_copy(tmp_path / name)), "--name", name, cwd=project)
                 for name in ("north", "south")}
    # Once both have read params.yaml and staged their copy, the user edits params.yaml.
    for name, process in processes.items():
        wait_until((project / "build" / "validate-drop" / name / "staging").is_dir, process)
    params_file = project / "params.yaml"
    params_file.write_text(params_file.read_text(encoding="utf-8") + "# a note the user added\n", encoding="utf-8")

    for name, process in processes.items():
        result = completed(process)
        assert result.returncode == 0, described(result)
        assert (project / "data" / "raw" / f"{name}.dvc").is_file()
    assert sorted(load_params(params_file)["split"]["drop_order"]) == ["north", "seed", "south"]
    assert params_file.read_text(encoding="utf-8").endswith("# a note the user added\n")
    assert {"/north", "/south"} <= set((project / "data" / "raw" / ".gitignore").read_text().split())


def test_an_add_drop_killed_during_dvc_add_is_undone_by_the_next_one(project, tmp_path):
    drop, raw = seed_copy(tmp_path / "late"), project / "data" / "raw"
    process = corpus_process("add-drop", str(drop), "--name", "late", cwd=project)
    wait_until((raw / "late").is_dir, process, poll=0.01)  # moved into place: `dvc add` runs next
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (raw / "late.dvc").exists()  # killed mid-way, as a user's kill -9 leaves it
    assert "late" not in load_params(project / "params.yaml")["split"]["drop_order"]

    retry = run_corpus("add-drop", str(drop), "--name", "late", cwd=project, check=False)

    assert retry.returncode == 0, retry.stderr
    assert "the add-drop of 'late' by pid" in retry.stderr
    assert "was interrupted before `dvc add` finished: undone" in retry.stderr
    assert sorted(p.name for p in (raw / "late").iterdir()) == sorted(p.name for p in drop.iterdir())
    assert (raw / "late.dvc").is_file() and load_params(project / "params.yaml")["split"]["drop_order"] == ["seed", "late"]
    assert (raw / ".gitignore").read_text().split().count("/late") == 1


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def process_state(pid: int) -> str:
    """R, S, Z (exited, not yet reaped)... from /proc/PID/stat."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_an_add_drop_killed_after_dvc_add_is_completed_by_the_next_one(project, tmp_path):
    drop, raw = seed_copy(tmp_path / "late"), project / "data" / "raw"
    process = corpus_process("add-drop", str(drop), "--name", "late", cwd=project)
    wait_until(lambda: (raw / "late").is_dir() and children(process.pid), process, poll=0.01)  # `dvc add` started
    # Stopped while `dvc add` finishes, then killed: the drop is tracked, drop_order not yet updated.
    os.kill(process.pid, signal.SIGSTOP)
    (dvc,) = children(process.pid)
    deadline = time.monotonic() + 120
    while process_state(dvc) != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert (raw / "late.dvc").is_file() and "late" not in load_params(project / "params.yaml")["split"]["drop_order"]

    retry = run_corpus("add-drop", str(drop), "--name", "late", cwd=project, check=False)

    assert retry.returncode == 0, described(retry)
    assert "was interrupted after `dvc add`: completed it" in retry.stderr
    assert "Added data/raw/late, tracked by data/raw/late.dvc" in retry.stdout
    assert load_params(project / "params.yaml")["split"]["drop_order"] == ["seed", "late"]


# ---------------------------------------------------------------------------- item 12: no traceback reaches a user


def corpus_with_params(tmp_path: Path, params_text: str, *args: str) -> subprocess.CompletedProcess:
    params = tmp_path / "params.yaml"
    params.write_text(params_text, encoding="utf-8")
    return run_corpus("--params", str(params), *args, cwd=tmp_path, check=False)


def test_a_broken_params_file_is_one_line_naming_it(tmp_path):
    result = corpus_with_params(tmp_path, "paths:\n  raw: data/raw\n  - broken\n", "ingest")
    assert one_line_error(result).startswith(f"corpus: error: {tmp_path / 'params.yaml'} is not valid YAML: ")


def test_an_unexpected_error_is_one_line_and_its_traceback_comes_with_debug(tmp_path):
    seed_copy(tmp_path / "raw" / "seed")
    params = (REPO / "params.yaml").read_text(encoding="utf-8")
    broken = params.replace("  batch_size: 20000 ", "  batch_size: [20000] ", 1)  # a list where a number belongs
    assert yaml.safe_load(broken)["ingest"]["batch_size"] == [20000]
    args = ("ingest", "--input", str(tmp_path / "raw"), "--output", str(tmp_path / "ingest"), "--metrics", str(tmp_path / "m.json"))

    line = one_line_error(corpus_with_params(tmp_path, broken, *args))
    assert line.startswith("corpus: internal error: TypeError: ") and "`corpus --debug --params" in line

    debug = run_corpus("--debug", "--params", str(tmp_path / "params.yaml"), *args, cwd=tmp_path, check=False)
    assert debug.returncode == 2 and "Traceback (most recent call last)" in debug.stderr and "TypeError" in debug.stderr


# ---------------------------------------------------------------------------- items 10-11: publish and the Hub

TOKEN = "hf_faults_test_token"
REPO_ID = "tests/faults"


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory) -> Path:
    """The real stages on the seed drop (root/run) and a params file naming the Hub repo."""
    root = tmp_path_factory.mktemp("seed-run")
    shutil.copytree(SEED, root / "raw" / "seed")
    params = load_params(REPO / "params.yaml")
    run_pipeline(root / "raw", root / "run", params)
    params["publish"]["repo_id"] = REPO_ID
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return root


def hub_env(endpoint: str, home: Path, token: str | None = TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_ENDPOINT": endpoint, "HF_HOME": str(home), "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_UPDATE_DOWNLOAD_COUNTS": "0", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    return env | ({"HF_TOKEN": token} if token else {})


def start_publish(root: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    run = root / "run"
    return corpus_process("--params", str(root / "params.yaml"), "publish", "--input", str(run / "split"),
                          "--stage-outputs", str(run), "--validation", str(run / "validate" / "results.json"),
                          "--output", str(root / "hub"), "--release-dir", str(root / "release"),
                          "--metrics", str(root / "publish.json"), "--card-template", str(REPO / "dataset_card.md"),
                          *args, cwd=root, env=env)


def test_two_publishes_at_once_the_second_is_refused_and_a_missing_release_lists_those_there(seed_run, tmp_path):
    version = f"v{load_params(seed_run / 'params.yaml')['publish']['version']}"
    with LocalHub(TOKEN) as hub:
        env = hub_env(hub.url, tmp_path / "hf-home")
        answer = hub.hold("refs")  # the first publish waits on the Hub, holding the lock
        first = start_publish(seed_run, env)
        wait_until(lambda: any(path.endswith("/refs") for _, path in hub.requests), first)
        try:
            second = completed(start_publish(seed_run, env, "--dry-run"), timeout=60)
        finally:
            answer.set()
        published = completed(first)

        line = one_line_error(second)
        assert f"(pid {first.pid}, since " in line and f"--params {seed_run / 'params.yaml'} publish" in line
        assert "is running in this checkout" in line
        assert published.returncode == 0 and f"published {version}" in published.stdout, described(published)
        assert set(hub.repos[REPO_ID].tags) == {version}

        diff = completed(corpus_process("--params", str(seed_run / "params.yaml"), "diff", version, "v9.9.9", cwd=seed_run,
                                        env=hub_env(hub.url, tmp_path / "hf-home", None)))
    assert one_line_error(diff) == f"corpus: error: {REPO_ID} has no release v9.9.9; its releases: {version}"


@pytest.mark.parametrize("case", ["token refused", "not a Hub", "unreachable"])
def test_what_went_wrong_with_the_hub_is_said(case, seed_run, tmp_path):
    with LocalHub(TOKEN) as hub:
        hub.web_page = case == "not a Hub"
        endpoint = "http://127.0.0.1:9" if case == "unreachable" else hub.url  # nothing listens on port 9
        token = "hf_not_the_right_one" if case == "token refused" else TOKEN
        args = () if case == "token refused" else ("--dry-run",)
        result = completed(start_publish(seed_run, hub_env(endpoint, tmp_path / "hf-home", token), *args))

    line = one_line_error(result)
    assert line == "corpus: error: " + {
        "token refused": f"the Hub at {hub.url} refused the token (401 Unauthorized): set a valid token in HF_TOKEN "
                         "or run `hf auth login`",
        "not a Hub": f"{hub.url} did not answer as a Hugging Face Hub does (its reply is not JSON): check HF_ENDPOINT",
        "unreachable": f"cannot read {REPO_ID} on the Hub at {endpoint} (ConnectError: [Errno 111] Connection refused): "
                       "nothing was compared or uploaded; pass --offline to plan without the Hub",
    }[case]


def test_an_offline_dry_run_plans_without_the_hub(seed_run, tmp_path):
    result = completed(start_publish(seed_run, hub_env("http://127.0.0.1:9", tmp_path / "hf-home"), "--dry-run", "--offline"))
    assert result.returncode == 0, described(result)
    assert f"create dataset repo {REPO_ID}" in result.stdout and "dry run, --offline. Nothing was uploaded" in result.stdout


def test_validate_drop_on_a_hidden_folder_says_why_it_is_refused(tmp_path):
    hidden = seed_copy(tmp_path / ".hidden")
    result = run_corpus("--params", str(REPO / "params.yaml"), "validate-drop", str(hidden), "--output",
                        str(tmp_path / "out"), cwd=tmp_path, check=False)
    assert result.returncode == 2 and result.stderr == (
        f"validate-drop: unusable input: {hidden} is a hidden folder, which ingest skips: the pipeline would never read "
        "it as a drop. Rename it, or add it under a name of your choice with `corpus add-drop PATH --name NAME`\n")
