"""The assessed commits' text files in the database: stored once per commit, read one file at a time."""

import zlib

from markupsafe import Markup
from sqlmodel import Session, select

from assessor.engine.codeview import highlight_lines
from assessor.domain.models import SourceFileRow
from assessor.engine.sources import SourceSnapshot

# Characters the worker highlights when it stores a commit (~5 s of Pygments here); the rest on first view.
HIGHLIGHT_BUDGET_CHARS = 2_000_000


def _pack(text: str) -> bytes:
    return zlib.compress(text.encode(), 6)


def _unpack(data: bytes) -> str:
    return zlib.decompress(data).decode()


def store_sources(session: Session, *, commit: str, snapshot: SourceSnapshot, measured: set[str] = frozenset(),
                  highlight_budget: int = HIGHLIGHT_BUDGET_CHARS) -> int:
    """Store a commit's files unless they are already there (a commit's files never change), highlighting the
    measured files first, then the others, within the budget. Returns how many files were added."""
    if session.exec(select(SourceFileRow.id).where(SourceFileRow.commit == commit).limit(1)).first() is not None:
        return 0
    budget = highlight_budget
    for source in sorted(snapshot.files, key=lambda source: (source.path not in measured, len(source.text))):
        highlighted = None
        if len(source.text) <= budget:
            budget -= len(source.text)
            highlighted = _pack("\n".join(highlight_lines(source.path, source.text)))
        session.add(SourceFileRow(commit=commit, path=source.path, lines=source.line_count,
                                  content=_pack(source.text), highlighted=highlighted))
    session.commit()
    return len(snapshot.files)


def has_sources(session: Session, *, commit: str | None) -> bool:
    if not commit:
        return False
    return session.exec(select(SourceFileRow.id).where(SourceFileRow.commit == commit).limit(1)).first() is not None


def source_paths(session: Session, *, commit: str) -> dict[str, int]:
    """path → line count, in path order."""
    rows = session.exec(select(SourceFileRow.path, SourceFileRow.lines).where(SourceFileRow.commit == commit)
                        .order_by(SourceFileRow.path)).all()
    return {path: lines for path, lines in rows}


def read_source(session: Session, *, commit: str, path: str) -> str | None:
    content = session.exec(select(SourceFileRow.content).where(SourceFileRow.commit == commit,
                                                               SourceFileRow.path == path)).first()
    return _unpack(content) if content is not None else None


def read_highlighted(session: Session, *, commit: str, path: str) -> tuple[str, list[Markup]] | None:
    """(text, highlighted lines) of one file; highlighted now and kept if the worker did not get to it."""
    row = session.exec(select(SourceFileRow).where(SourceFileRow.commit == commit, SourceFileRow.path == path)).first()
    if row is None:
        return None
    text = _unpack(row.content)
    if row.highlighted is not None:
        lines = [Markup(line) for line in _unpack(row.highlighted).split("\n")] if text else []
    else:
        lines = highlight_lines(path, text)
        row.highlighted = _pack("\n".join(lines))
        session.add(row)
        session.commit()
    return text, lines


def changed_sources(session: Session, *, old_commit: str, new_commit: str) -> tuple[dict[str, str], dict[str, str]]:
    """The texts of the files that differ between two commits (added, removed or changed), as (old, new); the same
    text compresses to the same bytes, so unchanged files are never decompressed."""
    def contents(commit: str) -> dict[str, bytes]:
        rows = session.exec(select(SourceFileRow.path, SourceFileRow.content).where(SourceFileRow.commit == commit))
        return {path: content for path, content in rows}

    old, new = contents(old_commit), contents(new_commit)
    differing = {path for path in old.keys() | new.keys() if old.get(path) != new.get(path)}
    return ({path: _unpack(old[path]) for path in differing if path in old},
            {path: _unpack(new[path]) for path in differing if path in new})
