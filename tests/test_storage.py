"""Reading and writing at URLs (pipeline/plumbing/io.py's Location): a drop read from
``s3://`` on a real local S3-API server (moto's, tests/s3_server.py) gives the ingest
outputs of the same drop read from disk, and a Parquet file written to ``s3://`` is
complete or absent. The engines' tasks at s3:// on a Ray cluster: tests/test_engines.py."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from conftest import SEED, run_corpus
from pipeline_runs import folder_files
from s3_server import BUCKET
from test_ingest import _bad_drop, _ingest_params

from pipeline import cli
from pipeline.drops import copy_drop
from pipeline.plumbing.io import Location, ParquetAppender, storage_path
from pipeline.plumbing.params import load_params
from pipeline.stages import ingest


def _drop(folder: Path) -> Path:
    """A drop of every kind of input ingest reads or quarantines (test_ingest's), the seed
    articles in a subfolder and a drop.yaml naming the outlet."""
    _bad_drop(folder)
    shutil.copytree(SEED, folder / "seed")
    (folder / "drop.yaml").write_text("source: outlet-x\n", encoding="utf-8")
    return folder


def test_a_url_is_a_location_and_a_local_path_a_path():
    assert storage_path("s3://bucket/drops/x") == Location("s3://bucket/drops/x/")
    assert storage_path("data/raw") == Path("data/raw") and storage_path("file:///tmp/x") == Path("/tmp/x")
    location = Location("s3://bucket/drops/x") / "a/b.jsonl"
    assert (location.name, location.suffix, location.parent.url) == ("b.jsonl", ".jsonl", "s3://bucket/drops/x/a")
    assert pickle.loads(pickle.dumps(location)) == location  # sent to a worker as its URL


def test_a_drop_read_from_s3_gives_the_ingest_outputs_of_the_drop_on_disk(tmp_path, s3_server):
    drop = _drop(tmp_path / "raw" / "mixed")
    s3_server.upload(tmp_path / "raw", f"s3://{BUCKET}/raw")
    outputs = {}
    for name, raw in {"disk": tmp_path / "raw", "s3": storage_path(f"s3://{BUCKET}/raw")}.items():
        result = ingest.run(raw, tmp_path / name, None, _ingest_params(), ["mixed"])
        outputs[name] = folder_files(tmp_path / name)
    assert outputs["s3"] == outputs["disk"]
    report = json.loads(outputs["s3"]["report.json"])
    assert result.articles > len(list(SEED.glob("*.txt"))) and report["quarantined"] >= 8
    assert set(report["drops"]["mixed"]["formats"]) >= {".txt", ".jsonl", ".csv", ".parquet", ".json", ".pdf"}
    articles = pl.read_parquet(tmp_path / "s3" / "articles")
    assert articles.filter(pl.col("source_file").str.starts_with("seed/"))["source"].unique().to_list() == ["outlet-x"]

    # add-drop's copy of a drop at a URL is the drop's files
    copy_drop(storage_path(f"s3://{BUCKET}/raw/mixed"), tmp_path / "copy")
    assert folder_files(tmp_path / "copy") == folder_files(drop)


def test_a_drop_at_a_url_of_an_fsspec_file_system_reads_the_same(tmp_path):
    """A protocol pyarrow.fs does not know goes through fsspec (here its in-memory file
    system, in this process)."""
    import fsspec

    _drop(tmp_path / "raw" / "mixed")
    fsspec.filesystem("memory").put(str(tmp_path / "raw"), f"/{tmp_path.name}/raw", recursive=True)
    ingest.run(storage_path(f"memory://{tmp_path.name}/raw"), tmp_path / "memory", None, _ingest_params(), ["mixed"])
    ingest.run(tmp_path / "raw", tmp_path / "disk", None, _ingest_params(), ["mixed"])
    assert folder_files(tmp_path / "memory") == folder_files(tmp_path / "disk")
    fsspec.filesystem("memory").rm(f"/{tmp_path.name}", recursive=True)


def test_validate_drop_reads_a_drop_at_an_s3_url(tmp_path, s3_server):
    """`corpus validate-drop s3://...`: the drop's ingest outputs are those of the drop on
    disk, and its report counts every input."""
    _drop(tmp_path / "raw" / "mixed")
    s3_server.upload(tmp_path / "raw", f"s3://{BUCKET}/checked")
    url = f"s3://{BUCKET}/checked/mixed"
    result = run_corpus("validate-drop", url, "--output", str(tmp_path / "s3"), check=False)
    assert result.returncode in (0, 1), result.stderr
    assert f"Drop 'mixed' ({url})" in result.stdout
    on_disk = ingest.run(tmp_path / "raw", tmp_path / "disk", None, _ingest_params(), ["mixed"])
    assert folder_files(tmp_path / "s3" / "ingest") == folder_files(tmp_path / "disk")
    report = json.loads((tmp_path / "s3" / "results.json").read_text(encoding="utf-8"))["drop"]
    assert report["path"] == url and report["inputs"] == on_disk.report["inputs"]
    assert sum(report["outcomes"].values()) == report["inputs"]
    assert report["quarantine_reasons"]["unsupported_format"] == 1


def test_add_drop_adds_a_drop_at_an_s3_url_as_a_local_tracked_drop(project, monkeypatch, s3_server):
    """`corpus add-drop s3://... --name NAME` copies the drop into paths.raw/NAME (DVC tracks
    local folders), validates the copy and tracks it."""
    s3_server.upload(SEED, f"s3://{BUCKET}/incoming/seed-again")
    monkeypatch.chdir(project)
    assert cli.main(["add-drop", f"s3://{BUCKET}/incoming/seed-again", "--name", "from-s3"]) == 0
    assert folder_files(project / "data" / "raw" / "from-s3") == folder_files(SEED)
    assert (project / "data" / "raw" / "from-s3.dvc").is_file()
    assert load_params(project / "params.yaml")["split"]["drop_order"] == ["seed", "from-s3"]


def test_a_parquet_file_written_to_s3_is_complete_or_absent(tmp_path, s3_server):
    """The appender writes to the final key (no rename on an object store): the same bytes
    as on disk, and nothing at the key when the write fails half-way."""
    schema = pa.schema([("id", pa.int64()), ("text", pa.string())])
    rows = pl.DataFrame({"id": range(2_500), "text": [f"نص {i}" for i in range(2_500)]})
    for where in (tmp_path / "table.parquet", f"s3://{BUCKET}/tables/table.parquet"):
        with ParquetAppender(where, schema, row_group_rows=1_000) as table:
            for start in range(0, rows.height, 700):
                table.append(rows.slice(start, 700))
    assert s3_server.files(f"s3://{BUCKET}/tables") == {"table.parquet": (tmp_path / "table.parquet").read_bytes()}

    failed = f"s3://{BUCKET}/tables/failed.parquet"
    with pytest.raises(ZeroDivisionError):
        with ParquetAppender(failed, schema, row_group_rows=1_000) as table:
            table.append(rows)  # two row groups uploaded
            1 / 0
    assert "failed.parquet" not in s3_server.files(f"s3://{BUCKET}/tables")
    assert not storage_path(failed).exists()
