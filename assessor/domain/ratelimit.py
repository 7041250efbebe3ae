"""Fixed-window counters in the database, incremented atomically (one statement), on SQLite and PostgreSQL alike."""

from datetime import datetime, timedelta

from sqlalchemy import case, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from assessor.domain.db import utcnow
from assessor.domain.models import RateCounter

MAX_KEY_LENGTH = 300


def hit(session: Session, *, key: str, window: timedelta, amount: int = 1, now: datetime | None = None) -> int:
    """Add `amount` to `key`'s count in the current window (a new window once the old one is over) and return the
    count: two requests at the same moment can never both read the old value."""
    now = now or utcnow()
    key = key[:MAX_KEY_LENGTH]
    expired = RateCounter.window_start <= now - window
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(RateCounter).values(key=key, window_start=now, count=max(amount, 0))
    statement = statement.on_conflict_do_update(index_elements=[RateCounter.key], set_={
        "count": case((expired, max(amount, 0)), else_=RateCounter.count + amount),
        "window_start": case((expired, now), else_=RateCounter.window_start),
    }).returning(RateCounter.count)
    count = session.execute(statement).scalar_one()
    session.commit()
    return count


def clear(session: Session, *, key: str) -> None:
    session.exec(delete(RateCounter).where(RateCounter.key == key[:MAX_KEY_LENGTH]))
    session.commit()


def forget_old(session: Session, *, before: datetime) -> None:
    """Remove counters whose window started before `before` (they count nothing any more)."""
    session.exec(delete(RateCounter).where(RateCounter.window_start < before))
