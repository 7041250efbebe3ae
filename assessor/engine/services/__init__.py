"""Services a capstone's tests need (PostgreSQL, Redis...) and the environment they run with: what the project
declares, decided into a plan; `runtime` starts the plan inside each sandboxed run."""

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from assessor.engine.manifest import Manifest
from assessor.engine.services.declarations import (
    ContainerService, Declarations, TestStep, choose_test_step, read_declarations, resolve_expressions,
)
from assessor.engine.services.servers import (
    ALL_KINDS, AWS, MYSQL, POSTGRESQL, RABBITMQ, REDIS, ServerKind, availability, image_port,
    is_auxiliary, kind_for_image, kind_for_name,
)
from assessor.engine.services.unreachable import AbsentService, Blame, blame_for

__all__ = ["AbsentService", "Blame", "blame_for", "ServiceNeed", "ServicePlan", "ServicePolicy", "plan_services",
           "read_declarations", "choose_test_step", "TestStep", "Declarations"]

# Names that always point at the sandbox's loopback, as CI and compose setups use them.
STANDARD_HOSTS = ("postgres", "postgresql", "redis", "db", "database", "cache", "mysql", "mariadb", "rabbitmq",
                  "broker", "memcached", "mailhog", "mailpit", "smtp", "localstack", "nats", "mosquitto")
# Credentials the tests use against an AWS emulator when the project declares none (the emulator accepts any).
AWS_DEFAULTS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
DEFAULT_START_SECONDS = 30.0


@dataclass(frozen=True)
class ServicePolicy:
    """What a rubric says about services: which must or must not be used, and how long start-up may take."""

    require: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()
    start_seconds: float = DEFAULT_START_SECONDS
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ServiceNeed:
    """One server the tests need, with everything the declarations say about it."""

    kind: ServerKind
    sources: list[str] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)
    users: dict[str, str] = field(default_factory=dict)      # roles (PostgreSQL, MySQL, RabbitMQ) and passwords
    databases: dict[str, str] = field(default_factory=dict)  # database (or RabbitMQ vhost) -> owner
    password: str | None = None                             # Redis requirepass; MySQL's root password
    problem: str | None = None                              # why it cannot be provided here
    hosts: set[str] = field(default_factory=set)            # the names the declarations reach it by
    published: dict[int, int] = field(default_factory=dict)  # a published port -> the container's port behind it

    @property
    def port(self) -> int:
        """The port the server itself listens on: its default when declared, else the lowest declared."""
        if self.kind.default_port in self.ports or not self.ports:
            return self.kind.default_port
        return min(self.ports)

    def relays(self) -> list[tuple[int, int]]:
        """(port the tests may use, port of the server behind it) for every declared port but the server's own."""
        own = {self.port, *self.kind.own_ports}
        pairs = []
        for port in sorted(self.ports - own):
            target = self.published.get(port, self.port)
            pairs.append((port, target if target in own else self.port))
        return pairs

    def to_dict(self) -> dict:
        return {"name": self.kind.name, "label": self.kind.label, "sources": list(self.sources),
                "ports": sorted(self.ports | {self.port}), "available": self.problem is None,
                "problem": self.problem}


@dataclass
class ServicePlan:
    """The servers to start and the environment the tests get (nothing of the worker's own environment)."""

    needs: list[ServiceNeed] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    env_sources: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    start_seconds: float = DEFAULT_START_SECONDS
    # The app's own servers a compose file runs beside its backing services: the assessment runs the tests, not
    # the app, so tests that call one are counted apart like those needing an absent server.
    app_servers: list[AbsentService] = field(default_factory=list)

    @property
    def startable(self) -> list[ServiceNeed]:
        return [need for need in self.needs if need.problem is None]

    @property
    def missing(self) -> list[ServiceNeed]:
        return [need for need in self.needs if need.problem is not None]

    def absent(self, statuses: list[dict]) -> list[AbsentService]:
        """The servers the tests declared that a run did not have: not provided here, or failed to start."""
        failed = {status["name"]: status for status in statuses if status["status"] != "started"}
        return [AbsentService(label=need.kind.label, kind=need.kind.name,
                              ports=tuple(sorted(need.ports | ({need.port} if need.port else set()))),
                              hosts=tuple(sorted(need.hosts)))
                for need in self.needs if need.problem is not None or need.kind.name in failed] + self.app_servers

    def absence_notes(self, statuses: list[dict]) -> list[str]:
        """One line per server the run did not have, saying why, for the report."""
        notes = [f"{need.kind.label} ({'; '.join(need.sources[:2])}) is not available here: {need.problem}; the "
                 f"tests that need it are counted apart" for need in self.missing]
        notes += [f"{status['name']} did not start in the sandbox ({status['problem']}); the tests that need it are "
                  f"counted apart" for status in statuses if status["status"] != "started"]
        return notes

    def to_dict(self) -> dict:
        return {"needed": [need.to_dict() for need in self.needs], "env": sorted(self.env),
                "env_sources": list(self.env_sources), "hosts": list(self.hosts)}


