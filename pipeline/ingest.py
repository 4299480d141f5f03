"""Ingest: raw drops (folders of files) -> the canonical article table + quarantine.

A drop is a folder under ``paths.raw``. Files are read in sorted path order:

* ``.txt``: one article per file; the title is resolved by the clean stage (first
  meaningful line), so ingest keeps the whole decoded text.
* ``.jsonl`` / ``.ndjson``: one JSON object per line. ``.json``: one object or an array.
* ``.csv``: a header row, one article per row. ``.parquet``: one article per row.

Record fields map to canonical columns through ``ingest.columns`` in params.yaml (a list
of accepted field names per column); a ``drop.yaml`` in the drop folder can override the
mapping, the encoding and the outlet (``source``) for that drop.

Nothing is dropped silently: an input that cannot become an article is a quarantine row
with a reason from ``schema.QUARANTINE_REASONS``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from . import arabic_text
from .io import partition, write_parts, write_stage_report, write_table
from .params import section
from .progress import Progress, log
from .schema import ARTICLE_SCHEMA, QUARANTINE_SCHEMA
from .stage_command import StagePaths, add_stage_command

STAGE = "ingest"
# Headline figures for `dvc metrics show` (name: key in the report; io.write_stage_report).
HEADLINE = {
    "input": "inputs", "articles": "articles", "quarantined": "quarantined",
    "quarantine": "quarantined_by_reason",
}
DROP_CONFIG = "drop.yaml"
TEXT_SUFFIXES = {".txt"}
RECORD_SUFFIXES = {".jsonl", ".ndjson", ".json", ".csv", ".parquet"}
CANONICAL_FIELDS = ("title", "text", "url", "source", "published_date")

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SAMPLE_CHARS = 4096  # enough text to tell Arabic from mojibake
_LETTERS = re.compile(r"[^\W\d_]+")
_ARABIC_LETTERS = re.compile(r"[\u0621-\u064A\u0671-\u06D3\u06FA-\u06FC]+")
_CONTROL_BYTES = bytes([*range(0x01, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20)])
_DATE_FORMATS = ("%Y/%m/%d", "%d/%m/%Y", "%d-%m-%Y", "%Y%m%d")


class Rejected(Exception):
    """An input that cannot become an article; carries a quarantine reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


# ---------------------------------------------------------------------------- decoding


