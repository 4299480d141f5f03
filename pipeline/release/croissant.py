"""Croissant metadata (``croissant.json``, MLCommons Croissant 1.1) for a release folder.

Every Parquet shard is a ``cr:FileObject`` (its path or address, SHA-256 and size) read by
a record set of the same name (``train-00000-of-00001``: the articles of that shard of
the train split), whose fields are the Parquet columns. Why not one file set of
``data/*.parquet`` and one record set with the split as a field: mlcroissant lists a file
set only on a local disk (or in a git clone of huggingface.co), so that document does not
load from an address; and it reads the content of named files only one file per record
set.

The build (``dvc repro``) writes paths relative to the folder, so ``build/hub`` loads
locally; the release rewrites them as the addresses of the files of its tag on the Hub
(``<endpoint>/datasets/<repo>/resolve/<tag>/data/...``) and adds the date it was
published, so ``mlcroissant.Dataset("<endpoint>/datasets/<repo>/resolve/<tag>/croissant.json")``
loads it. Written as plain JSON-LD (mlcroissant takes seconds to import; the tests read
both with mlcroissant).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"

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
DATA_TYPES = {"string": "sc:Text", "int64": "cr:Int64", "float64": "cr:Float64", "date32": "sc:Date"}

# SPDX ids of the licences the Hub's `license` metadata uses.
SPDX = {"cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0", "cc-by-4.0": "CC-BY-4.0", "cc-by-sa-4.0": "CC-BY-SA-4.0",
        "cc0-1.0": "CC0-1.0", "apache-2.0": "Apache-2.0", "mit": "MIT", "odc-by": "ODC-By-1.0"}


def croissant(*, name: str, description: str, repo_id: str, version: str, license_id: str,
              keywords: list[str], language: list[str], fields: list[dict[str, str]],
              shards: list[dict[str, Any]], cite_as: str, creators: list[str], contact: str,
              base_url: str | None = None, date_published: str | None = None) -> dict[str, Any]:
    """The Croissant document. `fields`: [{name, dtype, description}] in column order;
    `shards`: [{path, split, sha256, bytes}] in order; `cite_as`: BibTeX; `base_url`: the
    address the shard paths are relative to (None: the folder of croissant.json);
    `date_published`: ISO date of the release (None: not released yet)."""
    spdx = SPDX.get(license_id)
    document = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": name,
        "description": description,
        "url": f"https://huggingface.co/datasets/{repo_id}",
        "version": version,
        "license": f"https://spdx.org/licenses/{spdx}.html" if spdx else license_id,
        "creator": [{"@type": "sc:Organization", "name": creator, "url": contact} for creator in creators],
        "inLanguage": language,
        "keywords": keywords,
        "citeAs": cite_as,
        "distribution": [{
            "@type": "cr:FileObject",
            "@id": shard["path"],
            "name": shard["path"],
            "contentUrl": f"{base_url}/{shard['path']}" if base_url else shard["path"],
            "contentSize": f"{shard['bytes']} B",
            "encodingFormat": "application/x-parquet",
            "sha256": shard["sha256"],
        } for shard in shards],
        "recordSet": [{
            "@type": "cr:RecordSet",
            "@id": record_set(shard["path"]),
            "name": record_set(shard["path"]),
            "description": f"Articles of the {shard['split']} split, those in {shard['path']}.",
            "key": {"@id": f"{record_set(shard['path'])}/id"},
            "field": [_column_field(shard["path"], field) for field in fields],
        } for shard in shards],
    }
    if date_published:
        document["datePublished"] = date_published
    return document


def record_set(shard_path: str) -> str:
    """The record set of a shard: its file name without the suffix (train-00000-of-00001)."""
    return PurePosixPath(shard_path).stem


def _column_field(shard_path: str, field: dict[str, str]) -> dict[str, Any]:
    return {
        "@type": "cr:Field",
        "@id": f"{record_set(shard_path)}/{field['name']}",
        "name": field["name"],
        "description": field["description"],
        "dataType": DATA_TYPES[field["dtype"]],
        "source": {"fileObject": {"@id": shard_path}, "extract": {"column": field["name"]}},
    }
