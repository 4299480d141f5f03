"""Access to ``params.yaml``, the single place for every path, threshold and list.

Stage code reads the YAML directly (pyyaml, ~0.04 s) rather than through
``dvc.api.params_show()`` (~0.7 s); DVC still tracks the same keys through ``dvc.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(ValueError):
    """params.yaml is missing a key or holds a value of the wrong kind."""


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the repository root or pass --params")
    with path.open(encoding="utf-8") as handle:
        params = yaml.safe_load(handle)
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
