"""The package's import structure: no module imports a module that imports it back."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "chita_opt"


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its code (top level and inside
    functions). Packages' ``__init__`` files are left out: they only re-export."""
    paths = {module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        if path.name == "__init__.py":
            continue
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    target = target if target in paths else node.module
                    if target in paths and paths[target].name != "__init__.py":
                        edges.add(target)
            elif isinstance(node, ast.Import):
                edges.update(
                    a.name
                    for a in node.names
                    if a.name in paths and paths[a.name].name != "__init__.py"
                )
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    package = tmp_path / "chita_opt"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from chita_opt.b import f\n")
    (package / "b.py").write_text("def f():\n    from chita_opt.a import g\n")
    (package / "c.py").write_text("import chita_opt.a\n")
    assert cycles(import_graph(package)) == [["chita_opt.a", "chita_opt.b"]]


def test_no_import_cycles_in_the_package():
    graph = import_graph(PACKAGE)
    assert graph.get("chita_opt.solvers.api")  # the entry point imports something
    assert cycles(graph) == []


def test_the_registry_imports_no_solver_module():
    """Every solver module imports the registry, so it must import none of them."""
    imported = import_graph(PACKAGE)["chita_opt.solvers.registry"]
    assert imported <= {"chita_opt.solvers.base"}


def test_the_bounds_import_no_solver_and_the_solvers_no_solver_module():
    """Layers point one way: ``bounds`` uses ``problems`` (and the package's private
    helpers) only; a solver module imports the shared pieces of ``solvers`` (base,
    registry, result, _common, the local-search component, the iterate and its moves),
    never another method's module."""
    graph = import_graph(PACKAGE)
    bounds = {m for m in graph if m.startswith("chita_opt.bounds.")}
    assert {"chita_opt.bounds.perspective", "chita_opt.bounds.dual"} <= bounds
    for module in bounds:
        outside = {
            t
            for t in graph[module]
            if not t.startswith(("chita_opt.bounds.", "chita_opt.problems.", "chita_opt._"))
        }
        assert outside == set(), module
    shared = {
        f"chita_opt.solvers.{name}"
        for name in (
            "base",
            "registry",
            "result",
            "_common",
            "swaps",
            "bounded_swaps",
            "local_search",
            "iterate",
        )
    }
    entry = {
        "chita_opt.solvers.api",
        "chita_opt.solvers.blocks",
        "chita_opt.solvers.layerwise",
        "chita_opt.solvers.path",
    }
    for module in graph:
        if module.startswith("chita_opt.solvers.") and module not in shared | entry:
            solvers_used = {t for t in graph[module] if t.startswith("chita_opt.solvers.")}
            assert solvers_used <= shared, module


def test_every_module_is_small():
    """Small modules with one job each: none over 350 lines."""
    sizes = {
        p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines())
        for p in PACKAGE.rglob("*.py")
    }
    assert {path: n for path, n in sizes.items() if n > 350} == {}
