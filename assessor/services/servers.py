"""The servers a worker can start for a test run (Debian's PostgreSQL and Redis), and the ones it knows but cannot."""

import glob
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"


@dataclass(frozen=True)
class ServerKind:
    """One kind of server: how declarations name it, its default port, and where its binaries are."""

    name: str
    label: str
    default_port: int | None
    images: tuple[str, ...]      # regular expressions on the image name (without registry, tag or digest)
    aliases: tuple[str, ...] = ()

    def matches_image(self, image: str) -> bool:
        repository = image_repository(image)
        return any(re.fullmatch(pattern, repository) for pattern in self.images)


POSTGRESQL = ServerKind("postgresql", "PostgreSQL", 5432,
                        (r"(library/)?postgres", r"postgis/postgis", r"bitnami/postgresql(-repmgr)?",
                         r"timescale/timescaledb(-ha)?", r"ankane/pgvector", r"pgvector/pgvector",
                         r"cimg/postgres", r"circleci/postgres"),
                        aliases=("postgres", "postgresql", "pg", "pgsql"))
REDIS = ServerKind("redis", "Redis", 6379,
                   (r"(library/)?redis", r"bitnami/redis", r"redis/redis-stack(-server)?", r"valkey/valkey",
                    r"eqalpha/keydb", r"cimg/redis", r"circleci/redis"),
                   aliases=("redis", "valkey", "keydb"))
# Known to tests, not started here: the test run that needs one is reported as such.
UNAVAILABLE = (
    ServerKind("mysql", "MySQL/MariaDB", 3306, (r"(library/)?mysql", r"(library/)?mariadb", r"bitnami/mysql",
                                                 r"bitnami/mariadb", r"mysql/mysql-server"),
               aliases=("mysql", "mariadb")),
    ServerKind("mongodb", "MongoDB", 27017, (r"(library/)?mongo", r"bitnami/mongodb", r"mongodb/mongodb-.*"),
               aliases=("mongo", "mongodb")),
    ServerKind("rabbitmq", "RabbitMQ", 5672, (r"(library/)?rabbitmq", r"bitnami/rabbitmq"), aliases=("rabbitmq",)),
    ServerKind("kafka", "Kafka", 9092, (r"confluentinc/cp-kafka", r"bitnami/kafka", r"apache/kafka.*",
                                        r"wurstmeister/kafka", r"redpandadata/redpanda", r"vectorized/redpanda"),
               aliases=("kafka", "redpanda")),
    ServerKind("elasticsearch", "Elasticsearch", 9200, (r"(library/)?elasticsearch", r".*elasticsearch/elasticsearch",
                                                        r"opensearchproject/opensearch", r"bitnami/elasticsearch"),
               aliases=("elasticsearch", "opensearch")),
    ServerKind("memcached", "Memcached", 11211, (r"(library/)?memcached", r"bitnami/memcached"), aliases=("memcached",)),
    ServerKind("smtp", "an SMTP mail catcher", 1025, (r"mailhog/mailhog", r"axllent/mailpit", r"maildev/maildev",
                                                       r"schickling/mailcatcher"), aliases=("mailhog", "mailpit")),
    ServerKind("localstack", "LocalStack (AWS emulation)", 4566, (r"localstack/localstack",), aliases=("localstack",)),
    ServerKind("minio", "MinIO (S3)", 9000, (r"minio/minio", r"bitnami/minio"), aliases=("minio",)),
    ServerKind("nats", "NATS", 4222, (r"(library/)?nats",), aliases=("nats",)),
    ServerKind("zookeeper", "ZooKeeper", 2181, (r"(library/)?zookeeper", r"confluentinc/cp-zookeeper",
                                                r"bitnami/zookeeper"), aliases=("zookeeper",)),
    ServerKind("cassandra", "Cassandra", 9042, (r"(library/)?cassandra", r"bitnami/cassandra"), aliases=("cassandra",)),
)
STARTABLE = (POSTGRESQL, REDIS)
ALL_KINDS = STARTABLE + UNAVAILABLE
# Containers that run beside an app but that no test talks to: not started, and not missed.
AUXILIARY_IMAGES = re.compile(
    r"(library/)?(nginx|traefik|caddy|haproxy|httpd)|.*grafana.*|.*prometheus.*|.*jaeger.*|.*zipkin.*|"
    r"(dpage/)?pgadmin4?|adminer|.*redis-?commander.*|.*kibana.*|portainer/.*|.*otel.*|.*opentelemetry.*|"
    r"(library/)?(busybox|alpine|ubuntu|debian)|.*/?flower|.*loki.*|.*promtail.*|.*cadvisor.*|.*node-exporter.*|"
    r"swaggerapi/.*|.*mongo-express.*|.*kafka-ui.*|.*pgbouncer.*"
)


def image_repository(image: str) -> str:
    """"docker.io/library/postgres:15-alpine@sha256:..." -> "library/postgres"; lower-case."""
    name = image.strip().lower().split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rindex(":")]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]  # a registry host
    return "/".join(parts)


def kind_for_image(image: str) -> ServerKind | None:
    for kind in ALL_KINDS:
        if kind.matches_image(image):
            return kind
    return None


def kind_for_name(name: str) -> ServerKind | None:
    lowered = name.strip().lower()
    for kind in ALL_KINDS:
        if lowered == kind.name or lowered in kind.aliases:
            return kind
    return None


def is_auxiliary(image: str) -> bool:
    return bool(AUXILIARY_IMAGES.fullmatch(image_repository(image)))


def postgresql_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = []
    for path in glob.glob("/usr/lib/postgresql/*/bin"):
        version = Path(path).parent.name
        if version.isdigit() and (Path(path) / "postgres").is_file() and (Path(path) / "initdb").is_file():
            found.append((int(version), Path(path)))
    return max(found)[1] if found else None


def redis_server() -> Path | None:
    found = shutil.which("redis-server", path=SYSTEM_PATH)
    return Path(found) if found else None


def availability(kind: ServerKind) -> str | None:
    """None when this worker can start `kind`, else why not (for the report)."""
    if kind is POSTGRESQL:
        return None if postgresql_bin_dir() else "PostgreSQL is not installed on this worker (Debian: postgresql)"
    if kind is REDIS:
        return None if redis_server() else "Redis is not installed on this worker (Debian: redis-server)"
    return f"this installation does not provide {kind.label}"
