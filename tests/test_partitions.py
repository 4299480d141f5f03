"""Ingest, clean and the row checks of validate drop by drop (build/<stage>/drop=<name>/),
with clean's repeated lines learnt per outlet across drops in drop order; `dvc repro` after
a new drop ingests and cleans it alone, and equals a run from scratch byte for byte; a drop
taken out of split.drop_order leaves every output."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import SAUDI_SAMPLE, built_copy, run_command, run_corpus
from pipeline_runs import GX_DIR, folder_files, output_files

from pipeline.plumbing.fingerprint import FINGERPRINT_FILE, DigestMemo
from pipeline.plumbing.io import partition, read_json, scan_partitions, scan_table, sum_reports, write_table
from pipeline.plumbing.params import load_params, section, with_list_item
from pipeline.stages import clean, clean_drops, dedup, ingest, validate

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")


def _drop_of(files: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, folder / path.name)
    return folder


def test_an_outlets_repeated_lines_carry_over_to_its_next_drop(tmp_path):
    """SaudiNewsNet's sample in two drops by date: lines of almadina's footer repeat in 10
    or more of its articles only counting both drops. The second drop is cleaned of them,
    and the first drop's table does not change when the second arrives."""
    files = sorted(SAUDI_SAMPLE.glob("*.json"))
    halves = {"early": files[: len(files) // 2], "late": files[len(files) // 2 :]}
    rules = clean.BoilerplateRules.from_params(section(PARAMS, "boilerplate"))
    counts = {}
    for name, drop_files in halves.items():
        _drop_of(drop_files, tmp_path / "raw" / name)
        ingest.run(tmp_path / "raw", partition(tmp_path / "ingest", name), None, section(PARAMS, "ingest"), [name])
        articles = scan_table(partition(tmp_path / "ingest", name) / "articles")
        (tmp_path / name).mkdir()
        _, counts[name] = clean.normalise_in_batches(articles, rules, 1000, tmp_path / name, keep_normalised=False)

    chained = dict(clean.repeated_lines_by_drop([(name, table.lazy()) for name, table in counts.items()], rules))
    alone = {name: dict(clean.repeated_lines_by_drop([(name, table.lazy())], rules))[name]
             for name, table in counts.items()}
    assert chained["early"].equals(alone["early"])
    learnt = chained["late"].join(alone["late"], on=["source", "key"], how="anti")
    assert learnt.height > 0 and set(learnt["drop"]) == {"late"}

    for name, repeated in (("chained", chained["late"]), ("alone", alone["late"])):
        clean.run(partition(tmp_path / "ingest", "late"), tmp_path / name, None, PARAMS, repeated)
    # removed as repeated lines (some of them a line rule removes anyway, without the counts)
    removed = {name: set(pl.read_parquet(tmp_path / name / "removed_lines.parquet")
                         .filter(pl.col("removed_as") == "repeated")["key"])
               for name in ("chained", "alone")}
    assert set(learnt["key"]) <= removed["chained"] and not set(learnt["key"]) & removed["alone"]
    articles = {name: pl.read_parquet(tmp_path / name / "articles.parquet") for name in ("chained", "alone")}
    assert articles["chained"]["id"].to_list() == articles["alone"]["id"].to_list()
    assert articles["chained"]["n_chars"].sum() <= articles["alone"]["n_chars"].sum()


@pytest.fixture(scope="module")
def two_drops(reproduced_seed, tmp_path_factory) -> Path:
    """The project with the seed and a small SaudiNewsNet drop (40 sample articles, `snn-a`,
    listed in split.drop_order) built by `dvc repro`: the set-up of the tests that grow the
    corpus or take a drop out, which work on their own `built_copy`."""
    root = built_copy(reproduced_seed, tmp_path_factory.mktemp("two-drops") / "project")  # the seed's stages already run
    _drop_of(sorted(SAUDI_SAMPLE.glob("*.json"))[:40], root / "data" / "raw" / "snn-a")
    params = root / "params.yaml"
    params.write_text(with_list_item(params.read_text(encoding="utf-8"), "split", "drop_order", "snn-a"),
                      encoding="utf-8")
    run_command("dvc", "repro", cwd=root)
    return root


@pytest.fixture(scope="module")
def grown(two_drops, tmp_path_factory) -> tuple[Path, str, dict[str, dict[str, bytes]]]:
    """The project of `two_drops`, then a third drop added with `corpus add-drop` and `dvc
    repro` run: its output, and dedup's folder of each earlier drop before it (file name: bytes)."""
    work = tmp_path_factory.mktemp("grown")
    root = built_copy(two_drops, work / "project")
    files = sorted(SAUDI_SAMPLE.glob("*.json"))
    # The digest memo is keyed by absolute path: dedup fingerprints the copy's clean tables
    # once they are settled, as the last run in a checkout would have.
    time.sleep(DigestMemo.SETTLED_NS / 1e9)
    run_corpus("dedup", cwd=root)
    before = {"dedup": {drop: folder_files(partition(root / "build" / "dedup", drop)) for drop in ("seed", "snn-a")},
              "clean": {drop: _file_identities(root, drop) for drop in ("seed", "snn-a")},
              "dvc.lock": (root / "dvc.lock").read_text(encoding="utf-8"),
              "digests": {file: kept for file, kept in json.loads((root / "build" / DigestMemo.FILE).read_text(
                  encoding="utf-8")).items() if str(root) in file}}
    run_corpus("add-drop", str(_drop_of(files[40:60], work / "snn-b")), "--name", "snn-b", cwd=root)
    return root, run_command("dvc", "repro", cwd=root), before


def _file_identities(root: Path, drop: str) -> dict[str, tuple[int, int]]:
    """(inode, modification time) of each file of the drop's folders of the clean stage but
    its repeated lines (chained again on every run, the same bytes while they hold)."""
    return {str(path.relative_to(root)): (path.stat().st_ino, path.stat().st_mtime_ns)
            for folder in ("ingest", "line_counts", "clean")
            for path in sorted(partition(root / "build" / folder, drop).rglob("*")) if path.is_file()}


def test_a_new_drop_is_the_only_one_ingested_and_cleaned_and_grows_dvc_lock_by_its_name(grown):
    root, output, before = grown
    # One process a stage: the clean stage (every drop), then one of each corpus-level stage.
    ran = [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]
    assert sorted(ran) == sorted(["clean", "dedup", "validate", "split", "publish", "figures"])
    for drop in ("seed", "snn-a"):
        # The earlier drops' ingested articles, line counts and cleaned articles are left as
        # they were (the same files, not rewritten) ...
        assert _file_identities(root, drop) == before["clean"][drop]
        # ... and so are dedup's folders (issue 10 item 2): their kept articles, duplicates,
        # index and report do not change, so they are not validated again.
        assert folder_files(partition(root / "build" / "dedup", drop)) == before["dedup"][drop]
    assert {path.name for path in (root / "build" / "ingest" / "drop=snn-b").iterdir()} >= {"articles", "report.json"}
    # dvc.lock grows by the drop's name in the drop_order of the stages that list it, no more.
    def other_lines(lock: str) -> list[str]:
        return [line for line in lock.splitlines() if line.strip() not in ("- seed", "- snn-a", "- snn-b")]

    lock = (root / "dvc.lock").read_text(encoding="utf-8")
    assert len([line for line in lock.splitlines() if line.strip() == "- snn-b"]) >= 4
    assert len(other_lines(lock)) == len(other_lines(before["dvc.lock"]))
    # The validate stage checks the new drop's rows alone (one process, GX set up once).
    rows = root / "build" / "validate" / "rows"
    assert [drop for drop in ("seed", "snn-a", "snn-b") if partition(rows, drop).stat().st_mtime_ns
            > (root / "build" / "ingest" / "drop=snn-b" / "report.json").stat().st_mtime_ns] == ["snn-b"]
    assert sorted(path.name for path in rows.iterdir()) == ["drop=seed", "drop=snn-a", "drop=snn-b"]
    for drop in ("seed", "snn-a", "snn-b"):
        assert (root / "build" / "clean" / f"drop={drop}" / "articles.parquet").is_file()
    assert "Data and pipelines are up to date." in run_command("dvc", "status", cwd=root)
    # The stages read no earlier file again to fingerprint it, though DVC chmods every file
    # of their persist outputs before running them: the digests kept stay as they were.
    digests = json.loads((root / "build" / DigestMemo.FILE).read_text(encoding="utf-8"))
    assert {f"file_digest {root / 'build' / 'clean' / f'drop={drop}' / 'articles.parquet'}"
            for drop in ("seed", "snn-a")} <= before["digests"].keys()
    assert {key: digests.get(key) for key in before["digests"]} == before["digests"]


def test_the_split_assigns_and_hashes_only_the_new_drop(grown):
    """The split keeps the earlier drops' folders and contamination index layers as they
    were (DVC leaves the `persist` outputs in place); the test below shows they equal those
    built from nothing (and must run after this one: it rebuilds the project from scratch)."""
    root, _, _ = grown
    new_drop_ingested = (root / "build" / "ingest" / "drop=snn-b" / "report.json").stat().st_mtime_ns
    for folder, marker in (("split_index", "layer.json"), ("split", "drop.json")):
        for drop in ("seed", "snn-a"):  # dedup leaves the earlier drops' kept articles as they were
            assert (partition(root / "build" / folder, drop) / marker).stat().st_mtime_ns < new_drop_ingested, drop
        assert (partition(root / "build" / folder, "snn-b") / marker).stat().st_mtime_ns > new_drop_ingested


def test_the_incremental_run_equals_a_run_from_scratch(grown):
    root, _, _ = grown
    shutil.rmtree(root / "build" / "validate-drop")  # add-drop's report, not a stage's
    lock, outputs = (root / "dvc.lock").read_text(), output_files(root)
    shutil.rmtree(root / "build")
    run_command("dvc", "repro", "--force", cwd=root)
    assert (root / "dvc.lock").read_text() == lock
    assert output_files(root).keys() == outputs.keys()
    assert output_files(root) == outputs


def test_partitions_are_read_in_drop_order_then_by_name(tmp_path):
    for drop in ("b", "a", "c"):
        write_table(pl.DataFrame({"drop": [drop]}), partition(tmp_path, drop) / "t.parquet")
    assert scan_partitions(tmp_path, ["c", "a"], "t.parquet").collect()["drop"].to_list() == ["c", "a", "b"]
    assert sum_reports([{"n": 1, "by": {"x": 1}, "drops": {"a": {"n": 1}}},
                        {"n": 2, "by": {"x": 1, "y": 3}, "drops": {"b": {"n": 2}}}]) == {
        "n": 3, "by": {"x": 2, "y": 3}, "drops": {"a": {"n": 1}, "b": {"n": 2}}}


def test_validating_drop_by_drop_gives_the_whole_table_validation(tmp_path):
    """The row checks of each drop added up, plus the table suite on the drops' compact
    columns: the same results as every suite on the whole deduplicated table."""
    files = sorted(SAUDI_SAMPLE.glob("*.json"))
    for name, drop_files in (("early", files[:150]), ("late", files[150:300])):
        _drop_of(drop_files, tmp_path / "raw" / name)
        ingest.run(tmp_path / "raw", partition(tmp_path / "ingest", name), None, section(PARAMS, "ingest"), [name])
        clean.run(partition(tmp_path / "ingest", name), partition(tmp_path / "clean", name), None, PARAMS)
    dedup.run(tmp_path / "clean", tmp_path / "dedup", None, PARAMS)
    # Articles under 200 words fail a row check in both drops: failing rows and example ids add up.
    strict = PARAMS | {"quality": PARAMS["quality"] | {"min_words": 200}}
    by_drop = validate.run_corpus(tmp_path / "dedup", tmp_path / "corpus", None, strict, GX_DIR)
    whole = validate.run(tmp_path / "dedup", tmp_path / "whole", None, strict, GX_DIR)
    assert by_drop.articles == whole.articles > 200 and by_drop.batches == 2 and whole.batches == 1
    assert [check.name for check in whole.failed] == [check.name for check in by_drop.failed] != []
    assert by_drop.failed[0].failing_rows > len(by_drop.failed[0].examples) == 5
    by_drop_results = read_json(tmp_path / "corpus" / "results.json")
    assert by_drop_results | {"batches": 1} == read_json(tmp_path / "whole" / "results.json")
    assert (tmp_path / "corpus" / "report.json").read_bytes() == (tmp_path / "whole" / "report.json").read_bytes()

    # Run again, a drop's row checks are reused while its fingerprint holds (the same
    # results); a changed param checks every drop again, and a drop no longer there goes.
    rows = {name: partition(tmp_path / "corpus" / "rows", name) / "results.json" for name in ("early", "late")}
    checked = {name: path.stat().st_mtime_ns for name, path in rows.items()}
    validate.run_corpus(tmp_path / "dedup", tmp_path / "corpus", None, strict, GX_DIR)
    assert {name: path.stat().st_mtime_ns for name, path in rows.items()} == checked
    assert read_json(tmp_path / "corpus" / "results.json") == by_drop_results
    gone = partition(tmp_path / "corpus" / "rows", "gone")  # a drop no longer in the corpus
    gone.mkdir()
    assert validate.run_corpus(tmp_path / "dedup", tmp_path / "corpus", None, PARAMS, GX_DIR).success
    assert all(path.stat().st_mtime_ns > checked[name] for name, path in rows.items())
    assert not gone.exists()


def _changed(value):
    """Another value of a boilerplate param's type."""
    if isinstance(value, list):
        return [*value, "سطر لم يرد في أي مقال"] if value else ["سطر لم يرد في أي مقال"]
    if isinstance(value, dict):  # the line rules: the first one only
        return dict(list(value.items())[:1])
    return value + 1 if isinstance(value, int) else value


def test_line_counts_are_reused_while_the_rules_counting_reads_hold(reproduced_seed, tmp_path):
    """The clean stage keeps each drop's line counts and counts a drop again only when its
    fingerprint changes: every boilerplate rule but those counting reads changed, the
    counts are reused (and are the same bytes as counted afresh); a rule it reads changed,
    the drop is counted again, to other counts."""
    root = built_copy(reproduced_seed, tmp_path / "project")
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    read = set(clean_drops.COUNTING_RULES)
    assert read < set(params["boilerplate"])
    params["boilerplate"] = {key: value if key in read else _changed(value)
                             for key, value in params["boilerplate"].items()}
    (root / "other.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    counts = root / "build" / "line_counts" / "drop=seed" / clean_drops.LINE_COUNTS_FILE
    before, counted = counts.read_bytes(), counts.stat().st_mtime_ns
    run_corpus("--params", "other.yaml", "clean", cwd=root)
    assert counts.stat().st_mtime_ns == counted
    shutil.rmtree(root / "build" / "line_counts")  # counted afresh with the other rules: the same bytes
    run_corpus("--params", "other.yaml", "clean", cwd=root)
    assert counts.read_bytes() == before
    # and a rule counting reads changes them
    params["boilerplate"]["repeated_lines"]["max_chars"] = 5
    (root / "other.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    run_corpus("--params", "other.yaml", "clean", cwd=root)
    assert counts.read_bytes() != before


def test_a_boilerplate_change_cleans_the_drops_again_without_ingesting_them(reproduced_seed, tmp_path):
    """The clean stage lists the boilerplate params: a change re-runs it, and each drop is
    cleaned again with them (written beside its repeated lines, for validate), its ingested
    articles reused (their fingerprint holds)."""
    root = built_copy(reproduced_seed, tmp_path / "project")
    params = root / "params.yaml"
    values = yaml.safe_load(params.read_text(encoding="utf-8"))
    values["boilerplate"]["paragraph_min_words"] += 1
    params.write_text(yaml.safe_dump(values, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert "clean" in run_command("dvc", "status", "clean", cwd=root)
    done = {stage: root / "build" / stage / "drop=seed" / FINGERPRINT_FILE for stage in ("ingest", "clean")}
    finished = {stage: path.stat().st_mtime_ns for stage, path in done.items()}
    run_command("dvc", "repro", "--single-item", "clean", cwd=root)
    assert done["ingest"].stat().st_mtime_ns == finished["ingest"] < done["clean"].stat().st_mtime_ns
    learnt = read_json(root / "build" / "repeated_lines" / "drop=seed" / clean.BOILERPLATE_FILE)
    assert learnt == section(load_params(params), "boilerplate")
    assert list(learnt["line_rules"]) == list(section(PARAMS, "boilerplate")["line_rules"])  # their order matters


def test_validate_checks_each_drop_with_the_rules_it_was_cleaned_with(reproduced_seed, tmp_path):
    """validate's dvc.lock entry lists no boilerplate params: it checks a drop's rows for
    residual boilerplate with the rules its repeated lines were learnt with (boilerplate.json, the
    rules clean applied), and a change of them reaches it through that folder."""
    root = built_copy(reproduced_seed, tmp_path / "project")
    stage = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["validate"]
    assert "${paths.repeated_lines}" in stage["deps"]
    assert not [name for name in stage["params"] if name.split(".")[0] == "boilerplate"]
    # A short line of a kept article made a curated boilerplate line: in the params only,
    # the kept articles still pass (they were cleaned with the rules before it) ...
    kept = scan_table(root / "build" / "dedup" / "drop=seed" / "articles.parquet").collect()
    line = next(line for text in kept["text"] for line in text.split("\n") if 3 <= len(line.split()) <= 8)
    params = root / "params.yaml"
    values = yaml.safe_load(params.read_text(encoding="utf-8"))
    values["boilerplate"]["lines"].append(line)
    params.write_text(yaml.safe_dump(values, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert "validate" not in run_command("dvc", "status", "validate", cwd=root)
    checks = root / "build" / "validate" / "rows" / "drop=seed" / "results.json"
    checked = checks.stat().st_mtime_ns
    assert run_corpus("validate", "--corpus", cwd=root).returncode == 0
    assert checks.stat().st_mtime_ns == checked  # the drop's rows' fingerprint holds
    # ... once the clean stage has learnt with them, the drop is checked again and fails there.
    run_command("dvc", "repro", "--single-item", "clean", cwd=root)
    assert "validate" in run_command("dvc", "status", "validate", cwd=root)
    failed = run_corpus("validate", "--corpus", cwd=root, check=False)
    assert failed.returncode == 1 and checks.stat().st_mtime_ns > checked
    failing = [check["name"] for check in read_json(checks)["checks"] if not check["success"]]
    assert failing and all("boilerplate" in name for name in failing), failing


def _project_files(root: Path) -> dict[str, bytes]:
    """What the stages write in a project: build/ and metrics/ (path: bytes)."""
    return {f"{folder}/{name}": data for folder in ("build", "metrics")
            for name, data in folder_files(root / folder).items()}


@pytest.mark.parametrize("command, says", [
    (["clean"], ("data/raw/ghost", "`corpus add-drop`")),
    (["dedup"], ("`corpus clean`", "`dvc repro`")),
    (["validate", "--corpus"], ("`corpus dedup`", "`dvc repro`")),
    (["validate"], ("`corpus dedup`", "`dvc repro`")),  # the dedup folder as one table
    (["split"], ("`corpus dedup`", "`dvc repro`")),
    (["figures"], ("`corpus clean`", "`dvc repro`")),
], ids=["clean", "dedup", "validate", "validate-table", "split", "figures"])
def test_a_listed_drop_not_built_stops_a_command_with_one_line(reproduced_seed, tmp_path, command, says):
    """A drop of split.drop_order that was never added or built (`ghost`) was left out
    silently: the command succeeded on the other drops (dedup, validate --corpus, split,
    figures). Now it stops before writing anything, with one line naming the drop and what
    to run, and exit code 2."""
    root = built_copy(reproduced_seed, tmp_path / "project")
    params = root / "params.yaml"
    params.write_text(with_list_item(params.read_text(encoding="utf-8"), "split", "drop_order", "ghost"),
                      encoding="utf-8")
    before = _project_files(root)
    result = run_corpus(*command, cwd=root, check=False)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "drop ghost" in result.stderr and all(part in result.stderr for part in says), result.stderr
    assert _project_files(root) == before


def test_a_drop_taken_out_of_drop_order_leaves_every_output(reproduced_seed, two_drops, tmp_path):
    """A drop added, built (`two_drops`), then taken out of split.drop_order and data/raw:
    after `dvc repro` none of its articles is anywhere in build/ (DVC leaves `persist`
    outputs in place, and each stage reads exactly the listed drops and removes the others'
    folders), and the outputs are those of the seed alone again, figures and all."""
    seed_alone = output_files(reproduced_seed), folder_files(reproduced_seed / "metrics")
    root = built_copy(two_drops, tmp_path / "project")
    params = root / "params.yaml"
    listed = (reproduced_seed / "params.yaml").read_text(encoding="utf-8")
    assert params.read_text(encoding="utf-8") == with_list_item(listed, "split", "drop_order", "snn-a")
    ids = set(scan_table(root / "build" / "ingest" / "drop=snn-a" / "articles").collect()["id"])
    assert ids and set(scan_partitions(root / "build" / "split", (), "assignments.parquet").collect()["id"]) & ids

    params.write_text(listed, encoding="utf-8")
    shutil.rmtree(root / "data" / "raw" / "snn-a")
    run_command("dvc", "repro", cwd=root)
    assert not [path for path in (root / "build").rglob("drop=snn-a")]
    tables = [path for path in (root / "build").rglob("*.parquet") if "validate-drop" not in path.parts]
    for path in tables:
        frame = pl.read_parquet(path)
        for column in {"id", "id_a", "id_b", "anchor_id"} & set(frame.columns):
            assert not set(frame[column].cast(pl.String)) & ids, (path, column)
    assert (output_files(root), folder_files(root / "metrics")) == seed_alone
