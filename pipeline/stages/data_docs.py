"""Data Docs as a person can open them anywhere: no live markup from data, no CDN.

GX renders result values into its HTML as they are, so a title holding ``<script>`` would
run in the reader's browser: `result_for_docs` hands GX results whose every string is
HTML-escaped, with failing values as excerpts and the originals of derived values beside
them. GX's page templates load Bootstrap, jQuery, Font Awesome and Vega from CDNs, which
an offline machine cannot reach: `finish_site` copies the same versions from
web_assets/ (npm, installed by `make install`) into the site and points the pages at them.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.plumbing.progress import log

NODE_MODULES = Path(__file__).resolve().parents[2] / "web_assets" / "node_modules"
VENDOR_DIR = "static/vendor"  # in the site, beside GX's own static/
# Each address GX's templates load -> the same file (same version) in web_assets/node_modules.
CDN_FILES = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js/dist/umd/popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table/dist/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/dist/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table-1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
}
FONT_FILES = "@fortawesome/fontawesome-free/webfonts"  # what all.min.css loads (../webfonts/)
# GX's logo, fetched from a bucket with the run time and context id in the query: GX ships it too.
REMOTE_LOGO = re.compile(r"https://great-expectations-web-assets\.s3\.[^\"']*?/logo-long\.png[^\"']*")
LOCAL_LOGO = "static/images/logo-long.png"
# GX's table cells; dir=auto: a cell takes the direction of its text, an Arabic value reads
# (and is aligned) right to left.
CELL = 'class="show-scrollbars"'
CELL_IN_ITS_DIRECTION = 'class="show-scrollbars" dir="auto"'
CELL_STYLE = "<style>.show-scrollbars[dir=auto] { text-align: start; }</style>"  # not GX's inherited left


def result_for_docs(result: dict[str, Any], column: str | None, shown: list[dict[str, str]]) -> dict[str, Any]:
    """A GX expectation result as Data Docs should render it: the failing values replaced by
    the `shown` excerpts (id, value, original of a derived value: a column each in the
    table) and every string HTML-escaped."""
    result = dict(result)
    if shown and column and column != "id":
        values = [example[column] for example in shown]
        result["partial_unexpected_list"] = values
        result["partial_unexpected_counts"] = [{"value": v, "count": n} for v, n in Counter(values).items()]
        result["partial_unexpected_index_list"] = result["unexpected_index_list"] = shown
        result["unexpected_index_column_names"] = [name for name in shown[0] if name != column]
    return escaped(result)


def escaped(value: Any) -> Any:
    """Every string in `value` (nested dicts and lists) HTML-escaped."""
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, dict):
        return {key: escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [escaped(item) for item in value]
    return value


def finish_site(site: Path, node_modules: Path = NODE_MODULES) -> None:
    """Point every page of the Data Docs `site` at local copies of what it loads from CDNs,
    and set each table cell in the direction of its text."""
    local = node_modules.is_dir()
    if local:
        copy_assets(node_modules, site / VENDOR_DIR)
    else:
        log("data docs", f"{node_modules} missing (run `make install`): the Data Docs pages need the network for styles")
    for page in site.rglob("*.html"):
        text = original = page.read_text(encoding="utf-8")
        if local:
            to_site = Path(os.path.relpath(site, page.parent)).as_posix()
            for address, relative in CDN_FILES.items():
                text = text.replace(f'"{address}"', f'"{to_site}/{VENDOR_DIR}/{relative}"')
            text = REMOTE_LOGO.sub(f"{to_site}/{LOCAL_LOGO}", text)
        if CELL_IN_ITS_DIRECTION not in text:
            text = text.replace(CELL, CELL_IN_ITS_DIRECTION).replace("</head>", f"{CELL_STYLE}\n</head>", 1)
        if text != original:
            page.write_text(text, encoding="utf-8")


def copy_assets(node_modules: Path, vendor: Path) -> None:
    """The files of `CDN_FILES` (and the fonts they load) from `node_modules` to `vendor`, once."""
    for relative in [*CDN_FILES.values(), FONT_FILES]:
        source, target = node_modules / relative, vendor / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copyfile)(source, target)