def plan_services(declarations: Declarations, *, manifest: Manifest, policy: ServicePolicy,
                  test_step: TestStep | None) -> ServicePlan:
    """Decide the servers and environment for one run.

    Services come from the first place that declares them: the manifest, else the CI job that runs the tests (or
    the first job with services), else docker compose; database URLs in the environment add what they point at.
    Environment variables come from .env examples, the compose app, the CI job and step, the manifest and the
    rubric, each overriding the one before.
    """
    plan = ServicePlan(start_seconds=policy.start_seconds, notes=list(declarations.notes))
    _collect_env(plan, declarations, manifest, policy, test_step)
    needs: dict[str, ServiceNeed] = {}
    hosts: list[str] = [*STANDARD_HOSTS]
    if manifest.services is not None:
        for request in manifest.services:
            kind = kind_for_name(request.name)
            if kind is None:
                known = ", ".join(kind.name for kind in ALL_KINDS)
                plan.notes.append(f"{manifest.source}: {request.name!r} is not a service this installation knows "
                                  f"(known: {known}); ignored")
                continue
            need = needs.setdefault(kind.name, ServiceNeed(kind))
            need.sources.append(f"{manifest.source} services")
            need.ports.update(request.ports)
            if kind in (POSTGRESQL, MYSQL, RABBITMQ) and request.user:
                need.users[request.user] = request.password or ""
                need.databases[request.database or request.user] = request.user
            elif kind is REDIS and request.password:
                need.password = request.password
    else:
        containers = _containers(declarations, test_step)
        for container in containers:
            hosts.append(container.name)
            kind = kind_for_image(container.image)
            if kind is None and _is_app(container, declarations):
                _add_app_server(plan, container)
                continue
            if kind is None:
                if container.image and not is_auxiliary(container.image):
                    plan.notes.append(f"{container.source}: image {container.image} is not a service this "
                                      f"installation knows; not started")
                continue
            need = needs.setdefault(kind.name, ServiceNeed(kind))
            need.sources.append(f"{container.source} ({container.image})")
            need.hosts.add(container.name)
            _apply_container(need, container)
            if not container.ports and kind.default_port:
                need.ports.add(image_port(container.image) or kind.default_port)
    for key, value in plan.env.items():
        _apply_url(key, value, needs, hosts)
    for name in policy.require:
        kind = kind_for_name(name)
        if kind is not None and kind.name not in needs:
            needs[kind.name] = ServiceNeed(kind, sources=["required by the rubric"])
    for need in list(needs.values()):
        if need.kind.name in policy.forbid or any(alias in policy.forbid for alias in need.kind.aliases):
            plan.notes.append(f"the rubric does not allow {need.kind.label}; it was not started "
                              f"(declared in {'; '.join(need.sources[:2])})")
            del needs[need.kind.name]
            continue
        need.problem = availability(need.kind)
    plan.needs = sorted(needs.values(), key=lambda need: need.kind.name)
    if AWS.name in needs and needs[AWS.name].problem is None:
        for key, value in AWS_DEFAULTS.items():
            plan.env.setdefault(key, value)
    plan.hosts = list(dict.fromkeys(host for host in hosts if _plain_host(host)))
    return plan


def _collect_env(plan: ServicePlan, declarations: Declarations, manifest: Manifest, policy: ServicePolicy,
                 test_step: TestStep | None) -> None:
    layers: list[tuple[str | None, dict[str, str]]] = [
        (declarations.dotenv_source, declarations.dotenv),
        (declarations.compose_source, declarations.compose_app_env),
    ]
    if test_step is not None:
        env = resolve_expressions(test_step.env, test_step.job.services, plan.notes, test_step.source)
        layers.append((test_step.source, env))
    layers += [(manifest.source, manifest.env), ("the rubric", policy.env)]
    for source, values in layers:
        if values and source:
            plan.env.update(values)
            plan.env_sources.append(source)


def _containers(declarations: Declarations, test_step: TestStep | None) -> list[ContainerService]:
    if test_step is not None and test_step.job.services:
        return list(test_step.job.services)
    if test_step is None:
        for job in declarations.jobs:
            if job.services:
                return list(job.services)
    return list(declarations.compose_services)


