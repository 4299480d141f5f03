"""The package layout pipeline/__init__.py describes: parts import only from parts before them
in the data flow, and no module imports itself back through others (lazy imports included)."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A part may import from the parts before it in this order, and from itself.
PARTS = ("commands", "plumbing", "text", "engines", "stages", "release", "drops", "cli")


def _imports(path: Path) -> set[str]:
    """Modules of the pipeline package that `path` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline"):
            for name in [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]:
                if (REPO / Path(*name.split("."))).with_suffix(".py").is_file():
                    found.add(name)
                    break
    return found


def _modules() -> dict[str, set[str]]:
    modules = {}
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = _imports(path)
    return modules


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def test_parts_import_only_parts_upstream_of_them():
    for module, imported in _modules().items():
        if _part(module) == "__init__":
            continue
        for name in imported:
            assert PARTS.index(_part(name)) <= PARTS.index(_part(module)), f"{module} imports {name}, downstream of it"


def test_no_import_cycles():
    modules = _modules()

    def reach(start: str) -> set[str]:
        seen, todo = set(), list(modules[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(modules.get(name, ()))
        return seen

    cycles = [module for module in modules if module in reach(module)]
    assert not cycles, f"modules that import themselves back: {cycles}"


def test_the_layout_is_the_one_documented():
    """A new part must be placed in PARTS (and described in pipeline/__init__.py)."""
    parts = {_part(module) for module in _modules()} - {"__init__"}
    assert parts == set(PARTS)
    doc = (REPO / "pipeline" / "__init__.py").read_text()
    assert all(f"``{part}" in doc for part in PARTS)
