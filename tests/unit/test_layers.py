"""The package's layers, read from the source: who may import whom, and no import cycles."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "shared"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules of `shared` that a file imports (relative imports resolved); optionally only those at import time."""
    tree = ast.parse(path.read_text())
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # `if TYPE_CHECKING:` blocks never run
        nodes = [n for n in nodes if not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.dump(n.test))]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("shared")}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if not target.startswith("shared"):
                continue
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules}


FILES = sorted(PACKAGE.rglob("*.py"))


def test_domain_and_services_never_import_the_composition_root_an_adapter_or_the_edge():
    forbidden = ("shared.runtime", "shared.bootstrap", "shared.adapters", "shared.api")
    offenders = {
        _module(p): sorted(m for m in _imports(p, top_level_only=False) if m.startswith(forbidden))
        for p in FILES if _module(p).startswith(("shared.domain", "shared.services"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_domain_does_no_io_and_knows_no_service():
    offenders = {
        _module(p): sorted(m for m in _imports(p, top_level_only=False)
                           if m.startswith(("shared.services", "shared.ports", "shared.settings")))
        for p in FILES if _module(p).startswith("shared.domain")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_import_cycles_at_import_time():
    graph = {_module(p): _imports(p, top_level_only=True) - {_module(p)} for p in FILES}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            # importing a package runs its __init__, not its submodules: a submodule's import of its package is fine
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []
