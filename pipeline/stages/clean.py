"""Clean: faithful text normalisation, web boilerplate out, quality filters.

For each article:

1. Text and title are normalised (``arabic_text.clean_text``): HTML removed, NFKC,
   invisible marks, control characters and tatweel out, whitespace folded, one paragraph
   per line. Diacritics stay.
2. Boilerplate lines are removed. A line is compared by its ``match_key`` (so
   "اترك تعليقاً" and "اترك تعليقا" are the same line) against the curated lists in
   params.yaml ``boilerplate``: ``lines`` anywhere, ``prefixes`` (short lines only),
   ``line_start_markers``/``line_end_markers`` (widget and wire markers cut from a line),
   ``section_labels`` only before the first article line, ``trailing`` only after the
   last one. Lines that repeat in at least ``repeated_lines.min_articles`` articles of
   the same outlet are boilerplate too (short lines only, so a wire story reprinted many
   times keeps its sentences), counted over the drop and the drops before it in
   ``split.drop_order`` when the pipeline runs drop by drop (``repeated_lines_by_drop``),
   over the input alone otherwise. A word inside a sentence is never touched: only whole
   lines are compared.
3. Articles without a title (one-article text files) take their first remaining line as
   the title; a first line that repeats the title is dropped from the text.
4. Quality filters (params.yaml ``quality``) send an article to quarantine with a reason.
5. Each article's language is identified (``language``, ``language_score``; fastText
   lid.176, ``pipeline/text/language.py``); one that passed the quality filters in a language
   not in ``quality.languages`` is quarantined as ``not_arabic``.

Only the repeated lines need the whole corpus; everything else is decided article by
article. So the stage makes two passes of ``clean.batch_size`` articles: the first
normalises them (to scratch) and counts their short lines, the second cleans each batch
against the repeated lines and appends it to the outputs. Memory follows the batch, not
the corpus.

`dvc repro` runs it drop by drop (``corpus clean``, stages/clean_drops.py): each drop is
ingested, its short lines counted, the counts chained in drop order into each drop's
table of repeated lines, and the drop cleaned with its table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import polars as pl

from pipeline.engines.engine import Engine, open_engine
from pipeline.plumbing.io import (
    ParquetAppender,
    batches,
    partition,
    read_json,
    scan_table,
    scratch_folder,
    write_scratch,
    write_stage_report,
    write_table,
)
from pipeline.plumbing.params import section
from pipeline.plumbing.progress import Progress, log
from pipeline.plumbing.schema import ARTICLE_SCHEMA, QUARANTINE_SCHEMA, conform
from pipeline.text import arabic_text
from pipeline.text.language import LanguageIdentifier

STAGE = "clean"
# Headline figures for `dvc metrics show` (name: key in the report; io.write_stage_report).
HEADLINE = {
    "input": "input", "articles": "kept", "quarantined": "quarantined",
    "quarantine": "quarantined_by_reason",
}


ZONES = ("any", "head", "tail", "edge")


@dataclass(frozen=True)
class LineRule:
    """One family of furniture lines (params.yaml ``boilerplate.line_rules``): its name,
    where in an article it applies, the longest line it takes, and its patterns as one
    regex over ``arabic_text.folded`` lines."""

    name: str
    zone: str
    max_words: int
    regex: str

    @classmethod
    def from_params(cls, name: str, rule: dict[str, Any]) -> "LineRule":
        if not name.isidentifier() or not name.isascii():  # it names a regex group
            raise ValueError(f"boilerplate.line_rules: {name!r} must be a name of ASCII letters, digits and _")
        if rule["zone"] not in ZONES:
            raise ValueError(f"boilerplate.line_rules.{name}.zone must be one of {', '.join(ZONES)}, not {rule['zone']!r}")
        patterns = [arabic_text.folded_of(pattern) for pattern in rule["patterns"]]
        return cls(name, rule["zone"], int(rule["max_words"]), "|".join(f"(?:{p})" for p in patterns))


@dataclass(frozen=True)
class BoilerplateRules:
    """The curated boilerplate lists, as match keys, and the line rules."""

    lines: frozenset[str]
    line_start_markers: tuple[str, ...]
    line_end_markers: tuple[str, ...]
    prefixes: tuple[str, ...]
    section_labels: frozenset[str]
    trailing: frozenset[str]
    max_prefix_line_chars: int
    repeated_min_articles: int
    repeated_max_chars: int
    line_rules: tuple[LineRule, ...] = ()
    paragraph_min_words: int = 20

    @classmethod
    def from_params(cls, boilerplate: dict[str, Any]) -> "BoilerplateRules":
        def keys(name: str) -> list[str]:
            return [k for k in (arabic_text.match_key_of(v) for v in boilerplate.get(name) or []) if k]

        repeated = boilerplate["repeated_lines"]
        return cls(
            lines=frozenset(keys("lines")),
            line_start_markers=tuple(boilerplate.get("line_start_markers") or []),
            line_end_markers=tuple(boilerplate.get("line_end_markers") or []),
            prefixes=tuple(sorted(set(keys("prefixes")))),
            section_labels=frozenset(keys("section_labels")),
            trailing=frozenset(keys("trailing")),
            max_prefix_line_chars=int(boilerplate["max_prefix_line_chars"]),
            repeated_min_articles=int(repeated["min_articles"]),
            repeated_max_chars=int(repeated["max_chars"]),
            line_rules=tuple(LineRule.from_params(name, rule) for name, rule in (boilerplate.get("line_rules") or {}).items()),
            paragraph_min_words=int(boilerplate.get("paragraph_min_words", 20)),
        )

    def marker_patterns(self) -> tuple[str, ...]:
        """Regexes (for multi-line mode) of the markers cut from line starts, then from
        line ends. Polars and Python's ``re`` (the validate stage) read them alike."""
        templates = ((self.line_start_markers, r"^(?:{})\s*"), (self.line_end_markers, r"\s*(?:{})$"))
        return tuple(
            template.format("|".join(r"\s*".join(map(re.escape, marker.split())) for marker in markers))
            for markers, template in templates
            if markers
        )

    def strip_markers(self, text: pl.Expr) -> pl.Expr:
        """Cut widget and wire markers glued to a line of text ("Next Previous ...",
        "... // انتهى //"); the rest of the line is article text and stays."""
        for pattern in self.marker_patterns():
            text = text.str.replace_all(f"(?m){pattern}", "")
        return text

    def curated_line(self, key: pl.Expr, line: pl.Expr) -> pl.Expr:
        """True for a line that is boilerplate wherever it stands."""
        prefixed = pl.lit(False)
        for prefix in self.prefixes:
            prefixed = prefixed | (key == prefix) | key.str.starts_with(prefix + " ")
        return key.is_in(list(self.lines)) | (prefixed & (line.str.len_chars() <= self.max_prefix_line_chars))

    def line_rule(self, folded: pl.Expr, n_words: pl.Expr, zones: tuple[str, ...]) -> pl.Expr:
        """The name of the first line rule of one of ``zones`` that a line matches (null for
        none), from its ``arabic_text.folded`` text and its number of words (a line too long
        for a rule is left to the next). Each rule's regex runs alone on the lines short
        enough for it that no earlier rule took: one regex of a zone's rules as named groups
        (or as one alternation) got slow as the rules grew (line classification 2.4 times as
        long with 16 rules), and those lines are picked out (``_first_line_rule``) rather
        than masked (a mask copies the column: masking took 70 % of the rules' time)."""
        rules = tuple(rule for rule in self.line_rules if rule.zone in zones)
        if not rules:
            return pl.lit(None, dtype=pl.String)
        return pl.struct(folded=folded, n_words=n_words).map_batches(
            partial(_first_line_rule, rules), return_dtype=pl.String, is_elementwise=True
        )

    def line_key_regex(self) -> str:
        """A multi-line regex over the match keys of a text's lines, one key a line, that
        finds a line ``curated_line`` removes (a curated line, or a prefix and the rest of
        the line). Exact for lines of at most ``max_prefix_line_chars``: the validate
        stage keys only those, as a longer line is boilerplate only when nearly all of it
        is punctuation or diacritics around a curated line."""
        # Match keys hold only letters, digits and single spaces: nothing to escape.
        prefixed = [f"{prefix}(?: .*)?" for prefix in self.prefixes]
        return "(?m)^(?:" + "|".join(sorted(self.lines) + prefixed) + ")$"


