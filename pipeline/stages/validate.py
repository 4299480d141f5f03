"""Validate: the Great Expectations suites that gate the pipeline.

The suites are GX expectation suites kept as JSON in ``expectations/``; the GX project
(``gx/``: datasource, validation definitions, checkpoints) is committed next to them.
Thresholds are not in the JSON: each names a suite parameter (``{"$PARAMETER": ...}``)
that this module fills from params.yaml (``quality``, ``validate``, ``boilerplate``) and
from ``schema.py``, so a bound lives in one place.

* ``article_rows``: every article, batch by batch (``validate.batch_rows``): columns
  and types, id format, title/text present, length bounds, Arabic-script ratio, no
  residual boilerplate line (regex built from the clean stage's curated lists), no HTML
  tag or entity, no control character, published_date in a plausible range.
* ``deduplicated_rows`` (the corpus only): cluster_id present and an article id.
* ``article_table``: the whole table at once: at least one row, id unique, no two rows
  with the same normalised text (hash of ``arabic_text.match_key``), mean length within
  bounds.

Checks that need a derived value (Arabic ratio, line match keys, text hash) get it as an
extra column computed with the shared functions before the frame goes to GX.

`dvc repro` validates a drop at a time, in one process (``corpus validate --corpus``): the
row suites on each drop's kept articles (``paths.dedup/drop=NAME/``), keeping, besides
their results, the compact columns (id, text hash, length) of the table suite
(``paths.validate/rows/drop=NAME/``, reused while the drop's fingerprint holds, so an
unchanged drop is not validated again), with the boilerplate rules the drop was cleaned
with (``paths.repeated_lines/drop=NAME/boilerplate.json``); then the drops' row checks
added up and the table suite once on their compact columns. Memory holds a batch of rows
(``validate.batch_rows``) and the compact columns. ``corpus validate --drop NAME`` checks
one drop's rows alone; ``corpus validate`` validates one table whole.

Outputs (``paths.validate``): ``results.json`` (every check: passed or not, failing rows,
examples) and ``report.json`` (counts and the names of the failed expectations), DVC
outputs that depend only on the data and params; next to them ``data_docs/index.html``
(GX Data Docs, every run kept: ``data_docs.py``) and ``gx_results/`` (GX's own result
JSON), which GX stamps with the run time, so DVC does not track them.
``metrics/validate.json`` has the counts and whether all passed. When an expectation
fails the command prints which, how many rows and, per example, the id, an excerpt of the
value and, for a derived column, of the original title or text line; it exits 1, so
``dvc repro`` stops before split and publish.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import math
import os
import re
import shutil
import sys
import types
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import polars as pl

from pipeline.engines.engine import add_engine_option, open_engine, with_engine
from pipeline.plumbing.fingerprint import (
    DigestMemo,
    code_digest,
    digest,
    files_digest,
    fingerprint_holds,
    write_fingerprint,
)
from pipeline.plumbing.io import (
    keep_listed_drops,
    partition,
    partition_drops,
    read_json,
    reset_dir,
    scan_partitions,
    scan_table,
    unlisted_partitions,
    write_json,
    write_stage_report,
    write_table,
)
from pipeline.plumbing.params import drop_order, path_of, section
from pipeline.plumbing.progress import Progress, log
from pipeline.plumbing.schema import ARTICLE_SCHEMA, CLUSTERED_ARTICLE_SCHEMA
from pipeline.plumbing.stage_command import StagePaths, add_stage_command, require_listed_drops
from pipeline.stages import data_docs
from pipeline.stages.clean import BoilerplateRules, learnt_rules
from pipeline.text import arabic_text

STAGE = "validate"
# Headline figures for `dvc metrics show` (name: key in the report); passed: all expectations did.
HEADLINE = {"articles": "articles", "expectations": "expectations", "failed": "failed", "passed": "success"}
# great_expectations.yml sends GX's result store and Data Docs under this folder.
OUTPUT_ENV = "CORPUS_VALIDATE_OUTPUT"
RESULTS_FILE = "results.json"
DATA_DOCS_DIR = "data_docs"

# Derived columns the row suite checks, and the columns the table suite sees.
ROW_CHECK_COLUMNS = ("arabic_ratio", "title_key", "text_line_keys")
TABLE_COLUMNS = ("id", "text_key_hash", "n_chars")
TABLE_CHECKPOINT = "article_table"
MATCHES_NOTHING = r"[^\s\S]"  # a regex for an empty curated list
# The column each derived column is computed from: a failure on a derived value (a match
# key, a ratio) is shown with the original it came from.
DERIVED_FROM = {"arabic_ratio": "text", "title_key": "title", "text_line_keys": "text", "text_key_hash": "text"}
EXCERPT_CHARS = 80  # of a value shown on the terminal and in Data Docs
# Control characters (ANSI escapes among them) and bidi overrides/isolates: a value from a
# drop must not drive the terminal or reorder the text around it.
UNSHOWABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Target:
    """What is validated: the deduplicated corpus, or a new drop on its own."""

    name: str
    rows_checkpoint: str
    schema: pl.Schema  # of the table validated


CORPUS = Target("corpus", "corpus_rows", CLUSTERED_ARTICLE_SCHEMA)
DROP = Target("drop", "drop_rows", ARTICLE_SCHEMA)


@dataclass
class Check:
    """One expectation's outcome, summed over the batches it ran on."""

    suite: str
    expectation: str
    column: str | None
    description: str
    success: bool = True
    rows_checked: int | None = None
    failing_rows: int | None = None
    examples: list[str] = field(default_factory=list)  # ids of failing articles
    # Per example: id, the failing value (an excerpt) and, for a derived column, the original's.
    example_values: list[dict[str, str]] = field(default_factory=list)
    observed: Any = None  # what an aggregate expectation measured
    error: str | None = None  # GX could not evaluate the expectation
    kwargs: dict[str, Any] = field(default_factory=dict)  # as in the suite: bounds are $PARAMETERs

    @property
    def name(self) -> str:
        """Suite and description: unique, unlike the expectation type and column."""
        return f"{self.suite}: {self.description}"

    def outcome(self) -> str:
        """What failed, in one line: rows and examples, or the observed value."""
        if self.error:
            return f"error: {self.error}"
        if self.failing_rows:
            share = f" ({self.failing_rows / self.rows_checked:.1%})" if self.rows_checked else ""
            examples = f", e.g. {', '.join(self.examples)}" if self.examples else ""
            return f"{self.failing_rows:,} of {self.rows_checked:,} rows{share}{examples}"
        if self.observed is not None:
            return f"observed {self.observed}"
        return ""

    def example_lines(self) -> list[str]:
        """One line per failing example: its id, the value and (derived column) the original."""
        return [f"{values['id']}: " + "; ".join(f"{name} «{value}»" for name, value in values.items() if name != "id")
                for values in self.example_values]


