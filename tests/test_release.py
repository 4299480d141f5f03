"""Semantic versions for data: manifests, diffs, the bump a diff requires, and the card merge."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from pipeline.release import card, manifests
from pipeline.release.manifests import check_version, diff_manifests
from pipeline.release.versions import Version, VersionError


def manifest(*rows: tuple[str, str, str]) -> pl.DataFrame:
    """Manifest rows (id, split, content)."""
    return pl.DataFrame(
        [{"id": i, "split": s, "content_sha256": c, "drop": "d", "source_file": f"{i}.txt", "title": f"title {i}"} for i, s, c in rows],
        schema=manifests.MANIFEST_SCHEMA,
    )


V1 = manifest(("a", "train", "h1"), ("b", "train", "h2"), ("c", "test", "h3"))


def test_versions_parse_compare_and_bump():
    assert Version.parse("v1.2.3") == Version.parse("1.2.3") == Version(1, 2, 3)
    assert Version(1, 10, 0) > Version(1, 9, 9)
    assert Version.from_tag("v2.0.0") == Version(2, 0, 0)
    assert Version.from_tag("2.0.0") is None and Version.from_tag("latest") is None
    assert [str(Version(1, 2, 3).bump(k)) for k in ("patch", "minor", "major")] == ["1.2.4", "1.3.0", "2.0.0"]
    assert Version(2, 0, 0).bump_from(Version(1, 9, 0)) == "major"
    assert Version(1, 0, 0).bump_from(Version(1, 0, 0)) is None
    for bad in ("1.0", "01.0.0", "1.0.0-rc1", "x"):
        with pytest.raises(VersionError):
            Version.parse(bad)


@pytest.mark.parametrize(
    "after, counts, required",
    [
        (V1, {"added": 0, "removed": 0, "changed": 0, "moved": 0}, "patch"),
        (pl.concat([V1, manifest(("d", "validation", "h4"))]), {"added": 1, "removed": 0, "changed": 0, "moved": 0}, "minor"),
        (V1.filter(pl.col("id") != "b"), {"added": 0, "removed": 1, "changed": 0, "moved": 0}, "major"),
        (manifest(("a", "train", "h1"), ("b", "train", "EDITED"), ("c", "test", "h3")), {"added": 0, "removed": 0, "changed": 1, "moved": 0}, "major"),
        (manifest(("a", "train", "h1"), ("b", "train", "h2"), ("c", "train", "h3")), {"added": 0, "removed": 0, "changed": 0, "moved": 1}, "major"),
        (manifest(("a", "train", "h1"), ("b", "test", "EDITED"), ("c", "test", "h3"), ("e", "train", "h5")),
         {"added": 1, "removed": 0, "changed": 1, "moved": 1}, "major"),
    ],
    ids=["same", "added", "removed", "edited", "moved", "mixed"],
)
def test_diff_counts_and_required_bump(after, counts, required):
    diff = diff_manifests(V1, after)
    assert diff.counts == counts
    assert diff.required_bump == required


def test_diff_rows_name_each_article_once():
    after = manifest(("a", "train", "h1"), ("b", "test", "EDITED"), ("e", "train", "h5"))
    rows = {r["id"]: r for r in diff_manifests(V1, after).rows.iter_rows(named=True)}
    assert rows.keys() == {"b", "c", "e"}
    assert rows["b"]["change"] == "changed+moved" and (rows["b"]["split_before"], rows["b"]["split"]) == ("train", "test")
    assert rows["c"]["change"] == "removed" and rows["c"]["title"] == "title c"
    assert rows["e"]["change"] == "added" and rows["e"]["split_before"] is None


def test_declared_version_may_overstate_but_never_understate():
    added = diff_manifests(V1, pl.concat([V1, manifest(("d", "train", "h4"))]))
    assert check_version(Version(1, 1, 0), Version(1, 0, 0), added) == "minor"
    assert check_version(Version(2, 0, 0), Version(1, 0, 0), added) == "major"
    with pytest.raises(VersionError, match=r"needs a minor release, at least 1\.1\.0"):
        check_version(Version(1, 0, 1), Version(1, 0, 0), added)
    removed = diff_manifests(V1, V1.head(2))
    with pytest.raises(VersionError, match=r"at least 2\.0\.0"):
        check_version(Version(1, 1, 0), Version(1, 0, 0), removed)
    with pytest.raises(VersionError, match="not greater"):
        check_version(Version(1, 0, 0), Version(1, 0, 0), diff_manifests(V1, V1))
    assert check_version(Version(0, 1, 0), None, None) == "initial"


def test_content_hash_is_stable_and_sees_every_column():
    frame = pl.DataFrame({"id": ["x", "y"], "title": ["ab", "a"], "text": ["c", "bc"], "n": [1, None]})
    first = frame.select(h=manifests.content_sha256(["id", "title", "text", "n"]))["h"].to_list()
    # The netstring framing keeps ("ab", "c") and ("a", "bc") apart; null is not "".
    assert first[0] != first[1]
    empty_or_null = pl.DataFrame({"title": ["", None]}).select(h=manifests.content_sha256(["title"]))["h"]
    assert empty_or_null[0] != empty_or_null[1]
    # The encoding is pinned, not left to a library's text rendering: manifests are
    # compared across releases made years apart.
    assert first == [hashlib.sha256(b"1:x,2:ab,1:c,1:1,").hexdigest(), hashlib.sha256(b"1:y,1:a,2:bc,~,").hexdigest()]


# --------------------------------------------------------------------------- card merge

OURS = """---
license: cc-by-nc-sa-4.0
tags:
- arabic
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
dataset_info:
  features:
  - name: id
    dtype: string
  splits:
  - name: train
    num_examples: 10
