"""Ingest: raw drops (folders of files) -> the canonical article table + quarantine.

A drop is a folder under ``paths.raw``, or at a URL (``s3://bucket/drops/NAME``: `corpus
validate-drop` and `add-drop` read it there; see ``io.Location``). Files are read in
sorted path order:

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

import bisect
import codecs
import csv
import errno
import hashlib
import io
import json
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, AnyStr, Iterable, Iterator, Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pydantic
import yaml

from pipeline.engines.engine import Engine, add_engine_option, open_engine, with_engine
from pipeline.engines.local import LocalEngine
from pipeline.plumbing.io import Location, arrow_file, write_parts, write_stage_report, write_table
from pipeline.plumbing.params import section
from pipeline.plumbing.progress import Progress, log
from pipeline.plumbing.schema import ARTICLE_SCHEMA, QUARANTINE_SCHEMA
from pipeline.plumbing.stage_command import StagePaths, add_stage_command
from pipeline.text import arabic_text

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
_NOT_BLANK_BYTE = re.compile(rb"[^\x00 \t\r\n]")
_CONTROL_BYTES = bytes([*range(0x01, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20)])
_DATE_FORMATS = ("%Y/%m/%d", "%d/%m/%Y", "%d-%m-%Y", "%Y%m%d")
_BOM_PREFIXES = tuple(bom for bom, _ in _BOMS)
# A record value's types, by column; others: str. date covers datetime, int a yyyymmdd number.
_ACCEPTED_TYPES = {"published_date": (str, date, int)}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # may stand for a lone surrogate
_FRAME_ROWS = 5_000  # a task's articles are made a frame this many at a time
_TOO_DEEP = f"JSON nested deeper than the parser follows (about {sys.getrecursionlimit():,} levels)"


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
    if not _NOT_BLANK_BYTE.search(data):  # data.strip() would copy a whole file to find out
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


class DropYaml(pydantic.BaseModel):
    """The declared schema of a drop's drop.yaml: every key optional, nothing else allowed."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    encoding: str | None = None
    source: str | None = None
    columns: dict[Literal[CANONICAL_FIELDS], str | Annotated[list[str], pydantic.Field(min_length=1)]] | None = None

    @pydantic.field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str | None) -> str | None:
        if value not in (None, "auto"):
            try:
                b"\x00\x00".decode(value, errors="ignore")
            except LookupError:  # unknown, or not a text encoding (rot13, base64; empty bytes pass)
                raise ValueError("not a text encoding Python knows") from None
        return value


# What each drop.yaml key may hold, for the error message.
DROP_YAML_ALLOWED = {
    "encoding": "'auto' or a codec name, e.g. utf-8, utf-16, cp1256",
    "source": "the outlet's name, one string",
    "columns": f"a mapping from {', '.join(CANONICAL_FIELDS)} to a field name or a list of field names",
}


class DropConfigError(ValueError):
    """drop.yaml cannot be used; the message names the file, the key and what is allowed."""


def read_drop_yaml(path: Path | Location) -> DropYaml:
    """drop.yaml parsed (safe YAML: no tags that build objects) and checked against DropYaml."""
    try:
        declared = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise DropConfigError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise DropConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if declared is None:
        return DropYaml()
    if not isinstance(declared, dict):
        raise DropConfigError(f"{path}: expected a mapping of keys ({', '.join(DROP_YAML_ALLOWED)}), got a {type(declared).__name__}")
    try:
        return DropYaml.model_validate(declared)
    except pydantic.ValidationError as error:
        raise DropConfigError(f"{path}: " + "; ".join(_schema_problems(error))) from None


def _schema_problems(error: pydantic.ValidationError) -> list[str]:
    """One line per wrong key: which key, what is wrong, what is allowed."""
    problems: dict[str, str] = {}
    # Of a union's branches, the one that got past the type check says most (a list too short).
    type_errors = ("string_type", "list_type", "dict_type")
    for problem in sorted(error.errors(), key=lambda problem: problem["type"] in type_errors):
        key, *below = problem["loc"]
        if problem["type"] == "extra_forbidden":
            problems.setdefault(str(key), f"unknown key '{key}' (allowed keys: {', '.join(DROP_YAML_ALLOWED)})")
            continue
        # A union reports each branch: name the key (and column), not the branch.
        name = f"{key}.{below[0]}" if key == "columns" and below else str(key)
        got = repr(problem["input"])
        got = got if len(got) <= 60 else got[:57] + "..."
        message = problem["msg"].removeprefix("Value error, ")
        problems.setdefault(name, f"key '{name}': {message}, got {got} (allowed: {DROP_YAML_ALLOWED[key]})")
    return list(problems.values())


