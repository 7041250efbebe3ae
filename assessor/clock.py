"""The service's clock: aware UTC, what every timestamp holds."""

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Aware UTC: what every timestamp column holds (SQLModel stores and returns UTC)."""
    return datetime.now(timezone.utc)


def as_utc(moment: datetime | str | None) -> datetime | None:
    """A stored timestamp as aware UTC: SQLite hands it back naive (or, from a raw query, as text), and it is UTC."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
