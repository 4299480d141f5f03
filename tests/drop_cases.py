"""Drops for the validation tests, built from real SaudiNewsNet articles.

A bad drop has to get past the clean stage (which quarantines empty, short, non-Arabic
and repetitive articles) and still break an expectation. These are the ways a real
scrape goes wrong that way.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SAUDI_SAMPLE, SEED

from pipeline.stages.ingest import article_id

# Long enough to pass the quality filters, one line, so the repeated-line rule keeps it:
# what a scraper saves for every URL behind a paywall.
PAYWALL = (
    "هذا المحتوى متاح للمشتركين فقط، وللاطلاع على المقال كاملا يرجى تسجيل الدخول إلى حسابك "
    "أو الاشتراك في الخدمة الرقمية للصحيفة والاستفادة من العروض الخاصة بالاشتراك السنوي "
    "والشهري مع إمكانية الوصول إلى الأرشيف الكامل للمقالات والتقارير والتحقيقات الحصرية "
    "المنشورة على موقعنا منذ تأسيسه وحتى اليوم"
)

# The expectations a broken export breaks (suite: description prefix).
BROKEN_EXPORT_FAILURES = {
    "article_rows: published_date, when set, within validate.published_date",
    "article_rows: title is not a boilerplate line (params boilerplate)",
    "article_rows: No HTML entity in text (double-escaped HTML)",
    "article_table: Normalised texts unique (drops: share at least validate.drop_min_unique_text_share)",
}


def sample_records(n: int, min_chars: int = 1500) -> list[dict]:
    """The first `n` long SaudiNewsNet sample articles with distinct texts."""
    records, seen = [], set()
    for path in sorted(SAUDI_SAMPLE.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        content = record.get("content") or ""
        if len(content) >= min_chars and content not in seen:
            seen.add(content)
            records.append(record)
        if len(records) == n:
            return records
    raise AssertionError(f"only {len(records)} sample articles of {min_chars}+ chars")


def unrelated_sample_files(n: int, min_chars: int = 1500) -> list[Path]:
    """`n` SaudiNewsNet sample files of the manifest's "random" group: unrelated articles."""
    manifest = SAUDI_SAMPLE.parent / "sample_manifest.tsv"
    rows = [line.split("\t") for line in manifest.read_text(encoding="utf-8").splitlines()[1:]]
    names = [row[0] for row in rows if row[1] == "random" and int(row[4]) >= min_chars]
    assert len(names) >= n, f"only {len(names)} unrelated sample articles"
    return [SAUDI_SAMPLE / f"{name}.json" for name in names[:n]]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def broken_export(folder: Path) -> dict[str, list[str]]:
    """A CMS export gone wrong; returns the ids of the articles behind each failure."""
    records = sample_records(17)
    for record in records[10:13]:  # the CMS's empty-date default
        record["date_extracted"] = "1970-01-01 00:00:00"
    for record in records[13:15]:  # the scraper took the breadcrumb for the headline
        record["title"] = "الرئيسية"
    for record in records[15:17]:  # quotes escaped twice
        record["content"] = record["content"].replace(" ", " &amp;quot;", 1)
    paywalled = [dict(records[i % 10], content=PAYWALL, url=f"https://example.invalid/{i}") for i in range(12)]
    # Quarantined on the way, as in any real drop: too short, and a file ingest cannot read.
    short = [dict(records[0], content="خبر قصير جدا", url="https://example.invalid/short")]
    write_jsonl(folder / "export.jsonl", records + paywalled + short)
    (folder / "thumbnail.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    ids = [article_id(folder.name, f"export.jsonl#{n}") for n in range(1, len(records) + len(paywalled) + 1)]
    return {"dates": ids[10:13], "titles": ids[13:15], "entities": ids[15:17], "paywalled": ids[17:29]}


def teaser_only(folder: Path) -> None:
    """A feed scrape that kept only each article's lead: long enough to pass the quality
    filters one by one, but the drop's mean length is far below a news corpus's."""
    records = sample_records(12)
    for record in records:
        words = record["content"].split()
        record["content"] = " ".join(words[:40])
    write_jsonl(folder / "feed.jsonl", records)


def seed_copy(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for path in sorted(SEED.iterdir()):
        (folder / path.name).write_bytes(path.read_bytes())
    return folder
