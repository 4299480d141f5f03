"""Arabic text normalisation, as Polars expressions (no per-row Python).

Two different normalisations live here, on purpose:

* ``clean_text`` keeps the article faithful: it is what gets published. It folds
  presentation forms (NFKC), drops invisible marks, tatweel, control characters and
  HTML, and normalises whitespace, but keeps diacritics, letter forms and punctuation.
* ``match_key`` is only for matching (dedup, boilerplate lines, duplicate checks). It
  throws away everything that differs between two printings of the same text:
  diacritics, alef/yaa/taa-marbuta forms, digits scripts, punctuation, case.
"""

from __future__ import annotations

import html
import html.entities
import re

import polars as pl

# Characters with no visible form that scrapers carry along: BOM / zero-width no-break
# space, zero-width space, LRM, RLM, Arabic letter mark (ALM), soft hyphen, word joiner
# and the bidi embedding/isolate controls. ZWJ/ZWNJ (U+200C/D) are kept: in Persian and
# Urdu quotations they change how letters join.
INVISIBLE_MARKS = r"[\x{FEFF}\x{200B}\x{200E}\x{200F}\x{061C}\x{00AD}\x{2060}\x{202A}-\x{202E}\x{2066}-\x{2069}]"
TATWEEL = "\u0640"
# C0/C1 control characters except tab and newline (tabs become spaces later).
CONTROL_CHARS = r"[\x00-\x08\x0B-\x1F\x7F-\x9F]"
# Harakat, tanween, shadda, sukun, superscript alef, Quranic annotation marks.
ARABIC_DIACRITICS = r"[\x{064B}-\x{065F}\x{0670}\x{06D6}-\x{06ED}]"

HTML_TAG = r"<[A-Za-z!/?][^<>]*>"
HTML_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
# Elements whose content is code or metadata, never article text.
_ENTITY_NAME = re.compile(r"&([A-Za-z][A-Za-z0-9]{1,31});")
_HTML_NON_TEXT_BLOCKS = r"(?is)<(script|style|head|noscript|template|svg)\b.*?</(?:script|style|head|noscript|template|svg)\s*>|<!--.*?-->"
_HTML_BLOCK_BREAKS = r"(?i)<br\s*/?>|</?(?:p|div|h[1-6]|li|ul|ol|tr|table|article|section|header|footer|blockquote)\b[^<>]*>"

# Letter-form folding for matching (``match_key``), chosen from how outlets actually spell:
# * alef with hamza above/below, madda, wasla (أ إ آ ٱ) -> bare alef: initial hamza is
#   written or dropped at will ("أعلن" / "اعلن").
# * hamza carriers waw and yeh (ؤ ئ) -> hamza on the line (ء): outlets disagree on the
#   seat ("الشؤون" / "الشئون", "المسؤولين" / "المسئولين"; in SaudiNewsNet 3,502 of
#   30,321 such tokens use the minority spelling) and case endings move it
#   ("أبناؤنا" / "أبنائنا" / "أبناءنا"). The price, a handful of distinct words that meet
#   (بئر "well" / بؤر "foci"), is negligible for n-gram matching.
# * alef maqsura and Persian yeh (ى ی) -> yeh; taa marbuta (ة) -> haa; keheh (ک) -> kaf.
_LETTER_FOLDS = {
    "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا",
    "ؤ": "ء", "ئ": "ء",
    "ى": "ي", "ی": "ي", "ة": "ه", "ک": "ك",
}
_DIGIT_FOLDS = {chr(0x0660 + d): str(d) for d in range(10)} | {chr(0x06F0 + d): str(d) for d in range(10)}
_FOLD_FROM = list(_LETTER_FOLDS) + list(_DIGIT_FOLDS)
_FOLD_TO = list(_LETTER_FOLDS.values()) + list(_DIGIT_FOLDS.values())

# A word: a run of letters, digits and combining marks. Python's ``re`` ``\w``/``\W``
# treats Arabic diacritics (category Mn) as non-word characters and would split
# "مُحَمَّد" into pieces; this class keeps a word whole.
WORD = r"[\p{L}\p{N}\p{M}]+"
ARABIC_LETTER = r"[\p{Arabic}&&\p{L}]"
LETTER = r"\p{L}"


def _decode_entities(text: str) -> str:
    """Decode HTML entities once; entity-shaped codes no HTML decoder knows (a CMS's own
    "&S239;") are markup residue and go. A double-escaped "&amp;quot;" decodes to "&quot;"
    and stays, for validation to report the broken export."""
    return _ENTITY_NAME.sub(
        lambda code: code.group(0) if code.group(1) + ";" in html.entities.html5 else "", html.unescape(text)
    )


def _unescape_html_entities(texts: pl.Series) -> pl.Series:
    """Decode HTML entities in the (rare) rows that have any; other rows untouched."""
    has_entity = texts.str.contains(HTML_ENTITY).fill_null(False)
    rows = has_entity.arg_true()
    if rows.len() == 0:
        return texts
    decoded = [_decode_entities(t) for t in texts.gather(rows).to_list()]
    return texts.scatter(rows, decoded)