def _first_line_rule(rules: tuple[LineRule, ...], lines: pl.Series) -> pl.Series:
    """``BoilerplateRules.line_rule`` of a batch of lines (a struct of folded, n_words)."""
    folded, n_words = lines.struct.field("folded"), lines.struct.field("n_words")
    names = pl.Series("rule", [None] * len(lines), dtype=pl.String)
    for rule in rules:
        rows = ((n_words <= rule.max_words) & names.is_null()).arg_true()
        names.scatter(rows.filter(folded.gather(rows).str.find(rule.regex).is_not_null()), rule.name)
    return names


def normalise_fields(articles: pl.LazyFrame, rules: BoilerplateRules) -> pl.LazyFrame:
    return articles.with_columns(
        text=rules.strip_markers(arabic_text.clean_text(pl.col("text"))),
        title=arabic_text.clean_line(pl.col("title")).replace("", None),
        source=pl.col("source").str.strip_chars().replace("", None),
        url=pl.col("url").str.strip_chars().replace("", None),
    )


def article_lines(articles: pl.LazyFrame) -> pl.LazyFrame:
    """One row per non-empty line: id, drop, source, pos, line, folded (``arabic_text.folded``,
    what the line rules read), key (its match key)."""
    return (
        articles.select("id", "drop", "source", line=pl.col("text").str.split("\n"))
        .with_columns(pos=pl.int_ranges(0, pl.col("line").list.len()))
        .explode("line", "pos")
        .filter(pl.col("line").is_not_null() & (pl.col("line") != ""))
        .with_columns(folded=arabic_text.folded(pl.col("line")))
        .with_columns(key=arabic_text.match_key_of_folded(pl.col("folded")))
    )