def _add_app_server(plan: ServicePlan, container: ContainerService) -> None:
    """The app's own server: reached by its published ports (and container ports that are no common default)."""
    ports = {published for published, _ in container.ports if published}
    ports |= {target for _, target in container.ports if target >= 1024}
    if ports:
        plan.app_servers.append(AbsentService(label=f"the app's own server ({container.source})", kind="app",
                                              ports=tuple(sorted(ports)), hosts=()))


def _is_app(container: ContainerService, declarations: Declarations) -> bool:
    return any(key in declarations.compose_app_env for key in container.env) or not container.image


def _apply_container(need: ServiceNeed, container: ContainerService) -> None:
    for published, target in container.ports:
        need.ports.add(target)
        if published:
            need.ports.add(published)
            need.published.setdefault(published, target)
    env = container.env
    if need.kind is MYSQL:
        for prefix in ("MARIADB_", "MYSQL_"):
            user, password = env.get(f"{prefix}USER"), env.get(f"{prefix}PASSWORD", "")
            database = env.get(f"{prefix}DATABASE")
            if user and user != "root":
                need.users.setdefault(user, password)
            if database:
                need.databases.setdefault(database, user if user and user != "root" else "root")
            if env.get(f"{prefix}ROOT_PASSWORD") and need.password is None:
                need.password = env[f"{prefix}ROOT_PASSWORD"]
    elif need.kind is RABBITMQ:
        user = env.get("RABBITMQ_DEFAULT_USER") or env.get("RABBITMQ_USERNAME")
        if user:
            need.users.setdefault(user, env.get("RABBITMQ_DEFAULT_PASS") or env.get("RABBITMQ_PASSWORD") or "")
        vhost = env.get("RABBITMQ_DEFAULT_VHOST") or env.get("RABBITMQ_VHOST")
        if vhost:
            need.databases.setdefault(vhost, user or "guest")
    elif need.kind is POSTGRESQL:
        user = env.get("POSTGRES_USER") or env.get("POSTGRESQL_USERNAME") or "postgres"
        password = env.get("POSTGRES_PASSWORD") or env.get("POSTGRESQL_PASSWORD") or ""
        database = env.get("POSTGRES_DB") or env.get("POSTGRESQL_DATABASE") or user
        need.users.setdefault(user, password)
        need.databases.setdefault(database, user)
    elif need.kind is REDIS:
        match = re.search(r"--requirepass\s+(\S+)", container.command)
        need.password = need.password or env.get("REDIS_PASSWORD") or (match.group(1) if match else None)


def _apply_url(key: str, value: str, needs: dict[str, ServiceNeed], hosts: list[str]) -> None:
    """A database URL in the environment: its server is needed, with its port, user and database."""
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    kind = next((kind for kind in ALL_KINDS if scheme.split("+", 1)[0] in kind.schemes), None)
    if kind is None:
        return
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return
    host = parts.hostname or "localhost"
    if _is_remote_address(host):
        return
    hosts.append(host)
    need = needs.setdefault(kind.name, ServiceNeed(kind))
    need.sources.append(f"the URL in {key}")
    if host not in ("localhost", "127.0.0.1", "::1"):
        need.hosts.add(host)
    need.ports.add(port or kind.default_port)
    if kind is POSTGRESQL:
        user = unquote(parts.username or "postgres")
        database = unquote(parts.path.lstrip("/").split("/")[0]) or user
        need.users.setdefault(user, unquote(parts.password or ""))
        need.databases.setdefault(database, user)
    elif kind is MYSQL:
        user = unquote(parts.username or "root")
        database = unquote(parts.path.lstrip("/").split("/")[0])
        if user == "root":
            need.password = need.password or unquote(parts.password or "")
        else:
            need.users.setdefault(user, unquote(parts.password or ""))
        if database:
            need.databases.setdefault(database, user)
    elif kind is RABBITMQ:
        user = unquote(parts.username or "guest")
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        if user != "guest" or parts.password not in (None, "guest"):
            need.users.setdefault(user, unquote(parts.password or ""))
        if vhost != "/":
            need.databases.setdefault(vhost, user)
    elif kind is REDIS and parts.password and not need.password:
        need.password = unquote(parts.password)


def _is_remote_address(host: str) -> bool:
    """An IP literal that is not loopback: it cannot be the sandbox's own server."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_loopback and not address.is_unspecified


def _plain_host(host: str) -> bool:
    """A host name /etc/hosts can map to the loopback (not an address, not localhost itself)."""
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        pass
    return bool(re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*", host)) \
        and host != "localhost"
