"""Ingest on hostile drops (issue 11 items 2-7): links that leave the drop, JSON nested too
deep, ragged and huge CSV rows, files not in one encoding, Parquet columns of the wrong
type, a drop.yaml that does not match its schema. One bad record is one quarantine row;
every input is counted once."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, run_corpus
from drop_cases import sample_records

from pipeline import cli, drops
from pipeline.plumbing.params import load_params, section
from pipeline.stages import ingest

INGEST_PARAMS = section(load_params(REPO / "params.yaml"), "ingest")
RECORDS = sample_records(6)  # real SaudiNewsNet articles, 1,500+ characters each


def run_ingest(raw: Path, out: Path, **params) -> tuple[dict[str, str | None], pl.DataFrame, pl.DataFrame]:
    """Ingest `raw`; (source_file -> quarantine reason or None for an article, articles, quarantine)."""
    result = ingest.run(raw, out, None, INGEST_PARAMS | params)
    articles = pl.read_parquet(out / "articles")
    quarantine = pl.read_parquet(out / "quarantine.parquet")
    outcome = dict.fromkeys(articles["source_file"]) | dict(zip(quarantine["source_file"], quarantine["reason"]))
    assert result.report["inputs"] == len(outcome) == articles.height + quarantine.height  # each input once
    return outcome, articles, quarantine


def jsonl_line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False)


# ------------------------------------------------------------------ item 2: links


def test_links_never_leave_the_drop(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jsonl").write_text(jsonl_line(RECORDS[0]) + "\n", encoding="utf-8")
    (outside / "folder").mkdir()
    (outside / "folder" / "more.jsonl").write_text(jsonl_line(RECORDS[1]) + "\n", encoding="utf-8")
    drop = tmp_path / "raw" / "links"
    (drop / "sub").mkdir(parents=True)
    (drop / "sub" / "real.jsonl").write_text(jsonl_line(RECORDS[2]) + "\n", encoding="utf-8")
    (drop / "outside.jsonl").symlink_to(outside / "secret.jsonl")
    (drop / "outside-folder").symlink_to(outside / "folder")
    (drop / "passwd.txt").symlink_to("/etc/passwd")
    (drop / "up.jsonl").symlink_to("../../outside/secret.jsonl")  # relative, climbing out
    (drop / "dangling.jsonl").symlink_to("missing.jsonl")
    (drop / "loop-a.jsonl").symlink_to("loop-b.jsonl")
    (drop / "loop-b.jsonl").symlink_to("loop-a.jsonl")
    (drop / "inside.jsonl").symlink_to("sub/real.jsonl")  # a link inside the drop is read
    (drop / "sub-again").symlink_to("sub")  # a folder of the drop: read once, where it is

    outcome, articles, quarantine = run_ingest(tmp_path / "raw", tmp_path / "out")

    assert outcome == {
        "sub/real.jsonl#1": None, "inside.jsonl#1": None,
        "outside.jsonl": "outside_drop", "outside-folder": "outside_drop", "passwd.txt": "outside_drop",
        "up.jsonl": "outside_drop", "dangling.jsonl": "dangling_link",
        "loop-a.jsonl": "link_loop", "loop-b.jsonl": "link_loop",
    }
    assert set(articles["url"]) == {RECORDS[2]["url"]}
    assert quarantine["raw_sha256"].null_count() == quarantine.height  # not even hashed
    assert quarantine["detail"].null_count() == 0


def test_drop_yaml_link_outside_the_drop_is_refused(tmp_path):
    (tmp_path / "elsewhere.yaml").write_text("source: somewhere\n", encoding="utf-8")
    drop = tmp_path / "raw" / "d"
    drop.mkdir(parents=True)
    (drop / "a.jsonl").write_text(jsonl_line(RECORDS[0]) + "\n", encoding="utf-8")
    (drop / "drop.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    with pytest.raises(ingest.DropConfigError, match="outside the drop"):
        ingest.DropConfig.load(drop, INGEST_PARAMS)


def test_add_drop_copies_nothing_from_outside_the_drop(project, tmp_path):
    source = tmp_path / "new-drop"
    source.mkdir()
    (source / "a.jsonl").write_text("".join(jsonl_line(r) + "\n" for r in RECORDS), encoding="utf-8")
    (source / "passwd.txt").symlink_to("/etc/passwd")

    result = run_corpus("add-drop", str(source), "--name", "linked", cwd=project, check=False)

    assert result.returncode == 2, result.stderr
    assert f"{source / 'passwd.txt'}" in result.stderr and "/etc/passwd" in result.stderr
    assert not (project / "data" / "raw" / "linked").exists()
    copied = [p for p in (project / "build").rglob("*") if p.is_file()] if (project / "build").exists() else []
    assert not any(p.name == "passwd.txt" for p in copied)


@pytest.mark.parametrize("link", ["dangling", "loop"])
def test_copy_drop_refuses_broken_links(tmp_path, link):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("نص", encoding="utf-8")
    if link == "dangling":
        (source / "b.txt").symlink_to("missing.txt")
    else:
        (source / "b.txt").symlink_to("c.txt")
        (source / "c.txt").symlink_to("b.txt")
    with pytest.raises(drops.UnusableDrop, match="b.txt"):
        drops.copy_drop(source, tmp_path / "copy")


# ------------------------------------------------------------------ item 3: deep JSON


def test_json_nested_too_deep_is_one_quarantined_record(tmp_path):
    drop = tmp_path / "raw" / "deep"
    drop.mkdir(parents=True)
    deep = "[" * 100_000 + "]" * 100_000
    deep_object = '{"title": "x", "text": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}"
    lines = [jsonl_line(RECORDS[0]), deep, jsonl_line(RECORDS[1]), deep_object, jsonl_line(RECORDS[2])]
    (drop / "feed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (drop / "deep.json").write_text(deep, encoding="utf-8")

    outcome, _, quarantine = run_ingest(tmp_path / "raw", tmp_path / "out")

    assert outcome == {"feed.jsonl#1": None, "feed.jsonl#2": "too_deep", "feed.jsonl#3": None,
                       "feed.jsonl#4": "too_deep", "feed.jsonl#5": None, "deep.json": "too_deep"}
    line_hash = quarantine.filter(pl.col("source_file") == "feed.jsonl#2")["raw_sha256"].item()
    assert line_hash == hashlib.sha256(deep.encode()).hexdigest()


# ------------------------------------------------------------------ item 4: CSV


def _csv_text(rows: list[list[str]]) -> str:
    import csv
    import io

    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def test_ragged_csv_row_is_one_quarantined_record(tmp_path):
    drop = tmp_path / "raw" / "csv"
    drop.mkdir(parents=True)
    rows = [["title", "content", "url"]] + [[r["title"], r["content"], r["url"]] for r in RECORDS[:4]]
    rows.insert(2, [RECORDS[4]["title"], RECORDS[4]["content"], RECORDS[4]["url"], "stray", "fields"])
    rows.insert(4, [RECORDS[5]["title"], RECORDS[5]["content"]])  # one short
    (drop / "table.csv").write_text(_csv_text(rows), encoding="utf-8")

    outcome, articles, _ = run_ingest(tmp_path / "raw", tmp_path / "out")

    assert outcome == {"table.csv#1": None, "table.csv#2": "unreadable_record", "table.csv#3": None,
                       "table.csv#4": "unreadable_record", "table.csv#5": None, "table.csv#6": None}
    assert articles["url"].to_list() == [r["url"] for r in RECORDS[:4]]


def test_csv_field_limit_follows_max_article_bytes(tmp_path):
    """A field over the csv module's default 131,072 characters is an article when the
    record is within ingest.max_article_bytes; one over the limit is one too_large record,
    and the rows after it (even after a multi-line quoted field) are read as they are."""
    drop = tmp_path / "raw" / "csv"
    drop.mkdir(parents=True)
    long_text = "\n".join([RECORDS[0]["content"]] * (140_000 // len(RECORDS[0]["content"]) + 1))
    huge_text = "\n".join([RECORDS[1]["content"]] * (400_000 // len(RECORDS[1]["content"]) + 1))
    rows = [["title", "content", "url"]] + [[r["title"], r["content"], r["url"]] for r in RECORDS[2:6]]
    rows.insert(2, ["long", long_text, "https://example.invalid/long"])
    rows.insert(4, ["huge", huge_text, "https://example.invalid/huge"])
    (drop / "table.csv").write_text(_csv_text(rows), encoding="utf-8")
    assert 131_072 < len(long_text) < 300_000 < len(huge_text)

    outcome, articles, _ = run_ingest(tmp_path / "raw", tmp_path / "out", max_article_bytes=300_000)

    assert outcome == {"table.csv#1": None, "table.csv#2": None, "table.csv#3": None, "table.csv#4": "too_large",
                       "table.csv#5": None, "table.csv#6": None}
    assert articles["url"].to_list() == [RECORDS[2]["url"], "https://example.invalid/long", *(r["url"] for r in RECORDS[3:6])]


# ------------------------------------------------------------------ item 5: encodings per record


def test_one_bad_byte_quarantines_one_jsonl_record(tmp_path):
    drop = tmp_path / "raw" / "enc"
    drop.mkdir(parents=True)
    lines = [jsonl_line(r).encode("utf-8") for r in RECORDS[:5]]
    lines[2] = lines[2][:100] + b"\xff" + lines[2][100:]
    (drop / "feed.jsonl").write_bytes(b"\n".join(lines) + b"\n")

    outcome, articles, quarantine = run_ingest(tmp_path / "raw", tmp_path / "out")

    assert outcome == {f"feed.jsonl#{n}": None for n in (1, 2, 4, 5)} | {"feed.jsonl#3": "undecodable"}
    assert quarantine["raw_sha256"].to_list() == [hashlib.sha256(lines[2]).hexdigest()]  # its own bytes
    assert articles["text"].to_list() == [RECORDS[n]["content"] for n in (0, 1, 3, 4)]


def test_mixed_utf8_and_windows_1256_lines_each_decode_right(tmp_path):
    drop = tmp_path / "raw" / "enc"
    drop.mkdir(parents=True)
    # windows-1256 has no code for some characters of real text (e.g. NBSP is fine, but not all): keep those it has
    records = [{k: v.encode("cp1256", errors="ignore").decode("cp1256") if isinstance(v, str) else v for k, v in r.items()}
               for r in RECORDS[:4]]
    # A short record of a windows-1256 file, mostly Latin letters: the file, not the line, shows it is Arabic.
    records.append({"title": "خبر", "content": "نص قصير", "url": "https://example.invalid/a-rather-long-latin-path"})
    lines = [jsonl_line(records[0]).encode("utf-8")] + [jsonl_line(r).encode("cp1256") for r in records[1:]]
    (drop / "feed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    header = "title,content\n".encode("utf-8")
    csv_rows = [_csv_text([[r["title"], r["content"]]]).encode(enc) for r, enc in zip(records, ("cp1256", "utf-8", "utf-8", "cp1256"))]
    bad_row = b'caf\xe9 au lait,"two\nlines \xff\xfe"\n'  # neither encoding; its rows after still line up
    (drop / "table.csv").write_bytes(header + csv_rows[0] + bad_row + b"".join(csv_rows[1:]))

    outcome, articles, quarantine = run_ingest(tmp_path / "raw", tmp_path / "out")

    assert outcome == {f"feed.jsonl#{n}": None for n in range(1, 6)} | {"table.csv#2": "undecodable"} \
        | {f"table.csv#{n}": None for n in (1, 3, 4, 5)}
    expected = [r["content"] for r in records]
    assert articles["text"].to_list() == expected + expected[:4]  # no mojibake in either direction
    assert quarantine["raw_sha256"].to_list() == [hashlib.sha256(bad_row).hexdigest()]


def test_clean_utf8_files_keep_their_raw_hashes(tmp_path):
    """The per-line path is a fallback only: a clean UTF-8 file reads as before."""
    drop = tmp_path / "raw" / "clean"
    drop.mkdir(parents=True)
    lines = [jsonl_line(r) for r in RECORDS[:3]]
    (drop / "feed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ingest.run(tmp_path / "raw", tmp_path / "out", None, INGEST_PARAMS)
    articles = pl.read_parquet(tmp_path / "out" / "articles")
    assert articles["raw_sha256"].to_list() == [hashlib.sha256(line.encode()).hexdigest() for line in lines]
    assert result.report["drops"]["clean"]["encodings"] == {"utf-8": 1}


# ------------------------------------------------------------------ item 6: Parquet types


def test_parquet_columns_of_the_wrong_type_are_quarantined_not_stringified(tmp_path):
    drop = tmp_path / "raw" / "pq"
    drop.mkdir(parents=True)
    good = RECORDS[0]
    pq.write_table(pa.table({"title": [good["title"]], "text": [good["content"]], "date": [20150721]}), drop / "good.parquet")
    pq.write_table(pa.table({"title": [good["title"]], "text": [12345]}), drop / "int-text.parquet")
    pq.write_table(pa.table({"title": [["a"]], "text": [good["content"]]}), drop / "list-title.parquet")
    pq.write_table(pa.table({"text": [good["content"]], "source": [{"x": 1}]}), drop / "struct-source.parquet")

    outcome, articles, quarantine = run_ingest(tmp_path / "raw", tmp_path / "out")

    assert outcome == {"good.parquet#1": None, "int-text.parquet#1": "wrong_type",
                       "list-title.parquet#1": "wrong_type", "struct-source.parquet#1": "wrong_type"}
    details = dict(zip(quarantine["source_file"], quarantine["detail"]))
    assert details["int-text.parquet#1"] == "text (field 'text') is int, not a string"
    assert details["list-title.parquet#1"] == "title (field 'title') is list, not a string"
    assert details["struct-source.parquet#1"] == "source (field 'source') is dict, not a string"
    assert articles.select("title", "published_date").rows() == [(good["title"], date(2015, 7, 21))]


# ------------------------------------------------------------------ item 7: drop.yaml schema


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("!!python/object/new:dict {}\n", "not valid YAML at line 1, column 1: could not determine a constructor"),
        ("encoding: [utf-8\n", "not valid YAML"),
        ("encoding: 5\n", "key 'encoding': Input should be a valid string, got 5 (allowed: 'auto' or a codec name"),
        ("encoding: klingon\n", "key 'encoding': not a text encoding Python knows, got 'klingon'"),
        ("encoding: rot13\n", "key 'encoding': not a text encoding Python knows, got 'rot13'"),
        ("columns: {text: []}\n", "key 'columns.text': List should have at least 1 item"),
        ("columns: {text: 5}\n", "key 'columns.text': Input should be a valid string, got 5 (allowed: a mapping from title"),
        ("columns: {body: [x]}\n", "key 'columns.body': Input should be 'title', 'text'"),
        ("- encoding: utf-8\n", "expected a mapping of keys (encoding, source, columns), got a list"),
        ("source: [a, b]\n", "key 'source': Input should be a valid string, got ['a', 'b'] (allowed: the outlet's name"),
        ("encodng: utf-8\n", "unknown key 'encodng' (allowed keys: encoding, source, columns)"),
    ],
)
def test_drop_yaml_is_checked_against_its_schema(tmp_path, capsys, declared, expected):
    drop = tmp_path / "raw" / "bad"
    drop.mkdir(parents=True)
    (drop / "drop.yaml").write_text(declared, encoding="utf-8")
    status = cli.main(["ingest", "--input", str(tmp_path / "raw"), "--output", str(tmp_path / "out"),
                       "--metrics", str(tmp_path / "ingest.json")])
    error_lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("[ingest]")]
    assert status == 2 and len(error_lines) == 1
    assert error_lines[0].startswith(f"corpus: error: {drop / 'drop.yaml'}: ") and expected in error_lines[0]


def test_drop_yaml_with_a_python_tag_is_one_line_and_exit_2(tmp_path):
    drop = tmp_path / "raw" / "bad"
    drop.mkdir(parents=True)
    (drop / "drop.yaml").write_text(f"!!python/object/apply:os.system ['touch {tmp_path / 'pwned'}']\n", encoding="utf-8")
    result = run_corpus("ingest", "--input", str(tmp_path / "raw"), "--output", str(tmp_path / "out"), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{drop / 'drop.yaml'}: not valid YAML at line 1, column 1: could not determine a constructor" in result.stderr
    assert not (tmp_path / "pwned").exists()


def test_valid_drop_yaml_still_reads(tmp_path):
    drop = tmp_path / "raw" / "ok"
    drop.mkdir(parents=True)
    (drop / "drop.yaml").write_text("encoding: utf-8\nsource: al-example\ncolumns:\n  text: matn\n", encoding="utf-8")
    (drop / "a.jsonl").write_text(jsonl_line({"title": RECORDS[0]["title"], "matn": RECORDS[0]["content"]}) + "\n", encoding="utf-8")
    outcome, articles, _ = run_ingest(tmp_path / "raw", tmp_path / "out")
    assert outcome == {"a.jsonl#1": None} and articles["source"].to_list() == ["al-example"]
