"""The house's import contracts: layers point one way, no circles, no private names
across modules, no Qt below the GUI and no torch in core. Imports inside functions count:
a lazy import is still a dependency."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDIO = ROOT / "studio"
QT = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph", "superqt", "qtpy")
TORCH = ("torch", "torchvision")
# layer -> layers (of studio) it may import
ALLOWED = {"core": {"core"}, "ml": {"ml", "core"}, "cli": {"cli", "ml", "core"},
           "gui": {"gui", "ml", "core"}}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(module, imported name or None, line) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    checking_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(block.test)
                     for stmt in block.body for n in ast.walk(stmt)}
    out = []
    for node in ast.walk(tree):
        if id(node) in checking_only:  # for type checkers only: never runs
            continue
        if isinstance(node, ast.Import):
            out += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            out += [(base, alias.name, node.lineno) for alias in node.names]
    return out


MODULES = {_module_name(p): p for p in STUDIO.rglob("*.py")}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "studio" and parts[1] in ALLOWED else None


def _resolve(module: str, name: str | None) -> str | None:
    """The studio module an import refers to (`from a import b` may name module a.b)."""
    if name and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    return module if module in MODULES else None


def test_layers_point_one_way_and_stay_headless():
    problems = []
    for module, path in MODULES.items():
        layer = _layer(module)
        for imported, _name, line in _imports(path):
            top = imported.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line} imports {imported}"
            if layer in ("core", "ml", "cli") and top in QT:
                problems.append(f"{where} (Qt below the GUI)")
            if layer == "core" and top in TORCH:
                problems.append(f"{where} (torch in core)")
            target = _layer(imported)
            if layer and target and target not in ALLOWED[layer]:
                problems.append(f"{where} ({layer} -> {target})")
    assert not problems, "\n".join(problems)


def test_no_private_name_crosses_a_module():
    problems = []
    for module, path in MODULES.items():
        for imported, name, line in _imports(path):
            if not imported.startswith("studio") or name is None:
                continue
            if name.startswith("_") and not name.startswith("__") and imported != module:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {imported}.{name}")
    assert not problems, "\n".join(problems)


def _graph(prefix: str) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        if not module.startswith(prefix):
            continue
        edges = graph.setdefault(module, set())
        for imported, name, _ in _imports(path):
            target = _resolve(imported, name)
            if target and target.startswith(prefix) and target != module:
                # importing a package runs its __init__, not its submodules
                edges.add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("prefix", ["studio.core", "studio.ml", "studio.gui", "studio.cli"])
def test_no_import_circles(prefix):
    assert _cycles(_graph(prefix)) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_ml_and_cli_import_with_qt_blocked():
    headless = sorted(m for m in MODULES if _layer(m) in ("core", "ml", "cli")
                      and not m.endswith("__main__"))
    code = ("import sys\n"
            f"for name in {QT!r}:\n    sys.modules[name] = None\n"
            "import importlib\n"
            f"for m in {headless!r}:\n    importlib.import_module(m)\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
