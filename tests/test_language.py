"""Language identification: Arabic, its dialects included, against the other languages
written in Arabic script (samples in benchmarks/language_samples.yaml)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from pipeline.plumbing.params import load_params, section
from pipeline.text.language import LanguageIdentifier

REPO = Path(__file__).resolve().parents[1]
SAMPLES = yaml.safe_load((REPO / "benchmarks" / "language_samples.yaml").read_text(encoding="utf-8"))
IDENTIFIER = LanguageIdentifier.from_params(section(load_params(REPO / "params.yaml"), "quality"))
# Decided by the letters only they write (params quality.language_letters): lid.176 calls
# them Arabic (it knows Malay only in Latin script), so they have no score.
BY_LETTERS = {"ms-arab"}


def expected_code(language: str) -> str:
    return "ar" if language.startswith("ar-") else language.split("-")[0]


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_an_article_in_each_language_is_identified(language):
    languages, scores = IDENTIFIER.identify([" ".join(SAMPLES[language])])
    assert languages == [expected_code(language)]
    assert scores == [None] if language in BY_LETTERS else 0.5 < scores[0] <= 1


def test_no_sentence_of_another_arabic_script_language_is_called_arabic():
    """Sentence by sentence (a short article): lid.176 alone called two of the three
    Sindhi sentences and every Jawi one Arabic."""
    for language, sentences in SAMPLES.items():
        if not language.startswith("ar-"):
            assert IDENTIFIER.identify(sentences)[0] == [expected_code(language)] * len(sentences), language


def test_a_foreign_name_in_its_own_letters_leaves_an_arabic_article_arabic():
    # "Singapore" and "Bangladesh" as Jawi and Sindhi write them, in an Arabic news article.
    article = ("استقبل وزير الخارجية اليوم نظيره القادم من سيڠاڤورا وبحث معه سبل تعزيز التعاون الاقتصادي "
               "والتجاري بين البلدين، كما ناقش الجانبان الأوضاع في بنگلاديش وڪراچي ومستجدات المنطقة.")
    languages, scores = IDENTIFIER.identify([article])
    assert languages == ["ar"] and scores[0] > 0.5


def test_dialect_sentences_stay_arabic_one_by_one():
    sentences = [s for language, texts in SAMPLES.items() if language.startswith("ar-") for s in texts]
    assert IDENTIFIER.identify(sentences)[0] == ["ar"] * len(sentences)


def test_a_text_without_words_is_undetermined():
    assert IDENTIFIER.identify(["", None, " \n "]) == (["und"] * 3, [0.0] * 3)


def test_the_model_reads_only_the_texts_that_need_it():
    texts = {
        "ar-gulf": " ".join(SAMPLES["ar-gulf"]),  # Arabic alphabet alone: Arabic, no model
        "fa": " ".join(SAMPLES["fa"]),  # Persian letters: the model
        "en": "The government announced a new plan to support farmers in rural areas next year.",
        "ar-with-a-name": "زار وفد من شركة گوگل الرياض اليوم، وأعلن عن افتتاح مكتب إقليمي جديد في المملكة العام المقبل.",
        "empty": "",
    }
    articles = pl.DataFrame({"text": list(texts.values())}).with_columns(
        arabic_ratio=pl.Series([1.0, 1.0, 0.0, 1.0, 0.0])
    )
    got = IDENTIFIER.with_language(articles, 0.6)
    assert got["language"].to_list() == ["ar", "fa", "en", "ar", "und"]
    scores = got["language_score"].to_list()
    assert scores[0] is None and scores[4] == 0.0 and all(0.5 < s <= 1 for s in scores[1:4])
