"""The package's layers, read from its imports: each imports only the layers below it, and no modules import each
other in a circle."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "assessor"
# Bottom to top. The foundation (errors, config, logs, clock, the sample repositories) is below everything.
LAYERS = ["foundation", "engine", "certificates", "domain", "web", "cli"]
TOP_LEVEL = {"errors", "config", "logs", "clock", "samples", "__init__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    first = module.split(".")[1] if module.count(".") else "__init__"
    if first in TOP_LEVEL:
        return "foundation"
    assert first in LAYERS, f"{module} is in no layer: put it in one of {', '.join(LAYERS[1:])}, or the foundation"
    return first


def sources() -> list[Path]:
    return [path for path in PACKAGE.rglob("*.py")
            if "samples" not in path.relative_to(PACKAGE).parts[:1] or path.name == "__init__.py" and
            path.parent == PACKAGE / "samples"]


def imports(path: Path) -> set[str]:
    """The assessor modules a file imports (at the top or inside functions), as dotted names."""
    here = module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("assessor")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package
                package = here.split(".") if path.name == "__init__.py" else here.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            if base.startswith("assessor"):
                found.add(base)
                found |= {f"{base}.{alias.name}" for alias in node.names}
    known = {module_name(source) for source in sources()}
    return {name for name in found if name in known}


GRAPH = {module_name(path): imports(path) for path in sources()}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_a_module_imports_only_its_own_layer_and_the_ones_below(module):
    rank = LAYERS.index(layer_of(module))
    upward = sorted(name for name in GRAPH[module] if LAYERS.index(layer_of(name)) > rank)
    assert not upward, f"{module} ({layer_of(module)}) imports from a higher layer: {', '.join(upward)}"


def test_no_modules_import_each_other_in_a_circle():
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for name in sorted(GRAPH.get(module, ())):
            if name == module or name.startswith(module + ".") or module.startswith(name + "."):
                continue  # a package and its own modules are one place
            if state.get(name) == 1:
                circles.append(" -> ".join(path[path.index(name):] + [name]))
            elif name not in state:
                visit(name)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_check_sees_the_whole_package():
    assert len(GRAPH) > 100 and {layer_of(module) for module in GRAPH} == set(LAYERS)