@dataclass
class ValidationReport:
    target: str
    articles: int
    batches: int
    checks: list[Check]
    parameters: dict[str, Any]  # the $PARAMETER values, as configured (max: today stays so)

    @property
    def success(self) -> bool:
        return all(check.success for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.success]

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "success": self.success,
            "articles": self.articles,
            "batches": self.batches,
            "expectations": len(self.checks),
            "passed": len(self.checks) - len(self.failed),
            "failed": len(self.failed),
            "parameters": _jsonable(self.parameters),
            "checks": [_jsonable(asdict(check)) | {"name": check.name} for check in self.checks],
        }

    def summary(self) -> dict[str, Any]:
        """The stage's report.json: the counts of results.json and the failed expectations' names."""
        return {
            "articles": self.articles,
            "expectations": len(self.checks),
            "passed": len(self.checks) - len(self.failed),
            "failed": len(self.failed),
            "success": self.success,
            "failed_expectations": [check.name for check in self.failed],
        }

    def log_failures(self, stage: str) -> None:
        for check in self.failed:
            log(stage, f"FAILED {check.name}: {check.outcome()}")
            for line in check.example_lines():
                log(stage, f"    {line}")


# ---------------------------------------------------------------------------- inputs


def with_check_columns(articles: pl.LazyFrame, rules: BoilerplateRules) -> pl.LazyFrame:
    """Articles plus the derived columns the suites check."""
    line = pl.element()
    # Only lines short enough to be boilerplate are keyed (keying is the costly part).
    short_line = pl.when(line.str.len_chars() <= rules.max_prefix_line_chars).then(line).otherwise(pl.lit(""))
    return articles.with_columns(
        arabic_ratio=arabic_text.arabic_ratio(pl.col("text")),
        title_key=arabic_text.match_key(pl.col("title")),
        text_line_keys=pl.col("text").str.split("\n").list.eval(arabic_text.match_key(short_line)).list.join("\n"),
        text_key_hash=arabic_text.match_key(pl.col("text")).hash(seed=0),
    )


