"""The matching key and word rules of pipeline/text/arabic_text.py, on a table of cases."""

from __future__ import annotations

import json
import random
import re
import unicodedata

import polars as pl
import pytest
from conftest import SAUDI_SAMPLE

from pipeline.text import arabic_text

# (what differs, text, expected key)
MATCH_KEY_CASES = [
    ("diacritics out", "مُحَمَّدٌ رَسُولُ", "محمد رسول"),
    ("shadda and tanween out", "إنَّ قراراً", "ان قرارا"),
    ("tatweel out", "الســـلام", "السلام"),
    ("alef with hamza above", "أعلن", "اعلن"),
    ("alef with hamza below", "إعلان", "اعلان"),
    ("alef with madda", "آلاف", "الاف"),
    ("alef wasla", "ٱلكتاب", "الكتاب"),
    ("hamza on waw", "الشؤون المسؤولين", "الشءون المسءولين"),
    ("hamza on yeh", "الشئون المسئولين", "الشءون المسءولين"),
    ("hamza on the line stays", "جزء شيء", "جزء شيء"),
    ("alef maqsura", "مستشفى على", "مستشفي علي"),
    ("Persian yeh and keheh", "ایران کتاب", "ايران كتاب"),
    ("taa marbuta", "المملكة العربية", "المملكه العربيه"),
    ("Arabic-Indic digits", "عام ٢٠١٥", "عام 2015"),
    ("Persian digits", "۱۲۳", "123"),
    ("Arabic punctuation", "قال، ثم سأل؟ «نعم»؛ لا.", "قال ثم سال نعم لا"),
    ("Latin lowercased", "SPA Reuters", "spa reuters"),
    ("combining marks of other scripts", "q\u0301 x\u0301", "q x"),
    ("precomposed Latin letters stay", "Café", "café"),
    ("presentation forms (NFKC)", "\ufefb", "لا"),
    ("invisible marks out", "مرحبا\u200f \u200eبكم\ufeff", "مرحبا بكم"),
    ("NBSP, tabs and newlines folded", "مرحبا\u00a0\tبكم\nجميعا", "مرحبا بكم جميعا"),
    ("quranic marks out", "الرحيم\u06d6", "الرحيم"),
    ("nothing but punctuation", " ... ، ! ", ""),
]


@pytest.mark.parametrize("case,text,expected", MATCH_KEY_CASES, ids=[c[0] for c in MATCH_KEY_CASES])
def test_match_key(case, text, expected):
    assert arabic_text.match_key_of(text) == expected


def test_match_key_makes_printings_of_one_text_equal():
    printed = [
        "أعلنت وزارة الصحة، اليوم، عن ٣ حالات جديدة.",
        "اعلنت وزارة الصحة اليوم عن 3 حالات جديده",
        "أَعْلَنَتْ وِزَارَةُ الصِّحَّةِ - اليوم - عن 3 حالاتٍ جديدة!!",
    ]
    assert len({arabic_text.match_key_of(t) for t in printed}) == 1


def test_key_words_are_the_words_of_the_key():
    texts = [t for _, t, _ in MATCH_KEY_CASES] + ["", "كلمة", "a  b"]
    frame = pl.DataFrame({"text": texts}).with_columns(key=arabic_text.match_key(pl.col("text")))
    got = frame.select(
        split=arabic_text.key_words(pl.col("key")), extracted=arabic_text.words(pl.col("key"))
    )
    assert got["split"].to_list() == got["extracted"].to_list()


def test_words_keep_diacritics_inside_the_word():
    """Python's re `\\W` splits Arabic words at their diacritics (so tools that tokenise
    with it see fragments); the Unicode word rule keeps each word whole."""
    text = "قالَ مُحَمَّدٌ إنَّ الاجتماعَ سيُعقدُ"
    assert [w for w in re.split(r"\W+", text) if w] != text.split(" ")  # the pitfall is real
    words = pl.select(arabic_text.words(pl.lit(text))).item().to_list()
    assert words == text.split(" ")


def test_nfkc_stable_characters_are_left_alone_by_nfkc_whatever_surrounds_them():
    """``NFKC_STABLE`` and ``NFKC_LONE_MARKS`` let ``nfkc`` skip a text made of these
    characters only (its marks in order): each must be its own NFKC form, of combining
    class 0 and never the second half of a canonical composition (then no neighbour can
    change it); a mark must be no part of a composition. Derived from unicodedata."""
    pairs = [d.split() for d in map(unicodedata.decomposition, map(chr, range(0x110000)))
             if d and not d.startswith("<") and len(d.split()) == 2]
    first_halves, second_halves = {chr(int(a, 16)) for a, _ in pairs}, {chr(int(b, 16)) for _, b in pairs}
    stable = re.compile(arabic_text.portable_regex(arabic_text.NFKC_STABLE))
    members = [chr(code) for code in range(0x3000) if stable.fullmatch(chr(code))]
    assert len(members) > 400  # ASCII, Arabic, Latin-1 and punctuation
    unsafe = [f"U+{ord(c):04X}" for c in members if unicodedata.normalize("NFKC", c) != c
              or unicodedata.combining(c) or c in second_halves or unicodedata.category(c).startswith("M")]
    assert unsafe == []

    lone_marks = re.compile(arabic_text.portable_regex(arabic_text.NFKC_LONE_MARKS))
    marks = [chr(code) for code in range(0x3000) if lone_marks.fullmatch(chr(code))]
    assert len(marks) > 40  # harakat, tanween, shadda, sukun, Quranic marks
    assert [f"U+{ord(c):04X}" for c in marks if unicodedata.normalize("NFKC", c) != c or not unicodedata.combining(c)
            or c in second_halves or c in first_halves] == []


