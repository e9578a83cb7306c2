"""Layering rules that keep the house in order: no import cycles between modules, a cheap
``import lepton_lab``, handlers that only parse, call a facade and serialize."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import lepton_lab

PACKAGE = Path(lepton_lab.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every lepton_lab module the file imports, at any depth (function-local imports and
    ``TYPE_CHECKING`` blocks count: they are cycles a reader has to untangle too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in modules}


def test_no_import_cycles_between_modules():
    files = [p for p in PACKAGE.rglob("*.py") if "labextension" not in p.parts]
    modules = {module_name(p) for p in files}
    graph = {module_name(p): imports_of(p, modules) for p in files}
    # a package's __init__ re-exporting its own modules is not a cycle worth naming
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not (name.startswith(d + ".") and d in modules)}
    cycles = []
    for start in sorted(graph):
        for dep in graph[start]:
            if start in _reachable(graph, dep) and start < dep:
                cycles.append(f"{start} <-> {dep}")
    assert cycles == [], "import cycles: " + "; ".join(cycles)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        for dep in graph.get(name, ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_importing_the_package_is_cheap():
    code = (
        "import sys, lepton_lab as ll; "
        "heavy = [m for m in ('sqlalchemy', 'distributed', 'torch', 'pydantic', 'ipywidgets') "
        "if m in sys.modules]; print(heavy); assert ll.__version__"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_handlers_only_parse_call_and_serialize():
    """No store, file system or cluster work in the REST layer: that belongs to a facade."""
    source = (PACKAGE / "server" / "handlers.py").read_text()
    for forbidden in ("open(", "Path(", "shutil", ".store", "scheduler_identity", "Event("):
        assert forbidden not in source, forbidden
