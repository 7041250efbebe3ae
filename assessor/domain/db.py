"""Database engine and sessions from a URL; nothing here knows about the web app."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlalchemy.exc
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine, func

from assessor.clock import as_utc, utcnow  # noqa: F401  (the domain's modules take it from here)

SQLITE_BUSY_TIMEOUT_MS = 10_000


# Errors that mean the database server is not answering (down, restarting, unreachable), not a bug: callers wait
# and try again, or answer "unavailable", instead of dropping work. psycopg's own reach past SQLAlchemy from raw
# DBAPI connections.
DATABASE_OUTAGES = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                    sqlalchemy.exc.DisconnectionError, sqlalchemy.exc.TimeoutError, psycopg.OperationalError,
                    psycopg.InterfaceError)


def normalize_url(url: str) -> str:
    """postgres:// and postgresql:// (no driver named) mean psycopg 3, the driver this project installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`. SQLite gets WAL, a busy timeout and foreign keys, since the web app and the
    worker write to the same file from different processes. PostgreSQL connections are checked before each
    use (pool_pre_ping), so a restarted server is reconnected to without a restart of this process."""
    url = normalize_url(url)
    is_sqlite = url.startswith("sqlite")
    if is_sqlite:
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    elif url.startswith("postgresql"):
        connect_args = {"connect_timeout": 5}
    else:
        connect_args = {}
    if is_sqlite and url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args=connect_args, pool_pre_ping=not is_sqlite)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def init_db(engine: Engine) -> None:
    """Create every table, index and trigger that does not exist yet (safe to run again). Tests use this;
    installations use the migrations (`assessor.migrate.upgrade`), which end in the same schema."""
    import assessor.domain.models  # noqa: F401  (registers the tables on SQLModel.metadata)

    SQLModel.metadata.create_all(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def contains(column, words: str):
    """A case-insensitive "column contains words" condition, with LIKE's wildcards in `words` taken literally."""
    escaped = words.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped}%", escape="\\")