def test_caseless_characters_have_no_case():
    """``CASELESS`` lets ``lowercase`` skip a text of these characters only."""
    caseless = re.compile(arabic_text.portable_regex(arabic_text.CASELESS))
    members = [chr(code) for code in range(0x3000) if caseless.fullmatch(chr(code))]
    assert len(members) > 300
    assert [f"U+{ord(c):04X}" for c in members if c.lower() != c] == []


def _texts_to_normalise() -> list[str | None]:
    """Real article texts (SaudiNewsNet sample) and seeded random strings of the characters
    the shortcuts of arabic_text must get right: presentation forms and ligatures, combining
    marks (Arabic and other scripts, out of order), Hangul jamo, compatibility spaces and
    punctuation, tabs, CR, NBSP, invisible marks, tatweel, Greek capital sigma, dotted I."""
    texts: list[str | None] = []
    for path in sorted(SAUDI_SAMPLE.glob("*.json"))[:150]:
        record = json.loads(path.read_text(encoding="utf-8"))
        texts += [record.get("content"), record.get("title")]
    ranges = [(0x20, 0x250), (0x300, 0x370), (0x600, 0x700), (0x750, 0x780), (0x0900, 0x0980), (0x1100, 0x1200),
              (0x2000, 0x2070), (0xAC00, 0xAC40), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)]
    pool = [chr(c) for low, high in ranges for c in range(low, high)]
    pool += ["\n", "\r", "\t", "\r\n", " ", "  ", "\u00a0", "\u200b", "\u0640", "\u0130", "\u03a3", "<p>", "&amp;"]
    rng = random.Random(7)
    texts += ["".join(rng.choice(pool) for _ in range(rng.randint(0, 30))) for _ in range(4000)]
    # Shadda before and after fatha (NFKC puts fatha first), and alef with hamza above as two characters.
    return [*texts, "محمَّد محمّـَد", "مُحمَّد", "ا\u0654علن", None, ""]


def test_shortcuts_give_what_the_plain_steps_give():
    """``nfkc``, ``lowercase``, the one-pass removals, the whitespace and punctuation folds
    that leave a lone space alone and ``arabic_ratio``'s counting give what the plain
    formulations give."""
    frame = pl.DataFrame({"text": _texts_to_normalise()}, schema={"text": pl.String})
    text = pl.col("text")
    nfkc = text.str.normalize("NFKC")
    plain_folded = (nfkc.str.replace_all(arabic_text.INVISIBLE_MARKS, "").str.replace_all(arabic_text.ARABIC_DIACRITICS, "")
                    .str.replace_all(r"\p{M}", "").str.replace_all(arabic_text.TATWEEL, "", literal=True)
                    .str.replace_many(arabic_text._FOLD_FROM, arabic_text._FOLD_TO))
    plain_clean = (arabic_text.strip_html(text).str.normalize("NFKC").str.replace_all("\r\n?", "\n")
                   .str.replace_all(arabic_text.INVISIBLE_MARKS, "").str.replace_all(arabic_text.CONTROL_CHARS, "")
                   .str.replace_all(arabic_text.TATWEEL, "", literal=True).str.replace_all(r"[^\S\n]+", " ")
                   .str.replace_all(r"(?m)^ +| +$", "").str.replace_all(r"\n{2,}", "\n").str.strip_chars("\n"))
    letters = text.str.count_matches(r"\p{L}")
    plain_ratio = pl.when(letters > 0).then(text.str.count_matches(r"[\p{Arabic}&&\p{L}]") / letters).otherwise(0.0)
    expected = frame.select(
        nfkc=nfkc, folded=plain_folded, clean=plain_clean, ratio=plain_ratio.cast(pl.Float64),
        key=plain_folded.str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]+", " ").str.strip_chars(" "),
    )
    got = frame.select(
        nfkc=arabic_text.nfkc(text), folded=arabic_text.folded(text), clean=arabic_text.clean_text(text),
        ratio=arabic_text.arabic_ratio(text), key=arabic_text.match_key(text),
    )
    changed = frame.select((nfkc != text).sum()).item()
    assert changed > 1000  # the random strings do need NFKC: the shortcut is exercised
    for column in expected.columns:
        assert got[column].to_list() == expected[column].to_list(), column