@dataclass
class DropConfig:
    """How to read one drop: params.yaml ``ingest`` defaults, overridden by drop.yaml."""

    name: str
    encoding: str = "auto"
    source: str | None = None
    columns: dict[str, list[str]] = field(default_factory=dict)
    max_article_bytes: int = 5_000_000

    @classmethod
    def load(cls, drop_dir: Path | Location, ingest_params: dict[str, Any]) -> "DropConfig":
        config = cls(
            name=drop_dir.name,
            encoding=ingest_params.get("encoding", "auto"),
            columns={k: list(v) for k, v in ingest_params["columns"].items()},
            max_article_bytes=int(ingest_params["max_article_bytes"]),
        )
        declared_file = drop_dir / DROP_CONFIG
        if declared_file.exists() or declared_file.is_symlink():
            try:
                resolve_inside(declared_file, drop_dir.resolve())
            except Rejected as link:
                raise DropConfigError(f"{declared_file}: {link.detail}") from None
            declared = read_drop_yaml(declared_file)
            config.encoding = declared.encoding or config.encoding
            config.source = declared.source
            for column, names in (declared.columns or {}).items():
                config.columns[column] = [names] if isinstance(names, str) else names
        return config


def resolve_inside(path: Path, root: Path) -> Path:
    """Where `path`, an entry of the drop folder `root` (resolved) reached through real
    folders only, leads: itself, or a link's target inside the drop; Rejected when it is a
    link that leads outside the drop, to nothing, or round in a loop. Nothing outside the
    drop is ever read: a link is followed only to a target inside it."""
    if not path.is_symlink():
        return path
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        raise Rejected("dangling_link", f"a link to {os.readlink(path)}, which does not exist") from None
    except RuntimeError:  # Python 3.11 reports a loop so; later versions raise OSError(ELOOP)
        raise Rejected("link_loop", "a link that leads back to itself") from None
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        raise Rejected("link_loop", "a link that leads back to itself") from None
    if not target.is_relative_to(root):
        raise Rejected("outside_drop", f"a link to {target}, outside the drop folder: not read")
    return target


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

    drop_dir: Path | Location
    config: DropConfig
    counts: dict[str, Any] = field(default_factory=lambda: {"formats": {}, "encodings": {}, "unparsed_dates": 0})

    def rows(self) -> Iterator[dict[str, Any]]:
        """Article rows and quarantine rows (those carry a ``reason``), in file order."""
        for relative in self.entries():
            yield from self.entry_rows(relative)

    @cached_property
    def root(self) -> Path | Location:
        return self.drop_dir.resolve()

    def entries(self) -> list[str]:
        """The drop's inputs (files, and links to anything), as paths relative to it, in the
        order they are read; drop.yaml is not one."""
        return sorted(self.sizes)

    @cached_property
    def sizes(self) -> dict[str, int]:
        """The size of each of the drop's inputs (a link's own), by its `entries` name; at a
        URL, from the listing (no request a file)."""
        # rglob lists links (to files, folders, nowhere) without descending into linked folders.
        return {path.relative_to(self.root).as_posix(): path.lstat().st_size for path in self.root.rglob("*")
                if path.name != DROP_CONFIG and (path.is_symlink() or not path.is_dir())}

    def entry_rows(self, relative: str) -> Iterator[dict[str, Any]]:
        """The rows of one of the drop's `entries`."""
        path = self.root / relative
        try:
            target = resolve_inside(path, self.root)
        except Rejected as rejected:
            yield self._rejected(relative, None, rejected)
            return
        if target.is_dir():  # a link to a folder of the drop: its files are read where they are
            return
        suffix = path.suffix.lower()
        self._count("formats", suffix or "(none)")
        if not target.is_file():
            yield self._rejected(relative, None, Rejected("unsupported_format", "not a regular file (a pipe, socket or device)"))
        elif suffix in TEXT_SUFFIXES:
            yield self._text_file(target, relative)
        elif suffix in RECORD_SUFFIXES:
            yield from self._record_file(target, relative, suffix)
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
            # Whatever can fail for the file as a whole (decoding a .json file, a CSV
            # header, a parse that breaks half-way) happens here, before any record is
            # used: such a file is one quarantine row, not half an ingest.
            records = self._records(path, suffix)
        except Rejected as rejected:
            yield self._rejected(relative, path.read_bytes(), rejected)
            return
        except RecursionError:
            yield self._rejected(relative, path.read_bytes(), Rejected("too_deep", _TOO_DEEP))
            return
        except (ValueError, csv.Error, pa.ArrowException) as error:  # ValueError: also JSONDecodeError
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

    def _records(self, path: Path, suffix: str) -> Iterable[tuple[bytes | None, Any]]:
        """(raw bytes, record or Rejected) for each record of a multi-record file. Parsed
        whole, except JSON lines and CSV rows: once the file is decoded, a line or row can
        only fail alone, so they are parsed one at a time (a big file is not held three
        times). A JSONL or CSV file that is not valid as a whole in one encoding is
        decoded line by line, so one bad line is one bad record."""
        if suffix == ".parquet":
            source, filesystem = arrow_file(path)
            return [_with_raw_bytes(record) for batch in pq.ParquetFile(source, filesystem=filesystem).iter_batches(
                batch_size=2_000) for record in batch.to_pylist()]
        data = path.read_bytes()
        if suffix == ".json":
            text, encoding = decode_bytes(data, self.config.encoding)
            self._count("encodings", encoding)
            parsed = json.loads(text)
            return [_with_raw_bytes(record) for record in (parsed if isinstance(parsed, list) else [parsed])]
        decoded = self._decode_line_file(data)
        if suffix == ".csv":
            text, lines = (decoded, None) if isinstance(decoded, str) else _joined_lines(decoded)
            return _csv_records(text, lines, self.config.max_article_bytes)
        return _json_line_records(((None, line) for line in _split_at_newlines(decoded, "\n"))
                                  if isinstance(decoded, str) else decoded)

    def _decode_line_file(self, data: bytes) -> str | Iterator[tuple[bytes, str | Rejected]]:
        """A JSONL or CSV file's text when it is clean in one encoding (a BOM, the
        declared encoding, or UTF-8), else (raw bytes, text or Rejected) per line ("\n"
        kept), each line decoded on its own."""
        try:
            text, encoding = decode_bytes(data, self.config.encoding)
        except Rejected as rejected:
            if rejected.reason == "empty" or data.startswith(_BOM_PREFIXES):
                raise
            text, encoding = None, None
        if text is not None and not (self.config.encoding == "auto" and encoding == "windows-1256"):
            self._count("encodings", encoding)
            return text
        # Not clean as a whole (in auto mode, a windows-1256 file may hide UTF-8 lines:
        # then each line is UTF-8 or else windows-1256, whose Arabic the file as a whole
        # showed; a short line alone could not).
        self._count("encodings", "decided per line")
        return _decoded_lines(data, self.config.encoding, fallback=encoding)

    def _record_article(self, locator: str, raw: bytes, record: Any) -> dict[str, Any]:
        if not isinstance(record, dict):
            raise Rejected("unreadable_record", f"expected an object, got {type(record).__name__}")
        if len(raw) > self.config.max_article_bytes:
            raise Rejected("too_large", f"{len(raw):,} bytes > {self.config.max_article_bytes:,}")
        values: dict[str, Any] = {}
        for column, names in self.config.columns.items():
            values[column] = None
            for name in names:  # the first field that has a value
                value = record.get(name)
                if value is None or value == "":
                    continue
                accepted = _ACCEPTED_TYPES.get(column, str)
                if isinstance(value, bool) or not isinstance(value, accepted):
                    # Never str() it: a list or struct would pass as the text "['a']".
                    raise Rejected("wrong_type", f"{column} (field '{name}') is {type(value).__name__}, "
                                   f"not {'a string' if accepted is str else 'a string, a date or a yyyymmdd number'}")
                values[column] = value
                break
        if values.get("text") is None:
            if not any(n in record for n in self.config.columns["text"]):
                raise Rejected("unreadable_record", f"no text field (looked for {', '.join(self.config.columns['text'])})")
            raise Rejected("empty", "the text field is empty")
        if values["text"].isspace():  # not strip(): that copies the text
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