def short_line_counts(lines: pl.LazyFrame, rules: BoilerplateRules) -> pl.LazyFrame:
    """(drop, source, key, n_articles) of the lines that may be repeated boilerplate: short
    lines with a letter, counted once an article. Articles never span batches, so a count
    over the whole corpus is the sum of its batches' counts (``repeated_lines``)."""
    return (
        # Lines without a letter ("(2)", "2012") are list numbers and dates inside articles.
        lines.filter(pl.col("key").str.contains(r"\p{L}") & (pl.col("line").str.len_chars() <= rules.repeated_max_chars))
        .group_by("drop", "source", "key")
        .agg(n_articles=pl.col("id").n_unique())
    )


def sum_line_counts(counts: pl.LazyFrame) -> pl.LazyFrame:
    """``short_line_counts`` of several batches (or drops) added up, in a fixed row order."""
    return (
        counts.group_by("drop", "source", "key")
        .agg(pl.col("n_articles").sum().cast(pl.Int64))
        .sort("drop", "source", "key")
    )


def repeated_lines(counts: pl.LazyFrame, rules: BoilerplateRules) -> pl.LazyFrame:
    """(drop, source, key) of short lines found in many articles of one drop and outlet,
    from ``short_line_counts`` of batches of articles."""
    return (
        counts.group_by("drop", "source", "key")
        .agg(pl.col("n_articles").sum())
        .filter(pl.col("n_articles") >= rules.repeated_min_articles)
        .select("drop", "source", "key", repeated=pl.lit(True))
    )