def published_date_bounds(validate: dict[str, Any], today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """``validate.published_date`` as dates; ``max: today`` is the run day (UTC) plus one
    day, so an article dated in a time zone ahead of UTC still passes."""
    bounds = validate["published_date"]
    today = today or dt.datetime.now(dt.timezone.utc).date()
    low, high = bounds["min"], bounds["max"]
    high = today + dt.timedelta(days=1) if high == "today" else high
    return (_as_date(low), _as_date(high))


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def suite_parameters(params: dict[str, Any], target: Target, rules: BoilerplateRules | None = None) -> dict[str, Any]:
    """Values of the suites' ``$PARAMETER``s, from params.yaml, clean's boilerplate rules
    (built from params unless given) and schema.py."""
    import pandas as pd

    quality, validate = section(params, "quality"), section(params, "validate")
    rules = rules or BoilerplateRules.from_params(section(params, "boilerplate"))
    columns = target.schema.names()
    # The pandas dtype each column has once the frame is handed to GX.
    dtypes = pl.DataFrame(schema=target.schema).to_pandas().dtypes
    low, high = published_date_bounds(validate)
    markers = rules.marker_patterns()
    return {
        "columns": [*columns, *ROW_CHECK_COLUMNS],
        **{f"type_{name}": str(dtypes[name]) for name in columns},
        "min_chars": int(quality["min_chars"]),
        "max_chars": int(quality["max_chars"]),
        "min_words": int(quality["min_words"]),
        "max_title_chars": int(quality["max_title_chars"]),
        "min_arabic_ratio": float(quality["min_arabic_ratio"]),
        "languages": list(quality["languages"]),
        "boilerplate_line_regex": rules.line_key_regex(),
        "boilerplate_marker_regex": "(?m)" + "|".join(f"(?:{p})" for p in markers) if markers else MATCHES_NOTHING,
        "html_tag_regex": arabic_text.HTML_TAG,
        "html_entity_regex": arabic_text.HTML_ENTITY,
        "control_char_regex": f"{arabic_text.CONTROL_CHARS}|{arabic_text.portable_regex(arabic_text.INVISIBLE_MARKS)}",
        "published_date_min": pd.Timestamp(low),
        "published_date_max": pd.Timestamp(high),
        "mean_chars_min": float(validate["mean_chars"]["min"]),
        "mean_chars_max": float(validate["mean_chars"]["max"]),
        # The deduplicated corpus has no two equal texts; a drop may, up to a share.
        "min_unique_text_share": 1.0 if target is CORPUS else float(validate["drop_min_unique_text_share"]),
    }


# ---------------------------------------------------------------------------- GX


# Imported by GX at start for expectations the suites do not use (a KL-divergence test and
# its chart): a third of `import great_expectations`, paid by every process that validates.
GX_UNUSED_IMPORTS = ("scipy.stats", "altair")


class _LoadedOnFirstUse(types.ModuleType):
    """Stands in for a module while another library imports it: the module itself is
    imported when one of its attributes is first read (never, if nothing uses it)."""

    def __getattr__(self, attribute: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attribute)


@contextmanager
def loaded_on_first_use(*modules: str) -> Iterator[None]:
    """Within the block, an import of one of `modules` (not yet imported) binds a stand-in
    that imports the module on first use; after it, importing them works as usual."""
    standing_in = {name: _LoadedOnFirstUse(name) for name in modules if name not in sys.modules}
    sys.modules.update(standing_in)
    try:
        yield
    finally:
        for name, stand_in in standing_in.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]


