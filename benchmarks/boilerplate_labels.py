"""Build the labelled line set for the boilerplate benchmark (benchmarks/boilerplate_lines.jsonl).

    python benchmarks/boilerplate_labels.py

Articles: a seeded sample of SaudiNewsNet (every outlet) and of the windows-1256
newspapers (every country), their text normalised as clean does (``arabic_text.clean_text``),
one row per line. Labels come from evidence the clean rules do not use:

* ``no_word``: boilerplate. A line of punctuation only ("//", ".", "____"): no content.
* ``repeated_in_outlet``: boilerplate. A line of at most 15 words, with a letter, whose
  match key appears in at least 5 articles of the same outlet over the WHOLE corpus
  (31,030 SaudiNewsNet articles; the newspapers grouped by country), far more than the
  sample itself holds.
* ``long_line``: body. A line of more than 15 words seen in fewer than 5 articles.
* ``inner_line``: body. A shorter line, with a letter, that has a ``long_line`` both above
  and below it: a subheading, a quote, a short paragraph.
* ``read``: every other line (short, unrepeated, at the head or the tail of its article),
  labelled by reading it; the verdicts are in benchmarks/boilerplate_read_labels.tsv, which
  also holds the corrections of evidence labels found wrong by reading (with a ``why`` column:
  e.g. a columnist's recurring line that repeats within the outlet but is body text).

The evidence rules were then checked by reading a sample of their lines (README "Clean").
"""

from __future__ import annotations

import json
import random
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runnable as a script from anywhere

from benchmarks.shared_corpus import CP1256, SAUDI_ZIPS  # noqa: E402
from pipeline.text import arabic_text  # noqa: E402

OUT = Path(__file__).with_name("boilerplate_lines.jsonl")
READ_LABELS = Path(__file__).with_name("boilerplate_read_labels.tsv")
SHORT_WORDS = 15
MIN_ARTICLES = 5
PER_OUTLET = {"snn": 18, "cp1256": 8}
SEED = 13


def corpus() -> pl.DataFrame:
    """(corpus, outlet, article, text) of every non-empty article of both corpora."""
    rows = []
    for path in sorted(SAUDI_ZIPS.glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                if name.endswith(".json"):
                    for n, record in enumerate(json.loads(archive.read(name))):
                        rows.append(("snn", record.get("source") or "", f"{path.name}/{name}#{n}", record.get("content") or ""))
    for path in sorted(CP1256.rglob("*.txt")):
        text = path.read_bytes().decode("cp1256", errors="replace").replace("\x00", "")
        rows.append(("cp1256", path.name[:2], str(path.relative_to(CP1256)), text))
    frame = pl.DataFrame(rows, schema=["corpus", "outlet", "article", "text"], orient="row")
    return frame.with_columns(text=arabic_text.clean_text(pl.col("text"))).filter(pl.col("text") != "")


def lines_of(articles: pl.DataFrame) -> pl.DataFrame:
    return (
        articles.with_columns(line=pl.col("text").str.split("\n"))
        .with_columns(pos=pl.int_ranges(0, pl.col("line").list.len()))
        .explode("line", "pos")
        .drop("text")
        .with_columns(key=arabic_text.match_key(pl.col("line")))
        .with_columns(n_words=pl.when(pl.col("key") == "").then(0).otherwise(pl.col("key").str.count_matches(" ") + 1))
    )


def main() -> None:
    articles = corpus()
    all_lines = lines_of(articles)
    spread = (
        all_lines.filter(pl.col("key") != "")
        .group_by("corpus", "outlet", "key")
        .agg(n_articles=pl.col("article").n_unique())
    )
    rng = random.Random(SEED)
    chosen = []
    for (name, outlet), group in sorted(articles.group_by("corpus", "outlet"), key=lambda item: item[0]):
        ids = sorted(group["article"])
        chosen += rng.sample(ids, min(PER_OUTLET[name], len(ids)))
    sample = (
        all_lines.filter(pl.col("article").is_in(chosen))
        .join(spread, on=["corpus", "outlet", "key"], how="left")
        .with_columns(pl.col("n_articles").fill_null(1))
        .sort("corpus", "outlet", "article", "pos")
    )
    has_letter = pl.col("key").str.contains(r"\p{L}")
    repeated = (pl.col("n_words") <= SHORT_WORDS) & (pl.col("n_articles") >= MIN_ARTICLES) & has_letter
    long_line = (pl.col("n_words") > SHORT_WORDS) & (pl.col("n_articles") < MIN_ARTICLES)
    long_pos = pl.when(long_line).then(pl.col("pos"))
    inner = (long_pos.min().over("article") < pl.col("pos")) & (pl.col("pos") < long_pos.max().over("article"))
    labelled = sample.with_columns(
        evidence=pl.when(pl.col("key") == "").then(pl.lit("no_word"))
        .when(repeated).then(pl.lit("repeated_in_outlet"))
        .when(long_line).then(pl.lit("long_line"))
        .when(inner & has_letter).then(pl.lit("inner_line"))
        .otherwise(pl.lit("read"))
    )
    read = {}
    if READ_LABELS.exists():
        for row in READ_LABELS.read_text(encoding="utf-8").splitlines()[1:]:
            article, pos, label, _line_and_why = row.split("\t", 3)
            read[(article, int(pos))] = label
    labels = []
    unread = []
    evidence = []
    for row in labelled.iter_rows(named=True):
        label = read.get((row["article"], row["pos"]))
        if row["evidence"] == "read" and label is None:
            unread.append(row)
        elif label is None:
            label = "boilerplate" if row["evidence"] in ("repeated_in_outlet", "no_word") else "body"
        elif row["evidence"] != "read":  # an evidence rule's label corrected by reading
            label, row["evidence"] = label, "read"
        labels.append(label)
        evidence.append(row["evidence"])
    if unread:
        with READ_LABELS.open("a", encoding="utf-8") as handle:
            if READ_LABELS.stat().st_size == 0:
                handle.write("article\tpos\tlabel\tline\n")
            for row in unread:
                handle.write(f"{row['article']}\t{row['pos']}\t?\t{row['line']}\n")
        print(f"{len(unread)} lines to read: label them in {READ_LABELS} (body or boilerplate), then run again")
        return
    out = labelled.with_columns(label=pl.Series(labels), evidence=pl.Series(evidence))
    with OUT.open("w", encoding="utf-8") as handle:
        for row in out.select("corpus", "outlet", "article", "pos", "line", "label", "evidence").iter_rows(named=True):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = out.group_by("evidence", "label").len().sort("evidence", "label")
    print(f"{out.height:,} lines of {out['article'].n_unique()} articles -> {OUT.name}\n{counts}")


if __name__ == "__main__":
    main()
