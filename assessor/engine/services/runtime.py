"""Start a service plan inside each sandboxed run: throwaway data folders from prepared templates, the service's own
server tools, and the launcher that brings the servers up on the sandbox's own loopback before the tests run."""

import hashlib
import importlib.resources
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from assessor.engine import registries
from assessor.errors import SandboxError
from assessor.engine.filelock import exclusive_lock
from assessor.engine.sandbox import SYSTEM_PYTHON, SandboxLimits, open_to_sandbox, run_sandboxed
from assessor.engine.services import ServiceNeed, ServicePlan
from assessor.engine.services.servers import postgresql_bin_dir, server_executable, system_binary

SERVICES_DIR = ".assessor-services"
STATUS_FILE = "services.json"
SOCKET_DIRS = ("/tmp", "/run/postgresql")
MYSQL_SOCKET_DIR = "/run/mysqld"
INITDB_LIMITS = SandboxLimits(wall_seconds=120, cpu_seconds=110, memory_mb=2048, processes=32, workdir_mb=512)
# The service's own tools for the servers Debian has no package of: a mail catcher and AWS emulation.
SERVICE_TOOLS = ("moto[server]==5.2.6", "aiosmtpd==1.4.6")
TOOLS_TIMEOUT_SECONDS = 300


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
    readonly: tuple[Path, ...] = ()      # the service's own tools the servers run from
    large_address_space: bool = False    # a server reserves far more memory than it uses (Erlang)

    def command(self, argv: Sequence[str], out_dir: Path) -> list[str]:
        """`argv` preceded by the launcher, which starts the servers and reports on them in `out_dir`."""
        return [str(SYSTEM_PYTHON), "-I", "-S", str(self.control / "launcher.py"), str(self.control / "services.json"),
                str(out_dir / STATUS_FILE), "--", *argv]

    def limits(self, limits: SandboxLimits) -> SandboxLimits:
        """The run's limits with room for the servers' address space; memory is then held by what is really used."""
        if not self.large_address_space:
            return limits
        return replace(limits, address_space_mb=max(limits.address_space_mb or 0, limits.memory_mb,
                                                    LARGE_ADDRESS_SPACE_MB))

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


@dataclass
class _Setup:
    """What one server needs for its runs: its spec entry, a data folder to copy, tools and folders to see."""

    entry: dict
    template: Path | None = None
    readonly: tuple[Path, ...] = ()
    tmpfs: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Context:
    folder: Path          # the services' folder inside the run's area
    cache_dir: Path
    shared_dir: Path
    unsafe_no_sandbox: bool


LARGE_ADDRESS_SPACE_MB = 64 * 1024


def prepare_services(plan: ServicePlan, *, control: Path, area: Path, cache_dir: Path, shared_dir: Path,
                     unsafe_no_sandbox: bool = False) -> tuple[ServiceRun | None, list[str]]:
    """(the run's service setup, or None when nothing needs starting; problems that stop a service being offered).

    The launcher and its spec are written to `control`; nothing is started until a sandboxed run begins.
    """
    startable = plan.startable
    if not startable:
        return None, []
    services, templates, problems = [], {}, []
    readonly: list[Path] = []
    tmpfs: list[str] = []
    context = _Context(folder=area / SERVICES_DIR, cache_dir=cache_dir, shared_dir=shared_dir,
                       unsafe_no_sandbox=unsafe_no_sandbox)
    for need in startable:
        entry = {"kind": need.kind.name, "port": need.port, "relays": [list(pair) for pair in need.relays()],
                 "log": str(context.folder / f"{need.kind.name}.log"), "dir": str(context.folder / need.kind.name)}
        try:
            setup = PREPARERS[need.kind.name](need, context)
        except ServiceSetupError as error:
            need.problem = str(error)
            problems.append(str(error))
            continue
        entry.update(setup.entry)
        if setup.template is not None:
            templates[need.kind.name] = setup.template
        readonly += [path for path in setup.readonly if path not in readonly]
        tmpfs += [path for path in setup.tmpfs if path not in tmpfs]
        services.append(entry)
    if not services:
        return None, problems
    spec = {"services": services, "start_seconds": plan.start_seconds}
    control.mkdir(parents=True, exist_ok=True)
    os.chmod(control, 0o755)
    (control / "launcher.py").write_text(importlib.resources.files("assessor.engine.services").joinpath("launcher.py")
                                         .read_text())
    (control / "mailcatcher.py").write_text(importlib.resources.files("assessor.engine.services")
                                            .joinpath("mailcatcher.py").read_text())
    (control / "services.json").write_text(json.dumps(spec))
    for name in ("launcher.py", "mailcatcher.py", "services.json"):
        os.chmod(control / name, 0o644)
    large = any(need.kind.large_address_space for need in startable if need.problem is None)
    return ServiceRun(control=control, area=area, spec=spec, templates=templates, hosts=tuple(plan.hosts),
                      tmpfs_dirs=tuple(tmpfs), readonly=tuple(readonly), large_address_space=large), problems


