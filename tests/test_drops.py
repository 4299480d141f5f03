"""`corpus validate-drop` and `corpus add-drop` on real and broken drops."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import REPO
from drop_cases import BROKEN_EXPORT_FAILURES, broken_export, seed_copy, teaser_only

from pipeline import cli
from pipeline.io import read_json

PARAMS = str(REPO / "params.yaml")
GX = str(REPO / "gx")


def validate_drop(path: Path, output: Path, *extra: str) -> int:
    return cli.main(["--params", PARAMS, "validate-drop", str(path), "--output", str(output), "--gx", GX,
                     "--index", str(output / "no-index"), *extra])


def failed_checks(output: Path) -> set[str]:
    return {check["name"] for check in read_json(output / "results.json")["checks"] if not check["success"]}


def test_unusable_inputs_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    (unreadable / "a.txt").write_bytes(b"\x00\x01\x02binary\x00" * 50)
    (unreadable / "b.pdf").write_bytes(b"%PDF-1.4")
    a_file = tmp_path / "article.txt"
    a_file.write_text("نص", encoding="utf-8")

    for path, message in [
        (tmp_path / "missing", "is not a folder"),
        (a_file, "is not a folder"),
        (empty, "holds no files"),
        (unreadable, "all quarantined"),
    ]:
        assert validate_drop(path, tmp_path / "out") == 2, path
        assert message in capsys.readouterr().err


def test_broken_export_fails_with_the_expectations_it_breaks(tmp_path, capsys):
    drop = tmp_path / "broken"
    ids = broken_export(drop)

    assert validate_drop(drop, tmp_path / "out") == 1

    printed = capsys.readouterr().out
    results = read_json(tmp_path / "out" / "results.json")
    assert failed_checks(tmp_path / "out") == BROKEN_EXPORT_FAILURES
    checks = {c["name"]: c for c in results["checks"]}
    for name, culprits in [
        ("article_rows: published_date, when set, within validate.published_date", ids["dates"]),
        ("article_rows: title is not a boilerplate line (params boilerplate)", ids["titles"]),
        ("article_rows: No HTML entity in text (double-escaped HTML)", ids["entities"]),
    ]:
        assert checks[name]["failing_rows"] == len(culprits) and set(checks[name]["examples"]) == set(culprits)
        assert f"FAIL  article_rows  {name.split(': ', 1)[1]}" in printed
    unique = checks["article_table: Normalised texts unique (drops: share at least validate.drop_min_unique_text_share)"]
    assert unique["failing_rows"] == len(ids["paywalled"]) and set(unique["examples"]) <= set(ids["paywalled"])
    # Counts by outcome add up, with the quarantine reasons.
    drop_report = results["drop"]
    assert drop_report["inputs"] == 31 and drop_report["kept"] == 29
    assert drop_report["outcomes"] == {"kept (not compared with the corpus)": 29, "quarantined": 2}
    assert drop_report["quarantine_reasons"] == {"too_short": 1, "unsupported_format": 1}
    assert "unsupported_format" in printed and "Result: FAILED (4 expectations), exit 1" in printed
    assert (tmp_path / "out" / "data_docs" / "index.html").is_file()


def test_teaser_only_drop_fails_on_mean_length(tmp_path, capsys):
    drop = tmp_path / "teasers"
    teaser_only(drop)
    assert validate_drop(drop, tmp_path / "out") == 1
    assert failed_checks(tmp_path / "out") == {"article_table: Mean n_chars within validate.mean_chars"}
    assert "observed" in capsys.readouterr().out


def test_seed_drop_is_acceptable(tmp_path, capsys):
    drop = seed_copy(tmp_path / "seed2")
    assert validate_drop(drop, tmp_path / "out") == 0
    printed = capsys.readouterr().out
    assert "Result: acceptable, exit 0" in printed and "no corpus index at" in printed
    assert read_json(tmp_path / "out" / "results.json")["drop"]["outcomes"] == {"kept (not compared with the corpus)": 5, "quarantined": 0}


# ---------------------------------------------------------------------------- add-drop


def repo_state(project: Path) -> tuple[str, list[str]]:
    status = subprocess.run(["git", "status", "--porcelain", "--ignored=no"], cwd=project, capture_output=True, text=True, check=True).stdout
    raw = sorted(str(p.relative_to(project)) for p in (project / "data" / "raw").rglob("*"))
    return status, raw


@pytest.mark.parametrize("name", ["../escape", "/tmp/absolute", "a/b", "..", ".hidden", "seed", "x.dvc", ""])
def test_add_drop_refuses_bad_or_existing_names(project, monkeypatch, capsys, name, tmp_path):
    monkeypatch.chdir(project)
    drop = seed_copy(tmp_path / "new")
    before = repo_state(project)

    assert cli.main(["add-drop", str(drop), "--name", name]) == 2

    assert "refused" in capsys.readouterr().err
    assert repo_state(project) == before


def test_failed_add_drop_leaves_the_repo_unchanged(project, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(project)
    drop = tmp_path / "broken"
    broken_export(drop)
    before = repo_state(project)

    assert cli.main(["add-drop", str(drop), "--name", "broken"]) == 1

    assert "refused: the drop fails validation" in capsys.readouterr().err
    assert repo_state(project) == before
    assert not (project / "build" / "validate-drop" / "broken" / "staging").exists()
