"""Property: whatever a drop holds, ingest never raises and accounts for every record.

Hypothesis builds drops of random bytes, random JSON (deep, huge, wrong types, lone
surrogate escapes, huge integers), ragged CSV and files whose lines are in mixed
encodings. For every one: ingest runs to the end and writes its tables, each record is
an article or a quarantine row (once), and for the files whose records can be counted
from how they were written (one JSON value a line, one CSV row a record), the count per
file is that number.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.plumbing.params import load_params, section
from pipeline.plumbing.schema import QUARANTINE_REASONS
from pipeline.stages import ingest

INGEST_PARAMS = section(load_params(REPO / "params.yaml"), "ingest") | {"max_article_bytes": 20_000}

arabic = st.text(st.sampled_from("ابتثجحخدذرسشصضطظعغفقكلمنهوي ،.\n"), max_size=300)
# Printable text of any script; control characters are left to the random-bytes files,
# where they may split lines and so the count is not known in advance.
any_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text | arabic
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
                           max_leaves=12)
field_names = st.sampled_from(["title", "text", "content", "url", "source", "date", "body", "x"])
records = st.dictionaries(field_names, st.one_of(arabic, json_values), max_size=5)
# Lines that break parsers in their own way: each is one JSON line, never two.
HOSTILE_LINES = [
    "[" * 50_000 + "]" * 50_000,
    '{"text": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}",
    '{"text": "\\udc80"}',
    '{"title": "\\ud800", "text": "نص"}',
    '{"text": ' + "9" * 5_000 + "}",
    '{"text": NaN, "title": Infinity}',
    '{"text": "' + "ن" * 30_000 + '"}',  # over max_article_bytes
    "{not json",
    "[]",
    "null",
]
hostile_lines = st.sampled_from(HOSTILE_LINES)
# Parquet columns of every type a text column should not have (and one it should).
parquet_columns = st.sampled_from([
    pa.array(["نص عربي", "آخر"]), pa.array([1, 2]), pa.array([["a"], ["b"]]), pa.array([{"x": 1}, {"x": 2}]),
    pa.array([b"x", b"y"]), pa.array([None, None], pa.string()), pa.array([1.5, float("nan")]),
])
encodings = st.sampled_from(["utf-8", "cp1256", "latin-1"])  # ASCII-compatible: "\n" stays a line end


def encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


@st.composite
def jsonl_files(draw) -> tuple[bytes, int]:
    lines = draw(st.lists(st.one_of(records.map(lambda r: json.dumps(r, ensure_ascii=False)), hostile_lines), min_size=1, max_size=6))
    data = b"".join(encoded(line, draw(encodings)) + draw(st.sampled_from([b"\n", b"\r\n"])) for line in lines)
    return data, len(lines)


@st.composite
def csv_files(draw) -> tuple[bytes, int]:
    header = draw(st.lists(field_names, min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(st.one_of(arabic, any_text), min_size=1, max_size=6), max_size=6))
    data = b""
    for row in [header, *rows]:
        buffer = io.StringIO(newline="")
        csv.writer(buffer).writerow(row)
        data += encoded(buffer.getvalue(), draw(encodings) if row is not header else "utf-8")
    return data, len(rows)


@st.composite
def drops(draw) -> tuple[dict[str, bytes], dict[str, int]]:
    """(file name -> bytes, file name -> number of records when it is known)."""
    files: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    for n in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["jsonl", "csv", "json", "parquet", "bytes"]))
        if kind == "jsonl":
            files[f"{n}.jsonl"], counts[f"{n}.jsonl"] = draw(jsonl_files())
        elif kind == "csv":
            files[f"{n}.csv"], counts[f"{n}.csv"] = draw(csv_files())
        elif kind == "json":
            text = draw(st.one_of(json_values.map(json.dumps), st.lists(records, max_size=4).map(json.dumps), hostile_lines))
            files[f"{n}.json"] = encoded(text, draw(encodings))
        elif kind == "parquet":
            buffer = io.BytesIO()
            pq.write_table(pa.table({"text": draw(parquet_columns), "title": draw(parquet_columns)}), buffer)
            files[f"{n}.parquet"], counts[f"{n}.parquet"] = buffer.getvalue(), 2
        else:
            suffix = draw(st.sampled_from([".txt", ".jsonl", ".csv", ".json", ".parquet", ""]))
            files[f"{n}{suffix}"] = draw(st.binary(max_size=300))
    return files, counts


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(drops())
def test_ingest_never_raises_and_counts_every_record(drop):
    files, counts = drop
    work = Path(tempfile.mkdtemp(prefix="ingest-property-"))
    try:
        folder = work / "raw" / "random"
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        result = ingest.run(work / "raw", work / "out", None, INGEST_PARAMS)
        articles = pl.read_parquet(work / "out" / "articles")
        quarantine = pl.read_parquet(work / "out" / "quarantine.parquet")
    finally:
        shutil.rmtree(work)
    outcomes = [*articles["source_file"], *quarantine["source_file"]]
    assert result.report["inputs"] == len(outcomes) == result.articles + quarantine.height
    assert len(set(outcomes)) == len(outcomes)  # no record twice
    per_file = Counter(name.split("#")[0] for name in outcomes)
    # Each record of the files written record by record, once (random bytes may hold none:
    # a CSV header alone, an empty JSON array).
    assert set(per_file) <= set(files) and {name: per_file[name] for name in counts} == counts
    assert quarantine["reason"].is_in(list(QUARANTINE_REASONS)).all() and quarantine["detail"].null_count() == 0