def open_gx_project(gx_dir: Path, output_dir: Path):
    """The repository's GX project, writing its results and Data Docs under output_dir."""
    if not (gx_dir / "great_expectations.yml").is_file():
        raise FileNotFoundError(f"no Great Expectations project at {gx_dir} (great_expectations.yml missing)")
    os.environ[OUTPUT_ENV] = str(output_dir.resolve())
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    with warnings.catch_warnings():
        # GX 1.24 imports the deprecated sre_constants/sre_parse: not ours to fix, and
        # `python -W error` (or `pytest -W error`) would otherwise stop here.
        warnings.filterwarnings("ignore", r"module 'sre_(constants|parse)' is deprecated", DeprecationWarning)
        with loaded_on_first_use(*GX_UNUSED_IMPORTS):
            import great_expectations as gx  # 2-3 s: only commands that validate pay for it
        from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints each pandas batch by hashing every value of it (for batches under this
    # many bytes) into its own result metadata, which nothing here reads: a quarter of the
    # row suite's time a batch. Batches are named by their rows (the run name) instead.
    pandas_execution_engine.HASH_THRESHOLD = 0
    return gx.get_context(mode="file", context_root_dir=str(gx_dir.resolve()))


class GxRunner:
    """Runs checkpoints of the project and sums their results into ``Check``s."""

    def __init__(self, context, parameters: dict[str, Any], examples: int) -> None:
        from great_expectations.core.run_identifier import RunIdentifier

        self.context, self.parameters, self.examples = context, parameters, examples
        self.run_identifier = RunIdentifier
        self.checks: dict[str, Check] = {}
        # Results carry kwargs with the parameters filled in; reports keep the suite's.
        self.suite_kwargs = {e.id: e.configuration.kwargs for s in context.suites.all() for e in s.expectations}

    # Set by ``_gx_runner``: how to build this runner again in another process (an engine's
    # worker), where it opens its own GX context.
    recipe: tuple = ()

    def __reduce__(self):
        return _gx_runner, self.recipe

    def run(self, checkpoint_name: str, frame: pl.DataFrame, run_name: str, originals: pl.LazyFrame | None = None) -> None:
        """Validate `frame` with a checkpoint and build its Data Docs pages. The title and text
        of failing rows are looked up in `frame`, or in `originals` when it has no such columns."""
        self.record(self.validate(checkpoint_name, frame, run_name, originals))

    def validate(
        self, checkpoint_name: str, frame: pl.DataFrame, run_name: str, originals: pl.LazyFrame | None = None
    ) -> list[tuple[Any, Any]]:
        """``run`` but for the Data Docs: the checks are added up, and the (identifier, suite
        result) pairs to ``record`` returned."""
        checkpoint = self.context.checkpoints.get(checkpoint_name)
        checkpoint.result_format = {
            "result_format": "SUMMARY",
            "unexpected_index_column_names": ["id"],
            "partial_unexpected_count": self.examples,
        }
        result = checkpoint.run(
            batch_parameters={"dataframe": frame.to_pandas()},
            expectation_parameters=self.parameters,
            run_id=self.run_identifier(run_name=run_name),
        )
        lookup = frame.lazy() if "title" in frame.columns else originals
        for suite_result in result.run_results.values():
            for outcome in suite_result.results:
                shown = self._shown_examples(outcome, lookup)
                self._add(suite_result.suite_name, outcome, shown)
                outcome.result = data_docs.result_for_docs(outcome.result or {}, outcome.expectation_config.kwargs.get("column"), shown)
        return list(result.run_results.items())

    def record(self, results: list[tuple[Any, Any]]) -> None:
        """Store `results` (of ``validate``) and build their Data Docs pages."""
        from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

        for identifier, suite_result in results:
            # The checkpoint stored GX's raw result; Data Docs are built from this one instead.
            self.context.validation_results_store.set(identifier, suite_result)
            self.context.build_data_docs(resource_identifiers=[identifier, ExpectationSuiteIdentifier(name=suite_result.suite_name)])

    def _shown_examples(self, outcome, lookup: pl.LazyFrame | None) -> list[dict[str, str]]:
        """The failing examples of a column expectation as shown to a person: id, an excerpt
        of the value (around what a forbidden pattern matched) and, for a derived column,
        of the original it was computed from."""
        config = outcome.expectation_config
        column = config.kwargs.get("column")
        listed = ((outcome.result or {}).get("partial_unexpected_index_list") or [])[: self.examples]
        if not column or not listed:
            return []
        # Results carry the kwargs with the parameters filled in: the regex itself.
        pattern = config.kwargs.get("regex") if config.type.endswith("not_match_regex") else None
        source = DERIVED_FROM.get(column)
        originals: dict[str, str] = {}
        if source and lookup is not None:
            ids = [str(example["id"]) for example in listed]
            originals = dict(lookup.filter(pl.col("id").is_in(ids)).select("id", source).collect().iter_rows())
        shown = []
        for example in listed:
            article = str(example["id"])
            values = {"id": article} | ({} if column == "id" else {column: excerpt(example.get(column), pattern)})
            if article in originals:
                values[source] = original_excerpt(example.get(column), originals[article], pattern)
            shown.append(values)
        return shown

    def _add(self, suite: str, outcome, shown: list[dict[str, str]]) -> None:
        config = outcome.expectation_config
        check = self.checks.get(config.id)
        if check is None:
            kwargs = self.suite_kwargs[config.id]
            check = self.checks[config.id] = Check(suite, config.type, kwargs.get("column"), config.description or "", kwargs=kwargs)
        result = outcome.result or {}
        check.success &= bool(outcome.success)
        if "element_count" in result:
            check.rows_checked = (check.rows_checked or 0) + int(result["element_count"])
            check.failing_rows = (check.failing_rows or 0) + int(result.get("unexpected_count") or 0)
        for values in shown:
            if len(check.examples) < self.examples:
                check.examples.append(values["id"])
                check.example_values.append(values)
        if "observed_value" in result:
            # For a column set, what differs says more than the whole set.
            check.observed = (result.get("details") or {}).get("mismatched") or result["observed_value"]
        check.error = check.error or _exception_message(outcome.exception_info or {})


def excerpt(value: Any, pattern: str | None = None, width: int = EXCERPT_CHARS) -> str:
    """`value` as one short line: from a little before the first match of `pattern` (the part
    that failed) or from its start, `width` characters; line breaks shown as ⏎ and
    unshowable characters dropped, so no value from a drop can drive a terminal."""
    text = "null" if value is None else str(value)
    match = re.search(pattern, text) if pattern else None
    start = max(0, match.start() - width // 4) if match else 0
    piece = UNSHOWABLE.sub("", text[start:start + width].replace("\n", " ⏎ "))
    return f"{'…' if start else ''}{piece}{'…' if start + width < len(text) else ''}"


def original_excerpt(derived: Any, original: str | None, pattern: str | None) -> str:
    """An excerpt of the original behind a failing derived value: the original line whose
    key matched `pattern` when the derived value keys the original line by line, else its start."""
    if original is not None and isinstance(derived, str) and pattern and (match := re.search(pattern, derived)):
        lines = original.split("\n")
        if len(lines) == derived.count("\n") + 1:
            return excerpt(lines[derived.count("\n", 0, match.start())])
    return excerpt(original)


def run_suites(
    articles: pl.LazyFrame, target: Target, params: dict[str, Any], gx_dir: Path, output_dir: Path, stage: str = STAGE
) -> ValidationReport:
    """Validate `articles` with the suites of `target`; GX results and Data Docs go to
    `output_dir`. Rows are validated in batches, the table suite once on compact columns."""
    runner = _gx_runner(params, target, gx_dir, output_dir, stage)
    report, table = _run_row_suite(runner, articles, target, params, stage)
    return _run_table_suite(runner, table, report, stage, output_dir, originals=articles)


def run_row_suite(
    articles: pl.LazyFrame, target: Target, params: dict[str, Any], gx_dir: Path, output_dir: Path, stage: str = STAGE
) -> tuple[ValidationReport, pl.DataFrame]:
    """The row suite of `target` alone, batch by batch (a drop of the corpus); returns its
    report and the ``TABLE_COLUMNS`` the table suite checks once over every drop."""
    result = _run_row_suite(_gx_runner(params, target, gx_dir, output_dir, stage), articles, target, params, stage)
    data_docs.finish_site(output_dir / DATA_DOCS_DIR)
    return result


def run_table_suite(
    drops: list[tuple[ValidationReport, pl.DataFrame]], target: Target, params: dict[str, Any], gx_dir: Path,
    output_dir: Path, stage: str = STAGE,
) -> ValidationReport:
    """The table suite over the ``TABLE_COLUMNS`` of every drop (compact: an id, a hash and
    a length an article), added to the drops' row checks, summed (``merge_row_reports``)."""
    if not drops:
        raise ValueError("no drop's row checks to add up: no drop=<name>/ folder of kept articles in the input")
    runner = _gx_runner(params, target, gx_dir, output_dir, stage)
    rows = merge_row_reports([report for report, _ in drops], int(section(params, "validate")["examples"]))
    rows = replace(rows, parameters=_configured(runner.parameters, params))
    return _run_table_suite(runner, pl.concat([columns for _, columns in drops]), rows, stage, output_dir)


def merge_row_reports(reports: list[ValidationReport], examples: int) -> ValidationReport:
    """The row checks of several drops as one report: rows and failing rows add up, the
    first `examples` failing ids are kept in drop order, a check passes if it passed on every drop."""
    merged: dict[str, Check] = {}
    for report in reports:
        for check in report.checks:
            total = merged.get(check.name)
            if total is None:
                merged[check.name] = replace(check, examples=list(check.examples),
                                             example_values=list(check.example_values))
                continue
            if not check.success and total.success:
                total.observed = check.observed  # what made it fail says more
            total.success &= check.success
            if check.rows_checked is not None:
                total.rows_checked = (total.rows_checked or 0) + check.rows_checked
                total.failing_rows = (total.failing_rows or 0) + (check.failing_rows or 0)
            total.example_values += check.example_values[: examples - len(total.examples)]
            total.examples += check.examples[: examples - len(total.examples)]
            total.error = total.error or check.error
    first = reports[0]
    return ValidationReport(first.target, sum(r.articles for r in reports), sum(r.batches for r in reports),
                            list(merged.values()), first.parameters)


def _gx_runner(params: dict[str, Any], target: Target, gx_dir: Path, output_dir: Path, stage: str) -> GxRunner:
    # GX's results and Data Docs are kept from run to run: the Data Docs index lists every run.
    parameters = suite_parameters(params, target)
    log(stage, "setting up Great Expectations (a few seconds: its import)")
    runner = GxRunner(open_gx_project(gx_dir, output_dir), parameters, int(section(params, "validate")["examples"]))
    runner.recipe = (params, target, gx_dir, output_dir, stage)
    return runner


def _run_row_suite(
    runner: GxRunner, articles: pl.LazyFrame, target: Target, params: dict[str, Any], stage: str
) -> tuple[ValidationReport, pl.DataFrame]:
    """The row suite on each batch of `articles` on the engine of `params` (its workers run
    GX; the Data Docs pages are built here), the batches' checks summed as drops' are."""
    validate = section(params, "validate")
    rules = BoilerplateRules.from_params(section(params, "boilerplate"))
    progress = Progress(stage, "articles", total=articles.select(pl.len()).collect().item())
    reports, tables = [], []
    # An empty table is one empty batch: its columns and types still get checked.
    checker = partial(_row_checker, runner, target, rules)
    for checks, results, table in open_engine(params).map_batches(articles, checker, int(validate["batch_rows"])):
        runner.record(results)
        reports.append(ValidationReport(target.name, table.height, 1, checks, {}))
        tables.append(table)
        progress.advance(table.height)
    report = merge_row_reports(reports, int(validate["examples"]))
    report = replace(report, parameters=_configured(runner.parameters, params))
    progress.done(f"{report.articles:,} articles' rows checked")
    return report, pl.concat(tables)


def _row_checker(
    runner: GxRunner, target: Target, rules: BoilerplateRules
) -> Callable[[pl.DataFrame, int], tuple[list[Check], list[tuple[Any, Any]], pl.DataFrame]]:
    """The row suite's per-batch work, built once per engine worker: a batch's checks, its
    GX results (for ``GxRunner.record``) and its ``TABLE_COLUMNS``."""

    def check(articles: pl.DataFrame, first_row: int):
        batch = with_check_columns(articles.lazy(), rules).collect()
        rows = f"rows {first_row + 1}-{first_row + batch.height}" if batch.height else "rows (none)"
        runner.checks = {}
        results = runner.validate(target.rows_checkpoint, batch.drop("text_key_hash"), f"{target.name} {rows}")
        return list(runner.checks.values()), results, batch.select(TABLE_COLUMNS)

    return check


def _run_table_suite(runner: GxRunner, table: pl.DataFrame, rows: ValidationReport, stage: str, output_dir: Path,
                     originals: pl.LazyFrame | None = None) -> ValidationReport:
    before = set(runner.checks)
    runner.run(TABLE_CHECKPOINT, table, f"{rows.target} table", originals=originals)
    table_checks = [check for key, check in runner.checks.items() if key not in before]
    report = replace(rows, checks=[*rows.checks, *table_checks])
    data_docs.finish_site(output_dir / DATA_DOCS_DIR)
    log(stage, f"{len(report.checks) - len(report.failed)} of {len(report.checks)} expectations passed")
    return report


def _configured(parameters: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The suite parameters as configured (``max: today`` stays so) for the report."""
    return parameters | {"published_date_max": str(section(params, "validate")["published_date"]["max"])}


def report_from_json(data: dict[str, Any]) -> ValidationReport:
    """A ``ValidationReport`` back from its ``to_json`` (a drop's row checks)."""
    names = {f.name for f in fields(Check)}
    checks = [Check(**{key: value for key, value in check.items() if key in names}) for check in data["checks"]]
    return ValidationReport(data["target"], data["articles"], data["batches"], checks, data["parameters"])


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX reports an exception either directly or per metric it could not compute."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    messages = {str(v["exception_message"]) for v in info.values() if isinstance(v, dict) and v.get("exception_message")}
    return "; ".join(sorted(messages)) or None


def _jsonable(value: Any) -> Any:
    """GX results hold numpy and pandas scalars; JSON wants plain values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (dt.date, dt.datetime)) or hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return value if isinstance(value, int) else str(value)


# ---------------------------------------------------------------------------- stage


def run(input_path: Path, output_dir: Path, metrics_path: Path | None, params: dict[str, Any], gx_dir: Path,
        listed_only: bool = False) -> ValidationReport:
    """Every suite on one table (the dedup output folder, exactly the drops of
    ``split.drop_order`` in a project run, `listed_only`; or any article table)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    log(STAGE, f"validating {input_path} with the suites in {gx_dir} (Great Expectations)")
    articles = scan_partitions(input_path, drop_order(params), "articles.parquet", listed_only)
    return _write_outcome(run_suites(articles, CORPUS, params, gx_dir, output_dir), output_dir, metrics_path)


# A drop's row checks, <paths.validate>/rows/drop=<name>/ (a DVC output), with the compact
# columns the corpus's table suite checks; GX's own files for the drop go to
# <paths.validate>/drop=<name>/, outside it, as GX stamps them with the run time.
ROWS_DIR = "rows"
TABLE_COLUMNS_FILE = "table_columns.parquet"
ROW_PARAMS = ("quality", "boilerplate", "validate")  # the params sections the row suite reads


def suites_fingerprint(params: dict[str, Any], gx_dir: Path, memo: DigestMemo | None = None) -> str:
    """What every drop's row checks depend on but its articles: the params they read as
    configured (``max: today`` stays so, as DVC tracks it), the code, the GX project and its
    suites (great_expectations.yml keeps them in ../expectations)."""
    configured = json.dumps({name: section(params, name) for name in ROW_PARAMS}, sort_keys=True, default=str)
    return digest(configured, code_digest(__name__, memo), files_digest(gx_dir),
                  files_digest(gx_dir.parent / "expectations"))


def rows_fingerprint(articles: Path, suites: str, memo: DigestMemo | None = None) -> str:
    """A drop's row checks hold while this does: `suites` (``suites_fingerprint``) and the
    drop's kept articles (hashed once while unchanged, with a `memo`)."""
    return digest(suites, files_digest(articles, memo))


def run_drop(
    input_path: Path, rows_dir: Path, gx_output_dir: Path, params: dict[str, Any], gx_dir: Path,
    suites: str | None = None,
) -> ValidationReport:
    """The row suite on one drop's kept articles (`suites`: their ``suites_fingerprint``,
    when known)."""
    fingerprint = rows_fingerprint(input_path, suites or suites_fingerprint(params, gx_dir))
    gx_output_dir.mkdir(parents=True, exist_ok=True)
    log(STAGE, f"validating the rows of {input_path} with the suites in {gx_dir} (Great Expectations)")
    report, table = run_row_suite(scan_table(input_path), CORPUS, params, gx_dir, gx_output_dir)
    write_table(table, reset_dir(rows_dir) / TABLE_COLUMNS_FILE)
    report = _write_outcome(report, rows_dir, None)
    write_fingerprint(rows_dir, fingerprint)  # (``rows_fingerprint``) last: a drop interrupted is checked again
    return report


def run_corpus(
    input_dir: Path, output_dir: Path, metrics_path: Path | None, params: dict[str, Any], gx_dir: Path,
    repeated_dir: Path | None = None, listed_only: bool = False,
) -> ValidationReport:
    """The corpus's validation, a drop at a time: each drop's row checks (``run_drop``) on
    its kept articles (``input_dir/drop=<name>/``), reused while the drop's fingerprint holds
    (``rows_fingerprint``: a new drop is the only one checked), then their sum and the
    table suite (ids unique, texts distinct, mean length) on their compact columns. One
    process, so GX is set up once however many drops are checked. `repeated_dir`: clean's
    repeated lines (``paths.repeated_lines``), whose ``boilerplate`` rules each drop is
    checked with (``clean.learnt_rules``: the rules it was cleaned with); without it, the
    rules of `params`. `listed_only`: a project run, exactly the drops of ``split.drop_order``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    drops = partition_drops(input_dir, drop_order(params), listed_only)
    rows_dir, checked = output_dir / ROWS_DIR, []
    suites: dict[str, str] = {}  # suites_fingerprint by the rules' JSON: drops share their rules
    memo = DigestMemo.beside(output_dir)
    for drop in drops:
        if repeated_dir is not None:
            params = {**params, "boilerplate": learnt_rules(repeated_dir, drop)}
        rules = json.dumps(section(params, "boilerplate"), sort_keys=True)
        if rules not in suites:
            suites[rules] = suites_fingerprint(params, gx_dir, memo)
        articles, rows = partition(input_dir, drop) / "articles.parquet", partition(rows_dir, drop)
        if fingerprint_holds(rows, rows_fingerprint(articles, suites[rules], memo)):
            log(STAGE, f"drop {drop}: unchanged since its rows were checked, their results are reused")
        else:
            run_drop(articles, rows, partition(output_dir, drop), params, gx_dir, suites[rules])
        checked.append((report_from_json(read_json(rows / RESULTS_FILE)), scan_table(rows / TABLE_COLUMNS_FILE).collect()))
    memo.save()  # once, after the last fingerprint
    keep_listed_drops(STAGE, rows_dir, drops)  # drops no longer in the corpus go
    for gone in unlisted_partitions(output_dir, drops):  # and GX's files of their rows, beside the outputs
        shutil.rmtree(gone)
    log(STAGE, f"the corpus: {len(checked)} drop(s) of checked rows, and the table suite (Great Expectations)")
    # (the last drop's rules: the table suite reads none of them, its report lists them)
    return _write_outcome(run_table_suite(checked, CORPUS, params, gx_dir, output_dir), output_dir, metrics_path)


def _write_outcome(report: ValidationReport, output_dir: Path, metrics_path: Path | None) -> ValidationReport:
    write_json(output_dir / RESULTS_FILE, report.to_json())
    write_stage_report(report.summary(), output_dir, metrics_path, HEADLINE)
    report.log_failures(STAGE)
    verdict = "passed" if report.success else f"FAILED ({len(report.failed)} of {len(report.checks)} expectations)"
    log(STAGE, f"{report.articles:,} articles: {verdict}; Data Docs: {output_dir / DATA_DOCS_DIR / 'index.html'}")
    return report


def add_command(commands) -> None:
    parser = add_stage_command(
        commands, STAGE, input_from=("dedup",), input_help="dedup output folder, or an article table", main=_main,
    )
    parser.add_argument("--gx", type=Path, help="Great Expectations project folder (default: <paths.gx>)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--drop", action="append", dest="drops",
                       help="only the row checks of this drop's kept articles, <input>/drop=<name>/, into "
                       f"<output>/{ROWS_DIR}/drop=<name>/ (repeatable)")
    scope.add_argument("--corpus", action="store_true",
                       help=f"the corpus a drop at a time (what `dvc repro` runs): each drop's row checks into "
                       f"<output>/{ROWS_DIR}/drop=<name>/ (an unchanged drop's reused), their sum and the table suite")
    add_engine_option(parser)


def _main(paths: StagePaths, params: dict[str, Any], args) -> int:
    gx_dir = args.gx or path_of(params, "gx")
    params = with_engine(params, args.engine)
    # the corpus (a drop at a time, or as one table): every drop listed
    listed_only = not args.drops and require_listed_drops(paths, params, args, "articles.parquet", "corpus dedup")
    if args.drops:
        reports = [
            run_drop(partition(paths.input, drop) / "articles.parquet", partition(paths.output / ROWS_DIR, drop),
                     partition(paths.output, drop), params, gx_dir)
            for drop in args.drops
        ]
    elif args.corpus:
        repeated_dir = path_of(params, "repeated_lines")
        reports = [run_corpus(paths.input, paths.output, paths.metrics, params, gx_dir, repeated_dir, listed_only)]
    else:
        reports = [run(paths.input, paths.output, paths.metrics, params, gx_dir, listed_only)]
    return 0 if all(report.success for report in reports) else 1
