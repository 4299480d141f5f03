"""`corpus validate-drop` and `corpus add-drop` on real and broken drops."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import REPO, built_copy, run_command
from drop_cases import BROKEN_EXPORT_FAILURES, broken_export, seed_copy, teaser_only, unrelated_sample_files

from pipeline import cli
from pipeline.plumbing.io import read_json, scan_partitions
from pipeline.plumbing.params import ParamsError, load_params, with_list_item
from pipeline.text import arabic_text

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
    # Every input has one outcome; the paywall page is one article, eleven repeats.
    drop_report = results["drop"]
    outcomes = drop_report["outcomes"]
    assert drop_report["inputs"] == 31 == sum(outcomes.values()) and drop_report["kept"] == 29
    assert outcomes["repeat another article of the drop: exact"] == 11 and outcomes["quarantined"] == 2
    assert {r["id"] for r in drop_report["repeat_within_drop"] if r["kind"] == "exact"} < set(ids["paywalled"])
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
    assert read_json(tmp_path / "out" / "results.json")["drop"]["outcomes"] == {
        "new articles (not compared with the corpus)": 5,
        "repeat another article of the drop: exact": 0,
        "repeat another article of the drop: near": 0,
        "quarantined": 0,
    }


# ---------------------------------------------------------------------------- add-drop


def repo_state(project: Path) -> tuple[str, list[str]]:
    status = run_command("git", "status", "--porcelain", "--ignored=no", cwd=project)
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


def test_drop_order_grows_by_one_line_item():
    text = "split:\n  # in order of arrival\n  drop_order: [seed]   # kept comment\n  salt: x\nother:\n  drop_order: [y]\n"
    grown = with_list_item(text, "split", "drop_order", "2026-11-23")  # plain YAML would read a date
    assert grown == text.replace("[seed]", '[seed, "2026-11-23"]')
    assert yaml.safe_load(grown)["split"]["drop_order"] == ["seed", "2026-11-23"]
    assert with_list_item(grown, "split", "drop_order", "seed") == grown
    with pytest.raises(ParamsError, match="on one line"):
        with_list_item("split:\n  drop_order:\n    - seed\n", "split", "drop_order", "new")


def test_params_are_read_as_pyyaml_reads_them():
    """load_params and with_list_item parse with libyaml (about 10x less CPU): the same
    values as pyyaml's own parser, on the project's params.yaml and on items plain YAML
    would read as something else."""
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    assert load_params(REPO / "params.yaml") == yaml.load(text, Loader=yaml.SafeLoader)
    for item in ("2026-11-23", "1.0", "yes", "null", "0x1F", "1_000", "seed"):
        grown = with_list_item(text, "split", "drop_order", item)
        assert yaml.load(grown, Loader=yaml.SafeLoader)["split"]["drop_order"][-1] == item


def test_failed_add_drop_leaves_the_repo_unchanged(project, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(project)
    drop = tmp_path / "broken"
    broken_export(drop)
    before = repo_state(project)

    assert cli.main(["add-drop", str(drop), "--name", "broken"]) == 1

    assert "refused: the drop fails validation" in capsys.readouterr().err
    assert repo_state(project) == before
    assert not (project / "build" / "validate-drop" / "broken" / "staging").exists()


def corpus_texts(project: Path) -> dict[str, str]:
    """Match key -> id of every article in the deduplicated corpus."""
    kept = scan_partitions(project / "build" / "dedup", (), "articles.parquet").collect()
    return dict(zip(kept.select(arabic_text.match_key(pl.col("text")))["text"], kept["id"]))


def tracked_outputs(root: Path) -> dict[str, bytes]:
    """The files of every stage output dvc.lock records (GX's Data Docs are not one)."""
    lock = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))
    outs = [root / out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])]
    files = [f for out in outs for f in ([out] if out.is_file() else sorted(out.rglob("*"))) if f.is_file()]
    return {str(f.relative_to(root)): f.read_bytes() for f in files}


