"""Course-module results from the course operator (a CSV file, the admin page, or a course platform's API call):
each row checked, the whole batch refused when any row is wrong, then recorded once per learner, course and
module (a later import of the same module replaces the earlier result)."""

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import Session, func, or_, select

from assessor.domain.db import contains, utcnow
from assessor.errors import ModuleImportError
from assessor.domain.models import ModuleResult

COLUMNS = ("email", "course", "module", "title", "score", "max_score", "completed_on")
MAX_ROWS = 20_000
MAX_BYTES = 5 * 1024 * 1024
_MODULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,}$")


@dataclass(frozen=True)
class ModuleRow:
    email: str
    course: str
    module: str
    title: str
    score: float
    max_score: float
    completed_on: date


@dataclass(frozen=True)
class ImportSummary:
    added: int
    updated: int

    @property
    def total(self) -> int:
        return self.added + self.updated


def _text(value) -> str:
    return unicodedata.normalize("NFKC", str(value if value is not None else "")).strip()


def _number(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} {raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise ValueError(f"{name} must be a number of 0 or more")
    return value


def check_row(record: Mapping[str, object], *, courses: set[str], today: date,
              allowed: frozenset[str] | None = None) -> ModuleRow:
    """One row, or ValueError naming everything wrong with it ("; " between problems). `allowed`: the courses
    the sender may write results for (an API key's), None for every course."""
    values = {name: _text(record.get(name)) for name in COLUMNS}
    problems: list[str] = []
    missing = [name for name in COLUMNS if not values[name]]
    if missing:
        problems.append(f"empty {', '.join(missing)}")
    if any(unicodedata.category(ch)[0] == "C" for value in values.values() for ch in value):
        problems.append("control characters are not allowed")
    email = values["email"].lower()
    if email and (len(email) > 254 or not _EMAIL.match(email)):
        problems.append(f"{values['email']!r} is not an e-mail address")
    if values["course"] and values["course"] not in courses:
        problems.append(f"no course {values['course']!r} (the course is a rubric id: {', '.join(sorted(courses))})")
    elif values["course"] and allowed is not None and values["course"] not in allowed:
        problems.append(f"this API key may not write results for the course {values['course']!r} (its courses: "
                        f"{', '.join(sorted(allowed))})")
    if values["module"] and not _MODULE_ID.match(values["module"]):
        problems.append("module ids are 1-64 letters, digits, '.', '_' or '-'")
    if len(values["title"]) > 100:
        problems.append("keep the title under 100 characters")
    numbers: dict[str, float] = {}
    for name in ("score", "max_score"):
        if values[name]:
            try:
                numbers[name] = _number(values[name], name)
            except ValueError as error:
                problems.append(str(error))
    score, max_score = numbers.get("score"), numbers.get("max_score")
    if score is not None and max_score is not None and (max_score == 0 or score > max_score):
        problems.append(f"score {values['score']} must be at most max_score {values['max_score']}, which must be "
                        f"above 0")
    completed = None
    if values["completed_on"]:
        try:
            completed = date.fromisoformat(values["completed_on"])
        except ValueError:
            problems.append(f"completed_on {values['completed_on']!r} is not a date like 2026-11-30")
        else:
            if completed > today + timedelta(days=1):
                problems.append("completed_on is in the future")
    if problems:
        raise ValueError("; ".join(problems))
    return ModuleRow(email, values["course"], values["module"], values["title"], score, max_score, completed)


def check_records(records: Iterable[tuple[int, Mapping[str, object]]], *, courses: set[str],
                  today: date | None = None, allowed: frozenset[str] | None = None) -> list[ModuleRow]:
    """Every (line, row) checked; ModuleImportError listing each bad row by line when any is wrong."""
    today = today or utcnow().date()
    rows, problems, seen = [], [], {}
    for line, record in records:
        if len(rows) + len(problems) >= MAX_ROWS:
            problems.append((line, f"more than {MAX_ROWS} rows: split the file"))
            break
        try:
            row = check_row(record, courses=courses, today=today, allowed=allowed)
        except ValueError as error:
            problems.append((line, str(error)))
            continue
        key = (row.email, row.course, row.module)
        if key in seen:
            problems.append((line, f"the same learner, course and module as line {seen[key]}"))
            continue
        seen[key] = line
        rows.append(row)
    if problems:
        raise ModuleImportError(problems)
    if not rows:
        raise ModuleImportError([(1, "no rows")])
    return rows


def parse_csv(data: bytes, *, courses: set[str], today: date | None = None,
              allowed: frozenset[str] | None = None) -> list[ModuleRow]:
    """A CSV file with the header `email,course,module,title,score,max_score,completed_on` (any order)."""
    if len(data) > MAX_BYTES:
        raise ModuleImportError([(0, f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ModuleImportError([(0, "the file is not UTF-8 text")]) from None
    if "\x00" in text:
        raise ModuleImportError([(0, "the file is not text (it contains NUL characters)")])
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="_extra")
    header = [(_text(name)).lower() for name in reader.fieldnames or []]
    wanted = set(COLUMNS)
    if set(header) != wanted or len(header) != len(COLUMNS):
        missing, extra = sorted(wanted - set(header)), sorted(set(header) - wanted)
        detail = "; ".join(part for part in (f"missing {', '.join(missing)}" if missing else "",
                                             f"unknown {', '.join(extra)}" if extra else "",
                                             "a column is named twice" if len(header) != len(set(header)) else "")
                           if part)
        raise ModuleImportError([(1, f"the header must be {','.join(COLUMNS)} ({detail})")])
    reader.fieldnames = header
    records, too_long = [], []
    try:
        for record in reader:
            if record.get("_extra"):
                too_long.append((reader.line_num, "more cells than the header has columns"))
            records.append((reader.line_num, record))
    except csv.Error as error:
        raise ModuleImportError([(reader.line_num, f"not valid CSV: {error}")]) from None
    if too_long:
        raise ModuleImportError(too_long)
    return check_records(records, courses=courses, today=today, allowed=allowed)


def import_rows(session: Session, rows: list[ModuleRow], *, source: str) -> ImportSummary:
    """Record the rows (all or none: the caller's one commit), replacing earlier results of the same module."""
    added = updated = 0
    now = utcnow()
    for row in rows:
        existing = session.exec(select(ModuleResult).where(ModuleResult.email == row.email,
                                                           ModuleResult.course == row.course,
                                                           ModuleResult.module == row.module)).first()
        if existing is None:
            existing = ModuleResult(email=row.email, course=row.course, module=row.module, title=row.title,
                                    score=row.score, max_score=row.max_score, completed_on=row.completed_on)
            added += 1
        else:
            updated += 1
        existing.title, existing.score, existing.max_score = row.title, row.score, row.max_score
        existing.completed_on, existing.source, existing.imported_at = row.completed_on, source[:32], now
        session.add(existing)
    session.flush()
    return ImportSummary(added, updated)


def results_for(session: Session, *, email: str, course: str | None = None) -> list[ModuleResult]:
    statement = select(ModuleResult).where(ModuleResult.email == email.strip().lower())
    if course is not None:
        statement = statement.where(ModuleResult.course == course)
    return list(session.exec(statement.order_by(ModuleResult.course, ModuleResult.completed_on,
                                                ModuleResult.module)))


def browse(session: Session, *, course: str | None = None, search: str = "", page: int = 1,
           per_page: int = 50) -> tuple[list[ModuleResult], int]:
    """Recorded results for the admin, by course, learner and module; (this page's rows, how many in all)."""
    conditions = []
    if course:
        conditions.append(ModuleResult.course == course)
    words = (search or "").strip()[:100]
    if words:
        conditions.append(or_(contains(ModuleResult.email, words), contains(ModuleResult.module, words),
                              contains(ModuleResult.title, words)))
    total = session.exec(select(func.count()).select_from(ModuleResult).where(*conditions)).one()
    rows = session.exec(select(ModuleResult).where(*conditions)
                        .order_by(ModuleResult.course, ModuleResult.email, ModuleResult.module)
                        .limit(per_page).offset((max(1, page) - 1) * per_page)).all()
    return list(rows), total