def warm_up(plan: ServicePlan, *, cache_dir: Path, shared_dir: Path, unsafe_no_sandbox: bool = False) -> None:
    """Make what the plan's servers start from (data folder templates, the service's tools) ahead of the run, so
    it overlaps with installing the dependencies. Problems are left for `prepare_services` to report."""
    context = _Context(folder=Path("/nonexistent"), cache_dir=cache_dir, shared_dir=shared_dir,
                       unsafe_no_sandbox=unsafe_no_sandbox)
    for need in plan.startable:
        try:
            PREPARERS[need.kind.name](need, context)
        except ServiceSetupError:
            continue


def _prepare_postgresql(need: ServiceNeed, context: _Context) -> _Setup:
    template = postgresql_template(cache_dir=context.cache_dir, shared_dir=context.shared_dir,
                                   unsafe_no_sandbox=context.unsafe_no_sandbox)
    return _Setup({"bin": str(postgresql_bin_dir()), "data": str(context.folder / "postgresql" / "data"),
                   "socket_dirs": list(SOCKET_DIRS), "setup": postgresql_setup(need)},
                  template=template, tmpfs=("/run/postgresql",))


def _prepare_redis(need: ServiceNeed, context: _Context) -> _Setup:
    return _Setup({"bin": str(server_executable(need.kind)), "password": need.password})


def _prepare_mysql(need: ServiceNeed, context: _Context) -> _Setup:
    template = mysql_template(cache_dir=context.cache_dir, shared_dir=context.shared_dir,
                              unsafe_no_sandbox=context.unsafe_no_sandbox)
    return _Setup({"bin": str(server_executable(need.kind)), "client": str(system_binary("mariadb")),
                   "data": str(context.folder / "mysql" / "data"), "socket": f"{MYSQL_SOCKET_DIR}/mysqld.sock",
                   "setup": mysql_setup(need)}, template=template, tmpfs=(MYSQL_SOCKET_DIR,))


def _prepare_rabbitmq(need: ServiceNeed, context: _Context) -> _Setup:
    user, password = next(iter(need.users.items()), ("guest", "guest"))
    vhost = next(iter(need.databases), "/")
    return _Setup({"bin": str(server_executable(need.kind)), "user": user, "password": password, "vhost": vhost})


def _prepare_executable(need: ServiceNeed, context: _Context) -> _Setup:
    return _Setup({"bin": str(server_executable(need.kind))})


def _prepare_tools(need: ServiceNeed, context: _Context) -> _Setup:
    tools = service_tools(shared_dir=context.shared_dir, cache_dir=context.cache_dir)
    entry = {"python": str(tools / "bin" / "python")}
    if need.kind.name == "smtp":
        entry["http_ports"] = list(need.kind.own_ports)
    return _Setup(entry, readonly=(tools,))


# One entry per kind of server the worker starts; the launcher has the same keys.
PREPARERS = {
    "postgresql": _prepare_postgresql,
    "redis": _prepare_redis,
    "mysql": _prepare_mysql,
    "rabbitmq": _prepare_rabbitmq,
    "memcached": _prepare_executable,
    "nats": _prepare_executable,
    "mqtt": _prepare_executable,
    "smtp": _prepare_tools,
    "aws": _prepare_tools,
}


def service_tools(*, shared_dir: Path, cache_dir: Path) -> Path:
    """A venv with the service's own server tools (moto's server, aiosmtpd), made once with uv from the package
    registry and kept read-only in the shared folder, where the sandbox can run it."""
    key = hashlib.sha256("\n".join(SERVICE_TOOLS).encode()).hexdigest()[:12]
    folder = shared_dir / "service-tools"
    target = folder / key
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o711)
    with exclusive_lock(folder / f"{key}.lock"):
        if (target / ".complete").is_file():
            return target
        shutil.rmtree(target, ignore_errors=True)
        try:
            uv, env = registries.uv_binary(), registries.uv_env(cache_dir)
            for argv in ([uv, "venv", "--quiet", "--no-config", "--python", str(SYSTEM_PYTHON), str(target)],
                         [uv, "pip", "install", "--quiet", "--no-config", "--only-binary", ":all:", "--link-mode",
                          "copy", "--python", str(target / "bin" / "python"), *SERVICE_TOOLS]):
                done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOLS_TIMEOUT_SECONDS, env=env)
                if done.returncode != 0:
                    reason = " ".join(done.stderr.strip().splitlines()[-2:])[:300]
                    raise ServiceSetupError(f"the service's server tools could not be installed ({reason})")
        except (OSError, subprocess.SubprocessError, registries.RegistryToolError) as error:
            raise ServiceSetupError(f"the service's server tools could not be installed ({error})") from None
        open_to_sandbox(target)
        (target / ".complete").write_text("\n".join(SERVICE_TOOLS) + "\n")
    return target


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


