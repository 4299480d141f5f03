"""Releases of the dataset: semantic versions for data, record manifests and their diffs.

Every release ships a manifest, one row per article: its ``id``, its ``split`` and a
SHA-256 of its published content, in a Parquet part a split and drop (``MANIFEST_DIR``).
Two manifests are enough to tell what changed between two releases, and so which version
number the newer one needs:

* **patch**: the same records, repackaged (card, shard size, file layout);
* **minor**: records only added;
* **major**: records edited, removed, or moved between splits.

A declared version must be at least the bump the diff requires (overstating is allowed:
a maintainer may call an addition a major release; understating never is).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import polars as pl

from pipeline.commands import add_parser
from pipeline.plumbing.io import scan_table
from pipeline.plumbing.params import load_params, section
from pipeline.release.versions import MANIFEST_DIR, SINGLE_FILE_MANIFEST_PATH, Version, VersionError

MANIFEST_SCHEMA = pl.Schema({
    "id": pl.String(),
    "split": pl.String(),
    "content_sha256": pl.String(),
    "drop": pl.String(),
    "source_file": pl.String(),
    "title": pl.String(),
})
BUMPS = ("patch", "minor", "major")  # in increasing order


# ------------------------------------------------------------------------- manifests


def content_sha256(columns: list[str]) -> pl.Expr:
    """SHA-256 of a row's published values, as a netstring of each column in order
    (``<bytes>:<value>,``; ``~,`` for null), so no two different rows share an input.
    Values are rendered as text by explicit rules (ISO dates, decimal integers) that do
    not depend on the library version, because manifests are compared across releases."""
    parts = []
    for name in columns:
        text = pl.col(name).cast(pl.String)
        parts.append(
            pl.when(text.is_null()).then(pl.lit("~,")).otherwise(pl.format("{}:{},", text.str.len_bytes(), text))
        )
    canonical = pl.concat_str(parts)
    return canonical.map_batches(
        lambda values: pl.Series([hashlib.sha256(v.encode("utf-8")).hexdigest() for v in values], dtype=pl.String),
        return_dtype=pl.String,
        is_elementwise=True,
    )


def manifest_rows(articles: pl.DataFrame | pl.LazyFrame, split: str) -> pl.DataFrame | pl.LazyFrame:
    """Manifest rows for the published articles of one split."""
    columns = articles.collect_schema().names()
    return articles.select(
        "id",
        split=pl.lit(split),
        content_sha256=content_sha256(columns),
        drop="drop",
        source_file="source_file",
        title="title",
    )


def read_parts(paths: Iterable[Path]) -> pl.DataFrame:
    """The manifest rows of these files (parts of one manifest), in their order."""
    return pl.concat([pl.DataFrame(schema=MANIFEST_SCHEMA), *(scan_table(path).collect() for path in paths)])


def read_manifest(release_dir: str | Path) -> pl.DataFrame:
    """The whole manifest of a release folder."""
    parts = sorted((Path(release_dir) / MANIFEST_DIR).glob("*.parquet"))
    if not parts and (Path(release_dir) / SINGLE_FILE_MANIFEST_PATH).is_file():
        parts = [Path(release_dir) / SINGLE_FILE_MANIFEST_PATH]
    if not parts:
        raise FileNotFoundError(f"{Path(release_dir) / MANIFEST_DIR} not found: {release_dir} is not a release built "
                                "by `corpus publish`")
    return read_parts(parts)


# ------------------------------------------------------------------------- diffs


@dataclass(frozen=True)
class RecordDiff:
    """What changed between two manifests. ``rows`` has one row per article that differs:
    change (added | removed | changed | moved | changed+moved), id, split, split_before,
    drop, source_file, title (the newer values, or the older ones for a removed article)."""

    rows: pl.DataFrame

    def count(self, change: str) -> int:
        """Articles added, removed, changed (content) or moved (split)."""
        return int(self.rows["change"].str.split("+").list.contains(change).sum())

    @property
    def counts(self) -> dict[str, int]:
        return {change: self.count(change) for change in ("added", "removed", "changed", "moved")}

    @property
    def required_bump(self) -> str:
        counts = self.counts
        if counts["removed"] or counts["changed"] or counts["moved"]:
            return "major"
        return "minor" if counts["added"] else "patch"

    def summary(self) -> str:
        return ", ".join(f"{n:,} {change}" for change, n in self.counts.items())


def diff_manifests(before: pl.DataFrame, after: pl.DataFrame) -> RecordDiff:
    joined = before.join(after, on="id", how="full", coalesce=True, suffix="_after")
    in_before, in_after = pl.col("split").is_not_null(), pl.col("split_after").is_not_null()
    changed = pl.col("content_sha256") != pl.col("content_sha256_after")
    moved = pl.col("split") != pl.col("split_after")
    rows = (
        joined.with_columns(
            change=pl.when(~in_before).then(pl.lit("added"))
            .when(~in_after).then(pl.lit("removed"))
            .when(changed & moved).then(pl.lit("changed+moved"))
            .when(changed).then(pl.lit("changed"))
            .when(moved).then(pl.lit("moved"))
        )
        .filter(pl.col("change").is_not_null())
        .select(
            "change",
            "id",
            split=pl.coalesce("split_after", "split"),
            split_before="split",
            drop=pl.coalesce("drop_after", "drop"),
            source_file=pl.coalesce("source_file_after", "source_file"),
            title=pl.coalesce("title_after", "title"),
        )
        .sort("change", "split", "id")
    )
    return RecordDiff(rows)


def check_version(declared: Version, previous: Version | None, diff: RecordDiff | None) -> str:
    """The kind of this release ('initial', 'patch', 'minor', 'major'), or VersionError
    when the declared version does not follow the previous one or understates the diff."""
    if previous is None:
        return "initial"
    step = declared.bump_from(previous)
    if step is None:
        raise VersionError(f"version {declared} is not greater than the latest release {previous.tag}")
    required = diff.required_bump if diff is not None else "patch"
    if BUMPS.index(step) < BUMPS.index(required):
        raise VersionError(
            f"version {declared} is a {step} release after {previous.tag}, but the records changed "
            f"({diff.summary()}): that needs a {required} release, at least {previous.bump(required)}"
        )
    return step


# ------------------------------------------------------------------------- changelog


def changelog_entry(version: Version, kind: str, previous: Version | None, diff: RecordDiff | None,
                    split_sizes: dict[str, int]) -> dict[str, Any]:
    return {
        "version": str(version),
        "kind": kind,
        "previous": str(previous) if previous else None,
        "changes": diff.counts if diff is not None else None,
        "splits": split_sizes,
        "articles": sum(split_sizes.values()),
    }


# ------------------------------------------------------------------------- corpus diff


def load_release_manifest(ref: str, repo_id: str | None) -> tuple[str, pl.DataFrame]:
    """A manifest from a local release folder, or from a release tag on the Hub."""
    if Path(ref).is_dir():
        return ref, read_manifest(ref)
    version = Version.parse(ref)
    if not repo_id:
        raise ValueError(f"'{ref}' is not a folder; to read the release from the Hub set publish.repo_id or --repo-id")
    from pipeline.release.hub import HubRepo  # huggingface_hub only when the Hub is needed

    return version.tag, read_parts(HubRepo(repo_id).manifest_files(version))


def add_command(commands) -> None:
    parser = add_parser(commands, "diff")
    parser.add_argument("before", help="the older release: a version/tag on the Hub (v1.0.0 or 1.0.0) or a release folder")
    parser.add_argument("after", help="the newer release: a version/tag on the Hub or a release folder such as build/hub")
    parser.add_argument("--repo-id", help="Hub dataset repo (default: publish.repo_id)")
    parser.add_argument("--limit", type=int, default=50, help="articles listed per kind of change; 0 = all (default: %(default)s)")
    parser.set_defaults(handler=_main)


def _main(args) -> int:
    repo_id = args.repo_id or section(load_params(args.params), "publish").get("repo_id")
    name_before, before = load_release_manifest(args.before, repo_id)
    name_after, after = load_release_manifest(args.after, repo_id)
    diff = diff_manifests(before, after)
    print(f"{name_before} -> {name_after}: {diff.summary()}; needs a {diff.required_bump} release")
    for change, rows in diff.rows.group_by("change", maintain_order=True):
        shown = rows if args.limit == 0 else rows.head(args.limit)
        print(f"\n{change[0]} ({rows.height:,})")
        for row in shown.iter_rows(named=True):
            split = row["split"] if row["split_before"] in (None, row["split"]) else f"{row['split_before']}->{row['split']}"
            print(f"  {row['id']}  {split:<18} {row['drop']}/{row['source_file']}  {row['title'] or ''}")
        if shown.height < rows.height:
            print(f"  ... {rows.height - shown.height:,} more (--limit 0 lists all)")
    return 0