def strip_html(text: pl.Expr) -> pl.Expr:
    """Turn HTML (if any) into plain text: drop script/style/comments, tags become line
    breaks or nothing, entities are decoded (``_decode_entities``)."""
    return (
        text.str.replace_all(_HTML_NON_TEXT_BLOCKS, "")
        .str.replace_all(_HTML_BLOCK_BREAKS, "\n")
        .str.replace_all(HTML_TAG, "")
        .map_batches(_unescape_html_entities, return_dtype=pl.String, is_elementwise=True)
    )


def clean_text(text: pl.Expr) -> pl.Expr:
    """Faithful cleaning of article text; lines are kept, each stripped, runs of blank
    lines dropped (one paragraph per line)."""
    return (
        strip_html(text)
        .str.normalize("NFKC")  # presentation forms -> letters, NBSP -> space
        .str.replace_all("\r\n?", "\n")
        .str.replace_all(INVISIBLE_MARKS, "")
        .str.replace_all(CONTROL_CHARS, "")
        .str.replace_all(TATWEEL, "", literal=True)
        .str.replace_all(r"[^\S\n]+", " ")  # any horizontal whitespace -> one space
        .str.replace_all(r"(?m)^ +| +$", "")
        .str.replace_all(r"\n{2,}", "\n")
        .str.strip_chars("\n")
    )


def clean_line(text: pl.Expr) -> pl.Expr:
    """``clean_text`` for single-line fields (title, source): newlines become spaces."""
    return clean_text(text).str.replace_all("\n", " ")


def match_key(text: pl.Expr) -> pl.Expr:
    """Normalised key for matching: same words in the same order <=> same key.

    NFKC (presentation forms, NBSP), invisible marks, Arabic diacritics and tatweel out,
    letter forms folded (``_LETTER_FOLDS``), Arabic-Indic and Persian digits -> ASCII,
    combining marks of other scripts dropped, lowercase, every run of punctuation, symbols
    and whitespace -> one space. The result is words separated by single spaces (see ``key_words``).
    """
    return match_key_of_folded(folded(text))


def match_key_of_folded(folded_text: pl.Expr) -> pl.Expr:
    """``match_key`` of a text already ``folded``."""
    return (
        folded_text.str.to_lowercase()
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")  # punctuation, symbols, whitespace -> space
        .str.strip_chars(" ")
    )


def folded(text: pl.Expr) -> pl.Expr:
    """``match_key`` short of its last steps: letters and digits folded, but case,
    punctuation and spacing as they were (for boilerplate patterns that need a colon)."""
    return (
        text.str.normalize("NFKC")
        .str.replace_all(INVISIBLE_MARKS, "")
        .str.replace_all(ARABIC_DIACRITICS, "")
        .str.replace_all(r"\p{M}", "")  # marks left after NFKC (other scripts' accents)
        .str.replace_all(TATWEEL, "", literal=True)
        .str.replace_many(_FOLD_FROM, _FOLD_TO)
    )


def joined_names(key: pl.Expr) -> pl.Expr:
    """A ``match_key`` with the names built on "عبد" written as one word: outlets write
    "عبد العزيز" and "عبدالعزيز", "عبد الله" and "عبدالله" for one name. Dedup compares
    these keys; the other stages keep ``match_key`` itself (their outputs stay the same)."""
    return key.str.replace_all(r"(^| )عبد (ال)", "${1}عبد${2}")


def words(text: pl.Expr) -> pl.Expr:
    """List of words (Unicode-aware: diacritics stay inside their word)."""
    return text.str.extract_all(WORD)


def key_words(key: pl.Expr) -> pl.Expr:
    """Words of a ``match_key``: the key is words joined by single spaces, so splitting
    on the space gives exactly ``words(key)`` at a fraction of the cost."""
    return pl.when(key == "").then(pl.lit([], dtype=pl.List(pl.String))).otherwise(key.str.split(" "))


def word_count(text: pl.Expr) -> pl.Expr:
    return text.str.count_matches(WORD).cast(pl.Int64)


def with_lengths(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """``n_chars`` and ``n_words`` of an article table, (re)computed from ``text``."""
    return frame.with_columns(n_chars=pl.col("text").str.len_chars().cast(pl.Int64), n_words=word_count(pl.col("text")))


def arabic_ratio(text: pl.Expr) -> pl.Expr:
    """Share of letters that are Arabic-script letters (0 when there are no letters)."""
    letters = text.str.count_matches(LETTER)
    return (
        pl.when(letters > 0)
        .then(text.str.count_matches(ARABIC_LETTER) / letters)
        .otherwise(0.0)
        .cast(pl.Float64)
    )


def match_key_of(value: str) -> str:
    """``match_key`` of one Python string (for curated lists and reports)."""
    return pl.select(match_key(pl.lit(value, dtype=pl.String))).item()


def folded_of(value: str) -> str:
    """``folded`` of one Python string."""
    return pl.select(folded(pl.lit(value, dtype=pl.String))).item()


def portable_regex(pattern: str) -> str:
    """One of the patterns above for Python's ``re`` (what Great Expectations runs): the
    Rust-style ``\\x{HHHH}`` escapes Polars understands become the characters themselves."""
    return re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: re.escape(chr(int(m.group(1), 16))), pattern)
