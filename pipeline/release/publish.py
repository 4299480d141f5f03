"""Publish: the split tables -> a versioned release on the Hugging Face Hub.

Two steps, so that ``dvc repro`` stays offline and free of side effects:

1. **Build** (the DVC stage, ``corpus publish --build-only``): ``paths.hub`` becomes a
   Hub-ready folder: Parquet shards ``data/{split}-{drop}-NNNNN-of-NNNNN.parquet``
   (``publish.shard_rows`` articles each, a drop's own), the record manifest
   ``manifest/records/{split}-{drop}.parquet`` (id, split and content hash of every
   article, a part a drop's shards),
   ``manifest/release.json``, ``croissant.json``, ``validation/results.json`` (every
   expectation the validate stage checked) and ``README.md``, the dataset card rendered
   from ``dataset_card.md`` with this run's figures (every stage's ``report.json``, checked
   to add up: inputs = published + duplicates + quarantined) and what params.yaml
   ``publish.provenance`` says of each drop. Same inputs and params, same bytes.
   ``datasets.load_dataset("build/hub")`` loads it. The folder is kept between runs (a
   ``persist`` DVC output): a drop's shards in a split are written again only when their
   rows, the shard params or the code changed (``write_shards``), so a new drop's build
   writes its own shards and manifest parts and the small files.

2. **Release** (``corpus publish``, run by hand or CI after ``dvc repro``): refused,
   with nothing built or sent, unless the validation passed (the validate stage's report)
   and the split's contamination gate passed (the split stage's report). Then it builds,
   reads the latest release tag from the Hub, diffs its manifest against this one and
   checks the declared version (``publish.version`` or ``--version``): patch = same
   records repackaged, minor = records only added, major = records edited, removed or
   moved between splits. A version that understates the change is refused. The card is
   merged with the one on the Hub (what people added there is kept) and gets the
   changelog; the result is ``paths.release``. With a token (``HF_TOKEN`` or ``hf auth
   login``) it is committed to ``main`` as one commit ("Release vX.Y.Z": changed files
   added, files of the previous release that are gone deleted), then tagged ``vX.Y.Z``.
   Without a token, or with ``--dry-run``, it prints what it would upload and stops.

   Re-running a published version with the same data does nothing; a tag that exists
   with other data is refused. A release interrupted before its tag leaves no tag; the
   next run finishes it (unchanged files are not sent again).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import polars as pl
import pyarrow as pa

from pipeline.commands import add_parser
from pipeline.engines.engine import DEFAULT_ENGINE, add_engine_option, engine_name, open_engine
from pipeline.plumbing.fingerprint import DigestMemo, code_digest, digest, files_digest
from pipeline.plumbing.io import (
    PARQUET_OPTIONS,
    Location,
    ParquetAppender,
    batches,
    read_json,
    reset_dir,
    scan_table,
    table_rows,
    write_json,
    write_text,
)
from pipeline.plumbing.locks import checkout_lock
from pipeline.plumbing.params import load_params, path_of, section
from pipeline.plumbing.progress import Progress, log
from pipeline.plumbing.schema import CLUSTERED_ARTICLE_COLUMNS, CLUSTERED_ARTICLE_SCHEMA, SPLITS, conform
from pipeline.release import card, card_figures, croissant, manifests
from pipeline.release.manifests import RecordDiff
from pipeline.release.versions import CARD_PATH, MANIFEST_DIR, RELEASE_PATH, Version, VersionError, is_manifest_file
from pipeline.stages.split import drop_table_files
from pipeline.stages.validate import RESULTS_FILE

STAGE = "publish"
CARD_TEMPLATE = Path("dataset_card.md")
CROISSANT_PATH = "croissant.json"
VALIDATION_PATH = f"validation/{RESULTS_FILE}"  # the validate stage's results, shipped with the release
# What each drop's shards and manifest part in each split were built from (fingerprints)
# and their figures: kept with them in the build folder (a persistent DVC output), never
# released.
STATE_DIR = ".build"
STATE_FILE = f"{STATE_DIR}/shards.json"
# Articles read from a split table at a time: a row group of it, read once (memory holds
# about a row group of text, as in every stage; see PARQUET_OPTIONS).
READ_ROWS = PARQUET_OPTIONS["row_group_size"]

# The published table is the split tables' (CLUSTERED_ARTICLE_SCHEMA), column for column.
# Arrow types of the shards (`string`, not Polars' `large_string`, so `datasets` reads
# Value('string')) and the matching Hub feature dtypes.
_ARROW_TYPES = {pl.String(): (pa.string(), "string"), pl.Date(): (pa.date32(), "date32"), pl.Int64(): (pa.int64(), "int64"),
                pl.Float64(): (pa.float64(), "float64")}
FEATURES = [{"name": name, "dtype": _ARROW_TYPES[dtype][1]} for name, dtype in CLUSTERED_ARTICLE_SCHEMA.items()]
PARQUET_WRITE_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "write_statistics": True,
    "write_page_index": True,
    # Page boundaries follow the content, so a new release that shares most rows with
    # the previous one shares most Parquet pages with it (Xet storage deduplicates them).
    "use_content_defined_chunking": True,
}


def published_fields() -> list[dict[str, str]]:
    """Name, Hub dtype and description of every published column, in order."""
    return [feature | {"description": CLUSTERED_ARTICLE_COLUMNS[feature["name"]][1]} for feature in FEATURES]


def hub_arrow_schema() -> pa.Schema:
    features = {f["name"]: {"dtype": f["dtype"], "_type": "Value"} for f in FEATURES}
    # The same features `datasets` writes into its own Parquet files.
    metadata = {"huggingface": json.dumps({"info": {"features": features}}, sort_keys=True)}
    return pa.schema([pa.field(name, _ARROW_TYPES[dtype][0]) for name, dtype in CLUSTERED_ARTICLE_SCHEMA.items()],
                     metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """params.yaml ``publish``, with the CLI's overrides."""

    repo_id: str
    version: Version
    private: bool
    shard_rows: int
    row_group_rows: int
    card: dict[str, Any]
    provenance: dict[str, dict[str, Any]]  # what is known of each drop, by drop name or glob

    @classmethod
    def from_params(cls, publish: dict[str, Any], version: str | None = None, repo_id: str | None = None) -> "Settings":
        settings = cls(
            repo_id=repo_id or publish.get("repo_id") or "",
            version=Version.parse(version or publish["version"]),
            private=bool(publish.get("private", False)),
            shard_rows=int(publish["shard_rows"]),
            row_group_rows=int(publish["row_group_rows"]),
            card=dict(publish["card"]),
            provenance=dict(publish.get("provenance") or {}),
        )
        if settings.shard_rows < 1 or settings.row_group_rows < 1:
            raise ValueError("publish.shard_rows and publish.row_group_rows must be positive")
        return settings


