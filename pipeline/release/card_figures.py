"""The figures of a run that the dataset card shows, and the checks that they add up.

They come from what is published (the split tables) and from what every stage reported:
the ``report.json`` in each stage's output folder and the validation results. The reports
of one ``dvc repro`` agree with each other and with the split tables; figures that do not
(a stage re-run by hand, reports left over from another run) stop the build with the
mismatch named, rather than reach a card.

Provenance and licensing come from ``publish.provenance`` in params.yaml: what is known of
each drop (origin, licence, notes), keyed by drop name or a glob (``saudinewsnet*``). A
drop without an entry is shown as undocumented, with an unknown licence.
"""

from __future__ import annotations

import dataclasses
import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.plumbing.io import partition_report
from pipeline.plumbing.schema import QUARANTINE_REASONS, SPLITS
from pipeline.stages.split import split_table
from pipeline.stages.validate import Check

REPORTING_STAGES = ("ingest", "clean", "dedup", "validate", "split")
# Stages that set inputs aside by quarantine (their reports have quarantined_by_reason).
QUARANTINING_STAGES = ("ingest", "clean", "split")
UNKNOWN_LICENSE = "unknown"


class CountsError(ValueError):
    """Figures of the run that contradict each other."""


def stage_reports(stage_dirs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """The report.json of every stage before publish, from its output folder (`stage_dirs`:
    stage name -> folder); all are needed for the card."""
    try:
        # Stages run drop by drop have a report a drop: their sum is the stage's.
        return {stage: partition_report(stage_dirs[stage]) for stage in REPORTING_STAGES}
    except FileNotFoundError as missing:
        raise FileNotFoundError(f"no stage report {missing.filename}: run the pipeline (`dvc repro`) first") from None


# ------------------------------------------------------------------------- published articles


def _length_stats(column: str) -> list[pl.Expr]:
    values = pl.col(column)
    return [
        values.min().alias(f"{column}_min"),
        values.quantile(0.05, "nearest").alias(f"{column}_p05"),
        values.median().alias(f"{column}_median"),
        values.mean().alias(f"{column}_mean"),
        values.quantile(0.95, "nearest").alias(f"{column}_p95"),
        values.max().alias(f"{column}_max"),
    ]


def data_figures(split_dir: Path) -> dict[str, Any]:
    """Counts, length statistics, outlets, drops and dates of the published articles."""
    articles = pl.concat([
        split_table(split_dir, split).select("source", "drop", "published_date", "n_chars", "n_words")
        .with_columns(split=pl.lit(split)) for split in SPLITS
    ])
    aggregations = [pl.len().alias("articles"), *_length_stats("n_chars"), *_length_stats("n_words"),
                    pl.col("published_date").min().alias("first_date"), pl.col("published_date").max().alias("last_date"),
                    pl.col("published_date").null_count().alias("undated"),
                    pl.col("source").drop_nulls().n_unique().alias("sources"),
                    pl.col("source").null_count().alias("unknown_source")]
    per_split = articles.group_by("split").agg(aggregations).collect()
    total = articles.select(aggregations).collect()
    by_split = {row["split"]: row for row in per_split.iter_rows(named=True)}
    n_total = total["articles"].item()

    def ranked(column: str) -> list[dict[str, Any]]:
        """Articles per value, most first; None (not recorded) last."""
        counts = (articles.group_by(column).agg(pl.len().alias("articles"))
                  .sort([pl.col(column).is_null(), "articles", column], descending=[False, True, False]).collect())
        return [{"name": row[column], "articles": row["articles"], "share": row["articles"] / n_total}
                for row in counts.iter_rows(named=True)]

    years = (articles.group_by(year=pl.col("published_date").dt.year()).agg(pl.len().alias("articles"))
             .sort(pl.col("year").is_null(), "year").collect())
    return {
        "split_figures": [by_split.get(split, {"split": split, "articles": 0}) | {"name": split} for split in SPLITS],
        "total_figures": total.row(0, named=True) | {"name": "all"},
        "sources": ranked("source") if n_total else [],
        "drops": ranked("drop") if n_total else [],
        "years": [row | {"share": row["articles"] / n_total} for row in years.iter_rows(named=True)],
        "example": example_record(split_dir),
    }


def example_record(split_dir: Path, excerpt_chars: int = 300) -> dict[str, Any] | None:
    """The first published article (of the first split that has one) as JSON, its text cut
    to `excerpt_chars` characters, and its split; None when nothing is published."""
    for split in SPLITS:
        first = split_table(split_dir, split).head(1).collect()
        if first.height:
            record = first.row(0, named=True)
            if len(record["text"]) > excerpt_chars:
                record["text"] = record["text"][:excerpt_chars] + "…"
            record = {key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in record.items()}
            return {"split": split, "json": json.dumps(record, ensure_ascii=False, indent=2)}
    return None


# ------------------------------------------------------------------------- what the stages did


def check_counts(reports: dict[str, dict[str, Any]], split_sizes: dict[str, int]) -> dict[str, Any]:
    """Every input accounted for: inputs = published + duplicates + quarantined, each stage's
    output the next one's input, and the split tables what the split stage reported. Returns
    the accounting the card shows; CountsError names every figure that does not agree."""
    ingest, clean, dedup, validate, split = (reports[stage] for stage in REPORTING_STAGES)
    published = sum(split_sizes.values())
    quarantined = {stage: reports[stage]["quarantined"] for stage in QUARANTINING_STAGES}
    expected = [
        ("ingest: inputs = articles + quarantined", ingest["inputs"], ingest["articles"] + ingest["quarantined"]),
        ("clean: input = ingest's articles", clean["input"], ingest["articles"]),
        ("clean: input = kept + quarantined", clean["input"], clean["kept"] + clean["quarantined"]),
        ("dedup: input = clean's kept articles", dedup["input"], clean["kept"]),
        ("dedup: input = kept + duplicates", dedup["input"], dedup["kept"] + dedup["duplicates"]),
        ("validate: articles = dedup's kept articles", validate["articles"], dedup["kept"]),
        ("split: input = dedup's kept articles", split["input"]["kept"], dedup["kept"]),
        ("split: duplicates = dedup's duplicates", split["input"]["duplicates"], dedup["duplicates"]),
        ("split: input = published + quarantined", split["input"]["kept"], published + split["quarantined"]),
        *((f"split: {name} articles reported = in the split table", split["splits"][name]["rows"], split_sizes[name])
          for name in SPLITS),
        ("published = dedup's kept articles - split's quarantined", published, dedup["kept"] - split["quarantined"]),
    ]
    wrong = [f"{what}: {found:,} != {want:,}" for what, found, want in expected if found != want]
    if wrong:
        raise CountsError("the stages' figures do not add up, so they are not from one run of the pipeline "
                          "(run `dvc repro`): " + "; ".join(wrong))
    return {
        "inputs": ingest["inputs"],
        "published": published,
        "duplicates": dedup["duplicates"],
        "quarantined": sum(quarantined.values()),
        "quarantined_by_stage": quarantined,
    }


def funnel(reports: dict[str, dict[str, Any]], split_sizes: dict[str, int]) -> list[dict[str, str]]:
    """One row per stage: what it does, articles in and out, and what it set aside."""
    ingest, clean, dedup, validate, split = (reports[stage] for stage in REPORTING_STAGES)
    by_kind = dedup["duplicates_by_kind"]
    rows = [
        ("ingest", "read the drops, decode, map fields", ingest["inputs"], ingest["articles"],
         f"{ingest['quarantined']:,} quarantined"),
        ("clean", "normalise, remove boilerplate, quality filters", clean["input"], clean["kept"],
         f"{clean['quarantined']:,} quarantined"),
        ("dedup", "remove exact and near duplicates", dedup["input"], dedup["kept"],
         f"{dedup['duplicates']:,} duplicates ({by_kind['exact']:,} exact, {by_kind['near']:,} near)"),
        ("validate", "Great Expectations suites: a gate, removes nothing", validate["articles"], validate["articles"],
         f"none ({validate['passed']:,} of {validate['expectations']:,} expectations passed)"),
        ("split", "train / validation / test, by group", split["input"]["kept"],
         " / ".join(f"{split_sizes[name]:,}" for name in SPLITS),
         f"{split['quarantined']:,} quarantined (similar to published articles of two splits)"),
    ]
    return [{"stage": stage, "does": does, "input": f"{n_in:,}", "output": n_out if isinstance(n_out, str) else f"{n_out:,}",
             "aside": aside} for stage, does, n_in, n_out, aside in rows]


def quarantine_rows(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Articles quarantined per stage and reason, with what the reason means."""
    rows = []
    for stage in QUARANTINING_STAGES:
        for reason, count in sorted(reports[stage]["quarantined_by_reason"].items()):
            if reason not in QUARANTINE_REASONS:
                raise CountsError(f"{stage} quarantined {count:,} articles for '{reason}', a reason schema.QUARANTINE_REASONS "
                                  "does not explain: add it there")
            rows.append({"stage": stage, "reason": reason, "articles": count, "meaning": QUARANTINE_REASONS[reason]})
    return rows


def cluster_sizes(dedup_report: dict[str, Any]) -> list[dict[str, int]]:
    """Clusters with removed duplicates by size (kept article + its duplicates), smallest first."""
    histogram = dedup_report["cluster_size_histogram"]
    return [{"size": int(size), "clusters": histogram[size]} for size in sorted(histogram, key=int)]


def validation_figures(results: dict[str, Any]) -> dict[str, Any]:
    """Expectations per suite, and what failed, from the validate stage's results.json."""
    fields = {f.name for f in dataclasses.fields(Check)}
    checks = [Check(**{k: v for k, v in check.items() if k in fields}) for check in results["checks"]]
    suites: dict[str, dict[str, Any]] = {}
    for check in checks:
        suite = suites.setdefault(check.suite, {"name": check.suite, "expectations": 0, "passed": 0, "failed": 0})
        suite["expectations"] += 1
        suite["passed" if check.success else "failed"] += 1
    return {"suites": list(suites.values()),
            "failed": [{"name": check.name, "outcome": check.outcome()} for check in checks if not check.success]}


# ------------------------------------------------------------------------- provenance


def provenance(drops: list[dict[str, Any]], entries: dict[str, dict[str, Any]], declared: str) -> dict[str, Any]:
    """What is known of each published drop, and whether the declared licence is theirs.

    `drops`: the published drops with their article counts; `entries`: publish.provenance
    (the first key that matches a drop's name, as a glob, describes it); `declared`: the
    card's licence metadata, a Hub licence id."""
    rows = []
    for drop in drops:
        entry = next((entries[key] for key in entries if fnmatchcase(drop["name"], key)), None)
        rows.append({
            "name": drop["name"],
            "articles": drop["articles"],
            "documented": entry is not None,
            "origin": (entry or {}).get("origin"),
            "url": (entry or {}).get("url"),
            "license": str((entry or {}).get("license") or UNKNOWN_LICENSE),
            "notes": (entry or {}).get("notes"),
            "citation": (entry or {}).get("citation"),  # BibTeX, when the source asks to be cited
            "country": (entry or {}).get("country"),  # where its outlets publish from
        })
    drop_licenses = sorted({row["license"] for row in rows})
    return {
        "drops": rows,
        "licenses": drop_licenses,
        "unknown": [row for row in rows if row["license"] == UNKNOWN_LICENSE],
        "undocumented": [row["name"] for row in rows if not row["documented"]],
        "countries": _shares_by(rows, "country"),
        "non_commercial": [row["name"] for row in rows if "-nc" in row["license"]],  # cc-by-nc-*
        # The declared licence names exactly the drops' licences, or is `unknown` when some are.
        "declared_matches": drop_licenses == [declared] or (declared == UNKNOWN_LICENSE and declared in drop_licenses),
    }


def _shares_by(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Articles and share per value of `key` over the drops (None: not recorded), most first."""
    total = sum(row["articles"] for row in rows)
    counts: dict[Any, int] = {}
    for row in rows:
        counts[row[key]] = counts.get(row[key], 0) + row["articles"]
    ranked = sorted(counts.items(), key=lambda item: (item[0] is None, -item[1], str(item[0])))
    return [{"name": name, "articles": n, "share": n / total} for name, n in ranked] if total else []
