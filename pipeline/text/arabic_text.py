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
import unicodedata
from functools import partial

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
NON_LETTER = r"\P{L}"
NON_ARABIC_LETTER = r"[\p{L}&&\P{Arabic}]"
# Characters NFKC leaves as they are whatever stands around them (normalised, combining
# class 0, never the second half of a composition): ASCII, the Arabic block but its marks
# and compatibility letters, Latin-1 and general punctuation but their compatibility
# forms. And Arabic marks (harakat, Quranic marks) NFKC leaves alone but for their order
# (normalised, no part of a composition; marks in a row are sorted by combining class).
# tests/test_arabic_text.py derives both lists from unicodedata. A text of these only,
# its marks in order, is its own NFKC form, so ``nfkc`` normalises just the other texts:
# NFKC was the costliest step of cleaning and keying Arabic news, of which nearly every
# text needs nothing.
NFKC_STABLE = (
    r"[\x{0000}-\x{007F}\x{00A1}-\x{00A7}\x{00A9}\x{00AB}-\x{00AE}\x{00B0}-\x{00B1}\x{00B6}-\x{00B7}\x{00BB}"
    r"\x{00BF}-\x{00FF}\x{0600}-\x{060F}\x{061B}-\x{064A}\x{0660}-\x{066F}\x{0671}-\x{0674}\x{0679}-\x{06D5}"
    r"\x{06DD}-\x{06DE}\x{06E5}-\x{06E6}\x{06E9}\x{06EE}-\x{06FF}\x{2010}\x{2012}-\x{2016}\x{2018}-\x{2023}"
    r"\x{2027}-\x{202E}\x{2030}-\x{2032}\x{2035}\x{2038}-\x{203B}\x{203D}\x{203F}-\x{2046}\x{204A}-\x{2056}"
    r"\x{2058}-\x{205E}\x{2060}-\x{2064}\x{2066}-\x{206F}]"
)
_NFKC_LONE_MARKS = [chr(code) for low, high in ((0x0610, 0x061A), (0x064B, 0x0652), (0x0656, 0x065F), (0x0670, 0x0670),
                                                   (0x06D6, 0x06DC), (0x06DF, 0x06E4), (0x06E7, 0x06E8), (0x06EA, 0x06ED))
                    for code in range(low, high + 1)]
NFKC_LONE_MARKS = "[" + "".join(_NFKC_LONE_MARKS) + "]"
# Two of those marks out of NFKC's order (by combining class), which it would swap.
_MARKS_OUT_OF_ORDER = "|".join(
    "[{}][{}]".format("".join(m for m in _NFKC_LONE_MARKS if unicodedata.combining(m) == order),
                      "".join(m for m in _NFKC_LONE_MARKS if unicodedata.combining(m) < order))
    for order in sorted({unicodedata.combining(m) for m in _NFKC_LONE_MARKS})[1:]
)
# What NFKC may change: a character of neither list, or two of those marks out of order.
NFKC_MAY_CHANGE = f"[^{NFKC_STABLE[1:-1]}{NFKC_LONE_MARKS[1:-1]}]|{_MARKS_OUT_OF_ORDER}"
# Characters lowercasing leaves as they are, whatever surrounds them: ASCII but A-Z,
# Latin-1's punctuation (« ») and lowercase letters, the Arabic block, general punctuation.
# ``lowercase`` skips texts of these only.
CASELESS = (
    r"[\x{0000}-\x{0040}\x{005B}-\x{007F}\x{0080}-\x{00BF}\x{00D7}\x{00DF}-\x{00FF}\x{0600}-\x{06FF}"
    r"\x{2000}-\x{206F}]"
)
HAS_CASE = f"[^{CASELESS[1:]}"


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


def _where_needed(texts: pl.Series, may_change: str, change) -> pl.Series:
    """``change(texts)`` for the (few) texts where the regex `may_change` finds what it may
    change; the others untouched."""
    rows = texts.str.contains(may_change).fill_null(False).arg_true()
    if rows.len() == 0:
        return texts
    return texts.scatter(rows, change(texts.gather(rows)))


def _nfkc_of(texts: pl.Series) -> pl.Series:
    return texts.str.normalize("NFKC")


def _lowercase_of(texts: pl.Series) -> pl.Series:
    return texts.str.to_lowercase()


def nfkc(text: pl.Expr) -> pl.Expr:
    """``str.normalize("NFKC")``, computed only for the texts it can change."""
    return text.map_batches(partial(_where_needed, may_change=NFKC_MAY_CHANGE, change=_nfkc_of),
                            return_dtype=pl.String, is_elementwise=True)


def lowercase(text: pl.Expr) -> pl.Expr:
    """``str.to_lowercase``, computed only for the texts it can change (Arabic has no case)."""
    return text.map_batches(partial(_where_needed, may_change=HAS_CASE, change=_lowercase_of),
                            return_dtype=pl.String, is_elementwise=True)


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
        .pipe(nfkc)  # presentation forms -> letters, NBSP -> space
        .str.replace_all("\r\n?", "\n")
        # Invisible marks, control characters and tatweel out, in one pass (one class).
        .str.replace_all(f"[{INVISIBLE_MARKS[1:-1]}{CONTROL_CHARS[1:-1]}{TATWEEL}]", "")
        # Any run of horizontal whitespace -> one space; a lone space, most matches by
        # far, is left as it is (the same result, a third of the time).
        .str.replace_all(r"[^\S\n]{2,}|[^\S\n ]", " ")
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
        lowercase(folded_text)
        # Punctuation, symbols, whitespace -> a space (a lone space, most matches, stays as it is).
        .str.replace_all(r"[^\p{L}\p{N}]{2,}|[^\p{L}\p{N} ]", " ")
        .str.strip_chars(" ")
    )


def folded(text: pl.Expr) -> pl.Expr:
    """``match_key`` short of its last steps: letters and digits folded, but case,
    punctuation and spacing as they were (for boilerplate patterns that need a colon)."""
    return (
        nfkc(text)
        # Invisible marks, Arabic diacritics, the marks left after NFKC (other scripts'
        # accents) and tatweel out, in one pass (one class).
        .str.replace_all(f"[{INVISIBLE_MARKS[1:-1]}{ARABIC_DIACRITICS[1:-1]}\\p{{M}}{TATWEEL}]", "")
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
    return text.map_batches(_arabic_ratio, return_dtype=pl.Float64, is_elementwise=True)


def _arabic_ratio(texts: pl.Series) -> pl.Series:
    # Counted by what is rarer (one regex match a character counted): letters are the
    # characters less the non-letters, Arabic ones the letters less the others.
    letters = texts.str.len_chars() - texts.str.count_matches(NON_LETTER)
    arabic = letters - texts.str.count_matches(NON_ARABIC_LETTER)
    return pl.select(pl.when(letters > 0).then(arabic / letters).otherwise(0.0).cast(pl.Float64)).to_series()


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
