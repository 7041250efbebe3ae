"""Logging: plain text or JSON lines (ASSESSOR_LOG_FORMAT=json), with the request id and the attempt id on
every line. The ids live in context variables, set by the web app per request and by the worker per job, and
a filter on the handler copies them onto each record (so third-party loggers' lines carry them too)."""

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

request_id: ContextVar[str | None] = ContextVar("assessor_request_id", default=None)
attempt_id: ContextVar[int | None] = ContextVar("assessor_attempt_id", default=None)
# Libraries whose warnings describe the input being read, not a fault of ours, while it is read (see `quieted`).
quiet_loggers: ContextVar[tuple[str, ...]] = ContextVar("assessor_quiet_loggers", default=())

TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s [request=%(request_id)s attempt=%(attempt_id)s] %(message)s"
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "attempt_id"}


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        quiet = quiet_loggers.get()
        if quiet and record.levelno < logging.ERROR and record.name.split(".")[0] in quiet:
            return False
        record.request_id = request_id.get() or "-"
        record.attempt_id = attempt_id.get() if attempt_id.get() is not None else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if getattr(record, "request_id", "-") == "-" else record.request_id,
            "attempt_id": None if getattr(record, "attempt_id", "-") == "-" else record.attempt_id,
        }
        line.update({key: value for key, value in vars(record).items() if key not in _STANDARD
                     and not key.startswith("_") and isinstance(value, (str, int, float, bool, type(None)))})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def handler(fmt: str | None = None, stream=None) -> logging.Handler:
    fmt = (fmt or os.environ.get("ASSESSOR_LOG_FORMAT") or "text").lower()
    result = logging.StreamHandler(stream or sys.stderr)
    result.addFilter(ContextFilter())
    result.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return result


# Libraries whose INFO lines say nothing an operator acts on (alembic announces its dialect on every start).
QUIET_LIBRARIES = ("alembic",)


def configure(fmt: str | None = None, level: int | None = None) -> None:
    """The process's logging: one handler on the root logger, text or JSON lines; the level from
    ASSESSOR_LOG_LEVEL (INFO unless set)."""
    if level is None:
        named = os.environ.get("ASSESSOR_LOG_LEVEL", "INFO").upper()
        level = logging.getLevelName(named) if isinstance(logging.getLevelName(named), int) else logging.INFO
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler(fmt))
    root.setLevel(level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


@contextmanager
def quieted(*library_loggers: str) -> Iterator[None]:
    """Drop these libraries' warnings in this context only: a hostile upload makes pypdf complain, and the
    verdict already says what is wrong with the file."""
    token = quiet_loggers.set(quiet_loggers.get() + library_loggers)
    try:
        yield
    finally:
        quiet_loggers.reset(token)


@contextmanager
def attempt_context(value: int) -> Iterator[None]:
    token = attempt_id.set(value)
    try:
        yield
    finally:
        attempt_id.reset(token)