@dataclass
class Shard:
    path: str  # relative to the release folder
    split: str
    drop: str
    rows: int
    arrow_bytes: int  # in-memory size, the Hub's num_bytes
    file_bytes: int
    sha256: str  # of the file, hashed once as it is written (Croissant and release.json list it)


@dataclass
class ManifestPart:
    """The manifest rows of a drop's articles in a split (``manifest_part``)."""

    path: str  # relative to the release folder
    file_bytes: int
    sha256: str  # hashed once as it is written (release.json lists it)


@dataclass
class Build:
    """A release folder built from the split tables."""

    folder: Path
    settings: Settings
    shards: list[Shard]
    manifest_parts: list[ManifestPart]
    context: dict[str, Any]  # the run's figures, for the card

    def manifest(self, parts: Iterable[str] | None = None) -> pl.DataFrame:
        """The record manifest: the rows of every part, or of the parts given (their paths)."""
        paths = [part.path for part in self.manifest_parts] if parts is None else sorted(parts)
        return manifests.read_parts(self.folder / path for path in paths)

    @property
    def written_hashes(self) -> dict[str, str]:
        """SHA-256 of the shards and manifest parts (paths relative to the folder), taken as
        they were written and kept with them while they are reused: hashing them again
        would cost a read of the whole release."""
        return {file.path: file.sha256 for file in [*self.shards, *self.manifest_parts]}

    @property
    def split_sizes(self) -> dict[str, int]:
        return {split: sum(s.rows for s in self.shards if s.split == split) for split in SPLITS}

    @property
    def splits(self) -> list[str]:
        """Splits that have articles (an empty split is left out of the card's configs)."""
        return [split for split, n in self.split_sizes.items() if n]


# ------------------------------------------------------------------------- shards


def shard_name(split: str, drop: str, index: int, count: int) -> str:
    return f"data/{split}-{drop}-{index:05d}-of-{count:05d}.parquet"


@dataclass(frozen=True)
class DropRows:
    """The articles of one drop in one split (the split stage's table of that drop), and
    what their shards are built from (the table's bytes, and what else shapes a shard's)."""

    split: str
    drop: str
    path: Path  # the split stage's table of the drop's articles in the split
    rows: int
    fingerprint: str

    @property
    def key(self) -> str:
        return f"{self.split}/{self.drop}"


def shard_shaping(settings: Settings, memo: DigestMemo | None = None) -> str:
    """Hash of what shapes a shard's bytes besides its rows: the shard params, this module's
    code (and that of what it imports) and the Arrow and Polars versions that write them."""
    shape = json.dumps({"shard_rows": settings.shard_rows, "row_group_rows": settings.row_group_rows})
    return digest(shape, code_digest(__name__, memo), pa.__version__, pl.__version__)


