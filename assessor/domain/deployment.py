"""One configuration for every role: the settings that shape what users receive (addresses on certificates, the
mail sender) are recorded by the web servers, and a worker that disagrees is refused before it issues anything."""

import os
from dataclasses import dataclass
from pathlib import Path

from flask import Config
from sqlmodel import Session

from assessor.domain.db import utcnow
from assessor.domain.models import DeploymentSetting

# What a web server publishes and a worker must agree with: certificates name the public URL and the issuer;
# mail goes out from the sender through the server.
RECORDED = ("PUBLIC_URL", "ISSUER_NAME", "MAIL_SENDER", "SMTP_HOST")
SECRETS = frozenset({"SECRET_KEY", "KEY_ENCRYPTION_KEY", "SMTP_PASSWORD", "METRICS_TOKEN"})
SHOWN = ("DATABASE_URL", "QUEUE_URL", "PUBLIC_URL", "ISSUER_NAME", "MAIL_SENDER", "SMTP_HOST", "SMTP_PORT",
         "SMTP_SECURITY", "SMTP_USERNAME", "SMTP_PASSWORD", "SECRET_KEY", "KEY_ENCRYPTION_KEY", "SIGNING_KEY_FILE",
         "SEAL_CERTIFICATE_FILE", "ISSUER_LOGO_URL",
         "WORK_ROOT", "CACHE_DIR", "RUBRICS_DIR", "MIN_FREE_DISK_MB", "STALE_AFTER_SECONDS", "PROXY_FIX",
         "METRICS_TOKEN")


@dataclass(frozen=True)
class SettingLine:
    name: str
    shown: str
    source: str          # default, config.py or environment
    recorded: str | None = None  # what the web servers recorded, for the settings in RECORDED

    @property
    def differs(self) -> bool:
        return self.recorded is not None and self.recorded != self.shown


def _text(value) -> str:
    return "" if value is None else str(value).rstrip("/") if isinstance(value, str) else str(value)


def record(session: Session, config) -> None:
    """A web server starting: its values become the deployment's (a moved service updates them here)."""
    for name in RECORDED:
        row = session.get(DeploymentSetting, name) or DeploymentSetting(name=name)
        row.value, row.recorded_at = _text(config.get(name)), utcnow()
        session.add(row)
    session.commit()


def differences(session: Session, config) -> list[tuple[str, str, str]]:
    """(setting, what the web servers recorded, what this machine has) for each one that differs."""
    found = []
    for name in RECORDED:
        row = session.get(DeploymentSetting, name)
        if row is not None and row.value != _text(config.get(name)):
            found.append((name, row.value, _text(config.get(name))))
    return found


def describe(session: Session | None, config, instance: Path) -> list[SettingLine]:
    """What this machine will use, where each value comes from, and the recorded value beside it."""
    from_file = Config(str(instance))
    from_file.from_pyfile("config.py", silent=True)
    lines = []
    for name in SHOWN:
        value = config.get(name)
        if f"ASSESSOR_{name}" in os.environ:
            source = "environment"
        elif name in from_file:
            source = "config.py"
        elif name == "SECRET_KEY" and value:
            source = "instance secret_key file"
        else:
            source = "default"
        shown = ("set" if value else "not set") if name in SECRETS else _redact_url(_text(value))
        recorded = None
        if session is not None and name in RECORDED:
            row = session.get(DeploymentSetting, name)
            recorded = row.value if row is not None else None
        lines.append(SettingLine(name=name, shown=shown, source=source, recorded=recorded))
    return lines


def _redact_url(text: str) -> str:
    """A database or queue URL without its password."""
    if "://" in text and "@" in text.split("://", 1)[1]:
        scheme, rest = text.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}" if ":" in credentials else text
    return text
