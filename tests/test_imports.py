"""The layers of docs/architecture.md hold: no import circle between the modules of momentum_jax
(imports inside functions included), and the command line uses the public API only."""

import ast
import importlib.util
from pathlib import Path

PACKAGE = "momentum_jax"
ROOT = Path(importlib.util.find_spec(PACKAGE).origin).parent  # read, not imported


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def type_checking_only(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` blocks: imports for annotations, never run."""
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imports(name: str):
    """`(imported module, line)` for every import statement of the module `name`, at any depth
    (functions, methods, branches), relative imports resolved; `from X import y` imports the
    module `X.y` where that is a module of the package, else `X`."""
    tree = ast.parse(MODULES[name].read_text())
    here = name if is_package(name) else name.rpartition(".")[0]
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if type_checking_only(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in MODULES else target), node.lineno


def graph() -> dict[str, set[str]]:
    return {
        name: {target for target, _ in imports(name) if target in MODULES and target != name}
        for name in MODULES
    }


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle of `edges` as the list of its modules (the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_is_read_from_the_sources():
    edges = graph()
    assert len(MODULES) > 50 and "momentum_jax._cli" in MODULES
    # a top-level import, a relative import of a sibling, one inside a function
    assert "momentum_jax._io" in edges["momentum_jax._labelled"]
    assert "momentum_jax._labelled" in edges["momentum_jax._sweep._result"]
    assert "momentum_jax.plotting" in edges["momentum_jax._study._result"]  # in Study.plot
    assert "momentum_jax._cli._study" in edges["momentum_jax._cli"]  # `from . import _study`


def test_find_cycle_names_the_circle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle():
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_command_line_imports_the_public_api_only():
    private = [
        f"{MODULES[name].relative_to(ROOT.parent)}:{line}: {target}"
        for name in MODULES
        if name == "momentum_jax._cli" or name.startswith("momentum_jax._cli.")
        for target, line in imports(name)
        if target.startswith(PACKAGE + ".")
        and not target.startswith("momentum_jax._cli")
        and any(part.startswith("_") for part in target.split(".")[1:])
    ]
    assert private == []