def _decoded_lines(data: bytes, encoding: str, fallback: str | None) -> Iterator[tuple[bytes, str | Rejected]]:
    """(raw bytes, text or Rejected) per line ("\n" kept), each line decoded on its own:
    in `encoding`, or when `fallback` is set, as UTF-8 if it is valid, else in `fallback`."""
    for raw in _split_at_newlines(data, b"\n"):
        if not raw.strip(b" \t\r\n"):
            yield raw, raw.decode("ascii")
            continue
        body = raw.rstrip(b"\r\n")
        try:
            yield raw, _decode_line(body, encoding, fallback) + raw[len(body):].decode("ascii")
        except Rejected as rejected:
            yield raw, rejected


def _decode_line(data: bytes, encoding: str, fallback: str | None) -> str:
    if fallback:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            encoding = fallback
    return decode_bytes(data, encoding)[0]


def _split_at_newlines(data: AnyStr, newline: AnyStr) -> Iterator[AnyStr]:
    """Lines ("\n" kept) of str or bytes, ending at "\n" only: a JSON string may hold U+2028
    or U+0085 unescaped, which str.splitlines would also split at, and a lone "\r" inside
    a quoted CSV field is no line end either."""
    start = 0
    while start < len(data):
        end = data.find(newline, start)
        end = len(data) if end < 0 else end + 1
        yield data[start:end]
        start = end