def classify_lines(lines: pl.LazyFrame, repeated: pl.LazyFrame, rules: BoilerplateRules) -> pl.LazyFrame:
    """Adds ``removed_as``: null for article lines, else the kind of boilerplate
    (``repeated``: the corpus's ``repeated_lines``)."""
    n_words = pl.col("key").str.count_matches(" ") + 1
    flagged = lines.join(
        repeated, on=["drop", "source", "key"], how="left", nulls_equal=True, maintain_order="left"
    ).with_columns(
        curated=rules.curated_line(pl.col("key"), pl.col("line")),
        punctuation_only=pl.col("key") == "",
        repeated=pl.col("repeated").fill_null(False),
        label=pl.col("key").is_in(list(rules.section_labels)),
        trailing=pl.col("key").is_in(list(rules.trailing)),
        anywhere_rule=rules.line_rule(pl.col("folded"), n_words, ("any",)),
        edge_rule=rules.line_rule(pl.col("folded"), n_words, ("edge",)),
        head_only_rule=rules.line_rule(pl.col("folded"), n_words, ("head",)),
        tail_only_rule=rules.line_rule(pl.col("folded"), n_words, ("tail",)),
    ).with_columns(
        head_rule=pl.coalesce("head_only_rule", "edge_rule"), tail_rule=pl.coalesce("tail_only_rule", "edge_rule")
    )
    boilerplate = pl.col("curated") | pl.col("repeated") | pl.col("punctuation_only") | pl.col("anywhere_rule").is_not_null()
    first_body = pl.col("pos").filter(~boilerplate & ~pl.col("label")).min().over("id")
    last_body = pl.col("pos").filter(~boilerplate & ~pl.col("trailing")).max().over("id")
    # Zones of the line rules: above the first paragraph, below the last one.
    paragraph = ~boilerplate & pl.col("head_rule").is_null() & pl.col("tail_rule").is_null() & (
        n_words >= rules.paragraph_min_words
    )
    first_paragraph = pl.col("pos").filter(paragraph).min().over("id")
    last_paragraph = pl.col("pos").filter(paragraph).max().over("id")
    return flagged.with_columns(
        removed_as=pl.when(pl.col("punctuation_only"))
        .then(pl.lit("punctuation_only"))
        .when(pl.col("curated"))
        .then(pl.lit("curated"))
        .when(pl.col("repeated"))
        .then(pl.lit("repeated"))
        .when(pl.col("anywhere_rule").is_not_null())
        .then(pl.col("anywhere_rule"))
        .when(pl.col("label") & (first_body.is_null() | (pl.col("pos") < first_body)))
        .then(pl.lit("section_label"))
        .when(pl.col("trailing") & (last_body.is_null() | (pl.col("pos") > last_body)))
        .then(pl.lit("trailing"))
        .when(pl.col("head_rule").is_not_null() & (first_paragraph.is_null() | (pl.col("pos") < first_paragraph)))
        .then(pl.col("head_rule"))
        .when(pl.col("tail_rule").is_not_null() & (last_paragraph.is_null() | (pl.col("pos") > last_paragraph)))
        .then(pl.col("tail_rule"))
    ).drop("folded", "curated", "punctuation_only", "repeated", "label", "trailing", "anywhere_rule", "edge_rule",
           "head_only_rule", "tail_only_rule", "head_rule", "tail_rule")


def rebuild_articles(articles: pl.LazyFrame, lines: pl.LazyFrame, max_title_chars: int) -> pl.LazyFrame:
    """Articles with text rebuilt from their kept lines and a title resolved.

    An article without a title takes its first kept line as title. When that line is too
    long to be a headline (a file with no title line), the title is its first sentence
    and the line stays in the text. A first line repeating the given title is dropped.
    """
    ordered = pl.col("line").sort_by("pos")
    repeats_earlier_line = ~pl.col("key").sort_by("pos").is_first_distinct()
    kept = (
        lines.filter(pl.col("removed_as").is_null())
        .group_by("id")
        .agg(
            body=ordered,
            first_key=pl.col("key").sort_by("pos").first(),
            # Share of the text (in characters) that repeats an earlier line: short
            # repeated labels such as "سؤال:" in an interview weigh little.
            repeated_line_share=(ordered.str.len_chars() * repeats_earlier_line).sum() / ordered.str.len_chars().sum(),
        )
    )
    first_line = pl.col("body").list.first()
    is_headline = first_line.str.len_chars() <= max_title_chars
    first_sentence = pl.coalesce(
        first_line.str.extract(rf"^(.{{1,{max_title_chars - 1}}}?[.!?؟])(?:\s|$)"),
        first_line.str.slice(0, max_title_chars).str.replace(r"\s+\S*$", ""),
    )
    drop_first = (pl.col("title").is_null() & is_headline) | (pl.col("first_key") == arabic_text.match_key(pl.col("title")))
    return (
        articles.join(kept, on="id", how="left", maintain_order="left")
        .with_columns(
            title=pl.coalesce("title", pl.when(is_headline).then(first_line).otherwise(first_sentence)),
            text=pl.when(drop_first.fill_null(False))
            .then(pl.col("body").list.slice(1))
            .otherwise(pl.col("body"))
            .list.join("\n")
            .fill_null(""),
        )
        .pipe(arabic_text.with_lengths)
        .with_columns(arabic_ratio=arabic_text.arabic_ratio(pl.col("text")))
    )


def quality_reason(quality: dict[str, Any]) -> pl.Expr:
    """The first quality rule an article fails (null when it passes)."""
    min_words, min_chars = int(quality["min_words"]), int(quality["min_chars"])
    max_chars, min_ratio = int(quality["max_chars"]), float(quality["min_arabic_ratio"])
    max_repeated = float(quality["max_repeated_line_share"])
    return (
        pl.when(pl.col("n_chars") == 0)
        .then(pl.lit("empty_after_cleaning"))
        .when((pl.col("n_words") < min_words) | (pl.col("n_chars") < min_chars))
        .then(pl.lit("too_short"))
        .when(pl.col("n_chars") > max_chars)
        .then(pl.lit("too_long"))
        .when(pl.col("arabic_ratio") < min_ratio)
        .then(pl.lit("low_arabic_ratio"))
        .when(pl.col("repeated_line_share") > max_repeated)
        .then(pl.lit("repetitive"))
    )


