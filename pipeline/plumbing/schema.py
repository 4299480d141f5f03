"""The canonical tables of the corpus, defined once.

Every stage reads and writes these schemas; tests, the Great Expectations suites and the
dataset card refer to them instead of repeating column lists.
"""

from __future__ import annotations

import polars as pl

# One row per article, from ingest onwards.
ARTICLE_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "id": (pl.String(), "Stable article id: first 16 hex digits of SHA-256 of '<drop>/<source_file>'. "
           "Never derived from row order, so it survives re-runs and new drops."),
    "drop": (pl.String(), "Name of the raw drop (folder under data/raw) the article came from."),
    "source_file": (pl.String(), "Path of the file inside the drop; '#N' appended for the N-th record (1-based) of a multi-record file."),
    "title": (pl.String(), "Headline. For one-article text files: the first meaningful line."),
    "text": (pl.String(), "Article body, cleaned: one paragraph per line, boilerplate removed, diacritics kept."),
    "url": (pl.String(), "Original URL, when the drop has one."),
    "source": (pl.String(), "Outlet that published the article, when known."),
    "published_date": (pl.Date(), "Publication date, when known."),
    "raw_sha256": (pl.String(), "SHA-256 of the raw bytes of the file or record, before decoding."),
    "n_chars": (pl.Int64(), "Characters in text."),
    "n_words": (pl.Int64(), "Words in text (runs of letters, digits and combining marks)."),
    "language": (pl.String(), "Language of the text as identified by fastText's lid.176 model (ISO 639 code; "
                 "Egyptian Arabic folded into 'ar', 'und' for a text without words); set by the clean stage."),
    "language_score": (pl.Float64(), "Probability the language model gives `language` (0-1); null where the model "
                       "was not needed: a text in the Arabic alphabet alone, which no other language writes with. "
                       "Set by the clean stage."),
}
ARTICLE_SCHEMA = pl.Schema({name: dtype for name, (dtype, _) in ARTICLE_COLUMNS.items()})

# Rows taken out of the corpus with a reason. Same columns as an article (title/text are
# null when the input could not be decoded) plus where and why it was quarantined.
QUARANTINE_SCHEMA = pl.Schema(
    dict(ARTICLE_SCHEMA) | {"stage": pl.String(), "reason": pl.String(), "detail": pl.String()}
)

# Why an input is quarantined. Keys are the `reason` values; values explain them (the
# dataset card and `validate-drop` print these).
QUARANTINE_REASONS: dict[str, str] = {
    "empty": "the file or record has no text at all",
    "too_large": "the file or record is larger than ingest.max_article_bytes",
    "binary": "the bytes contain NUL or other control bytes: not a text file",
    "undecodable": "the bytes are not valid in the declared or any supported encoding",
    "unsupported_format": "the file type is not one the ingest stage reads",
    "unreadable_record": "a record of a JSONL/JSON/CSV/Parquet file could not be parsed (a CSV row with more or "
                         "fewer fields than the header too) or has no text column",
    "too_deep": "a JSON record (or .json file) nested deeper than the JSON parser follows",
    "wrong_type": "a record field mapped to a column holds another type (a number, list or struct where text belongs)",
    "outside_drop": "a link whose target is outside the drop folder: nothing outside a drop is read",
    "dangling_link": "a link whose target does not exist",
    "link_loop": "a link that leads back to itself (a loop of links)",
    "empty_after_cleaning": "nothing of the article is left once markup and boilerplate are removed",
    "too_short": "fewer words or characters than quality.min_words / quality.min_chars",
    "too_long": "more characters than quality.max_chars",
    "low_arabic_ratio": "share of Arabic letters below quality.min_arabic_ratio",
    "repetitive": "share of repeated lines above quality.max_repeated_line_share",
    "not_arabic": "the text is identified as a language other than quality.languages (detail: the language and its score)",
    "bridges_splits": "a new article similar to published articles of different splits: in either split it would leak "
                      "into the other, and a published article never moves (detail: the groups it links)",
}

# Outputs of the dedup stage.
CLUSTER_ID = "cluster_id"  # on kept rows: id of the kept article that represents the cluster
# The kept articles from dedup on: the dedup output, the split tables and the published dataset.
CLUSTERED_ARTICLE_COLUMNS: dict[str, tuple[pl.DataType, str]] = ARTICLE_COLUMNS | {
    CLUSTER_ID: (pl.String(), "Near-duplicate cluster of the article: the id of the article kept for it, so always "
                 "this article's own id here. The duplicates removed for it (not published) carry the same cluster_id; "
                 "a cluster never spans two splits."),
}
CLUSTERED_ARTICLE_SCHEMA = pl.Schema({name: dtype for name, (dtype, _) in CLUSTERED_ARTICLE_COLUMNS.items()})
DUPLICATE_COLUMNS = {
    "duplicate_of": pl.String(),  # id of the kept article this row duplicates
    "similarity": pl.Float64(),  # Jaccard similarity of shingles (1.0 for exact duplicates)
    "kind": pl.String(),  # "exact" | "near"
}

SPLITS = ("train", "validation", "test")


def conform(frame: pl.LazyFrame | pl.DataFrame, schema: pl.Schema) -> pl.LazyFrame | pl.DataFrame:
    """Select exactly the columns of `schema`, in order, with its types."""
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
