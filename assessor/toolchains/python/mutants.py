"""Mutants of a Python file's lines, made with mutmut's own operators over libcst (the learner's code is only parsed)."""

from collections.abc import Sequence
from pathlib import Path

import libcst
from libcst.metadata import MetadataWrapper, PositionProvider
from mutmut.mutation.mutators import mutation_operators

from assessor.measure.strength import Mutant

TOOL = "mutmut's operators"
MAX_SHOWN = 60
MAX_PER_LINE = 12


class _LineNodes(libcst.CSTVisitor):
    """The nodes that start on the wanted lines, outside annotations, docstrings and decorators."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, lines: set[int]) -> None:
        self.lines = lines
        self.found: dict[int, list[libcst.CSTNode]] = {}
        self.skipping = 0

    def on_visit(self, node: libcst.CSTNode) -> bool:
        if isinstance(node, (libcst.Annotation, libcst.Decorator, libcst.Import, libcst.ImportFrom)):
            return False
        if isinstance(node, libcst.Expr) and isinstance(node.value, (libcst.SimpleString, libcst.ConcatenatedString)):
            return False  # a docstring or a bare string: changing it changes nothing
        line = self.get_metadata(PositionProvider, node).start.line
        if line in self.lines:
            self.found.setdefault(line, []).append(node)
        return True


def mutants_for(checkout: Path, name: str, lines: Sequence[int]) -> dict[int, list[Mutant]]:
    """Per line, the mutants mutmut's operators make of the nodes that start there; none for unparseable files."""
    try:
        module = libcst.parse_module((checkout / name).read_bytes())
    except (OSError, libcst.ParserSyntaxError, SyntaxError, RecursionError, ValueError):
        return {}
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    visitor = _LineNodes(set(lines))
    try:
        wrapper.visit(visitor)
    except RecursionError:
        return {}
    made: dict[int, list[Mutant]] = {}
    for line, nodes in visitor.found.items():
        for node in nodes:
            for node_type, operator in mutation_operators:
                if not isinstance(node, node_type):
                    continue
                for mutated in _safely(operator, node):
                    if len(made.get(line, [])) >= MAX_PER_LINE:
                        break
                    mutant = _mutant(module, name, line, node, mutated, operator.__name__)
                    if mutant is not None:
                        made.setdefault(line, []).append(mutant)
    return made


def _safely(operator, node) -> list:
    try:
        return list(operator(node))
    except Exception:  # an operator that cannot handle an unusual node makes no mutant of it
        return []


def _mutant(module: libcst.Module, name: str, line: int, node, mutated, operator: str) -> Mutant | None:
    try:
        source = module.deep_replace(node, mutated).code
        before, after = module.code_for_node(node), module.code_for_node(mutated)
    except Exception:
        return None
    if source == module.code:
        return None
    return Mutant(file=name, line=line, operator=operator.removeprefix("operator_"), before=_short(before),
                  after=_short(after), source=source.encode(module.encoding or "utf-8"))


def _short(code: str) -> str:
    text = " ".join(code.split())
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 1] + "…"