def with_language(judged: pl.DataFrame, quality: dict[str, Any]) -> pl.DataFrame:
    """``judged`` with each article's ``language`` and ``language_score``, and reason
    ``not_arabic`` for an article that passed the other filters in another language."""
    identified = LanguageIdentifier.from_params(quality).with_language(judged, float(quality["min_arabic_ratio"]))
    return identified.with_columns(
        reason=pl.coalesce("reason", pl.when(~pl.col("language").is_in(list(quality["languages"]))).then(pl.lit("not_arabic")))
    )


def quality_detail(quality: dict[str, Any]) -> pl.Expr:
    return (
        pl.when(pl.col("reason") == "not_arabic")
        .then(pl.format("identified as {} ({})", "language", pl.coalesce(
            pl.format("score {}", pl.col("language_score").round(3)), pl.lit("by the letters only it writes"))))
        .when(pl.col("reason") == "too_short")
        .then(pl.format("{} words, {} chars (min {} words, {} chars)", "n_words", "n_chars",
                        pl.lit(quality["min_words"]), pl.lit(quality["min_chars"])))
        .when(pl.col("reason") == "too_long")
        .then(pl.format("{} chars (max {})", "n_chars", pl.lit(quality["max_chars"])))
        .when(pl.col("reason") == "low_arabic_ratio")
        .then(pl.format("Arabic letters {} of letters (min {})", pl.col("arabic_ratio").round(3),
                        pl.lit(quality["min_arabic_ratio"])))
        .when(pl.col("reason") == "repetitive")
        .then(pl.format("{} of the text repeats earlier lines (max {})", pl.col("repeated_line_share").round(3),
                        pl.lit(quality["max_repeated_line_share"])))
        .when(pl.col("reason") == "empty_after_cleaning")
        .then(pl.lit("no text left after removing markup and boilerplate"))
    )


@dataclass
class CleanResult:
    articles: pl.DataFrame  # kept, ARTICLE_SCHEMA
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA, this stage's rejections
    removed: pl.DataFrame  # removed_line_counts of the articles' lines


def clean_articles(
    normalised: pl.DataFrame, repeated: pl.DataFrame, rules: BoilerplateRules, quality: dict[str, Any]
) -> CleanResult:
    """The clean stage on a batch of articles after ``normalise_fields``. Everything but
    `repeated` (the corpus's ``repeated_lines``) is decided article by article, so a batch
    gives the rows the whole corpus would. The lines and the judged articles are computed
    once each (both feed two outputs; Polars would plan them once an output)."""
    lines = classify_lines(article_lines(normalised.lazy()), repeated.lazy(), rules).collect()
    rebuilt = rebuild_articles(normalised.lazy(), lines.lazy(), int(quality["max_title_chars"]))
    judged = with_language(rebuilt.with_columns(reason=quality_reason(quality)).collect(), quality)
    kept = conform(judged.lazy().filter(pl.col("reason").is_null()), ARTICLE_SCHEMA)
    quarantine = conform(
        judged.lazy()
        .filter(pl.col("reason").is_not_null())
        .with_columns(stage=pl.lit(STAGE), detail=quality_detail(quality)),
        QUARANTINE_SCHEMA,
    )
    return CleanResult(*pl.collect_all([kept, quarantine, removed_line_counts(lines.lazy())]))


def removed_line_counts(lines: pl.LazyFrame) -> pl.LazyFrame:
    """(removed_as, key, n_articles, example) of the removed lines of a batch of articles."""
    return (
        lines.filter(pl.col("removed_as").is_not_null())
        .group_by("removed_as", "key")
        .agg(n_articles=pl.col("id").n_unique(), example=pl.col("line").min())
    )


def removed_line_totals(counts: pl.LazyFrame) -> pl.LazyFrame:
    """How often each removed line was removed, most frequent first (for review), from the
    ``removed_line_counts`` of batches (an article is in one batch: the counts add up)."""
    return (
        counts.group_by("removed_as", "key")
        .agg(pl.col("n_articles").sum(), pl.col("example").min())
        .sort(["n_articles", "removed_as", "key"], descending=[True, False, False])
    )


