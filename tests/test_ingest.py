"""Ingest on deliberately bad inputs, every supported format, and the real corpora."""

from __future__ import annotations

import codecs
import csv
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import CP1256, SAUDI_SAMPLE, SEED, run_corpus

from pipeline.stages import ingest

ARTICLE = (SEED / "000_207dd742df60968e.txt").read_text(encoding="utf-8")
TITLE, BODY = ARTICLE.split("\n", 1)
CP1256_FILE = CP1256 / "اقتصاديه" / "AEE1.txt"


@pytest.mark.parametrize(
    ("data", "expected_encoding"),
    [
        (ARTICLE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + ARTICLE.encode("utf-8"), "utf-8 (BOM)"),
        (ARTICLE.encode("utf-16"), "utf-16 (BOM)"),  # BOM + little endian
        (codecs.BOM_UTF16_BE + ARTICLE.encode("utf-16-be"), "utf-16 (BOM)"),
        (ARTICLE.encode("cp1256") + b"\x00", "windows-1256"),  # as the cp1256 corpus: trailing NUL
    ],
)
def test_decodes_supported_encodings(data, expected_encoding):
    text, encoding = ingest.decode_bytes(data)
    assert (text.lstrip("\ufeff"), encoding) == (ARTICLE, expected_encoding)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b" \r\n\t\x00", "empty"),
        (ARTICLE.encode("utf-8")[:500] + b"\xff\xfe" + ARTICLE.encode("utf-8")[500:], "undecodable"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
        (ARTICLE.encode("utf-8") + b"\x00 trailing garbage", "binary"),
        ("Économie : la région célèbre ses réussites à Noël".encode("latin-1"), "undecodable"),  # not Arabic as cp1256
    ],
)
def test_rejects_bad_bytes_with_a_reason(data, reason):
    with pytest.raises(ingest.Rejected) as rejected:
        ingest.decode_bytes(data)
    assert rejected.value.reason == reason and rejected.value.detail


def test_declared_encoding_is_strict():
    with pytest.raises(ingest.Rejected, match="not valid utf-8"):
        ingest.decode_bytes(ARTICLE.encode("cp1256"), "utf-8")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-07-21 02:51:38", date(2015, 7, 21)),
        ("2020-01-15T10:00:00Z", date(2020, 1, 15)),
        ("2020/01/15", date(2020, 1, 15)),
        ("15/01/2020", date(2020, 1, 15)),
        (date(2019, 5, 1), date(2019, 5, 1)),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(value, expected):
    assert ingest.parse_date(value) == expected


