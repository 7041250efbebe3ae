"""Backups of everything a restore needs (the database, the secret that opens its signing keys, the instance's own
settings), taken while the service runs, and restoring one into an empty instance."""

import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs

from sqlalchemy.engine import make_url

from assessor.errors import AssessorError

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PG_DUMP_FILE = "database.pgdump"
# Instance files a restore needs beside the database: the secret key (the signing keys' key-encryption key is
# derived from it unless ASSESSOR_KEY_ENCRYPTION_KEY is set), the instance's settings, an operator's key file.
INSTANCE_FILES = ("secret_key", "config.py")
DUMP_SECONDS = 1800


class BackupError(AssessorError):
    """A backup could not be taken or restored."""


@dataclass(frozen=True)
class Manifest:
    format: int
    created_at: str
    database: str              # sqlite or postgresql
    database_file: str
    instance_files: tuple[str, ...]
    key_encryption_key: str    # where the key that opens the signing keys comes from


def take_backup(*, database_url: str, instance: Path, destination: Path, kek_from_environment: bool) -> Manifest:
    """Write a backup folder (mode 0700; it holds secrets) at `destination`, which must not exist yet."""
    if destination.exists():
        raise BackupError(f"{destination} already exists: name a new folder for the backup")
    destination.mkdir(parents=True, mode=0o700)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        kind, name = "sqlite", SQLITE_FILE
        _sqlite_backup(Path(url.database), destination / name)
    elif url.get_backend_name() == "postgresql":
        kind, name = "postgresql", PG_DUMP_FILE
        _pg_dump(url, destination / name)
    else:
        raise BackupError(f"backups of {url.get_backend_name()} databases are not supported")
    copied = []
    for file_name in INSTANCE_FILES:
        source = instance / file_name
        if source.is_file():
            shutil.copy2(source, destination / file_name)
            os.chmod(destination / file_name, 0o600)
            copied.append(file_name)
    manifest = Manifest(format=FORMAT, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        database=kind, database_file=name, instance_files=tuple(copied),
                        key_encryption_key=_kek_source(kek_from_environment, "secret_key" in copied))
    (destination / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def _kek_source(from_environment: bool, secret_in_backup: bool) -> str:
    """Where the key that opens the signing keys comes from: a restore without it cannot sign."""
    if from_environment:
        return "the environment (ASSESSOR_KEY_ENCRYPTION_KEY): keep it with this backup"
    if secret_in_backup:
        return "derived from secret_key, which is in this backup"
    return "derived from ASSESSOR_SECRET_KEY (the environment): keep it with this backup"


def restore_instance_files(*, source: Path, instance: Path) -> Manifest:
    """First step of a restore: the instance's secret key and settings, which the service needs to start."""
    manifest = read_manifest(source)
    instance.mkdir(parents=True, exist_ok=True)
    os.chmod(instance, 0o700)
    for file_name in manifest.instance_files:
        shutil.copy2(source / file_name, instance / file_name)
        os.chmod(instance / file_name, 0o600)
    return manifest


def restore_database(*, source: Path, database_url: str, database_is_empty: bool) -> Manifest:
    """Second step: the database, only into an empty one (a new machine, or one rebuilt after a loss)."""
    manifest = read_manifest(source)
    if not database_is_empty:
        raise BackupError("the database already holds data: restore into an empty one (a new database, or a new "
                          "instance folder for SQLite)")
    url = make_url(database_url)
    if url.get_backend_name() != manifest.database:
        raise BackupError(f"the backup holds a {manifest.database} database, but this instance uses "
                          f"{url.get_backend_name()}")
    if manifest.database == "sqlite":
        target = Path(url.database)
        target.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)  # an empty database file left by a start: replaced whole
        _sqlite_backup(source / manifest.database_file, target)
    else:
        _pg_restore(url, source / manifest.database_file)
    return manifest


def read_manifest(source: Path) -> Manifest:
    try:
        data = json.loads((source / MANIFEST).read_text())
        manifest = Manifest(**{**data, "instance_files": tuple(data["instance_files"])})
    except (OSError, ValueError, TypeError, KeyError):
        raise BackupError(f"{source} is not a backup of this service (no readable {MANIFEST})") from None
    if manifest.format != FORMAT:
        raise BackupError(f"backup format {manifest.format} is not {FORMAT}")
    if not (source / manifest.database_file).is_file():
        raise BackupError(f"the backup's database file {manifest.database_file} is missing")
    return manifest


def _sqlite_backup(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the service goes on writing."""
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer)
    except sqlite3.Error as error:
        raise BackupError(f"the SQLite backup failed: {error}") from None
    finally:
        writer.close()
        reader.close()
    os.chmod(target, 0o600)


def _pg_arguments(url) -> tuple[list[str], dict[str, str], list[str]]:
    """Connection options for pg_dump/pg_restore (the password in the environment, never on the command line),
    and the schema a search_path option names (the service's tables live there)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if url.password:
        env["PGPASSWORD"] = url.password
    args = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432), "--username",
            url.username or "postgres", "--dbname", url.database or "postgres"]
    schemas = []
    for option in parse_qs(url.render_as_string(hide_password=True).partition("?")[2]).get("options", []):
        for part in option.split():
            if part.startswith("-csearch_path="):
                schemas += [name for name in part.split("=", 1)[1].split(",") if name]
    return args, env, schemas


def _pg_dump(url, target: Path) -> None:
    args, env, schemas = _pg_arguments(url)
    command = ["pg_dump", "--format=custom", "--no-owner", "--file", str(target), *args,
               *(f"--schema={schema}" for schema in schemas)]
    _run(command, env, "pg_dump")
    os.chmod(target, 0o600)


def _pg_restore(url, source: Path) -> None:
    args, env, _schemas = _pg_arguments(url)
    _run(["pg_restore", "--no-owner", "--exit-on-error", *args, str(source)], env, "pg_restore")


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=DUMP_SECONDS)
    except FileNotFoundError:
        raise BackupError(f"{what} is not installed (Debian: apt-get install postgresql-client)") from None
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} took longer than {DUMP_SECONDS} s") from None
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit code {done.returncode}"
        raise BackupError(f"{what} failed: {last}")
