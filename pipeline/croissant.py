"""Croissant metadata (``croissant.json``, MLCommons Croissant 1.1) for a release folder.

It describes the Parquet shards as one file set, a ``splits`` record set (``cr:Split``)
and an ``articles`` record set whose fields read the Parquet columns, with the split
taken from each shard's file name. Paths are relative to the folder, so the same file
serves a local copy and a clone of the Hub repo. Written as plain JSON-LD (mlcroissant
takes seconds to import; the tests check the file with mlcroissant's validator and
read records through it).
"""

from __future__ import annotations

from typing import Any

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
FILE_SET = "parquet-shards"
SPLITS_RECORD_SET = "splits"
RECORDS = "articles"

# The Croissant 1.1 JSON-LD context (the spec's, as mlcroissant emits it).
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "description": {"@container": "@language"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "name": {"@container": "@language"},
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

# Hub feature dtype -> Croissant data type.
DATA_TYPES = {"string": "sc:Text", "int64": "cr:Int64", "date32": "sc:Date"}

# SPDX ids of the licences the Hub's `license` metadata uses.
SPDX = {"cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0", "cc-by-4.0": "CC-BY-4.0", "cc-by-sa-4.0": "CC-BY-SA-4.0",
        "cc0-1.0": "CC0-1.0", "apache-2.0": "Apache-2.0", "mit": "MIT", "odc-by": "ODC-By-1.0"}


def croissant(*, name: str, description: str, repo_id: str, version: str, license_id: str,
              keywords: list[str], language: list[str], fields: list[dict[str, str]],
              splits: list[str], shard_pattern: str, cite_as: str) -> dict[str, Any]:
    """The Croissant document. `fields`: [{name, dtype, description}] in column order;
    `shard_pattern`: a regex over a shard's path whose group 1 is its split;
    `cite_as`: BibTeX."""
    spdx = SPDX.get(license_id)
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": name,
        "description": description,
        "url": f"https://huggingface.co/datasets/{repo_id}",
        "version": version,
        "license": f"https://spdx.org/licenses/{spdx}.html" if spdx else license_id,
        "inLanguage": language,
        "keywords": keywords,
        "citeAs": cite_as,
        "distribution": [{
            "@type": "cr:FileSet",
            "@id": FILE_SET,
            "name": FILE_SET,
            "description": "The Parquet shards of every split, data/{split}-{drop}-NNNNN-of-NNNNN.parquet.",
            "encodingFormat": "application/x-parquet",
            "includes": "data/*.parquet",
        }],
        "recordSet": [
            {
                "@type": "cr:RecordSet",
                "@id": SPLITS_RECORD_SET,
                "name": SPLITS_RECORD_SET,
                "description": "The splits of the dataset.",
                "dataType": "cr:Split",
                "key": {"@id": f"{SPLITS_RECORD_SET}/name"},
                "field": [{"@type": "cr:Field", "@id": f"{SPLITS_RECORD_SET}/name", "name": "name", "dataType": "sc:Text"}],
                "data": [{f"{SPLITS_RECORD_SET}/name": split} for split in splits],
            },
            {
                "@type": "cr:RecordSet",
                "@id": RECORDS,
                "name": RECORDS,
                "description": "One record per article.",
                "key": {"@id": f"{RECORDS}/id"},
                "field": [_split_field(shard_pattern)] + [_column_field(field) for field in fields],
            },
        ],
    }


def _split_field(shard_pattern: str) -> dict[str, Any]:
    return {
        "@type": "cr:Field",
        "@id": f"{RECORDS}/split",
        "name": "split",
        "description": "The split the article belongs to (from its shard's file name).",
        "dataType": ["sc:Text", "cr:Split"],
        "references": {"field": {"@id": f"{SPLITS_RECORD_SET}/name"}},
        "source": {
            "fileSet": {"@id": FILE_SET},
            "extract": {"fileProperty": "fullpath"},
            "transform": {"regex": shard_pattern},
        },
    }


def _column_field(field: dict[str, str]) -> dict[str, Any]:
    return {
        "@type": "cr:Field",
        "@id": f"{RECORDS}/{field['name']}",
        "name": field["name"],
        "description": field["description"],
        "dataType": DATA_TYPES[field["dtype"]],
        "source": {"fileSet": {"@id": FILE_SET}, "extract": {"column": field["name"]}},
    }
