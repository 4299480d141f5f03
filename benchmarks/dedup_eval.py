"""Labelled evaluation of the dedup stage on real Arabic news, with realistic edits.

    python benchmarks/dedup_eval.py            # prints precision / recall / F1 at params.yaml
    python benchmarks/dedup_eval.py --sweep    # and for other n-gram sizes and thresholds
    python benchmarks/dedup_eval.py --seeds 20150721 1 2 3 4   # five draws of the variants: each, mean, worst

What it builds (the same builder serves tests/test_dedup.py and benchmarks/dedup_vs_datatrove.py):

* Base articles: real articles run through the real ingest and clean stages: the 599
  SaudiNewsNet sample files (reprint clusters, the Libya group, boilerplate-heavy and
  random articles), 22 templated reports of different events from the SaudiNewsNet zips
  (``data/templated_negatives.tsv``: execution notices, "aid plane no. N lands", market
  and currency reports, weekly bridge traffic, congratulation cables) and the five seeds
  (one story, five independent texts).
* Variants: for each base article, near-duplicates made by the edits outlets make when
  they reprint a story (``make_variant``): a new headline, boilerplate lines added or
  removed, a sentence inserted or dropped, diacritics / letter forms / punctuation / digit
  scripts changed, words changed; the sentence and word edits together change 10-20 % of
  the words. Changed words come in runs whose lengths follow the runs measured between
  real reprints of SaudiNewsNet (``EDIT_RUNS``). A quarter of the variants are teasers
  (``make_teaser``): the first 50-70 % of the text, half of them with a paragraph added
  or dropped.
* Labels: a *family* is a base article and its variants; two articles are duplicates
  exactly when they belong to the same family. Different base articles are hard negatives
  (many are different articles on the same story: the Libya group, the seeds, reprint
  clusters of related stories, the templated reports) -- except pairs of base articles
  that are themselves reprints or rewrites of one text: the sample's reprint clusters, and
  any two base articles sharing at least ``RELATED_JACCARD`` of their 5-word shingles or
  with one inside the other (``RELATED_CONTAINMENT``), computed exactly over all pairs.
  Those pairs carry no label: they are reported apart ("natural reprints"), not counted in
  precision or recall. Templated reports of one template are never natural reprints.

Scores (``score``): over removals (a removed article is right when the article it was
removed for is of its family; recall is the share of the removals each family needs), and
over the pairs of the final clusters (``pairs_*``: what the goals are set on); recall of
teasers, of teasers with a paragraph changed, of pairs of two reprints of one base; and
the templated pairs merged (those whose figures differ must never be).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runnable as a script from anywhere

from benchmarks.shared_corpus import SAUDI_MANIFEST, SAUDI_SAMPLE, SAUDI_ZIPS  # noqa: E402
from benchmarks.shared_corpus import SEED as SEED_DROP  # noqa: E402
from pipeline.plumbing.params import load_params, section  # noqa: E402
from pipeline.plumbing.schema import ARTICLE_SCHEMA  # noqa: E402
from pipeline.stages import clean, dedup, ingest  # noqa: E402
from pipeline.text import arabic_text, minhash  # noqa: E402

# Lengths (in words) of the changed runs between real reprints: SaudiNewsNet sample
# clusters, word-level diff of the match keys of 177 pairs (1,016 runs). Weights per length;
# the tail (>= 11 words, 16 %) is drawn uniformly from 11-40.
EDIT_RUNS = {1: 409, 2: 244, 3: 73, 4: 49, 5: 31, 6: 13, 7: 8, 8: 10, 9: 12, 10: 6}
EDIT_RUNS_TAIL = (11, 40, 161)
RELATED_JACCARD = 0.3
SEED = 20150721

DATELINES = ["الرياض - واس", "جدة - واس", "الرياض: ", "القاهرة - أ ش أ", "(رويترز) -", "متابعات -"]
BOILERPLATE_LINES = [
    "// انتهى //", "تابعونا على تويتر", "للاشتراك في خدمة الأخبار العاجلة أرسل رقم 1 إلى 88888",
    "اقرأ أيضاً", "شارك هذا الخبر", "جميع الحقوق محفوظة للصحيفة", "المصدر: وكالة الأنباء السعودية",
]
HEADLINE_PREFIXES = ["عاجل: ", "بالصور.. ", "فيديو: ", "شاهد: ", ""]
DIACRITICS = ["\u064e", "\u064f", "\u0650", "\u0651", "\u064b", "\u0652"]
FORM_SWAPS = {"ا": "أ", "أ": "ا", "إ": "ا", "ه": "ة", "ة": "ه", "ي": "ى", "ى": "ي", "ؤ": "ئ", "ئ": "ؤ"}
PUNCTUATION_SWAPS = {"،": ",", ",": "،", ".": "۔", "؟": "?", "«": '"', "»": '"'}
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
EDITS = ("headline", "boilerplate", "sentence", "forms", "words", "teaser", "paragraph")
TEASER_SHARE = 0.25  # of variants: the first 50-70 % of the text, a paragraph added or dropped half the time
TEASER_KEEP = (0.5, 0.7)
RELATED_CONTAINMENT = 0.7  # a base inside another (a natural teaser) is a natural reprint too
TEMPLATED = Path(__file__).resolve().parent / "data" / "templated_negatives.tsv"
BYLINE_WORDS = 12  # a first line this short is a dateline or byline, not content
SENTENCE_END = re.compile(r"(?<=[.!?؟\n])\s*")  # splits on punctuation only, never inside words


# ------------------------------------------------------------------ base articles


def cleaned_articles(drops: dict[str, list[Path]], workdir: Path, params: dict[str, Any]) -> pl.DataFrame:
    """Run real ingest + clean on files grouped in drops ({drop name: files}); returns
    the kept articles with ``file`` (the file's stem, e.g. the SaudiNewsNet sample id)."""
    raw = workdir / "raw"
    for name, files in drops.items():
        (raw / name).mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copy(file, raw / name / file.name)
    ingest.run(raw, workdir / "ingest", None, section(params, "ingest"))
    clean.run(workdir / "ingest", workdir / "clean", None, params)
    return pl.read_parquet(workdir / "clean" / "articles.parquet").with_columns(
        file=pl.col("source_file").str.replace(r"\.[a-z]+(#\d+)?$", "")
    )


def sample_articles(workdir: Path, params: dict[str, Any]) -> pl.DataFrame:
    """The cleaned SaudiNewsNet sample, templated reports and seeds, with ``group``
    (manifest group, 'templated:<template>', 'seed')."""
    sample = sorted(SAUDI_SAMPLE.glob("*.json"))
    templated = templated_articles(workdir / "templated")
    seeds = sorted(SEED_DROP.glob("*.txt"))
    articles = cleaned_articles({"sample": sample, "templated": templated, "seed": seeds}, workdir, params)
    manifest = pl.read_csv(SAUDI_MANIFEST, separator="\t", quote_char=None).select(file="id", group="group")
    templates = pl.read_csv(TEMPLATED, separator="\t", quote_char=None).select(
        file="id", group="templated:" + pl.col("template"), figures="figures")
    return articles.join(pl.concat([manifest, templates], how="diagonal"), on="file", how="left").with_columns(
        group=pl.when(pl.col("drop") == "seed").then(pl.lit("seed")).otherwise(pl.col("group"))
    )


# ------------------------------------------------------------------ variants


def _edit_run_length(rng: np.random.Generator) -> int:
    lengths = list(EDIT_RUNS) + [0]
    weights = np.array(list(EDIT_RUNS.values()) + [EDIT_RUNS_TAIL[2]], dtype=float)
    length = int(rng.choice(lengths, p=weights / weights.sum()))
    return length or int(rng.integers(EDIT_RUNS_TAIL[0], EDIT_RUNS_TAIL[1] + 1))


def change_words(text: str, fraction: float, vocabulary: np.ndarray, rng: np.random.Generator) -> str:
    """Replace, drop or insert runs of words until about `fraction` of the words changed."""
    lines = [line.split(" ") for line in text.split("\n")]
    flat = [(i, j) for i, line in enumerate(lines) for j in range(len(line))]
    budget = max(1, round(fraction * len(flat)))
    changed = 0
    while changed < budget and flat:
        run = min(_edit_run_length(rng), budget - changed, len(flat))
        start = int(rng.integers(0, len(flat) - run + 1))
        op = rng.choice(["replace", "replace", "delete", "insert"])
        positions = flat[start:start + run]
        if op == "insert":
            i, j = positions[0]
            lines[i][j] = " ".join(rng.choice(vocabulary, size=run)) + " " + lines[i][j]
        else:
            for i, j in positions:
                lines[i][j] = str(rng.choice(vocabulary)) if op == "replace" else ""
        del flat[start:start + run]
        changed += run
    return "\n".join(" ".join(w for w in line if w) for line in lines)


def change_forms(text: str, rng: np.random.Generator, share: float = 0.3) -> str:
    """Diacritics added, letter forms and punctuation swapped, digits to Arabic-Indic:
    what differs between printings of one text, none of it a different word."""
    rolls = rng.random(len(text))
    marks = rng.integers(0, len(DIACRITICS), size=len(text))
    out = []
    for ch, roll, mark in zip(text, rolls.tolist(), marks.tolist()):
        if ch in FORM_SWAPS and roll < share / 2:
            out.append(FORM_SWAPS[ch])
        elif ch in PUNCTUATION_SWAPS and roll < share:
            out.append(PUNCTUATION_SWAPS[ch])
        else:
            out.append(ch)
            if "\u0621" <= ch <= "\u064a" and roll > 1 - share:
                out.append(DIACRITICS[mark])
    changed = "".join(out)
    return changed.translate(ARABIC_INDIC) if rng.random() < 0.5 else changed


def _sentences(text: str) -> list[str]:
    """Sentences (with their delimiters): split after . ! ? ؟ and at line ends."""
    return [s for s in SENTENCE_END.split(text) if s.strip()]


def make_variant(title: str, text: str, other_text: str, vocabulary: np.ndarray, rng: np.random.Generator) -> tuple[str, str, list[str]]:
    """A reprint of (title, text). Every edit is applied with probability 1/2 (at least one).
    The edits that change words ("sentence", "words") share one budget of 10-20 % of the
    article's words: a sentence inserted or dropped uses up to half of it, "words" the rest.
    Returns (title, text, edits applied)."""
    if rng.random() < TEASER_SHARE:
        return make_teaser(title, text, other_text, rng)
    reprint_edits = EDITS[:5]
    edits = [e for e in reprint_edits if rng.random() < 0.5] or [str(rng.choice(reprint_edits))]
    budget = round(float(rng.uniform(0.10, 0.20)) * len(text.split()))
    if "headline" in edits:
        words = title.split(" ")
        rng.shuffle(words)
        title = str(rng.choice(HEADLINE_PREFIXES)) + " ".join(words)
    if "boilerplate" in edits:
        lines = text.split("\n")
        if len(lines) > 2 and len(lines[0].split(" ")) <= BYLINE_WORDS and rng.random() < 0.5:
            lines = lines[1:]  # the base's dateline / byline dropped
        else:
            if rng.random() < 0.5:
                lines.insert(0, str(rng.choice(DATELINES)))
            lines.append(str(rng.choice(BOILERPLATE_LINES)))
        text = "\n".join(lines)
    if "sentence" in edits:
        sentences = _sentences(text)
        limit = max(3, budget // 2 if "words" in edits else budget)
        droppable = [i for i, sentence in enumerate(sentences) if len(sentence.split()) <= limit]
        if droppable and len(sentences) > 2 and rng.random() < 0.5:
            i = int(rng.choice(droppable))
            budget -= len(sentences[i].split())
            del sentences[i]
        else:  # the start of a sentence of another article
            words = str(rng.choice(_sentences(other_text) or [other_text])).split()[:limit]
            budget -= len(words)
            sentences.insert(int(rng.integers(0, len(sentences) + 1)), " ".join(words) + ". ")
        text = "".join(sentences)
    if "words" in edits and budget > 0:
        text = change_words(text, budget / max(1, len(text.split())), vocabulary, rng)
    if "forms" in edits:
        text = change_forms(text, rng)
    return title, text, edits


def make_teaser(title: str, text: str, other_text: str, rng: np.random.Generator) -> tuple[str, str, list[str]]:
    """A teaser or truncation of (title, text): its first 50-70 % of words, cut after a
    sentence; half the time a paragraph of it dropped or a paragraph of another article
    added; headline, boilerplate and form edits as in ``make_variant``."""
    sentences = _sentences(text)
    keep = float(rng.uniform(*TEASER_KEEP)) * len(text.split())
    kept, words = [], 0
    for sentence in sentences:  # cut at the sentence end nearest to `keep` words
        if kept and words + len(sentence.split()) / 2 > keep:
            break
        kept.append(sentence)
        words += len(sentence.split())
    text = "".join(kept).strip()
    edits = ["teaser"]
    if rng.random() < 0.5:
        edits.append("paragraph")
        lines = text.split("\n")
        if len(lines) > 2 and rng.random() < 0.5:
            del lines[int(rng.integers(1, len(lines)))]  # not the lead
        else:  # new content: a run of words of another article, a quarter of the teaser's length at most
            other = other_text.split()
            size = min(len(other) // 4, max(8, len(text.split()) // 4))
            start = int(rng.integers(0, max(1, len(other) - size)))
            lines.insert(int(rng.integers(1, len(lines) + 1)), " ".join(other[start:start + size]))
        text = "\n".join(lines)
    if rng.random() < 0.5:
        edits.append("headline")
        shuffled = title.split(" ")
        rng.shuffle(shuffled)
        title = str(rng.choice(HEADLINE_PREFIXES)) + " ".join(shuffled)
    if rng.random() < 0.5:
        edits.append("boilerplate")
        text = text + "\n" + str(rng.choice(BOILERPLATE_LINES))
    if rng.random() < 0.5:
        edits.append("forms")
        text = change_forms(text, rng)
    return title, text, edits


@dataclass
class Evaluation:
    """A corpus (ARTICLE_SCHEMA) with its labels."""

    articles: pl.DataFrame
    family: pl.DataFrame  # id, family (the base article's id), edits (list, empty for bases)
    related: pl.DataFrame  # family_a < family_b: base articles that are natural reprints / rewrites
    info: dict[str, Any] = field(default_factory=dict)
    # id_a < id_b: base articles of one template that state different facts (templated reports)
    # (figures: "differ" when they state other figures, "none" when they carry none to compare)
    negatives: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(
        schema={"id_a": pl.String, "id_b": pl.String, "figures": pl.String}))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("articles", "family", "related", "negatives"):
            getattr(self, name).write_parquet(directory / f"{name}.parquet")
        (directory / "info.json").write_text(json.dumps(self.info))

    @classmethod
    def load(cls, directory: Path) -> "Evaluation":
        names = [n for n in ("articles", "family", "related", "negatives") if (directory / f"{n}.parquet").exists()]
        frames = {name: pl.read_parquet(directory / f"{name}.parquet") for name in names}
        return cls(**frames, info=json.loads((directory / "info.json").read_text()))


def build_evaluation(bases: pl.DataFrame, variants_per_article: tuple[int, int] = (1, 2), seed: int = SEED,
                     exclude_groups: tuple[str, ...] = ("seed",), natural_groups: pl.DataFrame | None = None,
                     negative_groups: pl.DataFrame | None = None) -> Evaluation:
    """Bases plus 1-2 variants each (none for ``exclude_groups``), and the labels.

    ``natural_groups`` (id, group): base articles known to be reprints of each other (the
    sample's clusters); base pairs with exact 5-shingle Jaccard >= RELATED_JACCARD join them.
    ``negative_groups`` (id, group): base articles known to be different (templated reports):
    never related, whatever their similarity."""
    rng = np.random.default_rng(seed)
    bases = bases.sort("id")
    vocabulary = bases.select(w=arabic_text.words(pl.col("text"))).explode("w").unique().sort("w")["w"].to_numpy()
    texts = bases["text"].to_list()
    rows, families = [], []
    group_col = bases["group"].to_list() if "group" in bases.columns else [None] * bases.height
    for k, base in enumerate(bases.iter_rows(named=True)):
        families.append({"id": base["id"], "family": base["id"], "edits": []})
        if group_col[k] in exclude_groups:
            continue
        for v in range(int(rng.integers(variants_per_article[0], variants_per_article[1] + 1))):
            other = texts[int(rng.integers(0, len(texts)))]
            title, text, edits = make_variant(base["title"] or "", base["text"], other, vocabulary, rng)
            vid = f"{base['id'][:12]}v{v:03d}"
            rows.append({**base, "id": vid, "title": title, "text": text,
                         "source_file": f"{base['source_file']}~v{v}", "raw_sha256": None})
            families.append({"id": vid, "family": base["id"], "edits": edits})
    variants = pl.DataFrame(rows, schema=bases.schema) if rows else bases.clear()
    articles = arabic_text.with_lengths(pl.concat([bases, variants]).select(ARTICLE_SCHEMA.names())).sort("id")
    family = pl.DataFrame(families, schema={"id": pl.String, "family": pl.String, "edits": pl.List(pl.String)})
    related = related_bases(bases, natural_groups, negative_groups)
    evaluation = Evaluation(articles, family, related, {"bases": bases.height, "variants": variants.height})
    if negative_groups is not None:  # (id, group, figures): pairs of one template, with its `figures`
        figures = negative_groups.select("group", "figures").unique()
        evaluation.negatives = _pairs_within(negative_groups, "group").join(
            negative_groups.select(id_a="id", group="group"), on="id_a").join(figures, on="group").select("id_a", "id_b", "figures")
    return evaluation


def related_bases(bases: pl.DataFrame, natural_groups: pl.DataFrame | None,
                  negative_groups: pl.DataFrame | None = None) -> pl.DataFrame:
    """Pairs of base articles (a < b) that are reprints or rewrites of one text: exact
    5-shingle Jaccard >= RELATED_JACCARD, or the smaller inside the other (containment >=
    RELATED_CONTAINMENT), or one of ``natural_groups`` (id, group) -- except pairs of one
    of ``negative_groups`` (id, group): templated reports known to state different facts."""
    words = bases.select("id", w=arabic_text.key_words(arabic_text.match_key(pl.col("text"))))
    shingles = minhash.shingle_hashes(words["w"], 5)
    sets = pl.DataFrame({"id": np.repeat(words["id"].to_numpy(), shingles.counts), "s": shingles.hashes}).unique()
    sizes = sets.group_by("id").agg(n=pl.len())
    shared = (
        sets.join(sets, on="s", suffix="_b").filter(pl.col("id") < pl.col("id_b"))
        .group_by("id", "id_b").agg(shared=pl.len())
        .join(sizes, on="id").join(sizes.rename({"id": "id_b", "n": "n_b"}), on="id_b")
        .filter((pl.col("shared") / (pl.col("n") + pl.col("n_b") - pl.col("shared")) >= RELATED_JACCARD)
                | (pl.col("shared") / pl.min_horizontal("n", "n_b") >= RELATED_CONTAINMENT))
        .select(family_a="id", family_b="id_b")
    )
    pairs = [shared]
    if natural_groups is not None:
        pairs.append(_pairs_within(natural_groups.filter(pl.col("group").is_not_null()), "group")
                     .select(family_a="id_a", family_b="id_b"))
    related = pl.concat(pairs).unique()
    if negative_groups is not None:
        negatives = _pairs_within(negative_groups, "group").select(family_a="id_a", family_b="id_b")
        related = related.join(negatives, on=["family_a", "family_b"], how="anti")
    return related.sort("family_a", "family_b")


def templated_articles(workdir: Path) -> list[Path]:
    """The SaudiNewsNet articles of ``data/templated_negatives.tsv`` (templated reports of
    different events: execution notices, aid planes, market reports...), written from the
    daily zips as one-article JSON files like the sample's (id snn-DAY-INDEX)."""
    wanted = pl.read_csv(TEMPLATED, separator="\t", quote_char=None).with_columns(
        day=pl.col("id").str.slice(4, 10), index=pl.col("id").str.slice(15).cast(pl.Int64)
    )
    workdir.mkdir(parents=True, exist_ok=True)
    files = []
    for (day,), rows in wanted.group_by("day", maintain_order=True):
        with zipfile.ZipFile(SAUDI_ZIPS / f"{day}.zip") as zipped:
            records = json.loads(zipped.read(zipped.namelist()[0]))
        for name, index in rows.select("id", "index").iter_rows():
            files.append(workdir / f"{name}.json")
            files[-1].write_text(json.dumps({"id": name, **records[index]}, ensure_ascii=False))
    return files


# ------------------------------------------------------------------ scoring


def _pairs_within(frame: pl.DataFrame, by: str) -> pl.DataFrame:
    """All pairs (id_a < id_b) of rows sharing `by`."""
    grouped = frame.filter(pl.len().over(by) > 1).select("id", by)
    return grouped.join(grouped, on=by, suffix="_b").filter(pl.col("id") < pl.col("id_b")).select(id_a="id", id_b="id_b")


def score(evaluation: Evaluation, decisions: pl.DataFrame) -> dict[str, Any]:
    """Precision / recall / F1 of dedup decisions (id, duplicate_of: null when kept).

    Removal level (the headline figures): a removed article is right when the article it
    was removed for is of its family, wrong when of an unrelated family (removals for a
    natural reprint count as neither). Recall: of the size-1 removals each family needs,
    how many happened. Pair level (``pairs_*``): over all pairs of the final clusters."""
    fam = evaluation.family.select("id", "family")
    related = evaluation.related.select(f1="family_a", f2="family_b", related=pl.lit(True))

    def with_families(frame: pl.DataFrame, a: str, b: str) -> pl.DataFrame:
        return (
            frame.join(fam.rename({"id": a, "family": "fa"}), on=a)
            .join(fam.rename({"id": b, "family": "fb"}), on=b)
            .with_columns(f1=pl.min_horizontal("fa", "fb"), f2=pl.max_horizontal("fa", "fb"))
            .join(related, on=["f1", "f2"], how="left")
            .with_columns(same=pl.col("fa") == pl.col("fb"), related=pl.col("related").fill_null(False))
        )

    removed = with_families(decisions.filter(pl.col("duplicate_of").is_not_null()).select("id", "duplicate_of"), "id", "duplicate_of")
    right = removed.filter(pl.col("same")).height
    wrong = removed.filter(~pl.col("same") & ~pl.col("related"))
    needed = evaluation.family.group_by("family").agg(needed=pl.len() - 1)
    got = (
        removed.filter(pl.col("same") | pl.col("related")).group_by(family="fa").agg(got=pl.len())
        .join(needed, on="family").select(pl.min_horizontal("got", "needed")).sum().item() or 0
    )
    precision = right / (right + wrong.height) if right + wrong.height else 1.0
    recall = got / needed["needed"].sum() if needed["needed"].sum() else 1.0

    clusters = decisions.select("id", cluster=pl.coalesce("duplicate_of", "id"))
    predicted = with_families(_pairs_within(clusters, "cluster"), "id_a", "id_b")
    actual = _pairs_within(evaluation.family, "family").height
    pairs_tp = predicted.filter(pl.col("same")).height
    pairs_fp = predicted.filter(~pl.col("same") & ~pl.col("related")).height
    pairs_precision = pairs_tp / (pairs_tp + pairs_fp) if pairs_tp + pairs_fp else 1.0
    pairs_recall = pairs_tp / actual if actual else 1.0

    # per edit: share of the variants with that edit that end up in their base's cluster
    variants = (
        evaluation.family.filter(pl.col("edits").list.len() > 0)
        .join(clusters, on="id").join(clusters.rename({"id": "family", "cluster": "base_cluster"}), on="family")
        .with_columns(found=pl.col("cluster") == pl.col("base_cluster"))
    )
    by_edit = {e: round(variants.filter(pl.col("edits").list.contains(e))["found"].mean() or 0.0, 4) for e in EDITS}
    teasers = variants.filter(pl.col("edits").list.contains("teaser"))
    by_teaser = {kind: round(rows["found"].mean() or 0.0, 4) for kind, rows in (
        ("teaser", teasers.filter(~pl.col("edits").list.contains("paragraph"))),
        ("teaser+paragraph", teasers.filter(pl.col("edits").list.contains("paragraph"))))}
    # two reprints of one base: both must end in one cluster
    reprints = _pairs_within(evaluation.family.filter(pl.col("edits").list.len() > 0), "family")
    reprints_joined = _same_cluster(reprints, clusters)
    templated_merged = _same_cluster(evaluation.negatives, clusters)
    with_figures = evaluation.negatives.filter(pl.col("figures") == "differ")
    return {
        "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(_f1(precision, recall), 4),
        "removed": removed.height, "removed_right": right, "removed_wrong": wrong.height,
        "removed_for_natural_reprint": removed.filter(~pl.col("same") & pl.col("related")).height,
        "removals_needed": int(needed["needed"].sum()), "wrong_examples": wrong.head(5).select("id", "duplicate_of").rows(),
        "pairs_precision": round(pairs_precision, 4), "pairs_recall": round(pairs_recall, 4),
        "pairs_f1": round(_f1(pairs_precision, pairs_recall), 4),
        "recall_by_edit": by_edit, "recall_teasers": by_teaser,
        "reprint_pairs": reprints.height, "reprint_pairs_recall": round(reprints_joined.height / reprints.height, 4) if reprints.height else 1.0,
        "templated_pairs": evaluation.negatives.height, "templated_pairs_merged": templated_merged.rows(),
        "templated_figures_differ_pairs": with_figures.height,
        "templated_figures_differ_merged": _same_cluster(with_figures.select("id_a", "id_b"), clusters).rows(),
        "natural_reprint_pairs": _related_pairs_in_corpus(evaluation),
        "natural_reprint_pairs_merged": predicted.filter(~pl.col("same") & pl.col("related")).height,
    }


def _same_cluster(pairs: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    """The pairs (id_a, id_b) whose two articles ended in one cluster."""
    return (
        pairs.join(clusters.rename({"id": "id_a", "cluster": "cluster_a"}), on="id_a")
        .join(clusters.rename({"id": "id_b", "cluster": "cluster_b"}), on="id_b")
        .filter(pl.col("cluster_a") == pl.col("cluster_b")).select("id_a", "id_b")
    )


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _related_pairs_in_corpus(evaluation: Evaluation) -> int:
    fam = evaluation.family.group_by("family").len()
    return (
        evaluation.related.join(fam.rename({"family": "family_a", "len": "na"}), on="family_a")
        .join(fam.rename({"family": "family_b", "len": "nb"}), on="family_b")
        .select((pl.col("na") * pl.col("nb")).sum()).item()
    )


def run_dedup(evaluation: Evaluation, params: dict[str, Any]) -> tuple[pl.DataFrame, dedup.DedupResult]:
    """Our stage's decisions on the evaluation corpus: (id, duplicate_of) and the full result."""
    result = dedup.deduplicate(evaluation.articles.lazy(), dedup.DedupParams.from_params(params))
    return result.assignment.select("id", "duplicate_of"), result


def with_dedup_params(params: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**params, "dedup": {**params["dedup"], **changes}}


def build_sample_evaluation(workdir: Path, params: dict[str, Any], seeds: tuple[int, ...] = (SEED,)) -> Evaluation:
    """The labelled evaluation (``sample_articles`` + variants) of the first of ``seeds``."""
    return sample_evaluations(workdir, params, seeds[:1])[0]


def sample_evaluations(workdir: Path, params: dict[str, Any], seeds: tuple[int, ...]) -> list[Evaluation]:
    """One labelled evaluation per seed of the variants: the same cleaned base articles
    (ingested and cleaned once), other random variants (other edits, words, teaser cuts)."""
    bases = sample_articles(workdir, params)
    natural = bases.filter(pl.col("group").str.starts_with("cluster")).select("id", "group")
    templated = bases.filter(pl.col("group").str.starts_with("templated:")).select("id", "group", "figures")
    evaluations = []
    for seed in seeds:
        evaluation = build_evaluation(bases.drop("file", "figures"), seed=seed, natural_groups=natural,
                                      negative_groups=templated)
        evaluation.info["groups"] = dict(bases.group_by("group").len().sort("group").iter_rows())
        evaluation.info["seed"] = seed
        evaluations.append(evaluation)
    return evaluations


# The figures a draw is judged on: the worst draw is the lowest of each, but for the merges of
# templated reports with other figures (the highest).
SUMMARY = ("precision", "recall", "pairs_precision", "pairs_recall", "teaser", "teaser+paragraph", "reprint_pairs_recall")


def summary(s: dict[str, Any]) -> dict[str, float]:
    return {**{k: s[k] for k in SUMMARY if k in s}, **s["recall_teasers"],
            "templated_merged": len(s["templated_figures_differ_merged"]), "templated_pairs": s["templated_figures_differ_pairs"],
            "natural_merged": s["natural_reprint_pairs_merged"], "natural_pairs": s["natural_reprint_pairs"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--sweep", action="store_true", help="also score other n-gram sizes and thresholds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[SEED],
                        help="seeds of the variants: one evaluation each (same bases), scored apart, then mean "
                             "and worst (default: %(default)s)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    with tempfile.TemporaryDirectory() as tmp:
        evaluations = sample_evaluations(Path(tmp), params, tuple(args.seeds))
    info = evaluations[0].info
    print(f"evaluation corpus: {evaluations[0].articles.height} articles = {info['bases']} real "
          f"(SaudiNewsNet sample + templated reports + seeds) + {info['variants']} variants (seed {args.seeds[0]}); "
          f"{len(evaluations)} draw(s) of the variants, seeds {args.seeds}")
    settings = [{}]
    if args.sweep:
        settings += [
            {"ngram": n, "threshold": t, "review_min": min(t, 0.3), "permutations": b * r, "bands": b, "rows": r}
            for b, r in ((14, 8), (40, 3)) for n in (3, 4, 5) for t in (0.4, 0.5, 0.6, 0.7)
        ]
    print(f"{'':>5} {'ngram':>5} {'thresh':>6} {'bands':>5}x{'rows':<4} {'P':>6} {'R':>6} {'pairs P':>8} {'pairs R':>8} "
          f"{'teaser':>6} {'t+para':>6} {'2 reprints':>10} {'templ.':>6} {'natural':>10} {'s':>5}  in base's cluster, by edit")
    for change in settings:
        p = with_dedup_params(params, **change)
        d = p["dedup"]
        rows = []
        for evaluation in evaluations:
            started = time.perf_counter()
            s = score(evaluation, run_dedup(evaluation, p)[0])
            rows.append(summary(s))
            _print_row(str(evaluation.info["seed"] % 100000), d, rows[-1], time.perf_counter() - started,
                       f"{s['recall_by_edit']}" + ("  <- params.yaml" if not change else ""))
        if len(rows) > 1:
            keys = rows[0].keys()
            mean = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
            worst = {k: (max if k in ("templated_merged", "natural_merged") else min)(r[k] for r in rows) for k in keys}
            _print_row("mean", d, mean, None, "")
            _print_row("worst", d, worst, None, "")
    print("teaser / t+para: recall of teasers (first 50-70 %), and of teasers with a paragraph added or dropped; "
          "2 reprints: pairs of two variants of one base in one cluster; templ.: templated reports whose "
          "figures differ merged / pairs; natural: pairs of natural reprints merged / pairs (not scored)")
    return 0


def _print_row(label: str, d: dict[str, Any], s: dict[str, float], seconds: float | None, tail: str) -> None:
    print(f"{label:>5} {d['ngram']:>5} {d['threshold']:>6} {d['bands']:>5}x{d['rows']:<4} {s['precision']:>6.3f} "
          f"{s['recall']:>6.3f} {s['pairs_precision']:>8.3f} {s['pairs_recall']:>8.3f} {s['teaser']:>6.3f} "
          f"{s['teaser+paragraph']:>6.3f} {s['reprint_pairs_recall']:>10.3f} "
          f"{s['templated_merged']:>2g}/{s['templated_pairs']:<3g} {s['natural_merged']:>5g}/{s['natural_pairs']:<4g} "
          f"{'' if seconds is None else f'{seconds:.1f}':>5}  {tail}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