def _json_line_records(lines: Iterable[tuple[bytes | None, str | Rejected]]) -> Iterator[tuple[bytes, Any]]:
    """(raw bytes, record or Rejected) per non-blank line, one line at a time."""
    for raw, line in lines:
        raw = raw.removesuffix(b"\n") if raw is not None else None
        if isinstance(line, Rejected):
            yield raw, line
            continue
        line = line.removesuffix("\n")
        if not line.strip():
            continue
        raw = line.encode("utf-8") if raw is None else raw
        yield raw, _parse_json(line)


def _parse_json(text: str) -> Any:
    """A JSON value, or Rejected: invalid, nested too deep, or a string that is not Unicode."""
    try:
        value = json.loads(text)
    except RecursionError:
        return Rejected("too_deep", _TOO_DEEP)
    except ValueError as error:  # JSONDecodeError, and integers of more than 4,300 digits
        return Rejected("unreadable_record", f"invalid JSON: {error}")
    if _SURROGATE_ESCAPE.search(text):
        _, value = _with_raw_bytes(value)
    return value


def _with_raw_bytes(record: Any) -> tuple[bytes | None, Any]:
    """(canonical bytes, record) of a parsed record, or (None, Rejected) when it cannot
    be written as UTF-8 JSON: nested too deep, or a lone surrogate (a JSON "\\udc80")."""
    try:
        return _canonical_bytes(record), record
    except RecursionError:
        return None, Rejected("too_deep", _TOO_DEEP)
    except UnicodeEncodeError as error:
        return None, Rejected("undecodable", f"a string holds {error.object[error.start]!r}, not a Unicode character")


def _joined_lines(decoded: Iterator[tuple[bytes, str | Rejected]]) -> tuple[str, list[tuple[int, bytes, Rejected | None]]]:
    """A file decoded line by line as one text, and each line's (offset in it, raw bytes,
    why it could not be decoded). An undecodable line stands in the text as Latin-1 (one
    character per byte), so the quotes, commas and line ends of a CSV file, ASCII in
    every encoding read here, still delimit its rows."""
    parts: list[str] = []
    lines: list[tuple[int, bytes, Rejected | None]] = []
    offset = 0
    for raw, line in decoded:
        rejected = line if isinstance(line, Rejected) else None
        text = raw.decode("latin-1") if rejected else line
        lines.append((offset, raw, rejected))
        parts.append(text)
        offset += len(text)
    return "".join(parts), lines