def normalise_in_batches(
    articles: pl.LazyFrame, rules: BoilerplateRules, batch_size: int, scratch: Path, keep_normalised: bool = True
) -> tuple[pl.LazyFrame | None, pl.DataFrame]:
    """Pass 1: the articles normalised (a scan of scratch parts, unless not `keep_normalised`)
    and their ``short_line_counts`` added up, the one thing clean needs to know of the
    whole corpus."""
    normalised_dir, counts_dir = scratch / "normalised", scratch / "short_lines"
    normalised_dir.mkdir()
    counts_dir.mkdir()
    progress = Progress(STAGE, "articles normalised", total=articles.select(pl.len()).collect().item())
    for index, batch in enumerate(batches(articles, batch_size, at_least_one=True)):
        normalised = normalise_fields(batch.lazy(), rules).collect()
        if keep_normalised:
            write_scratch(normalised, normalised_dir / f"part-{index:05d}.parquet")
        write_scratch(short_line_counts(article_lines(normalised.lazy()), rules).collect(),
                      counts_dir / f"part-{index:05d}.parquet")
        progress.advance(batch.height)
    progress.done()
    # Adding up holds one row per distinct short line of the corpus; the result is small.
    counts = sum_line_counts(scan_table(counts_dir)).collect(engine="streaming")
    return (scan_table(normalised_dir) if keep_normalised else None), counts


def repeated_lines_by_drop(
    counts_by_drop: Iterable[tuple[str, pl.LazyFrame]], rules: BoilerplateRules
) -> Iterator[tuple[str, pl.DataFrame]]:
    """For each drop, in the order given (``split.drop_order``), the ``repeated_lines`` its
    articles are cleaned with: short lines of an outlet found in at least
    ``repeated_lines.min_articles`` articles of this drop and the drops before it, so an
    outlet's footer learnt from earlier drops is known in its next small drop. Drop k's
    table depends on drops 1..k only: adding a drop leaves the earlier tables as they were.
    `counts_by_drop`: each drop's ``sum_line_counts``."""
    drops, counts = [], []
    for order, (drop, table) in enumerate(counts_by_drop):
        drops.append(drop)
        counts.append(table.select("source", "key", "n_articles", order=pl.lit(order, pl.UInt32)))
    if not drops:
        return
    # A line's count over drops 1..k only grows with k, so it is repeated from the first drop
    # where that running count reaches the threshold on: one pass over the drops' counts, not
    # a running total summed again for each drop (1.07 -> 0.17 CPU s at 10 drops of 300,000
    # articles, the same tables).
    first = (
        pl.concat(counts)
        .sort("order")
        .with_columns(running=pl.col("n_articles").cum_sum().over("source", "key"))
        .filter(pl.col("running") >= rules.repeated_min_articles)
        .group_by("source", "key")
        .agg(first=pl.col("order").min())
        .sort("source", "key")
        .collect()
    )
    for order, drop in enumerate(drops):
        yield drop, first.filter(pl.col("first") <= order).select(
            drop=pl.lit(drop), source="source", key="key", repeated=pl.lit(True)
        )


def clean_in_batches(
    normalised: pl.LazyFrame,
    repeated: pl.DataFrame,
    rules: BoilerplateRules,
    quality: dict[str, Any],
    batch_size: int,
    kept: ParquetAppender,
    quarantine: ParquetAppender,
    engine: Engine,
) -> pl.DataFrame:
    """Pass 2: ``clean_articles`` on each batch of normalised articles (on `engine`),
    appending its kept and quarantined articles to the outputs, in the order of the
    articles; returns the ``removed_line_totals`` (a running total: the removed lines are few)."""
    removed = None
    progress = Progress(STAGE, "articles cleaned", total=normalised.select(pl.len()).collect().item())
    for result in engine.map_batches(normalised, partial(_cleaner, repeated, rules, quality), batch_size):
        kept.append(result.articles)
        quarantine.append(result.quarantine)
        removed = result.removed if removed is None else pl.concat([removed, result.removed])
        removed = removed_line_totals(removed.lazy()).collect()
        progress.advance(result.articles.height + result.quarantine.height)
    progress.done()
    return removed