def split_drops(split_dir: Path, split: str, shaping: str, memo: DigestMemo | None = None) -> list[DropRows]:
    """The drops that have articles in a split, in drop order: the one place the build
    opens the split tables. A drop's fingerprint hashes its table's bytes (read, not decoded;
    once while the table is unchanged, with a `memo`)."""
    found = []
    for drop, path in drop_table_files(split_dir, split):
        if rows := table_rows(path):
            found.append(DropRows(split, drop, path, rows, digest(shaping, split, drop, files_digest(path, memo))))
    return found


def manifest_part(split: str, drop: str) -> str:
    """Where a release has the manifest rows of a drop's articles in a split."""
    return f"{MANIFEST_DIR}/{split}-{drop}.parquet"


def write_shards(split_dir: Path, folder: Path, settings: Settings,
                 engine: str = DEFAULT_ENGINE) -> tuple[list[Shard], list[ManifestPart]]:
    """Each split's articles as Parquet shards of at most ``shard_rows`` rows, a drop at a
    time (``data/{split}-{drop}-NNNNN-of-NNNNN.parquet``, drops in the split table's
    order, articles in its order), so a new drop adds shards and leaves the other drops'
    shards byte for byte as they were. Returns the shards and the record manifest's parts.

    The shards (and manifest part) of a drop in a split that a previous build of `folder`
    made from the same fingerprint (``STATE_FILE``) are kept as they are: a new drop costs
    hashing the bytes of the split tables of each drop and writing its own shards. Each
    shard is a task of `engine` (``write_shard``: the same bytes on every engine), which
    writes it a row group at a time, so a task's memory holds ``READ_ROWS`` articles and a
    row group whatever ``shard_rows`` is; its manifest rows come back to this process,
    which writes each drop's (``manifest_part``)."""
    memo = DigestMemo.beside(folder)
    shaping = shard_shaping(settings, memo)
    previous = read_json(folder / STATE_FILE) if (folder / STATE_FILE).is_file() else {}
    built: dict[str, dict[str, Any]] = {}  # (split/drop) -> its fingerprint, shards and manifest part, as STATE_FILE keeps them
    to_write: list[DropRows] = []
    for split in SPLITS:
        for drop in split_drops(split_dir, split, shaping, memo):
            kept = previous.get(drop.key, {})
            if kept.get("fingerprint") == drop.fingerprint and all(
                    (folder / file["path"]).is_file() and (folder / file["path"]).stat().st_size == file["file_bytes"]
                    for file in [*kept["shards"], kept["manifest"]]):
                built[drop.key] = kept
            else:
                built[drop.key] = {"fingerprint": drop.fingerprint, "shards": [], "manifest": None}
                to_write.append(drop)
    memo.save()  # once, after the last fingerprint
    reused = len(built) - len(to_write)
    # Until they are written, the state must not vouch for the shards about to be replaced.
    write_json(folder / STATE_FILE, {key: state for key, state in built.items() if state["shards"]})
    progress = Progress(STAGE, "articles", total=sum(drop.rows for drop in to_write))
    if to_write:
        # Absolute paths: a task may run in another process or on another node (the
        # folders mounted at the same place).
        counts = [shard_count(drop, settings) for drop in to_write]
        tasks = ((dataclasses.replace(drop, path=drop.path.resolve()), index)
                 for drop, count in zip(to_write, counts) for index in range(count))
        written = open_engine({}, engine).map_tasks(write_shard, (folder.resolve(), settings), tasks)
        for drop, count in zip(to_write, counts):
            state, part = built[drop.key], manifest_part(drop.split, drop.drop)
            with ParquetAppender(folder / part, manifests.MANIFEST_SCHEMA) as records:
                for _ in range(count):
                    shard, manifest_rows = next(written)
                    records.append(manifest_rows)
                    state["shards"].append(dataclasses.asdict(shard))
            state["manifest"] = dataclasses.asdict(
                ManifestPart(part, (folder / part).stat().st_size, _sha256(folder / part)))
            progress.advance(drop.rows)
            log(STAGE, f"{drop.key}: {drop.rows:,} articles in {count} shard(s)")
    write_json(folder / STATE_FILE, built)
    shards = [Shard(**shard) for state in built.values() for shard in state["shards"]]
    progress.done(f"{len(shards)} shard(s): {reused} drop-split(s) kept as built before, {len(to_write)} written "
                  f"on the {engine} engine")
    return shards, [ManifestPart(**state["manifest"]) for state in built.values()]


def shard_count(drop: DropRows, settings: Settings) -> int:
    return math.ceil(drop.rows / settings.shard_rows)


