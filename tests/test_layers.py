"""The import graph of service/: no package imports one above it, and no two packages import each other.

The layers are those service/__init__.py's docstring names; this test reads them from LAYERS below and the source
of every module (AST, so an import inside a function counts too).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parent.parent / "service"

# Lowest first. A module may import its own package and any package of a lower layer; never a higher layer, nor
# another package of its own layer. The core's modules may import each other (without cycles between them).
LAYERS: list[set[str]] = [
    {"config", "clock", "db", "errors", "schemas", "screening", "arguments", "http", "pagination", "periods",
     "signals", "logs", "metrics", "openapi", "signing", "spreadsheet"},
    {"auth"},
    {"audit"},
    {"taxonomy", "registry"},
    {"guidance"},
    {"incidents"},
    {"stats", "exports"},
    {"keys"},
    {"__init__", "cli", "demo", "retention", "housekeeping", "operations", "ratelimit", "pages", "docs", "dashboard",
     "wsgi", "gunicorn", "models", "migrations"},
]
CORE = LAYERS[0]


def unit_of(module: str) -> str:
    """The package (or top-level module) of service/ a dotted module name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(unit: str) -> int:
    [found] = [n for n, layer in enumerate(LAYERS) if unit in layer]
    return found


def imports(path: Path) -> set[str]:
    """The service modules a file imports (absolute imports; the service uses no relative ones)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("service")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("service"):
            folder = SERVICE / Path(*node.module.split(".")[1:])
            # `from service import clock`: a name may be a module of the package rather than a name in it
            modules = {alias.name for alias in node.names
                       if (folder / f"{alias.name}.py").exists() or (folder / alias.name).is_dir()}
            found |= {f"{node.module}.{name}" for name in modules}
            if len(modules) < len(node.names):
                found.add(node.module)
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(SERVICE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def edges() -> set[tuple[str, str]]:
    """(importing unit, imported unit) for every import across units of service/."""
    found = set()
    for path in SERVICE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        source = unit_of(module_name(path)) if module_name(path) != "service" else "__init__"
        for target in imports(path):
            unit = unit_of(target) if target != "service" else "__init__"
            if unit != source:
                found.add((source, unit))
    return found


def test_every_unit_of_the_service_has_a_layer():
    units = {unit_of(module_name(p)) if module_name(p) != "service" else "__init__"
             for p in SERVICE.rglob("*.py") if "migrations" not in p.parts}
    assert units - set().union(*LAYERS) == set()


def test_no_unit_imports_one_above_it_or_beside_it():
    top = len(LAYERS) - 1
    wrong = sorted(f"{a} imports {b}" for a, b in edges()
                   if layer_of(b) > layer_of(a) or (layer_of(b) == layer_of(a) and layer_of(a) not in (0, top)))
    assert wrong == []


def test_no_two_units_import_each_other():
    found = edges()
    assert sorted(f"{a} <-> {b}" for a, b in found if (b, a) in found and a < b) == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle found by a depth-first walk (enough to name one per strongly connected part)."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_units_import_each_other_in_a_circle():
    graph: dict[str, set[str]] = {}
    for a, b in edges():
        graph.setdefault(a, set()).add(b)
    assert cycles(graph) == []


@pytest.mark.parametrize(("source", "wrong"), [
    ("from service.stats import rollups\n", ("incidents", "stats")),
    ("from service.registry.models import Institution\n", ("audit", "registry")),
])
def test_the_check_sees_an_upward_import(tmp_path, monkeypatch, source, wrong):
    package = tmp_path / "service" / wrong[0]
    package.mkdir(parents=True)
    (package / "bad.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "SERVICE", tmp_path / "service")
    assert wrong in edges()
    assert layer_of(wrong[1]) > layer_of(wrong[0])