def _cleaner(
    repeated: pl.DataFrame, rules: BoilerplateRules, quality: dict[str, Any]
) -> Callable[[pl.DataFrame, int], CleanResult]:
    """Pass 2's per-batch work, built once per engine worker."""
    return lambda batch, _first_row: clean_articles(batch, repeated, rules, quality)


def run(
    input_dir: Path, output_dir: Path, metrics_path: Path | None, params: dict[str, Any],
    repeated: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """Clean ingest's output `input_dir` into `output_dir`. `repeated`: the ``repeated_lines``
    to remove (a drop's, from ``repeated_lines_by_drop``); by default those of the input alone."""
    rules = BoilerplateRules.from_params(section(params, "boilerplate"))
    batch_size = int(section(params, STAGE)["batch_size"])
    articles_path, quarantine_path = output_dir / "articles.parquet", output_dir / "quarantine.parquet"
    with (
        scratch_folder(output_dir.parent) as scratch,
        ParquetAppender(articles_path, ARTICLE_SCHEMA) as kept,
        ParquetAppender(quarantine_path, QUARANTINE_SCHEMA) as quarantine,
    ):
        if repeated is None:
            normalised, counts = normalise_in_batches(scan_table(input_dir / "articles"), rules, batch_size, scratch)
            repeated = repeated_lines(counts.lazy(), rules).collect()
        else:  # one pass: each batch is normalised as it is cleaned (no counting, no scratch copy)
            normalised = normalise_fields(scan_table(input_dir / "articles"), rules)
        log(STAGE, f"{repeated.height:,} repeated lines")
        for upstream in batches(scan_table(input_dir / "quarantine.parquet"), batch_size):  # ingest's first
            quarantine.append(upstream)
        removed = clean_in_batches(normalised, repeated, rules, section(params, "quality"), batch_size, kept,
                                   quarantine, open_engine(params))
    write_table(removed, output_dir / "removed_lines.parquet")
    stage_quarantine = scan_table(output_dir / "quarantine.parquet").filter(pl.col("stage") == STAGE).collect()
    upstream_quarantine = scan_table(input_dir / "quarantine.parquet").select(pl.len()).collect().item()
    removed = scan_table(output_dir / "removed_lines.parquet").collect()

    n_in = scan_table(input_dir / "articles").select(pl.len()).collect().item()
    n_kept = scan_table(output_dir / "articles.parquet").select(pl.len()).collect().item()
    by_reason = stage_quarantine.group_by("reason").len().sort("reason")
    by_kind = removed.group_by("removed_as").agg(pl.col("n_articles").sum()).sort("removed_as")
    # Every article clean judged, kept or not (the dataset card's language mix).
    languages = (
        pl.concat([scan_table(output_dir / "articles.parquet").select("language"), stage_quarantine.lazy().select("language")])
        .group_by("language").len().sort(["len", "language"], descending=[True, False]).collect()
    )
    report = {
        "input": n_in,
        "kept": n_kept,
        "quarantined": stage_quarantine.height,
        "quarantined_by_reason": dict(zip(by_reason["reason"], by_reason["len"])),
        "boilerplate_lines_removed": dict(zip(by_kind["removed_as"], by_kind["n_articles"])),
        "languages": dict(zip(languages["language"], languages["len"])),
        "quarantined_total_with_ingest": upstream_quarantine + stage_quarantine.height,
    }
    if n_in != n_kept + stage_quarantine.height:
        raise RuntimeError(f"clean lost articles: {n_in} in, {n_kept} kept + {stage_quarantine.height} quarantined")
    log(STAGE, f"{n_in:,} in -> {n_kept:,} kept, {stage_quarantine.height:,} quarantined {report['quarantined_by_reason']}")
    write_stage_report(report, output_dir, metrics_path, HEADLINE)
    return report


# A drop's files of repeated lines (stages/clean_drops.py): the table and the boilerplate
# rules it was learnt with, which validate checks the drop's rows against.
REPEATED_LINES_FILE = "repeated_lines.parquet"
BOILERPLATE_FILE = "boilerplate.json"


def learnt_rules(repeated_dir: Path, drop: str) -> dict[str, Any]:
    """The ``boilerplate`` params a drop's repeated lines were learnt with (``corpus clean``
    writes them beside the table, and cleans the drop with them): what `validate --corpus`
    checks the drop's rows against, so its stage does not list the rules."""
    return read_json(partition(repeated_dir, drop) / BOILERPLATE_FILE)
