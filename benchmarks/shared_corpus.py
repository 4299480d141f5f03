"""Where the shared, read-only corpus samples are (``shared/corpus`` beside the checkout;
its README says what each holds). Tests and benchmarks both read them from here."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def locate() -> Path:
    """$CORPUS_SHARED, else the nearest ``shared/corpus`` beside the checkout or an ancestor."""
    if "CORPUS_SHARED" in os.environ:
        return Path(os.environ["CORPUS_SHARED"]).resolve()
    for folder in REPO.parents:
        if (folder / "shared" / "corpus").is_dir():
            return (folder / "shared" / "corpus").resolve()
    return Path("/work/shared/corpus")


SHARED_CORPUS = locate()
SEED = SHARED_CORPUS / "seed"
SAUDI_SAMPLE = SHARED_CORPUS / "saudinewsnet" / "sample"
SAUDI_MANIFEST = SHARED_CORPUS / "saudinewsnet" / "sample_manifest.tsv"
SAUDI_ZIPS = SHARED_CORPUS / "saudinewsnet" / "zips"
CP1256 = SHARED_CORPUS / "arabic-newspapers-cp1256"
