"""The service's clock: aware UTC, what every timestamp holds."""

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Aware UTC: what every timestamp column holds (SQLModel stores and returns UTC)."""
    return datetime.now(timezone.utc)
