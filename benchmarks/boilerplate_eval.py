"""Line-level precision and recall of boilerplate removal on the labelled line set
(benchmarks/boilerplate_lines.jsonl; how it was labelled: benchmarks/boilerplate_labels.py),
for this checkout's rules and for another revision's (default: main), side by side.

    python benchmarks/boilerplate_eval.py [--against main]

Two settings, each outlet its own source. *New outlets*: the labelled articles are cleaned
as one drop and the repeated-line rule sees only these ~400 articles, as it would a small
drop from outlets never seen before (the setting the test floors apply to: the rules must
generalise). *Earlier drops*: every other article of the same outlets (33,536) is an
earlier drop and the labelled articles the next one, repeated lines learnt across drops in
drop order as the pipeline does (``clean.repeated_lines_by_drop``); partly circular, as the
labels of 84 lines come from repetition in those outlets. A line counts as removed when
clean's line rules drop it or cut it to nothing.

Each setting is also scored on two halves of the outlets (``held_out``: a fixed split by
a hash of the outlet name, 13 of 33 outlets, 2,008 lines): rules are worded from the
lines of the *design* outlets and the corpus at large, and the *held-out* ones tell
whether they carry over to outlets they were not worded from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

import polars as pl

REPO = Path(__file__).resolve().parents[1]
LABELS = Path(__file__).with_name("boilerplate_lines.jsonl")


def labelled_lines() -> pl.DataFrame:
    return pl.read_ndjson(LABELS)


def held_out(outlet: str) -> bool:
    """The outlets new rules are not worded from (a fixed half, by a hash of the name)."""
    return hashlib.sha1(outlet.encode()).digest()[0] % 2 == 1


SPLITS = {"design": False, "held-out": True}


def articles_of(lines: pl.DataFrame) -> pl.DataFrame:
    """The labelled articles as clean's input: one drop, each outlet a source."""
    return (
        lines.sort("article", "pos")
        .group_by("article", maintain_order=True)
        .agg(drop=pl.lit("labelled"), source=pl.col("outlet").first(), text=pl.col("line").str.join("\n"))
        .select(id="article", drop="drop", source="source", text="text", title=pl.lit(None, pl.String),
                url=pl.lit(None, pl.String))
    )


def removed_flags(clean: Any, rules: Any, lines: pl.DataFrame, earlier: pl.DataFrame | None = None) -> pl.DataFrame:
    """(article, pos, rule, removed) for every labelled line, by the given clean module's
    rules; repeated lines are learnt from the labelled articles alone or, when ``earlier``
    (articles: id, drop, source, text, title, url) is given, from those as the drop before
    them."""
    split = clean.article_lines(clean.normalise_fields(articles_of(lines).lazy(), rules))
    if earlier is None:
        repeated = clean.repeated_lines(clean.short_line_counts(split, rules), rules)
    else:
        earlier_lines = clean.article_lines(clean.normalise_fields(earlier.lazy(), rules))
        counts = [(drop, clean.sum_line_counts(clean.short_line_counts(part, rules)))
                  for drop, part in (("earlier", earlier_lines), ("labelled", split))]
        *_, (_, learnt) = clean.repeated_lines_by_drop(counts, rules)
        repeated = learnt.lazy()
    classified = clean.classify_lines(split, repeated, rules).collect()
    kept = classified.filter(pl.col("removed_as").is_null()).select(article="id", pos="pos", kept=pl.lit(True))
    by_rule = classified.filter(pl.col("removed_as").is_not_null()).select(article="id", pos="pos", rule="removed_as")
    return (
        lines.select("article", "pos")
        .join(kept, on=["article", "pos"], how="left")
        .join(by_rule, on=["article", "pos"], how="left")
        .select("article", "pos", "rule", removed=pl.col("kept").is_null())
    )


def score(removed: pl.DataFrame, lines: pl.DataFrame) -> dict[str, Any]:
    judged = lines.join(removed, on=["article", "pos"])
    boilerplate = pl.col("label") == "boilerplate"
    counts = judged.select(
        tp=(pl.col("removed") & boilerplate).sum(),
        fp=(pl.col("removed") & ~boilerplate).sum(),
        fn=(~pl.col("removed") & boilerplate).sum(),
    ).row(0, named=True)
    removed_n, boilerplate_n = counts["tp"] + counts["fp"], counts["tp"] + counts["fn"]
    return counts | {
        "precision": counts["tp"] / removed_n if removed_n else 1.0,
        "recall": counts["tp"] / boilerplate_n if boilerplate_n else 1.0,
        "lines": judged.height,
        "boilerplate": boilerplate_n,
    }