def write_shard(shared: tuple[Path | Location, Settings], task: tuple[DropRows, int]) -> tuple[Shard, pl.DataFrame]:
    """Shard number `index` of `drop` in `folder` (an engine task: ``shared`` is the folder
    and the settings, ``task`` the drop and the index), and its articles' manifest rows.
    `folder` may be at a URL (``s3://...``): the shard is then written to its final key,
    complete or absent (``io.ParquetAppender``)."""
    (folder, settings), (drop, index) = shared, task
    first = index * settings.shard_rows
    size = min(settings.shard_rows, drop.rows - first)
    path = shard_name(drop.split, drop.drop, index, shard_count(drop, settings))
    arrow_bytes, records = ArrowBytes(), []
    # One Arrow chunk a column a row group (the appender's): the bytes must not depend on
    # how Polars chunked the rows it read (that follows its thread count), as Parquet
    # pages are cut chunk by chunk.
    with ParquetAppender(folder / path, hub_arrow_schema(), settings.row_group_rows, **PARQUET_WRITE_OPTIONS) as shard:
        for part in batches(conform(scan_table(drop.path), CLUSTERED_ARTICLE_SCHEMA).slice(first, size), READ_ROWS):
            shard.append(part)
            records.append(manifests.manifest_rows(part, drop.split))
            arrow_bytes.add(part)
    return (Shard(path, drop.split, drop.drop, size, arrow_bytes.total(), (folder / path).stat().st_size,
                  _sha256(folder / path)), pl.concat(records))