def mysql_setup(need: ServiceNeed) -> list[str]:
    """SQL run as root over the socket once MariaDB answers: the declared users (free to create the test
    databases a framework makes), databases, and root's password, the way the mysql and mariadb images do."""
    statements = []
    for user, password in sorted(need.users.items()):
        statements += [f"CREATE USER IF NOT EXISTS {_mysql_literal(user)}@'%' IDENTIFIED BY {_mysql_literal(password)}",
                       f"GRANT ALL PRIVILEGES ON *.* TO {_mysql_literal(user)}@'%' WITH GRANT OPTION"]
    for database in sorted(need.databases):
        statements.append(f"CREATE DATABASE IF NOT EXISTS {_mysql_identifier(database)}")
    root = _mysql_literal(need.password or "")
    # mariadb-install-db also makes root@127.0.0.1, @::1 and @<host>, which would win over root@'%' over TCP.
    statements += ["DELETE FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost'", "FLUSH PRIVILEGES",
                   f"CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY {root}",
                   "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION"]
    if need.password:
        statements.append(f"ALTER USER 'root'@'localhost' IDENTIFIED BY {root}")
    return statements


def _mysql_identifier(name: str) -> str:
    return "`" + name.replace("\x00", "").replace("`", "``") + "`"


def _mysql_literal(value: str) -> str:
    return "'" + value.replace("\x00", "").replace("\\", "\\\\").replace("'", "''") + "'"


def postgresql_template(*, cache_dir: Path, shared_dir: Path, unsafe_no_sandbox: bool = False) -> Path:
    """A data folder made once by initdb (inside the sandbox: initdb refuses to run as root) and kept in the
    service's cache; each run starts from a copy, which takes milliseconds where initdb takes a second."""
    binaries = postgresql_bin_dir()
    if binaries is None:
        raise ServiceSetupError("PostgreSQL is not installed on this worker (Debian: postgresql)")
    return _data_template(
        f"postgresql-{binaries.parent.name}", "PostgreSQL",
        lambda data: [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-sync", "--wal-segsize=1", "--no-instructions"],
        marker="PG_VERSION", cache_dir=cache_dir, shared_dir=shared_dir, unsafe_no_sandbox=unsafe_no_sandbox)


def mysql_template(*, cache_dir: Path, shared_dir: Path, unsafe_no_sandbox: bool = False) -> Path:
    """MariaDB's system tables, made once by mariadb-install-db inside the sandbox, copied for each run."""
    install = system_binary("mariadb-install-db")
    if install is None:
        raise ServiceSetupError("MySQL/MariaDB is not installed on this worker (Debian: mariadb-server)")
    return _data_template(
        "mariadb", "MariaDB",
        lambda data: [str(install), "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
                      "--skip-test-db", "--skip-name-resolve"],
        marker="mysql", cache_dir=cache_dir, shared_dir=shared_dir, unsafe_no_sandbox=unsafe_no_sandbox)


def _data_template(name: str, label: str, command, *, marker: str, cache_dir: Path, shared_dir: Path,
                   unsafe_no_sandbox: bool) -> Path:
    template = cache_dir / "services" / name
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
            result = run_sandboxed(command(scratch / "data"), workdir=scratch, venv=None, limits=INITDB_LIMITS,
                                   unsafe_no_sandbox=unsafe_no_sandbox)
            if result.exit_code != 0 or not (scratch / "data" / marker).exists():
                tail = " ".join(result.output.strip().splitlines()[-2:])[:300]
                raise ServiceSetupError(f"{label}'s data folder could not be prepared ({tail})")
            shutil.copytree(scratch / "data", template / "data", symlinks=True)
            (template / ".complete").write_text(f"prepared in {time.monotonic() - started:.2f} s\n")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return template / "data"


def read_status(out_dir: Path) -> list[dict]:
    """What the launcher reported about each server (a claim from inside the sandbox, used only for notes)."""
    from assessor.engine.measure.resultfiles import ResultFileError, read_json_result

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