def _csv_records(text: str, lines: list[tuple[int, bytes, Rejected | None]] | None,
                 field_limit: int) -> Iterator[tuple[bytes, Any]]:
    """(raw bytes, record or Rejected) per CSV row after the header (read now: a file
    whose header cannot be read or decoded is rejected whole). A row is Rejected alone
    when it has more or fewer fields than the header, cannot be parsed, has a field of
    more than `field_limit` characters (then it is larger than ingest.max_article_bytes),
    or a line of it could not be decoded (`lines`: see _joined_lines; None when the file
    was decoded whole)."""
    buffer = io.StringIO(text, newline="")
    reader = csv.reader(buffer)
    csv.field_size_limit(field_limit)  # the csv module's limit is global: set for each file
    header = next((row for row in reader if row), [])
    undecodable = next((rejected for _, _, rejected in _row_lines(lines, 0, buffer.tell()) if rejected), None)
    if undecodable:
        raise undecodable
    return _csv_rows(buffer, reader, header, lines, field_limit)


def _csv_rows(buffer: io.StringIO, reader, header: list[str], lines: list[tuple[int, bytes, Rejected | None]] | None,
              field_limit: int) -> Iterator[tuple[bytes, Any]]:
    while True:
        start = buffer.tell()
        row: list[str] = []
        rejected = None
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            rejected = Rejected("unreadable_record", f"CSV: {error}")
            if "field larger than field limit" in str(error):
                # Read the row again past the limit, so the next row starts where it should.
                buffer.seek(start)
                csv.field_size_limit(sys.maxsize)
                next(csv.reader(buffer), None)
                csv.field_size_limit(field_limit)
                rejected = Rejected("too_large", f"a CSV field of more than {field_limit:,} characters")
        row_lines = _row_lines(lines, start, buffer.tell())
        undecodable = next((line_rejected for _, _, line_rejected in row_lines if line_rejected), None)
        if undecodable:
            rejected = Rejected(undecodable.reason, f"a line of the CSV row: {undecodable.detail}")
        elif rejected is None and row and len(row) != len(header):
            rejected = Rejected("unreadable_record", f"CSV row of {len(row)} fields, the header has {len(header)}")
        if rejected is not None:
            yield (b"".join(raw for _, raw, _ in row_lines) if lines is not None
                   else buffer.getvalue()[start:buffer.tell()].encode("utf-8")), rejected
        elif row:  # a blank line is no row
            record = dict(zip(header, row))
            yield _canonical_bytes(record), record


def _row_lines(lines: list[tuple[int, bytes, Rejected | None]] | None, start: int, end: int) -> list[tuple[int, bytes, Rejected | None]]:
    """The lines (of a file decoded line by line) that hold its text from `start` to `end`."""
    if lines is None:
        return []
    return lines[bisect.bisect_left(lines, start, key=_offset):bisect.bisect_left(lines, end, key=_offset)]