class ArrowBytes:
    """The in-memory size of a shard's Arrow table (the Hub's num_bytes), counted from the
    parts it is written from as pyarrow's ``Table.nbytes`` counts a table of one chunk a
    column: values (a string's 4-byte offset and its text), and a validity bitmap for a
    column with nulls."""

    _WIDTHS = {pl.Date(): 4, pl.Int64(): 8, pl.Float64(): 8}

    def __init__(self) -> None:
        self.rows = 0
        self.text = {name: 0 for name, dtype in CLUSTERED_ARTICLE_SCHEMA.items() if dtype == pl.String()}
        self.nulls = dict.fromkeys(CLUSTERED_ARTICLE_SCHEMA.names(), 0)

    def add(self, part: pl.DataFrame) -> None:
        self.rows += part.height
        counts = part.select(*(pl.col(name).str.len_bytes().sum().alias(f"text {name}") for name in self.text),
                             *(pl.col(name).null_count().alias(f"nulls {name}") for name in self.nulls)).row(0, named=True)
        self.text = {name: n + counts[f"text {name}"] for name, n in self.text.items()}
        self.nulls = {name: n + counts[f"nulls {name}"] for name, n in self.nulls.items()}

    def total(self) -> int:
        values = sum(self.text[name] + 4 * self.rows if name in self.text else self._WIDTHS[dtype] * self.rows
                     for name, dtype in CLUSTERED_ARTICLE_SCHEMA.items())
        return values + sum(-(-self.rows // 8) for n in self.nulls.values() if n)


# ------------------------------------------------------------------------- card


def card_metadata(build: Build) -> dict[str, Any]:
    settings, shards = build.settings, build.shards
    splits = build.splits
    n_articles = sum(build.split_sizes.values())
    return {
        "pretty_name": settings.card["pretty_name"],
        "license": settings.card["license"],
        "language": list(settings.card["language"]),
        "task_categories": list(settings.card["task_categories"]),
        "size_categories": [card.size_category(n_articles)],
        "tags": list(settings.card["tags"]),
        "configs": [{
            "config_name": card.DEFAULT_CONFIG,
            "default": True,
            "data_files": [{"split": split, "path": f"data/{split}-*"} for split in splits],
        }],
        "dataset_info": {
            "features": FEATURES,
            "splits": [{"name": split, "num_bytes": sum(s.arrow_bytes for s in shards if s.split == split),
                        "num_examples": build.split_sizes[split]} for split in splits],
            "download_size": sum(s.file_bytes for s in shards),
            "dataset_size": sum(s.arrow_bytes for s in shards),
        },
    }


def contact(settings: Settings) -> str:
    """Where to reach the maintainers: publish.card.contact, else the repo's discussions."""
    return settings.card.get("contact") or f"https://huggingface.co/datasets/{settings.repo_id}/discussions"


def citation(settings: Settings, released: date | None) -> str:
    """BibTeX of this release for the card and the Croissant metadata; the year is the
    release's (a build not yet released has none)."""
    authors = " and ".join(f"{{{author}}}" for author in settings.card["authors"])
    year = f"  year = {{{released.year}}},\n" if released else ""
    note = f"Version {settings.version}" + ("" if released else ", not yet released")
    return (f"@misc{{arabic_news_corpus,\n  author = {{{authors}}},\n  title = {{{settings.card['pretty_name']}}},\n"
            f"{year}  note = {{{note}}},\n  url = {{https://huggingface.co/datasets/{settings.repo_id}}},\n}}")


def write_croissant(build: Build, folder: Path, released: date | None = None, base_url: str | None = None) -> None:
    """croissant.json of `build` in `folder`: shard paths relative to it, or to `base_url`."""
    settings = build.settings
    sources = [drop["citation"] for drop in build.context["provenance"]["drops"] if drop["citation"]]
    write_json(folder / CROISSANT_PATH, croissant.croissant(
        name=settings.card["pretty_name"],
        description=f"{settings.card['pretty_name']}, version {settings.version}: cleaned, deduplicated and "
        f"validated Arabic news articles in {len(build.splits)} splits.",
        repo_id=settings.repo_id, version=str(settings.version), license_id=settings.card["license"],
        keywords=list(settings.card["tags"]), language=list(settings.card["language"]),
        fields=published_fields(),
        shards=[{"path": s.path, "split": s.split, "sha256": s.sha256, "bytes": s.file_bytes}
                for s in build.shards],
        cite_as="\n\n".join([citation(settings, released), *dict.fromkeys(sources)]),
        creators=list(settings.card["authors"]), contact=contact(settings),
        base_url=base_url, date_published=released.isoformat() if released else None,
    ))


def render_card(build: Build, template: Path, changelog: list[dict[str, Any]], released: date | None = None) -> str:
    settings = build.settings
    context = build.context | {
        "pretty_name": settings.card["pretty_name"],
        "license": settings.card["license"],
        "repo_id": settings.repo_id,
        "version": str(settings.version),
        "tag": settings.version.tag,
        "all_splits": SPLITS,
        "splits": build.splits,
        "empty_splits": [split for split, n in build.split_sizes.items() if not n],
        "shards": build.shards,
        "fields": published_fields(),
        "validation_path": VALIDATION_PATH,
        "changelog": changelog,
        "citation": citation(settings, released),
        "authors": settings.card["authors"],
        "row_group_rows": settings.row_group_rows,
        "contact": contact(settings),
    }
    return card.render_card(template, card_metadata(build), context)


def card_context(split_dir: Path, stage_dirs: dict[str, Path], validation_results: Path, settings: Settings) -> dict[str, Any]:
    """The run's figures for the card, checked to add up (card_figures.CountsError if not)."""
    reports = card_figures.stage_reports(stage_dirs)
    figures = card_figures.data_figures(split_dir)
    split_sizes = {row["name"]: row["articles"] for row in figures["split_figures"]}
    provenance = card_figures.provenance(figures["drops"], settings.provenance, settings.card["license"])
    if provenance["undocumented"]:
        log(STAGE, f"warning: nothing is known of drop(s) {', '.join(provenance['undocumented'])}: the card says so; "
                   "describe them under publish.provenance in params.yaml")
    if not provenance["declared_matches"]:
        log(STAGE, f"warning: the card's licence ({settings.card['license']}) is not that of the drops "
                   f"({', '.join(provenance['licenses'])}): the card says so; see publish.card.license")
    return figures | {
        "reports": reports,
        "accounting": card_figures.check_counts(reports, split_sizes),
        "funnel": card_figures.funnel(reports, split_sizes),
        "quarantine": card_figures.quarantine_rows(reports),
        "cluster_sizes": card_figures.cluster_sizes(reports["dedup"]),
        "validation": card_figures.validation_figures(read_json(validation_results)),
        "provenance": provenance,
    }


# ------------------------------------------------------------------------- build


def build(split_dir: Path, stage_dirs: dict[str, Path], validation_results: Path, folder: Path, settings: Settings,
          template: Path, engine: str = DEFAULT_ENGINE) -> Build:
    """Write the release folder; same inputs and settings give the same bytes, whatever
    the folder held before: the shards of a previous build that still hold are kept (see
    `write_shards`), the small files are rewritten and anything else is removed. The
    figures are gathered and checked first, so a run whose figures do not add up writes
    nothing. `engine` writes the shards (the same bytes on every engine)."""
    context = card_context(split_dir, stage_dirs, validation_results, settings)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shards, manifest_parts = write_shards(split_dir, folder, settings, engine)
    (folder / VALIDATION_PATH).parent.mkdir(exist_ok=True)
    shutil.copyfile(validation_results, folder / VALIDATION_PATH)
    result = Build(folder, settings, shards, manifest_parts, context)
    write_croissant(result, folder)
    write_json(folder / RELEASE_PATH, release_record(result, None))
    unreleased = manifests.changelog_entry(settings.version, None, None, None, result.split_sizes)
    write_text(folder / CARD_PATH, render_card(result, template, [unreleased]))
    built = ({s.path for s in shards} | {p.path for p in manifest_parts}
             | {VALIDATION_PATH, CROISSANT_PATH, RELEASE_PATH, CARD_PATH, STATE_FILE})
    for path in sorted(folder.rglob("*"), reverse=True):  # a folder after what it holds
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        elif not path.is_dir() and path.relative_to(folder).as_posix() not in built:
            path.unlink()  # a shard of a drop gone or cut otherwise, a file older builds wrote
    return result


def release_record(build: Build, changelog: list[dict[str, Any]] | None) -> dict[str, Any]:
    """manifest/release.json: the version, its files (with hashes) and, once compared
    with the Hub, the changelog of every release up to this one (newest first)."""
    files = {f.path: {"sha256": f.sha256, "bytes": f.file_bytes} for f in [*build.shards, *build.manifest_parts]} | {
        path: {"sha256": _sha256(build.folder / path), "bytes": (build.folder / path).stat().st_size}
        for path in (CROISSANT_PATH, VALIDATION_PATH)}
    record: dict[str, Any] = {
        "version": str(build.settings.version),
        "repo_id": build.settings.repo_id,
        "splits": build.split_sizes,
        "articles": sum(build.split_sizes.values()),
        "files": dict(sorted(files.items())),
    }
    if changelog is not None:
        record["changelog"] = changelog
    return record


def _sha256(path: Path | Location) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def publish_metrics(build: Build) -> dict[str, Any]:
    """The headline figures of the build, what `dvc metrics show` lists. No report.json
    beside them: everything in build/hub but its STATE_DIR is released, and
    manifest/release.json already has the articles per split and the size of every shard."""
    return {
        "version": str(build.settings.version),
        "articles": sum(build.split_sizes.values()),
        "shards": len(build.shards),
        "parquet_bytes": sum(s.file_bytes for s in build.shards),
    }


# ------------------------------------------------------------------------- release


@dataclass
class Plan:
    """What a release does on the Hub."""

    version: Version
    kind: str  # initial | patch | minor | major
    previous: Version | None
    diff: RecordDiff | None
    create_repo: bool
    uploads: list[str]
    deletions: list[str]
    unchanged: int
    parent: str | None  # main's head when planned

    def describe(self, repo_id: str, folder: Path) -> str:
        after = f" after {self.previous.tag}: {self.diff.summary()}" if self.previous and self.diff else ""
        lines = [f"release {self.version.tag} of {repo_id} ({self.kind}{after})"]
        if self.create_repo:
            lines.append(f"  create dataset repo {repo_id}")
        lines += [f"  upload  {path} ({card.human_bytes((folder / path).stat().st_size)})" for path in self.uploads]
        lines += [f"  delete  {path}" for path in self.deletions]
        lines.append(f"  {self.unchanged} file(s) already on the Hub unchanged")
        if self.uploads or self.deletions:
            lines.append(f"  one commit \"{commit_message(self.version)}\", then tag {self.version.tag}")
        else:
            lines.append(f"  no commit needed; tag {self.version.tag} on main")
        return "\n".join(lines)


def commit_message(version: Version) -> str:
    return f"Release {version.tag}"


def prepare_release(built: Build, release_dir: Path, template: Path, hub, offline: bool) -> Plan | None:
    """Compare with the Hub (`offline`: not asked, planned as a first release), check the
    version, write the release folder and plan the commit. None when this version is
    already published with the same data."""
    from pipeline.release.hub import MAIN, HubUnusable, RepoState, same_content, unreachable_errors

    settings = built.settings
    version = settings.version
    if offline:
        log(STAGE, f"offline: {settings.repo_id} on the Hub not read; planning as a first release")
        state = RepoState(False, None, {})
    else:
        try:
            state = hub.state()
        except unreachable_errors() as error:
            # A dry run that compared nothing must not pass for one that did (CI gates on it).
            raise HubUnusable(f"cannot read {settings.repo_id} on the Hub at {hub.api.endpoint} "
                              f"({type(error).__name__}: {error}): nothing was compared or uploaded; "
                              "pass --offline to plan without the Hub") from None

    if version in state.releases:
        remote = hub.files(version.tag)
        ours = [s.path for s in built.shards] + [p.path for p in built.manifest_parts]
        theirs = [p for p in remote if p.startswith("data/") or is_manifest_file(p)]
        hashes = built.written_hashes
        if sorted(ours) == sorted(theirs) and all(same_content(built.folder / p, remote[p], hashes[p]) for p in ours):
            return None
        raise VersionError(
            f"{version.tag} already exists on {settings.repo_id} with different data; a release is never "
            f"rewritten: declare a new version (publish.version or --version)"
        )
    previous = state.latest
    if previous is not None and version < previous:
        raise VersionError(f"version {version} is lower than the latest release {previous.tag} on {settings.repo_id}")
    diff = records_diff(hub, previous, built) if previous else None
    kind = manifests.check_version(version, previous, diff)
    previous_record = hub.release_record(previous) if previous else {}
    entry = manifests.changelog_entry(version, kind, previous, diff, built.split_sizes)
    changelog = [entry, *previous_record.get("changelog", [])]

    write_release_folder(built, release_dir, changelog, hub.card() if state.exists else None, template, hub.url,
                         datetime.now(timezone.utc).date())
    remote = hub.files(MAIN) if state.exists else {}
    local = sorted(p.relative_to(release_dir).as_posix() for p in release_dir.rglob("*") if p.is_file())
    hashes = built.written_hashes  # the release folder's shards and parts are the build's (hard links)
    uploads = [p for p in local if p not in remote or not same_content(release_dir / p, remote[p], hashes.get(p))]
    # The previous release's files that this one no longer has, and any stale shard
    # (a shard left under data/ would be read by the configs' data/{split}-* globs).
    released_before = set(previous_record.get("files", {})) | {CARD_PATH}
    deletions = sorted(p for p in remote if p not in local and (p.startswith("data/") or p in released_before))
    return Plan(version, kind, previous, diff, not state.exists, uploads, deletions,
                len(local) - len(uploads), state.head)


def records_diff(hub, previous: Version, built: Build) -> RecordDiff:
    """What changed since the `previous` release, read from the manifest parts that differ
    only: a part of the same content in both releases has the same rows, and an article is
    in one part of a release, so no other part can hold a change. A release whose manifest
    is one file is read whole."""
    from pipeline.release.hub import same_content

    theirs = {path: file for path, file in hub.files(previous.tag).items() if is_manifest_file(path)}
    ours = {part.path: part.sha256 for part in built.manifest_parts}
    if not any(path.startswith(f"{MANIFEST_DIR}/") for path in theirs):
        return manifests.diff_manifests(manifests.read_parts(hub.manifest_files(previous)), built.manifest())
    changed = {path for path, sha256 in ours.items()
               if path not in theirs or not same_content(built.folder / path, theirs[path], sha256)}
    before = manifests.read_parts(hub.manifest_files(previous, sorted((changed & theirs.keys()) | (theirs.keys() - ours))))
    return manifests.diff_manifests(before, built.manifest(changed))


def write_release_folder(built: Build, release_dir: Path, changelog: list[dict[str, Any]], existing_card: str | None,
                         template: Path, hub_url: str, released: date) -> None:
    """The build's files (hard links, no copy) with the merged card and the changelog, and
    croissant.json pointing at the files of the release's tag on the Hub at `hub_url`."""
    release_dir = reset_dir(release_dir)
    for path in built.folder.rglob("*"):
        relative = path.relative_to(built.folder).as_posix()
        # The release writes its own card, record and Croissant; the build's state is not released.
        left_out = relative in (CARD_PATH, RELEASE_PATH, CROISSANT_PATH) or relative.startswith(f"{STATE_DIR}/")
        if path.is_file() and not left_out:
            target = release_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
    write_json(release_dir / RELEASE_PATH, release_record(built, changelog))
    write_croissant(built, release_dir, released, f"{hub_url}/resolve/{built.settings.version.tag}")
    rendered = render_card(built, template, changelog, released)
    write_text(release_dir / CARD_PATH, card.merge_card(rendered, existing_card))


def upload_release(plan: Plan, release_dir: Path, hub, settings: Settings) -> str:
    """One commit, then the tag. Returns the tagged commit."""
    if plan.create_repo:
        hub.create(settings.private)
    commit = plan.parent
    if plan.uploads or plan.deletions:
        changes = f": {plan.diff.summary()} since {plan.previous.tag}" if plan.diff else ""
        description = f"{plan.kind.capitalize()} release{changes}. Built by `corpus publish`."
        commit = hub.commit(release_dir, plan.uploads, plan.deletions, commit_message(plan.version), description,
                            None if plan.create_repo else plan.parent)
        log(STAGE, f"committed {commit_message(plan.version)} as {commit}")
    if commit is None:
        raise RuntimeError(f"{settings.repo_id} has no main branch to tag")
    hub.tag(plan.version, commit, f"{commit_message(plan.version)} ({plan.kind})")
    log(STAGE, f"tagged {plan.version.tag} -> {commit}")
    return commit


# ------------------------------------------------------------------------- stage


class ReleaseRefused(ValueError):
    """What the pipeline reported does not allow a release."""


def release_gate_failures(reports: dict[str, dict[str, Any]], validation_results: Path, split_dir: Path) -> list[str]:
    """Why the run must not be released: a validation that did not pass, or a split whose
    held-out sets share too much text with train (the split stage's contamination gate)."""
    failures = []
    validate = reports["validate"]
    if validate["success"] is not True:
        failed = validate["failed_expectations"]
        failures.append(f"the validation did not pass: {validate['failed']:,} of {validate['expectations']:,} expectations "
                        f"failed ({'; '.join(failed[:3])}{'; ...' if len(failed) > 3 else ''}); every outcome is in "
                        f"{validation_results}, Data Docs beside it")
    contamination = reports["split"]["contamination"]
    gate = contamination["gate"]
    if gate["passed"] is not True:
        failures.append(f"the split's contamination gate failed: {gate['contaminated_share']:.2%} of the articles of a "
                        f"held-out split have at least {contamination['article_overlap']:.0%} of their "
                        f"{contamination['ngram']}-grams in train, above split.contamination.max_contaminated_share "
                        f"({gate['max_contaminated_share']:.2%}); {split_dir / 'contamination.parquet'} lists them")
    return failures


def run(split_dir: Path, stage_dirs: dict[str, Path], validation_results: Path, hub_dir: Path, release_dir: Path,
        metrics_path: Path | None, settings: Settings, template: Path, mode: str, offline: bool = False,
        engine: str = DEFAULT_ENGINE) -> int:
    """mode: 'build' (the DVC stage, never gated), 'dry-run', or 'release' (uploads if a
    token is found). A dry run or a release is refused, before anything is built or sent,
    when the run did not pass its gates. `offline`: a dry run that does not ask the Hub.
    `engine` writes the shards."""
    if mode != "build":
        failures = release_gate_failures(card_figures.stage_reports(stage_dirs), validation_results, split_dir)
        if failures:
            raise ReleaseRefused(f"refusing to release {settings.version.tag}, nothing was uploaded:\n"
                                 + "\n".join(f"  - {failure}" for failure in failures))
    built = build(split_dir, stage_dirs, validation_results, hub_dir, settings, template, engine)
    if metrics_path:
        write_json(metrics_path, publish_metrics(built))
    log(STAGE, f"built {settings.version.tag} in {hub_dir}")
    if mode == "build":
        return 0
    if not settings.repo_id:
        raise ValueError("no Hub repo: set publish.repo_id in params.yaml or pass --repo-id")

    from pipeline.release.hub import HubRepo, token_available

    upload = mode == "release" and not offline and token_available()
    hub = HubRepo(settings.repo_id)
    plan = prepare_release(built, release_dir, template, hub, offline)
    if plan is None:
        print(f"{settings.version.tag} is already published on {settings.repo_id} with the same data: nothing to do")
        return 0
    print(plan.describe(settings.repo_id, release_dir))
    if not upload:
        reason = ("--offline" if offline else "--dry-run" if mode == "dry-run"
                  else "no Hugging Face token: set HF_TOKEN or run `hf auth login`")
        print(f"dry run, {reason}. Nothing was uploaded; the release is in {release_dir}")
        return 0
    commit = upload_release(plan, release_dir, hub, settings)
    print(f"published {settings.version.tag}: {hub.url} (commit {commit})")
    return 0


def add_command(commands) -> None:
    parser = add_parser(commands, "publish")
    parser.add_argument("--input", type=Path, help="split tables folder (default: paths.split)")
    parser.add_argument("--stage-outputs", type=Path, help="folder of the earlier stages' output folders (ingest/, "
                        "clean/, dedup/, validate/, split/), whose report.json the card and the release gates read "
                        "(default: each stage's paths.<stage>)")
    parser.add_argument("--validation", type=Path, help="the validate stage's results, shipped in the release "
                        f"(default: paths.validate/{RESULTS_FILE})")
    parser.add_argument("--output", type=Path, help="release folder to build (default: paths.hub)")
    parser.add_argument("--release-dir", type=Path, help="folder of what is committed to the Hub (default: paths.release)")
    parser.add_argument("--metrics", type=Path, help="headline metrics JSON (default: <paths.metrics>/publish.json)")
    parser.add_argument("--card-template", type=Path, default=CARD_TEMPLATE, help="dataset card template (default: %(default)s)")
    parser.add_argument("--version", help="version of this release, MAJOR.MINOR.PATCH (default: publish.version)")
    parser.add_argument("--repo-id", help="Hub dataset repo, <user or org>/<name> (default: publish.repo_id)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--build-only", dest="mode", action="store_const", const="build",
                      help="only build the release folder, without the Hub (what `dvc repro` runs)")
    mode.add_argument("--dry-run", dest="mode", action="store_const", const="dry-run",
                      help="compare with the Hub and print what would be uploaded, even with a token")
    parser.add_argument("--offline", action="store_true",
                        help="a dry run without the Hub (planned as a first release); without it, a Hub that "
                        "cannot be read is an error")
    add_engine_option(parser)
    parser.set_defaults(handler=_main, mode="release")


def _main(args) -> int:
    params = load_params(args.params)
    settings = Settings.from_params(section(params, "publish"), args.version, args.repo_id)
    arguments = (
        args.input or path_of(params, "split"),
        {stage: args.stage_outputs / stage if args.stage_outputs else path_of(params, stage)
         for stage in card_figures.REPORTING_STAGES},
        args.validation or path_of(params, "validate") / RESULTS_FILE,
        args.output or path_of(params, "hub"),
        args.release_dir or path_of(params, "release"),
        args.metrics or path_of(params, "metrics") / "publish.json",
        settings,
        args.card_template,
        args.mode,
        args.offline,
        engine_name(params, args.engine),
    )
    # Two publishes at once would build into the same folders: one at a time per checkout.
    with checkout_lock(args.params):
        if args.mode == "build":
            return run(*arguments)
        from pipeline.release.hub import unreachable_errors

        try:
            return run(*arguments)
        except (*unreachable_errors(), RuntimeError) as error:  # huggingface_hub wraps failed uploads in RuntimeError
            print(f"corpus: error: the Hub did not complete the release ({type(error).__name__}: {error}); "
                  "no tag was made: run `corpus publish` again to finish it", file=sys.stderr)
            return 1
