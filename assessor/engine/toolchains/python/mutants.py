"""Mutants of a Python file's lines, made with mutmut's own operators over libcst (the learner's code is only parsed).

Only the statement on a sampled line is parsed with libcst (the file is read with the standard library's fast
parser): a mutant is that statement, or a compound statement's condition, rewritten and put back in its place."""

import ast
from collections.abc import Sequence
from pathlib import Path

import libcst
from mutmut.mutation.mutators import mutation_operators

from assessor.engine.measure.strength import Mutant

TOOL = "mutmut's operators"
MAX_SHOWN = 60
MAX_PER_LINE = 12
_SKIPPED_NODES = (libcst.Annotation, libcst.Decorator, libcst.Import, libcst.ImportFrom)
_EMPTY_MODULE = libcst.Module(body=[])


class _Nodes(libcst.CSTVisitor):
    """Every node of a parsed statement or expression, outside annotations, decorators and imports."""

    def __init__(self) -> None:
        self.found: list[libcst.CSTNode] = []

    def on_visit(self, node: libcst.CSTNode) -> bool:
        if isinstance(node, _SKIPPED_NODES):
            return False
        self.found.append(node)
        return True


def mutants_for(checkout: Path, name: str, lines: Sequence[int]) -> dict[int, list[Mutant]]:
    """Per line, the mutants mutmut's operators make of the statement starting there; none for unparseable files."""
    try:
        data = (checkout / name).read_bytes()
        tree = ast.parse(data)
    except (OSError, SyntaxError, ValueError, RecursionError):
        return {}
    starts = [0]
    for index, byte in enumerate(data):
        if byte == 0x0A:
            starts.append(index + 1)
    wanted = set(lines)
    made: dict[int, list[Mutant]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or node.lineno not in wanted or node.end_lineno is None:
            continue
        for part, parse in _parts(node):
            start = starts[part.lineno - 1] + part.col_offset
            end = starts[part.end_lineno - 1] + part.end_col_offset
            found = _mutants(data, start, end, parse, name=name, line=node.lineno)
            made.setdefault(node.lineno, []).extend(found[:MAX_PER_LINE - len(made.get(node.lineno, []))])
    return {line: mutants for line, mutants in made.items() if mutants}


def _parts(node: ast.stmt) -> list[tuple[ast.AST, object]]:
    """What of a statement may change: a simple statement whole, a compound one's condition or iterable."""
    if isinstance(node, (ast.If, ast.While)):
        return [(node.test, libcst.parse_expression)]
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return [(node.iter, libcst.parse_expression)]
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return [(item.context_expr, libcst.parse_expression) for item in node.items]
    if isinstance(node, ast.Match):
        return [(node.subject, libcst.parse_expression)]
    if hasattr(node, "body") or isinstance(node, (ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal)):
        return []  # definitions, try blocks and imports: nothing on their line to change
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
        return []  # a docstring or a bare string: changing it changes nothing
    return [(node, libcst.parse_statement)]


def _mutants(data: bytes, start: int, end: int, parse, *, name: str, line: int) -> list[Mutant]:
    try:
        parsed = parse(data[start:end].decode("utf-8"))
    except (libcst.ParserSyntaxError, UnicodeDecodeError, ValueError, RecursionError):
        return []  # a condition spread over lines without brackets, say: left unchanged
    visitor = _Nodes()
    parsed.visit(visitor)
    made = []
    for node in visitor.found:
        for node_type, operator in mutation_operators:
            if not isinstance(node, node_type):
                continue
            for mutated in _safely(operator, node):
                mutant = _mutant(data, start, end, parsed, node, mutated, operator.__name__, name=name, line=line)
                if mutant is not None:
                    made.append(mutant)
    return made


def _safely(operator, node) -> list:
    try:
        return list(operator(node))
    except Exception:  # an operator that cannot handle an unusual node makes no mutant of it
        return []


def _mutant(data: bytes, start: int, end: int, parsed, node, mutated, operator: str, *, name: str,
            line: int) -> Mutant | None:
    try:
        before, after = _EMPTY_MODULE.code_for_node(node), _EMPTY_MODULE.code_for_node(mutated)
    except Exception:
        return None
    if before == after:
        return None

    def build() -> bytes:
        """The whole changed file, made only for the mutants a sample keeps."""
        try:
            text = _EMPTY_MODULE.code_for_node(parsed.deep_replace(node, mutated))
        except Exception:
            return b""
        if isinstance(parsed, libcst.SimpleStatementLine):
            text = text.removesuffix("\n")
        return data[:start] + text.encode("utf-8") + data[end:]

    return Mutant(file=name, line=line, operator=operator.removeprefix("operator_"), before=_short(before),
                  after=_short(after), build=build)


def _short(code: str) -> str:
    text = " ".join(code.split())
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 1] + "…"