def earlier_drops(lines: pl.DataFrame) -> pl.DataFrame:
    """Every other article of the labelled articles' outlets, as one earlier drop."""
    from benchmarks.boilerplate_labels import corpus

    return (
        corpus()
        .filter(~pl.col("article").is_in(lines["article"].unique().implode()) & pl.col("outlet").is_in(lines["outlet"].unique().implode()))
        .select(id="article", drop=pl.lit("earlier"), source="outlet", text="text", title=pl.lit(None, pl.String),
                url=pl.lit(None, pl.String))
    )


SETTINGS = ("new outlets", "earlier drops")


def evaluate_here(setting: str = "new outlets") -> dict[str, Any]:
    """Scores of the pipeline package importable now (this checkout or --code)."""
    from pipeline.plumbing.params import load_params, section
    from pipeline.stages import clean

    params = load_params(Path(clean.__file__).resolve().parents[2] / "params.yaml")
    rules = clean.BoilerplateRules.from_params(section(params, "boilerplate"))
    lines = labelled_lines()
    removed = removed_flags(clean, rules, lines, earlier_drops(lines) if setting == "earlier drops" else None)
    judged = lines.join(removed, on=["article", "pos"])
    result = score(removed, lines)
    outlet_held_out = lines["outlet"].map_elements(held_out, return_dtype=pl.Boolean)
    result["by_split"] = {name: score(removed, lines.filter(outlet_held_out == flag)) for name, flag in SPLITS.items()}
    result["by_rule"] = dict(judged.filter("removed").group_by(pl.col("rule").fill_null("markers")).len().sort("rule").iter_rows())
    result["wrongly_removed"] = judged.filter(pl.col("removed") & (pl.col("label") == "body"))["line"].to_list()
    result["missed"] = judged.filter(~pl.col("removed") & (pl.col("label") == "boilerplate"))["line"].to_list()
    return result


def evaluate_revision(revision: str, setting: str) -> dict[str, Any]:
    """``evaluate_here`` on ``revision``'s pipeline/ and params.yaml, in a subprocess."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "pipeline", "params.yaml"],
                             check=True, capture_output=True).stdout
    with tempfile.TemporaryDirectory() as folder:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        output = subprocess.run([sys.executable, __file__, "--code", folder, "--json", setting],
                                check=True, capture_output=True, text=True).stdout
    return json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default="main",
                        help="git revision to compare with (default: main; it needs clean.repeated_lines_by_drop)")
    parser.add_argument("--code", help=argparse.SUPPRESS)  # a folder holding pipeline/ and params.yaml
    parser.add_argument("--json", choices=SETTINGS, help=argparse.SUPPRESS)
    parser.add_argument("--show", action="store_true", help="list the lines wrongly removed and missed (new outlets)")
    args = parser.parse_args()
    sys.path[:0] = [args.code or str(REPO), str(REPO)]  # that pipeline/, and this benchmarks/
    if args.json:
        print(json.dumps(evaluate_here(args.json), ensure_ascii=False))
        return
    here = {setting: evaluate_here(setting) for setting in SETTINGS}
    there = {setting: evaluate_revision(args.against, setting) for setting in SETTINGS}
    first = here[SETTINGS[0]]
    print(f"{first['lines']:,} labelled lines, {first['boilerplate']} boilerplate ({LABELS.name})")
    for setting in SETTINGS:
        print(f"\n{setting:22s}{'this checkout':>15s}{args.against:>15s}")
        for key in ("precision", "recall"):
            print(f"{key:22s}{here[setting][key]:15.4f}{there[setting][key]:15.4f}")
        for key, name in (("tp", "boilerplate removed"), ("fp", "body removed"), ("fn", "boilerplate kept")):
            print(f"{name:22s}{here[setting][key]:15d}{there[setting][key]:15d}")
        for split in SPLITS:
            for key in ("precision", "recall"):
                print(f"{split + ' ' + key:22s}{here[setting]['by_split'][split][key]:15.4f}"
                      f"{there[setting].get('by_split', {}).get(split, {}).get(key, float('nan')):15.4f}")
        print("removed by rule (this checkout):", here[setting]["by_rule"])
    if args.show:
        print("\nbody removed:\n  " + "\n  ".join(first["wrongly_removed"]))
        print("\nboilerplate kept:\n  " + "\n  ".join(first["missed"]))


if __name__ == "__main__":
    main()
