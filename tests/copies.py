"""Disguised copies of a capstone, made the way people disguise them: renamed names, re-indented, reordered."""

import re

_STARTS_DEFINITION = {
    "python": re.compile(r"(@|def |class |async def )"),
    "typescript": re.compile(r"(export )?(async )?(function |class |const \w+ = (async )?\()"),
}


def rename(text: str, renames: dict[str, str]) -> str:
    """Every whole-word use of each name replaced by its new name."""
    if not renames:
        return text
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(renames, key=len, reverse=True))) + r")\b")
    return pattern.sub(lambda match: renames[match.group(1)], text)


def reindent(text: str, *, old: int = 4, new: int = 2) -> str:
    """Leading indentation of `old` spaces per level turned into `new` spaces per level."""
    def shrink(match: re.Match) -> str:
        levels, rest = divmod(len(match.group(0)), old)
        return " " * (levels * new + rest)
    return re.sub(r"^ +", shrink, text, flags=re.MULTILINE)


def reorder(text: str, language: str = "python") -> str:
    """The module's top-level functions and classes in reverse order, its header (imports) kept first."""
    starts = _STARTS_DEFINITION[language]
    header: list[str] = []
    blocks: list[list[str]] = []
    previous = ""
    for line in text.splitlines(keepends=True):
        # A decorator and the definition under it stay one block.
        if starts.match(line) and not previous.startswith("@"):
            blocks.append([])
        (blocks[-1] if blocks else header).append(line)
        if line.strip():
            previous = line
    tidy = ["".join(block).rstrip("\n") + "\n\n\n" for block in blocks]
    return "".join(header) + "".join(reversed(tidy))


def disguise(files: dict[str, str], renames: dict[str, str], *, language: str = "python") -> dict[str, str]:
    """A copy of `files` with names renamed, code re-indented and top-level definitions reordered."""
    disguised = {}
    for path, text in files.items():
        changed = rename(text, renames)
        if path.endswith((".py", ".ts", ".js")):
            changed = reorder(reindent(changed), language)
        disguised[rename(path, renames)] = changed
    return disguised
