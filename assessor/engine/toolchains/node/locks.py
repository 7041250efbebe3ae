"""Read a Node lock file (npm 1, 2 and 3, yarn classic and berry, pnpm) for packages fetched from anywhere but a
registry the operator allows: git, a path, a tarball URL or another host. Read only: nothing is fetched."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import yaml

MAX_LOCK_BYTES = 64 * 1024 * 1024
# Protocols a lock may name that fetch nothing from a host (the project itself, a patch of a registry package).
LOCAL_PROTOCOLS = ("workspace:", "patch:", "npm:", "virtual:")
_YARN_CLASSIC_ENTRY = re.compile(r'^"?(?P<names>[^\s"][^:]*?)"?:\s*$')
_YARN_CLASSIC_RESOLVED = re.compile(r'^\s+resolved\s+"?(?P<url>[^"\s]+)"?\s*$')


class LockReadError(Exception):
    """The lock file cannot be read as the format its name says."""


def foreign_sources(root: Path, lock: str, allowed_hosts: set[str]) -> list[str]:
    """'package (where from)' for every locked package fetched from somewhere but an allowed registry host."""
    path = root / lock
    try:
        if path.is_symlink() or path.stat().st_size > MAX_LOCK_BYTES:
            raise LockReadError(f"{lock} is a link or over {MAX_LOCK_BYTES // (1024 * 1024)} MB")
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise LockReadError(f"{lock} cannot be read ({error.strerror})") from None
    if lock in ("package-lock.json", "npm-shrinkwrap.json"):
        entries = _npm_entries(text, lock)
    elif lock == "yarn.lock":
        entries = _yarn_berry_entries(text) if "__metadata:" in text else _yarn_classic_entries(text)
    elif lock == "pnpm-lock.yaml":
        entries = _pnpm_entries(text)
    else:
        return []
    refused = []
    for name, source in entries:
        problem = _problem(source, allowed_hosts)
        if problem:
            refused.append(f"{name} ({problem})")
    return sorted(set(refused))


def _problem(source: str, allowed_hosts: set[str]) -> str | None:
    """Why a locked source is refused (its host, or what it is), or None for an allowed registry."""
    if not source or source.startswith(LOCAL_PROTOCOLS):
        return None
    if source.startswith(("git+", "git:", "github:", "gitlab:", "bitbucket:", "ssh:")):
        return f"git: {source[:80]}"
    if source.startswith(("file:", "link:", "portal:", "exec:")) or source.startswith((".", "/")):
        return f"a local path: {source[:80]}"
    try:
        parts = urlsplit(source)
        host = (parts.hostname or "").lower()
    except ValueError:
        return f"an address that cannot be read: {source[:80]}"
    if parts.scheme in ("http", "https") and host:
        if host in allowed_hosts and parts.scheme == "https":
            return None
        return f"from {host}, not an allowed registry" if host not in allowed_hosts else f"over plain http: {host}"
    return f"an unknown source: {source[:80]}"


def _npm_entries(text: str, lock: str) -> list[tuple[str, str]]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise LockReadError(f"{lock} is not valid JSON") from None
    if not isinstance(data, dict):
        raise LockReadError(f"{lock} is not an npm lock file")
    found = []
    packages = data.get("packages")
    if isinstance(packages, dict):   # lockfileVersion 2 and 3
        for path, entry in packages.items():
            if path and isinstance(entry, dict) and not entry.get("link"):
                found.append((path.rsplit("node_modules/", 1)[-1], _text(entry.get("resolved"))))
    _npm_v1_tree(data.get("dependencies"), found, depth=0)  # lockfileVersion 1 (and 2's copy of it)
    return found


def _npm_v1_tree(dependencies: object, found: list[tuple[str, str]], *, depth: int) -> None:
    if not isinstance(dependencies, dict) or depth > 64:
        return
    for name, entry in dependencies.items():
        if not isinstance(entry, dict):
            continue
        version = _text(entry.get("version"))
        # Version 1 keeps a git or path dependency's source in `version` and leaves `resolved` out.
        if version.startswith(("git", "github:", "gitlab:", "bitbucket:", "file:", "link:")):
            found.append((name, version))
        found.append((name, _text(entry.get("resolved"))))
        _npm_v1_tree(entry.get("dependencies"), found, depth=depth + 1)


def _yarn_classic_entries(text: str) -> Iterator[tuple[str, str]]:
    name = ""
    for line in text.splitlines():
        header = _YARN_CLASSIC_ENTRY.match(line)
        if header and not line.startswith(" "):
            name = _split_descriptor(header.group("names").split(",")[0].strip().strip('"'))[0]
            continue
        resolved = _YARN_CLASSIC_RESOLVED.match(line)
        if resolved:
            yield name, resolved.group("url")


def _yarn_berry_entries(text: str) -> Iterator[tuple[str, str]]:
    data = _yaml(text, "yarn.lock")
    for key, entry in data.items():
        if key == "__metadata" or not isinstance(entry, dict):
            continue
        yield _split_descriptor(_text(entry.get("resolution")))


def _pnpm_entries(text: str) -> Iterator[tuple[str, str]]:
    data = _yaml(text, "pnpm-lock.yaml")
    packages = data.get("packages")
    for key, entry in (packages.items() if isinstance(packages, dict) else []):
        resolution = entry.get("resolution") if isinstance(entry, dict) else None
        if not isinstance(resolution, dict):
            continue
        name = _pnpm_name(str(key))
        if resolution.get("type") == "git" or "repo" in resolution:
            yield name, f"git+{_text(resolution.get('repo'))}"
        elif resolution.get("type") == "directory" or "directory" in resolution:
            yield name, f"file:{_text(resolution.get('directory'))}"
        elif "tarball" in resolution:
            tarball = _text(resolution.get("tarball"))
            yield name, tarball if "://" in tarball else f"file:{tarball}"


def _split_descriptor(descriptor: str) -> tuple[str, str]:
    """'express@^4.18.2' or '@acme/ui@npm:1.1.0' -> (the package's name, what follows it)."""
    at = descriptor.find("@", 1)  # a scope's own '@' comes first
    return (descriptor[:at], descriptor[at + 1:]) if at > 0 else (descriptor, "")


def _pnpm_name(key: str) -> str:
    """The package's name from a pnpm key: 'express@4.18.2', '/express@4.18.2', '/express/4.18.2', '@a/b@1.0.0'."""
    key = key.lstrip("/").split("(")[0]
    if key.startswith("@"):
        scope, _, rest = key[1:].partition("/")
        return f"@{scope}/{re.split(r'[@/]', rest, maxsplit=1)[0]}"
    return re.split(r"[@/]", key, maxsplit=1)[0]


def _yaml(text: str, lock: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise LockReadError(f"{lock} is not valid YAML") from None
    if not isinstance(data, dict):
        raise LockReadError(f"{lock} is not a lock file")
    return data


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
