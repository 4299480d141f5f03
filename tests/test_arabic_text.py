"""The matching key and word rules of pipeline/text/arabic_text.py, on a table of cases."""

from __future__ import annotations

import re

import polars as pl
import pytest

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