---

# Corpus

Intro.

## Summary

10 articles.

```python
## not a heading: a comment in code
```

## Changelog

| 1.1.0 |
"""

THEIRS = """---
license: other
tags:
- news
- arabic
annotations_creators:
- no-annotation
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  sep: ','
- config_name: sample
  data_files: sample/*.parquet
dataset_info:
- config_name: default
  features:
  - name: id
    dtype: string
  splits:
  - name: train
    num_examples: 5
- config_name: sample
  splits:
  - name: train
    num_examples: 2
---

# Corpus (edited title)

## Summary

5 articles.

## Acknowledgements

Thanks to the annotators.

## Changelog

| 1.0.0 |

## Contact

Write to us.
"""


def test_merge_keeps_what_was_added_on_the_hub():
    merged_metadata, body = card.split_card(card.merge_card(OURS, THEIRS))
    assert merged_metadata["license"] == "cc-by-nc-sa-4.0"  # ours wins on keys we write
    assert merged_metadata["annotations_creators"] == ["no-annotation"]  # theirs kept
    assert merged_metadata["tags"] == ["news", "arabic"]
    configs = {c["config_name"]: c for c in merged_metadata["configs"]}
    assert configs["default"]["sep"] == "," and configs["sample"]["data_files"] == "sample/*.parquet"
    infos = {i["config_name"]: i for i in merged_metadata["dataset_info"]}
    assert infos["default"]["splits"][0]["num_examples"] == 10 and infos["sample"]["splits"][0]["num_examples"] == 2
    # Template sections regenerated, hand-written ones kept after the section they followed.
    headings = [h for h, _ in card.sections(body)[1]]
    assert headings == ["Summary", "Acknowledgements", "Changelog", "Contact"]
    assert "10 articles." in body and "5 articles." not in body and "| 1.1.0 |" in body
    assert "Thanks to the annotators." in body and "Write to us." in body
    assert "## not a heading" in body


def test_merge_is_idempotent_and_a_new_card_is_ours():
    once = card.merge_card(OURS, THEIRS)
    assert card.merge_card(OURS, once) == once
    assert card.merge_card(OURS, None) == OURS
    assert card.merge_card(OURS, OURS) == OURS


def test_size_categories_follow_the_hub():
    assert [card.size_category(n) for n in (0, 999, 1_000, 31_000, 2_000_000)] == \
        ["n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]