def _offset(line: tuple[int, bytes, Rejected | None]) -> int:
    return line[0]


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _canonical_bytes(record: Any) -> bytes:
    return json.dumps(record, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")


# ---------------------------------------------------------------------------- tables


def list_drops(raw_dir: Path | Location) -> list[Path | Location]:
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"raw data folder {raw_dir} not found")
    return sorted(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


@dataclass
class IngestResult:
    articles: int
    quarantine: pl.DataFrame
    report: dict[str, Any]


def ingest_drops(drop_dirs: list[Path | Location], ingest_params: dict[str, Any], articles_dir: Path,
                 engine: Engine | None = None) -> IngestResult:
    """Read every drop, writing article batches to ``articles_dir`` as they fill. The files
    are read on `engine` (default: local), in tasks of consecutive files (``read_files``)."""
    engine = engine or LocalEngine()
    batch_size = int(ingest_params["batch_size"])
    quarantined: list[dict[str, Any]] = []
    per_drop: dict[str, dict[str, Any]] = {}
    progress = Progress(STAGE, "inputs")

    def article_frames() -> Iterator[pl.DataFrame]:
        for drop_dir in drop_dirs:
            reader = DropReader(drop_dir, DropConfig.load(drop_dir, ingest_params))
            per_drop[drop_dir.name] = counts = reader.counts
            tasks = _tasks(reader, int(ingest_params["task_bytes"]))
            for read in engine.map_tasks(read_files, (reader.root, reader.config), tasks):
                progress.advance(read.articles.height + len(read.quarantined))
                quarantined.extend(read.quarantined)
                _add_counts(counts, read.counts)
                yield read.articles

    articles = write_parts(_in_batches(article_frames(), batch_size), articles_dir, ARTICLE_SCHEMA)
    progress.done(f"{articles:,} articles, {len(quarantined):,} quarantined; files read on the {engine.name} engine")
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


@dataclass
class FilesRead:
    """What a task of ingest read: its articles (with their lengths), its quarantine rows
    and its formats, encodings and unparsed dates (``DropReader.counts``)."""

    articles: pl.DataFrame
    quarantined: list[dict[str, Any]]
    counts: dict[str, Any]


def read_files(drop: tuple[Path | Location, DropConfig], relatives: list[str]) -> FilesRead:
    """A task of ingest, on an engine's worker: the entries `relatives` of the drop (its
    absolute path and its config), read in their order."""
    reader = DropReader(*drop)
    frames: list[pl.DataFrame] = []
    articles: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    for relative in relatives:
        for row in reader.entry_rows(relative):
            if "reason" in row:
                quarantined.append(row)
                continue
            articles.append(row)
            if len(articles) == _FRAME_ROWS:  # rows as Python objects take several times a frame's memory
                frames.append(_article_frame(articles))
                articles = []
    frames.append(_article_frame(articles))
    return FilesRead(pl.concat(frames), quarantined, reader.counts)


def _tasks(reader: DropReader, task_bytes: int) -> Iterator[list[str]]:
    """The drop's entries in runs of consecutive ones of about `task_bytes` bytes (at least
    one entry: a larger file is a task alone), so a drop of many small files is a few
    tasks, not one a file. How they are grouped does not change any output."""
    task: list[str] = []
    size = 0
    for relative in reader.entries():
        task.append(relative)
        size += reader.sizes[relative]
        if size >= task_bytes:
            yield task
            task, size = [], 0
    if task:
        yield task


def _add_counts(total: dict[str, Any], counts: dict[str, Any]) -> None:
    """Add a task's ``DropReader.counts`` to the drop's (keys in the order first seen, as
    when one reader reads the whole drop)."""
    for kind in ("formats", "encodings"):
        for key, count in counts[kind].items():
            total[kind][key] = total[kind].get(key, 0) + count
    total["unparsed_dates"] += counts["unparsed_dates"]


def _in_batches(frames: Iterable[pl.DataFrame], size: int) -> Iterator[pl.DataFrame]:
    """The rows of `frames`, in their order, as frames of `size` rows (the last one fewer;
    none without rows): the Parquet parts do not depend on how the rows were read."""
    held: list[pl.DataFrame] = []
    rows = 0
    for frame in frames:
        held.append(frame)
        rows += frame.height
        if rows >= size:
            table = pl.concat(held)
            whole = rows - rows % size
            for start in range(0, whole, size):
                yield table.slice(start, size).rechunk()
            held, rows = [table.slice(whole)], rows - whole
    if rows:
        yield pl.concat(held).rechunk()


def _article_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return arabic_text.with_lengths(pl.DataFrame(rows, schema=ARTICLE_SCHEMA))


# ---------------------------------------------------------------------------- stage


def run(raw_dir: Path | Location, output_dir: Path, metrics_path: Path | None, ingest_params: dict[str, Any],
        drops: list[str] | None = None, engine: Engine | None = None) -> IngestResult:
    """Ingest every drop under `raw_dir` (or only `drops`) into `output_dir`, reading the
    files on `engine` (default: local)."""
    drop_dirs = list_drops(raw_dir)
    if drops:
        missing = set(drops) - {d.name for d in drop_dirs}
        if missing:
            raise FileNotFoundError(f"no such drop under {raw_dir}: {', '.join(sorted(missing))}")
        drop_dirs = [d for d in drop_dirs if d.name in drops]
    log(STAGE, f"{len(drop_dirs)} drop(s) under {raw_dir}: {', '.join(d.name for d in drop_dirs)}")
    result = ingest_drops(drop_dirs, ingest_params, output_dir / "articles", engine)
    write_table(result.quarantine, output_dir / "quarantine.parquet")
    write_stage_report(result.report, output_dir, metrics_path, HEADLINE)
    return result


def add_command(commands) -> None:
    parser = add_stage_command(
        commands, STAGE, input_from=("raw",), input_help="folder of drops", main=_main,
    )
    add_engine_option(parser)


def _main(paths: StagePaths, params: dict[str, Any], args) -> int:
    run(paths.input, paths.output, paths.metrics, section(params, "ingest"),
        engine=open_engine(with_engine(params, args.engine)))
    return 0
