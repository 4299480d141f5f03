"""Access to ``params.yaml``, the single place for every path, threshold and list.

Stage code reads the YAML directly (pyyaml, ~0.04 s) rather than through
``dvc.api.params_show()`` (~0.7 s); DVC still tracks the same keys through ``dvc.yaml``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PARAMS = Path("params.yaml")
# libyaml's parser (in PyYAML's wheels): the same values as pyyaml's Python one, about 10x
# less CPU (0.002 against 0.019 s for params.yaml, read several times by each command).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: Any) -> Any:
    """``yaml.safe_load`` of a string or a file, with libyaml's parser."""
    return yaml.load(text, Loader=_LOADER)


class ParamsError(ValueError):
    """params.yaml is missing a key or holds a value of the wrong kind."""


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the repository root or pass --params")
    try:
        with path.open(encoding="utf-8") as handle:
            params = parse_yaml(handle)
    except yaml.YAMLError as error:
        raise ParamsError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(params, dict):
        raise ParamsError(f"{path} must hold a mapping at the top level")
    return params


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    """One top-level section of params.yaml, e.g. ``section(params, "quality")``."""
    try:
        value = params[name]
    except KeyError:
        raise ParamsError(f"params.yaml has no '{name}' section") from None
    if not isinstance(value, dict):
        raise ParamsError(f"params.yaml '{name}' must be a mapping")
    return value


def path_of(params: dict[str, Any], name: str) -> Path:
    """A path from the ``paths`` section (relative to the repository root)."""
    paths = section(params, "paths")
    if name not in paths:
        raise ParamsError(f"params.yaml 'paths' has no '{name}' entry")
    return Path(paths[name])


def with_list_item(text: str, section_name: str, key: str, item: str) -> str:
    """params.yaml ``text`` with ``item`` appended to the list ``section_name.key``, every
    other line (comments included) as it was. The list must be written on one line
    (``key: [a, b]``), as params.yaml writes it; an item already listed is not repeated."""
    listed = section(parse_yaml(text), section_name).get(key)
    if not isinstance(listed, list):
        raise ParamsError(f"params.yaml '{section_name}.{key}' must be a list")
    if item in listed:
        return text
    # Quoted when plain YAML would read it as something else (2026, 1.0, yes, null).
    written = item if parse_yaml(item) == item else json.dumps(item)
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == f"{section_name}:"), None)
    flow_list = re.compile(rf"^(\s+{re.escape(key)}:\s*\[)([^\]]*)(\].*)$", re.DOTALL)
    for i in range(start + 1 if start is not None else len(lines), len(lines)):
        if lines[i][:1] not in (" ", "\t", "\n", "#"):
            break  # the next top-level key: the section has no one-line list `key`
        if match := flow_list.match(lines[i]):
            head, items, tail = match.groups()
            lines[i] = f"{head}{items.rstrip()}{', ' if items.strip() else ''}{written}{tail}"
            updated = "".join(lines)
            if section(parse_yaml(updated), section_name).get(key) != [*listed, item]:
                break
            return updated
    raise ParamsError(f"cannot add '{item}' to params.yaml '{section_name}.{key}': write that list on one line, "
                      f"as `{key}: [{', '.join(map(str, listed))}]`")


def drop_order(params: dict[str, Any]) -> list[str]:
    """``split.drop_order``: the drops in the order they arrived (stages run drop by drop in it)."""
    return [str(drop) for drop in section(params, "split").get("drop_order") or []]