def test_drops_compared_with_the_corpus_added_and_pulled_into_a_fresh_clone(reproduced_seed, monkeypatch, capsys, tmp_path):
    project = built_copy(reproduced_seed, tmp_path / "project")  # after `dvc repro` of the seed
    before = corpus_texts(project)
    monkeypatch.chdir(project)

    # A drop the corpus already has is reported as such (and is not an error).
    assert cli.main(["validate-drop", str(seed_copy(tmp_path / "seed-again"))]) == 0
    outcomes = read_json(project / "build" / "validate-drop" / "seed-again" / "results.json")["drop"]["outcomes"]
    assert outcomes["already in the corpus: exact"] == 5 and outcomes["new articles"] == 0
    assert re.search(r"already in the corpus: exact +5\n", capsys.readouterr().out)

    # Ten unrelated new articles, one of them saved twice, and a copy of a seed article.
    drop = tmp_path / "incoming"
    drop.mkdir()
    new_files = unrelated_sample_files(10)
    for path in new_files:
        (drop / path.name).write_bytes(path.read_bytes())
    (drop / "saved-twice.json").write_bytes(new_files[0].read_bytes())
    (drop / "seed-again.txt").write_bytes(sorted((project / "data" / "raw" / "seed").iterdir())[0].read_bytes())

    remote = tmp_path / "remote"
    run_command("dvc", "remote", "add", "-d", "local", str(remote), cwd=project)
    assert cli.main(["add-drop", str(drop), "--name", "snn-extra", "--push"]) == 0

    outcomes = read_json(project / "build" / "validate-drop" / "snn-extra" / "results.json")["drop"]["outcomes"]
    assert outcomes["already in the corpus: exact"] == 1 and outcomes["repeat another article of the drop: exact"] == 1
    assert 8 <= outcomes["new articles"] <= 10  # unrelated articles may still include a reprint pair
    assert "Added data/raw/snn-extra, tracked by data/raw/snn-extra.dvc (pushed to the DVC remote)" in capsys.readouterr().out
    assert "in sync" in run_command("dvc", "status", "--cloud", "data/raw/snn-extra.dvc", cwd=project)
    assert (project / "data" / "raw" / "snn-extra.dvc").is_file()
    assert "/snn-extra" in (project / "data" / "raw" / ".gitignore").read_text().split()
    # The drop joins split.drop_order, after the drops before it; nothing else in params.yaml changes.
    assert run_command("git", "diff", "--numstat", "params.yaml", cwd=project).split()[:2] == ["1", "1"]
    assert load_params(project / "params.yaml")["split"]["drop_order"] == ["seed", "snn-extra"]
    run_command("git", "add", "data/raw/snn-extra.dvc", "data/raw/.gitignore", "params.yaml", cwd=project)
    run_command("git", "commit", "-qm", "Add drop snn-extra", cwd=project)
    run_command("dvc", "repro", cwd=project)

    # The corpus grows by exactly what validate-drop said the drop adds.
    after = corpus_texts(project)
    assert len(after) == len(before) + outcomes["new articles"]
    assert set(before) < set(after)

    # Push the stage outputs too; a fresh clone pulls the same outputs, up to date. (That a
    # rebuild from nothing gives them byte for byte: tests/test_partitions.py, incremental =
    # from scratch, and tests/test_pipeline_repro.py, the committed dvc.lock.)
    run_command("git", "add", "-A", cwd=project)
    run_command("git", "commit", "-qm", "dvc.lock, metrics and the remote", cwd=project)
    run_command("dvc", "push", cwd=project)
    clone = tmp_path / "clone"
    run_command("git", "clone", "-q", str(project), str(clone), cwd=tmp_path)
    run_command("dvc", "pull", cwd=clone)
    assert "up to date" in run_command("dvc", "status", cwd=clone)
    assert run_command("git", "status", "--porcelain", cwd=clone) == ""
    assert tracked_outputs(clone) == tracked_outputs(project)
