"""Start a service plan inside each sandboxed run: throwaway data folders from prepared templates, and the
launcher that brings the servers up on the sandbox's own loopback before the tests run."""

import importlib.resources
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from assessor.errors import SandboxError
from assessor.filelock import exclusive_lock
from assessor.sandbox import SYSTEM_PYTHON, SandboxLimits, run_sandboxed
from assessor.services import ServiceNeed, ServicePlan
from assessor.services.servers import POSTGRESQL, REDIS, postgresql_bin_dir, redis_server

SERVICES_DIR = ".assessor-services"
STATUS_FILE = "services.json"
SOCKET_DIRS = ("/tmp", "/run/postgresql")
INITDB_LIMITS = SandboxLimits(wall_seconds=120, cpu_seconds=110, memory_mb=2048, processes=32, workdir_mb=512)


class ServiceSetupError(SandboxError):
    """A server's prepared data folder could not be made (initdb failed): the run cannot offer that service."""


@dataclass(frozen=True)
class ServiceRun:
    """How each sandboxed test run of one assessment starts the plan's servers."""

    control: Path                  # read-only in the sandbox: the launcher and its spec
    area: Path                     # the run's writable work area, where data folders are copied
    spec: dict
    templates: dict[str, Path]     # service kind -> prepared data folder to copy before each run
    hosts: tuple[str, ...]
    tmpfs_dirs: tuple[str, ...]

    def command(self, argv: Sequence[str], out_dir: Path) -> list[str]:
        """`argv` preceded by the launcher, which starts the servers and reports on them in `out_dir`."""
        return [str(SYSTEM_PYTHON), "-I", "-S", str(self.control / "launcher.py"), str(self.control / "services.json"),
                str(out_dir / STATUS_FILE), "--", *argv]

    def reset(self) -> None:
        """Fresh data folders for the next run: no state is kept from one run (or assessment) to the next."""
        folder = self.area / SERVICES_DIR
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for kind, template in self.templates.items():
            shutil.copytree(template, folder / kind / "data", symlinks=True)
            os.chmod(folder / kind / "data", 0o700)
        for service in self.spec["services"]:
            Path(service.get("dir") or folder / service["kind"]).mkdir(parents=True, exist_ok=True)


def prepare_services(plan: ServicePlan, *, control: Path, area: Path, cache_dir: Path, shared_dir: Path,
                     unsafe_no_sandbox: bool = False) -> tuple[ServiceRun | None, list[str]]:
    """(the run's service setup, or None when nothing needs starting; problems that stop a service being offered).

    The launcher and its spec are written to `control`; nothing is started until a sandboxed run begins.
    """
    startable = plan.startable
    if not startable:
        return None, []
    services, templates, problems = [], {}, []
    folder = area / SERVICES_DIR
    for need in startable:
        entry = {"kind": need.kind.name, "port": need.port, "relays": sorted(need.ports - {need.port}),
                 "log": str(folder / f"{need.kind.name}.log")}
        if need.kind is POSTGRESQL:
            try:
                templates[need.kind.name] = postgresql_template(cache_dir=cache_dir, shared_dir=shared_dir,
                                                                unsafe_no_sandbox=unsafe_no_sandbox)
            except ServiceSetupError as error:
                need.problem = str(error)
                problems.append(str(error))
                continue
            entry.update(bin=str(postgresql_bin_dir()), data=str(folder / "postgresql" / "data"),
                         socket_dirs=list(SOCKET_DIRS), setup=postgresql_setup(need))
        elif need.kind is REDIS:
            entry.update(bin=str(redis_server()), dir=str(folder / "redis"), password=need.password)
        services.append(entry)
    if not services:
        return None, problems
    spec = {"services": services, "start_seconds": plan.start_seconds}
    control.mkdir(parents=True, exist_ok=True)
    os.chmod(control, 0o755)
    (control / "launcher.py").write_text(importlib.resources.files("assessor.services").joinpath("launcher.py")
                                         .read_text())
    (control / "services.json").write_text(json.dumps(spec))
    for name in ("launcher.py", "services.json"):
        os.chmod(control / name, 0o644)
    tmpfs = ("/run/postgresql",) if POSTGRESQL.name in templates else ()
    return ServiceRun(control=control, area=area, spec=spec, templates=templates, hosts=tuple(plan.hosts),
                      tmpfs_dirs=tmpfs), problems