def decode_bytes(data: bytes, encoding: str = "auto") -> tuple[str, str]:
    """Decode raw bytes to text; returns ``(text, encoding_used)`` or raises Rejected.

    ``auto`` understands a BOM (UTF-8, UTF-16), then UTF-8, then windows-1256. Bytes that
    are mostly valid UTF-8 with a few broken sequences are rejected rather than read as
    windows-1256 mojibake; windows-1256 is accepted only if it reads as Arabic.
    """
    if not data.strip(b"\x00 \t\r\n"):
        raise Rejected("empty", "no text (only whitespace or NUL bytes)" if data else "zero bytes")
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _strict_decode(data, codec), codec.replace("-sig", "") + " (BOM)"
    data = data.rstrip(b"\x00")  # windows-1256 exports often end with one NUL byte
    if b"\x00" in data:
        raise Rejected("binary", f"NUL byte at offset {data.find(0)}")
    control = len(data) - len(data.translate(None, _CONTROL_BYTES))
    if control > max(8, len(data) // 100):
        raise Rejected("binary", f"{control} control bytes in {len(data)}")
    if encoding != "auto":
        return _strict_decode(data, encoding), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        utf8_error = error
    as_utf8 = data.decode("utf-8", errors="replace")
    broken = as_utf8.count("\ufffd")
    non_ascii = len(as_utf8) - len(as_utf8.encode("ascii", errors="ignore"))
    if non_ascii - broken >= broken:  # mostly valid UTF-8 with some broken sequences
        raise Rejected("undecodable", f"invalid UTF-8 at byte {utf8_error.start}: {utf8_error.reason}")
    text = data.decode("cp1256", errors="replace")
    sample = text[:_SAMPLE_CHARS]
    letters = sum(map(len, _LETTERS.findall(sample)))
    arabic = sum(map(len, _ARABIC_LETTERS.findall(sample)))
    if "\ufffd" in text or not letters or arabic / letters < 0.3:
        raise Rejected("undecodable", "not UTF-8, and as windows-1256 it does not read as Arabic text")
    return text, "windows-1256"


def _strict_decode(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError) as error:
        raise Rejected("undecodable", f"not valid {codec}: {error}") from None


# ---------------------------------------------------------------------------- records


@dataclass
class DropConfig:
    """How to read one drop: params.yaml ``ingest`` defaults, overridden by drop.yaml."""

    name: str
    encoding: str = "auto"
    source: str | None = None
    columns: dict[str, list[str]] = field(default_factory=dict)
    max_article_bytes: int = 5_000_000

    @classmethod
    def load(cls, drop_dir: Path, ingest_params: dict[str, Any]) -> "DropConfig":
        config = cls(
            name=drop_dir.name,
            encoding=ingest_params.get("encoding", "auto"),
            columns={k: list(v) for k, v in ingest_params["columns"].items()},
            max_article_bytes=int(ingest_params["max_article_bytes"]),
        )
        declared_file = drop_dir / DROP_CONFIG
        if declared_file.exists():
            declared = yaml.safe_load(declared_file.read_text(encoding="utf-8")) or {}
            unknown = set(declared) - {"encoding", "source", "columns"}
            if unknown:
                raise ValueError(f"{declared_file}: unknown keys {sorted(unknown)} (allowed: encoding, source, columns)")
            config.encoding = declared.get("encoding", config.encoding)
            config.source = declared.get("source")
            for column, names in (declared.get("columns") or {}).items():
                if column not in CANONICAL_FIELDS:
                    raise ValueError(f"{declared_file}: unknown column '{column}' (allowed: {', '.join(CANONICAL_FIELDS)})")
                config.columns[column] = [names] if isinstance(names, str) else list(names)
        return config


def article_id(drop: str, source_file: str) -> str:
    return hashlib.sha256(f"{drop}/{source_file}".encode("utf-8")).hexdigest()[:16]


def parse_date(value: Any) -> date | None:
    """A date from an ISO string, a few common day/month orders, or a date(time) value."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text.split(" ")[0], fmt).date()
        except ValueError:
            continue
    return None


@dataclass
class DropReader:
    """Turns the files of one drop into article rows and quarantine rows."""

    drop_dir: Path
    config: DropConfig
    counts: dict[str, Any] = field(default_factory=lambda: {"formats": {}, "encodings": {}, "unparsed_dates": 0})

    def rows(self) -> Iterator[dict[str, Any]]:
        """Article rows and quarantine rows (those carry a ``reason``), in file order."""
        files = sorted(
            (p for p in self.drop_dir.rglob("*") if p.is_file() and p.name != DROP_CONFIG),
            key=lambda p: p.relative_to(self.drop_dir).as_posix(),
        )
        for path in files:
            relative = path.relative_to(self.drop_dir).as_posix()
            suffix = path.suffix.lower()
            self._count("formats", suffix or "(none)")
            if suffix in TEXT_SUFFIXES:
                yield self._text_file(path, relative)
            elif suffix in RECORD_SUFFIXES:
                yield from self._record_file(path, relative, suffix)
            else:
                yield self._rejected(relative, None, Rejected("unsupported_format", f"'{suffix or path.name}' files are not read"))

    def _text_file(self, path: Path, relative: str) -> dict[str, Any]:
        size = path.stat().st_size
        if size > self.config.max_article_bytes:
            return self._rejected(relative, None, Rejected("too_large", f"{size:,} bytes > {self.config.max_article_bytes:,}"))
        data = path.read_bytes()
        try:
            text, encoding = decode_bytes(data, self.config.encoding)
        except Rejected as rejected:
            return self._rejected(relative, data, rejected)
        self._count("encodings", encoding)
        return self._article(relative, data, {"text": text})

    def _record_file(self, path: Path, relative: str, suffix: str) -> Iterator[dict[str, Any]]:
        try:
            # Whatever can fail for the file as a whole (decoding, a parse that breaks
            # half-way) happens here, before any record is used: such a file is one
            # quarantine row, not half an ingest.
            records = self._records(path, suffix)
        except Rejected as rejected:
            yield self._rejected(relative, path.read_bytes(), rejected)
            return
        except (json.JSONDecodeError, csv.Error, pa.ArrowException) as error:
            yield self._rejected(relative, path.read_bytes(), Rejected("unreadable_record", str(error)))
            return
        for number, (raw, record) in enumerate(records, start=1):
            locator = f"{relative}#{number}"
            if isinstance(record, Rejected):
                yield self._rejected(locator, raw, record)
                continue
            try:
                yield self._record_article(locator, raw, record)
            except Rejected as rejected:
                yield self._rejected(locator, raw, rejected)

    def _records(self, path: Path, suffix: str) -> Iterable[tuple[bytes, Any]]:
        """(raw bytes, record or Rejected) for each record of a multi-record file. Parsed
        whole, except JSON lines: once the file is decoded, a line can only fail alone, so
        its records are parsed one at a time (a big JSONL file is not held three times)."""
        if suffix == ".parquet":
            return [(_canonical_bytes(record), record)
                    for batch in pq.ParquetFile(path).iter_batches(batch_size=2_000) for record in batch.to_pylist()]
        text, encoding = decode_bytes(path.read_bytes(), self.config.encoding)
        self._count("encodings", encoding)
        if suffix in (".jsonl", ".ndjson"):
            return _json_line_records(text)
        if suffix == ".json":
            data = json.loads(text)
            return [(_canonical_bytes(record), record) for record in (data if isinstance(data, list) else [data])]
        return [(_canonical_bytes(record), record) for record in csv.DictReader(io.StringIO(text, newline=""))]

    def _record_article(self, locator: str, raw: bytes, record: Any) -> dict[str, Any]:
        if not isinstance(record, dict):
            raise Rejected("unreadable_record", f"expected an object, got {type(record).__name__}")
        if len(raw) > self.config.max_article_bytes:
            raise Rejected("too_large", f"{len(raw):,} bytes > {self.config.max_article_bytes:,}")
        values: dict[str, Any] = {}
        for column, names in self.config.columns.items():
            values[column] = next((record[n] for n in names if record.get(n) not in (None, "")), None)
        if values.get("text") is None:
            if not any(n in record for n in self.config.columns["text"]):
                raise Rejected("unreadable_record", f"no text field (looked for {', '.join(self.config.columns['text'])})")
            raise Rejected("empty", "the text field is empty")
        if not isinstance(values["text"], str) or not values["text"].strip():
            raise Rejected("empty", "the text field holds no text")
        return self._article(locator, raw, values)

    def _article(self, locator: str, raw: bytes, values: dict[str, Any]) -> dict[str, Any]:
        published = parse_date(values.get("published_date"))
        if published is None and values.get("published_date") not in (None, ""):
            self.counts["unparsed_dates"] += 1
        return {
            "id": article_id(self.config.name, locator),
            "drop": self.config.name,
            "source_file": locator,
            "title": _as_text(values.get("title")),
            "text": values["text"],
            "url": _as_text(values.get("url")),
            "source": _as_text(values.get("source")) or self.config.source,
            "published_date": published,
            "raw_sha256": hashlib.sha256(raw).hexdigest(),
        }

    def _rejected(self, locator: str, raw: bytes | None, rejected: Rejected) -> dict[str, Any]:
        return {
            "id": article_id(self.config.name, locator),
            "drop": self.config.name,
            "source_file": locator,
            "raw_sha256": hashlib.sha256(raw).hexdigest() if raw is not None else None,
            "source": self.config.source,
            "stage": STAGE,
            "reason": rejected.reason,
            "detail": rejected.detail,
        }

    def _count(self, kind: str, key: str) -> None:
        self.counts[kind][key] = self.counts[kind].get(key, 0) + 1


def _json_line_records(text: str) -> Iterator[tuple[bytes, Any]]:
    """(raw bytes, record or Rejected) per non-blank line, one line at a time. Lines end at
    "\n" only: a JSON string may hold U+2028 or U+0085 unescaped, which str.splitlines
    would also split at."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line, start = text[start:end], end + 1
        if not line.strip():
            continue
        raw = line.encode("utf-8")
        try:
            yield raw, json.loads(line)
        except json.JSONDecodeError as error:
            yield raw, Rejected("unreadable_record", f"invalid JSON: {error}")


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _canonical_bytes(record: Any) -> bytes:
    return json.dumps(record, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")


# ---------------------------------------------------------------------------- tables


def list_drops(raw_dir: Path) -> list[Path]:
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"raw data folder {raw_dir} not found")
    return sorted(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


@dataclass
class IngestResult:
    articles: int
    quarantine: pl.DataFrame
    report: dict[str, Any]


def ingest_drops(drop_dirs: list[Path], ingest_params: dict[str, Any], articles_dir: Path) -> IngestResult:
    """Read every drop, writing article batches to ``articles_dir`` as they fill."""
    batch_size = int(ingest_params["batch_size"])
    quarantined: list[dict[str, Any]] = []
    per_drop: dict[str, dict[str, Any]] = {}
    progress = Progress(STAGE, "inputs")

    def batches() -> Iterator[pl.DataFrame]:
        buffer: list[dict[str, Any]] = []
        for drop_dir in drop_dirs:
            reader = DropReader(drop_dir, DropConfig.load(drop_dir, ingest_params))
            for row in reader.rows():
                progress.advance()
                if "reason" in row:
                    quarantined.append(row)
                    continue
                buffer.append(row)
                if len(buffer) >= batch_size:
                    yield _article_frame(buffer)
                    buffer = []
            per_drop[drop_dir.name] = reader.counts
        if buffer:
            yield _article_frame(buffer)

    articles = write_parts(batches(), articles_dir, ARTICLE_SCHEMA)
    progress.done(f"{articles:,} articles, {len(quarantined):,} quarantined")
    quarantine = pl.DataFrame(quarantined, schema=QUARANTINE_SCHEMA)
    reasons = quarantine.group_by("reason").len().sort("reason")
    report = {
        "inputs": articles + quarantine.height,
        "articles": articles,
        "quarantined": quarantine.height,
        "quarantined_by_reason": dict(zip(reasons["reason"], reasons["len"])),
        "drops": per_drop,
    }
    return IngestResult(articles, quarantine, report)


def _article_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return arabic_text.with_lengths(pl.DataFrame(rows, schema=ARTICLE_SCHEMA))


# ---------------------------------------------------------------------------- stage


def run(raw_dir: Path, output_dir: Path, metrics_path: Path | None, ingest_params: dict[str, Any], drops: list[str] | None = None) -> IngestResult:
    """Ingest every drop under `raw_dir` (or only `drops`) into `output_dir`."""
    drop_dirs = list_drops(raw_dir)
    if drops:
        missing = set(drops) - {d.name for d in drop_dirs}
        if missing:
            raise FileNotFoundError(f"no such drop under {raw_dir}: {', '.join(sorted(missing))}")
        drop_dirs = [d for d in drop_dirs if d.name in drops]
    log(STAGE, f"{len(drop_dirs)} drop(s) under {raw_dir}: {', '.join(d.name for d in drop_dirs)}")
    result = ingest_drops(drop_dirs, ingest_params, output_dir / "articles")
    write_table(result.quarantine, output_dir / "quarantine.parquet")
    write_stage_report(result.report, output_dir, metrics_path, HEADLINE)
    return result


def add_command(commands) -> None:
    parser = add_stage_command(
        commands, STAGE, help="read raw drops into the canonical article table", description=__doc__,
        input_from=("raw",), input_help="folder of drops", main=_main,
    )
    parser.add_argument("--drop", action="append", dest="drops",
                        help="ingest this drop into its own folder, <output>/drop=<name>/ (repeatable; what "
                        "`dvc repro` runs); without it, every drop goes into one table at <output>")


def _main(paths: StagePaths, params: dict[str, Any], args) -> int:
    if not args.drops:
        run(paths.input, paths.output, paths.metrics, section(params, "ingest"))
        return 0
    # Drop by drop, each with its report.json; `corpus totals` sums them into the metrics.
    for drop in args.drops:
        run(paths.input, partition(paths.output, drop), None, section(params, "ingest"), [drop])
    return 0
