"""The dataset card: ``dataset_card.md`` (a Jinja2 template at the repository root)
rendered with the figures of the run, and merged with the card already on the Hub.

The YAML header is what the Hub and ``datasets`` read: ``configs`` (one config,
``default``, with ``data_files`` per split), ``dataset_info`` (features and split
sizes), licence, language, task categories, size category, pretty name and tags.

Merging with the card on the Hub keeps what people added there:

* metadata keys the pipeline does not write are kept as they are; ``configs`` and
  ``dataset_info`` are merged by ``config_name`` (other configs stay, keys added inside
  the ``default`` entries stay); ``tags`` are the union;
* a ``##`` section whose heading is not in the template is kept, after the section it
  followed on the Hub. Sections of the template are regenerated on every release: edit
  ``dataset_card.md`` in the repository for those.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import markupsafe
import yaml

DEFAULT_CONFIG = "default"
_FENCE = re.compile(r"^(```|~~~)")


# ------------------------------------------------------------------------- rendering


def thousands(value: int | float) -> str:
    return f"{value:,.0f}" if isinstance(value, float) else f"{value:,}"


def human_bytes(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 outlet', '12 outlets', '1,204 articles'."""
    return f"{thousands(n)} {noun if n == 1 else plural or noun + 's'}"


def size_category(n: int) -> str:
    """The Hub's size_categories value for `n` rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    return next((label for bound, label in bounds if n < bound), "1B<n<10B")


# Markdown (and the HTML it may carry) that a value from the data must not turn into:
# tags and entities, table cells (`|`), code spans, links, escapes; a line break ends a
# table row or a list item, so it becomes a space.
_MARKDOWN_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;", "`": "&#96;", "[": "&#91;",
                                "]": "&#93;", "\\": "&#92;", "\n": " ", "\r": " "})


def markdown_text(value: Any) -> Any:
    """Every value the template prints, as literal text in Markdown (Jinja's `finalize`):
    what comes from a drop (titles, outlets, drop names, provenance) can neither add markup
    nor break a table. Markup (from the filters below) is printed as it is."""
    if isinstance(value, markupsafe.Markup) or value is None:
        return value
    return markupsafe.Markup(str(value).translate(_MARKDOWN_TEXT))


def code(value: Any) -> markupsafe.Markup:
    """An inline code span holding `value` literally, also inside a table cell."""
    text = " ".join(str(value).splitlines()).replace("|", "\\|")
    fence = "`" * (1 + max((len(run) for run in re.findall("`+", text)), default=0))
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return markupsafe.Markup(f"{fence}{padding}{text}{padding}{fence}")


def fenced(value: Any, language: str = "") -> markupsafe.Markup:
    """A fenced code block holding `value` literally (its fence longer than any run of
    backticks in it)."""
    text = str(value).rstrip("\n")
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", text)), default=0))
    return markupsafe.Markup(f"{fence}{language}\n{text}\n{fence}")


def link_target(url: Any) -> markupsafe.Markup | None:
    """`url` as a Markdown link destination, or None when it is not a web address (so the
    template shows no link: no `javascript:`, nothing that breaks out of the parentheses)."""
    if not isinstance(url, str) or not re.match(r"https?://", url):
        return None
    return markupsafe.Markup(quote(url, safe=":/?#@!$&*+,;=%~-._"))


def render_card(template_path: str | Path, metadata: dict[str, Any], context: dict[str, Any]) -> str:
    """The card: YAML header from `metadata`, body from the template with `context`. Every
    printed value is escaped for Markdown (markdown_text), unless a filter made it markup."""
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
        autoescape=True, finalize=markdown_text,
    )
    environment.filters.update(thousands=thousands, bytes=human_bytes, percent=percent, counted=counted,
                               code=code, fenced=fenced, link_target=link_target)
    template = environment.from_string(Path(template_path).read_text(encoding="utf-8"))
    return template.render(card_data=markupsafe.Markup(dump_metadata(metadata)), **context)


def dump_metadata(metadata: dict[str, Any]) -> str:
    return yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True, width=120).rstrip("\n")


def split_card(text: str) -> tuple[dict[str, Any], str]:
    """(metadata, body) of a card; empty metadata when it has no YAML header."""
    # The Hub's own reading of a card (imported here: huggingface_hub costs ~0.8 s to load).
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    match = REGEX_YAML_BLOCK.search(text)
    if not match:
        return {}, text
    metadata = yaml.safe_load(match.group(2)) or {}
    if not isinstance(metadata, dict):
        raise ValueError("the card's YAML header is not a mapping")
    return metadata, text[match.end():]


# ------------------------------------------------------------------------- merging


def merge_card(ours: str, existing: str | None) -> str:
    """Our freshly rendered card, keeping what was added to `existing` on the Hub."""
    if not existing:
        return ours
    our_metadata, our_body = split_card(ours)
    their_metadata, their_body = split_card(existing)
    metadata = merge_metadata(our_metadata, their_metadata)
    return f"---\n{dump_metadata(metadata)}\n---\n{merge_body(our_body, their_body)}"


def merge_metadata(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    merged = dict(theirs)  # their keys, in their order; ours replace or join them
    for key, value in ours.items():
        if key in ("configs", "dataset_info") and key in theirs:
            merged[key] = _merge_configs(value, theirs[key])
        elif key == "tags" and isinstance(theirs.get(key), list):
            merged[key] = list(dict.fromkeys([*theirs[key], *value]))
        else:
            merged[key] = value
    return merged


def _merge_configs(ours: dict | list, theirs: dict | list) -> dict | list:
    """Merge per-config entries by config_name; a lone default entry stays a mapping."""

    def entries(value: dict | list) -> list[dict]:
        return [value] if isinstance(value, dict) else list(value or [])

    def name(entry: dict) -> str:
        return entry.get("config_name", DEFAULT_CONFIG)

    our_entries = {name(e): e for e in entries(ours)}
    merged = [(e | our_entries.pop(name(e))) if name(e) in our_entries else e for e in entries(theirs)]
    merged += our_entries.values()
    if isinstance(ours, dict) and len(merged) == 1:
        return merged[0]
    return [e if "config_name" in e else {"config_name": DEFAULT_CONFIG, **e} for e in merged]


def sections(body: str) -> tuple[str, list[tuple[str, str]]]:
    """(text before the first '## ' heading, [(heading, section text)]). Headings inside
    fenced code blocks are text."""
    preamble: list[str] = []
    found: list[tuple[str, list[str]]] = []
    fenced = False
    for line in body.splitlines(keepends=True):
        if _FENCE.match(line.strip()):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            found.append((line[3:].strip(), [line]))
        elif found:
            found[-1][1].append(line)
        else:
            preamble.append(line)
    return "".join(preamble), [(heading, "".join(lines)) for heading, lines in found]


def merge_body(ours: str, theirs: str) -> str:
    """Our body, with their sections that the template does not have kept in place."""
    our_preamble, our_sections = sections(ours)
    _, their_sections = sections(theirs)
    our_headings = {heading for heading, _ in our_sections}
    kept_after: dict[str | None, list[str]] = {}
    anchor = None
    for heading, text in their_sections:
        if heading in our_headings:
            anchor = heading
        else:
            kept_after.setdefault(anchor, []).append(_ending_with_blank_line(text))
    parts = [our_preamble, *kept_after.get(None, [])]
    for heading, text in our_sections:
        parts.append(_ending_with_blank_line(text) if heading in kept_after else text)
        parts.extend(kept_after.get(heading, []))
    return "".join(parts).rstrip("\n") + "\n"


def _ending_with_blank_line(text: str) -> str:
    return text.rstrip("\n") + "\n\n"