def postgresql_setup(need: ServiceNeed) -> list[str]:
    """SQL run as the bootstrap superuser once the server answers: the roles and databases declared."""
    statements = []
    for user, password in sorted(need.users.items()):
        if user == "postgres":
            if password:
                statements.append(f"ALTER ROLE postgres PASSWORD {_literal(password)}")
            continue
        statements.append(f"CREATE ROLE {_identifier(user)} LOGIN SUPERUSER"
                          + (f" PASSWORD {_literal(password)}" if password else ""))
    for database, owner in sorted(need.databases.items()):
        if database in ("postgres", "template0", "template1"):
            continue
        statements.append(f"CREATE DATABASE {_identifier(database)} OWNER {_identifier(owner)}")
    return statements


def _identifier(name: str) -> str:
    return '"' + name.replace("\x00", "").replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("\x00", "").replace("'", "''") + "'"


def postgresql_template(*, cache_dir: Path, shared_dir: Path, unsafe_no_sandbox: bool = False) -> Path:
    """A data folder made once by initdb (inside the sandbox: initdb refuses to run as root) and kept in the
    service's cache; each run starts from a copy, which takes milliseconds where initdb takes a second."""
    binaries = postgresql_bin_dir()
    if binaries is None:
        raise ServiceSetupError("PostgreSQL is not installed on this worker (Debian: postgresql)")
    template = cache_dir / "services" / f"postgresql-{binaries.parent.name}"
    if (template / ".complete").is_file():
        return template / "data"
    template.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(template.parent / f"{template.name}.lock"):
        if (template / ".complete").is_file():
            return template / "data"
        shutil.rmtree(template, ignore_errors=True)
        shared_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(shared_dir, 0o711)
        scratch = Path(tempfile.mkdtemp(prefix="initdb-", dir=shared_dir))
        os.chmod(scratch, 0o711)
        try:
            started = time.monotonic()
            result = run_sandboxed(
                [str(binaries / "initdb"), "-D", str(scratch / "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--locale=C.UTF-8", "--no-sync", "--wal-segsize=1", "--no-instructions"],
                workdir=scratch, venv=None, limits=INITDB_LIMITS, unsafe_no_sandbox=unsafe_no_sandbox)
            if result.exit_code != 0 or not (scratch / "data" / "PG_VERSION").is_file():
                tail = " ".join(result.output.strip().splitlines()[-2:])[:300]
                raise ServiceSetupError(f"PostgreSQL's data folder could not be prepared (initdb: {tail})")
            shutil.copytree(scratch / "data", template / "data", symlinks=True)
            (template / ".complete").write_text(f"initdb took {time.monotonic() - started:.2f} s\n")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return template / "data"


def read_status(out_dir: Path) -> list[dict]:
    """What the launcher reported about each server (a claim from inside the sandbox, used only for notes)."""
    from assessor.measure.resultfiles import ResultFileError, read_json_result

    try:
        status = read_json_result(out_dir, STATUS_FILE, 256 * 1024)
    except ResultFileError:
        return []
    entries = status.get("services")
    clean = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            clean.append({
                "name": entry["name"][:40], "status": "started" if entry.get("status") == "started" else "failed",
                "port": entry.get("port") if isinstance(entry.get("port"), int) else None,
                "seconds": entry.get("seconds") if isinstance(entry.get("seconds"), (int, float)) else None,
                "problem": str(entry["problem"])[:300] if entry.get("problem") else None,
            })
    return clean