def _bad_drop(folder: Path) -> dict[str, str | None]:
    """A drop of every kind of bad input; returns source_file -> expected quarantine
    reason (None: must become an article)."""
    folder.mkdir(parents=True)
    expected: dict[str, str | None] = {}

    def put(name: str, data: bytes, reason: str | None) -> None:
        (folder / name).write_bytes(data)
        expected[name] = reason

    put("utf8.txt", ARTICLE.encode("utf-8"), None)
    put("utf8-bom.txt", codecs.BOM_UTF8 + ARTICLE.encode("utf-8"), None)
    put("utf16.txt", ARTICLE.encode("utf-16"), None)
    put("windows-1256.txt", CP1256_FILE.read_bytes(), None)
    put("invalid-utf8.txt", ARTICLE.encode("utf-8")[:301] + ARTICLE.encode("utf-8")[302:], "undecodable")
    put("empty.txt", b"", "empty")
    put("nul-bytes.txt", ARTICLE.encode("utf-8")[:200] + b"\x00\x00\x00" + ARTICLE.encode("utf-8")[200:], "binary")
    html_page = (
        "<!DOCTYPE html><html><head><title>x</title><style>body{color:red}</style></head><body>"
        f"<h1>{TITLE}</h1>" + "".join(f"<p>{p}</p>" for p in BODY.split("\n")) + "<script>track();</script></body></html>"
    )
    put("page.html.txt", html_page.encode("utf-8"), None)
    english = "The government announced a new plan on Monday to support farmers in rural areas. " * 20
    put("english.txt", f"Farm support plan\n{english}".encode("utf-8"), "low_arabic_ratio")
    put("huge.txt", ((ARTICLE + "\n") * 1200).encode("utf-8"), "too_large")  # ~6 MB > 5 MB
    put("scan.pdf", b"%PDF-1.4 ...", "unsupported_format")
    put("notes-only-boilerplate.txt", "تابعونا على\nمقالات ذات صلة\nزر الذهاب إلى الأعلى\n".encode("utf-8"), "empty_after_cleaning")

    good = {"title": TITLE, "content": BODY, "url": "https://example.invalid/a", "source": "outlet", "date": "2020-07-21"}
    lines = [json.dumps(good, ensure_ascii=False), "{not json", json.dumps({"title": "بلا نص"}), json.dumps(good | {"content": ""})]
    (folder / "records.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected |= {"records.jsonl#1": None, "records.jsonl#2": "unreadable_record", "records.jsonl#3": "unreadable_record", "records.jsonl#4": "empty"}

    with (folder / "table.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["headline", "body", "published"])
        writer.writeheader()
        writer.writerow({"headline": TITLE, "body": BODY, "published": "21/07/2020"})
        writer.writerow({"headline": "قصير", "body": "خبر قصير جدا.", "published": "not a date"})
    expected |= {"table.csv#1": None, "table.csv#2": "too_short"}

    pl.DataFrame({"title": [TITLE], "text": [BODY], "published_date": [date(2020, 7, 21)]}).write_parquet(folder / "table.parquet")
    (folder / "broken.parquet").write_bytes(b"PAR1 not really parquet")
    expected |= {"table.parquet#1": None, "broken.parquet": "unreadable_record"}

    (folder / "one.json").write_text(json.dumps(good, ensure_ascii=False), encoding="utf-8")
    expected["one.json#1"] = None
    return expected


@pytest.fixture(scope="module")
def bad_drop_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("bad")
    expected = _bad_drop(work / "raw" / "bad")
    run_corpus("ingest", "--input", str(work / "raw"), "--output", str(work / "ingest"), "--metrics", str(work / "ingest.json"))
    run_corpus("clean", "--input", str(work / "ingest"), "--output", str(work / "clean"), "--metrics", str(work / "clean.json"))
    articles = pl.read_parquet(work / "clean" / "articles.parquet")
    quarantine = pl.read_parquet(work / "clean" / "quarantine.parquet")
    return expected, articles, quarantine, work


def test_every_bad_input_is_kept_or_quarantined_with_its_reason(bad_drop_run):
    expected, articles, quarantine, _ = bad_drop_run
    outcome = {name: None for name in articles["source_file"]}
    outcome |= dict(zip(quarantine["source_file"], quarantine["reason"]))
    assert outcome == expected
    assert articles.height + quarantine.height == len(expected)  # nothing twice, nothing lost
    assert quarantine["detail"].null_count() == 0


def test_ingest_reports_add_up(bad_drop_run):
    expected, _, quarantine, work = bad_drop_run
    ingest_report = json.loads((work / "ingest" / "report.json").read_text())
    clean_report = json.loads((work / "clean" / "report.json").read_text())
    assert ingest_report["inputs"] == len(expected) == ingest_report["articles"] + ingest_report["quarantined"]
    assert clean_report["input"] == ingest_report["articles"]
    assert clean_report["quarantined_total_with_ingest"] == quarantine.height
    assert ingest_report["drops"]["bad"]["unparsed_dates"] == 1
    # The metric is the headline of the report.
    by_reason = quarantine.filter(pl.col("stage") == "ingest").group_by("reason").len()
    assert json.loads((work / "ingest.json").read_text()) == {
        "input": len(expected), "articles": ingest_report["articles"], "quarantined": ingest_report["quarantined"],
        "quarantine": dict(sorted(zip(by_reason["reason"], by_reason["len"])))}


def test_decoded_articles_read_the_same_whatever_the_encoding(bad_drop_run):
    _, articles, _, _ = bad_drop_run
    by_file = {row["source_file"]: row for row in articles.iter_rows(named=True)}
    reference = by_file["utf8.txt"]
    for name in ("utf8-bom.txt", "utf16.txt", "page.html.txt", "records.jsonl#1", "table.csv#1", "table.parquet#1", "one.json#1"):
        assert (by_file[name]["title"], by_file[name]["text"]) == (reference["title"], reference["text"]), name
    assert by_file["records.jsonl#1"]["published_date"] == date(2020, 7, 21) == by_file["table.csv#1"]["published_date"]
    assert by_file["records.jsonl#1"]["url"] == "https://example.invalid/a"
    assert "<" not in by_file["page.html.txt"]["text"] and "track()" not in by_file["page.html.txt"]["text"]
    expected_cp1256 = next(line.strip() for line in CP1256_FILE.read_bytes().decode("cp1256").split("\r\n") if line.strip())
    assert by_file["windows-1256.txt"]["title"] == expected_cp1256


def test_ids_depend_on_drop_and_file_not_on_order(tmp_path):
    first = ingest.DropReader(SEED, ingest.DropConfig(name="seed", columns={"text": ["text"]}))
    ids = [row["id"] for row in first.rows()]
    assert len(set(ids)) == 5
    assert ids == [ingest.article_id("seed", path.name) for path in sorted(SEED.iterdir())]
    assert ingest.article_id("seed", "a.txt") != ingest.article_id("other", "a.txt")


def test_drop_yaml_overrides_mapping_encoding_and_source(tmp_path):
    drop = tmp_path / "raw" / "declared"
    drop.mkdir(parents=True)
    (drop / "drop.yaml").write_text("encoding: cp1256\nsource: al-example\ncolumns:\n  text: [matn]\n", encoding="utf-8")
    (drop / "a.jsonl").write_bytes(json.dumps({"title": TITLE, "matn": BODY}, ensure_ascii=False).encode("cp1256", errors="ignore"))
    result = ingest.run(tmp_path / "raw", tmp_path / "out", None, _ingest_params())
    articles = pl.read_parquet(tmp_path / "out" / "articles")
    assert result.articles == 1 and articles["source"].to_list() == ["al-example"]
    assert articles["text"][0].startswith(BODY.split("\n")[0][:40])


def test_json_lines_split_at_newlines_only(tmp_path):
    """A record whose text holds U+2028 or U+0085 unescaped (valid JSON) is one article;
    blank lines are skipped, a broken line is one quarantined record, CRLF is fine."""
    drop = tmp_path / "raw" / "lines"
    drop.mkdir(parents=True)
    separated = {"title": TITLE, "text": BODY.replace("\n", "\u2028", 1).replace("\n", "\u0085", 1)}
    lines = [json.dumps(separated, ensure_ascii=False), "", '{"title": "broken', json.dumps({"title": TITLE, "text": BODY})]
    (drop / "a.jsonl").write_bytes("\r\n".join(lines).encode("utf-8"))
    result = ingest.run(tmp_path / "raw", tmp_path / "out", None, _ingest_params())
    articles = pl.read_parquet(tmp_path / "out" / "articles")
    quarantine = pl.read_parquet(tmp_path / "out" / "quarantine.parquet")
    assert result.articles == 2 and articles["source_file"].to_list() == ["a.jsonl#1", "a.jsonl#3"]
    assert "\u2028" in articles["text"][0] and "\u0085" in articles["text"][0]
    assert quarantine.select("source_file", "reason").rows() == [("a.jsonl#2", "unreadable_record")]


def _ingest_params() -> dict:
    from pipeline.plumbing.params import load_params, section

    return section(load_params(Path(__file__).resolve().parents[1] / "params.yaml"), "ingest")


def test_real_corpora_counts_and_encodings(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "cp1256").symlink_to(CP1256)
    (raw / "snn").symlink_to(SAUDI_SAMPLE)
    result = ingest.run(raw, tmp_path / "out", None, _ingest_params())
    n_cp1256 = sum(1 for p in CP1256.rglob("*.txt"))
    assert result.report["inputs"] == n_cp1256 + 599 == result.articles + result.quarantine.height
    cp = result.report["drops"]["cp1256"]
    assert cp["formats"] == {".txt": n_cp1256}
    undecodable = result.quarantine.filter(pl.col("drop") == "cp1256")
    # Files whose Arabic was lost to '?' before they reached us are the only rejects.
    assert set(undecodable["reason"]) == {"undecodable"} and undecodable.height < 30
    assert cp["encodings"] == {"windows-1256": n_cp1256 - undecodable.height}
    manifest = pl.read_csv(SAUDI_SAMPLE.parent / "sample_manifest.tsv", separator="\t", quote_char=None)
    empty_ids = {f"{i}.json#1" for i in manifest.filter(pl.col("group") == "empty_content")["id"]}
    snn_quarantine = result.quarantine.filter(pl.col("drop") == "snn")
    assert empty_ids <= set(snn_quarantine["source_file"]) and set(snn_quarantine["reason"]) == {"empty"}
