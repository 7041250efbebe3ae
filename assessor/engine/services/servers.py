"""The servers a worker can start for a test run (Debian's packages, and the service's own tools for a mail catcher
and AWS emulation), and the ones it knows but cannot."""

import glob
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
# Debian's /usr/sbin/rabbitmq-server only lets root or the rabbitmq user start it; the script behind it runs as anyone.
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
# The servers that run from the service's own tools (aiosmtpd, moto), which it installs itself.
FROM_SERVICE_TOOLS = ("smtp", "aws")
# The one executable of each server a worker starts straight from its Debian package.
EXECUTABLES = {"redis": "redis-server", "mysql": "mariadbd", "memcached": "memcached", "nats": "nats-server",
               "mqtt": "mosquitto"}


@dataclass(frozen=True)
class ServerKind:
    """One kind of server: how declarations name it, its default port, and where its binaries are."""

    name: str
    label: str
    default_port: int | None
    images: tuple[str, ...]      # regular expressions on the image name (without registry, tag or digest)
    aliases: tuple[str, ...] = ()
    schemes: tuple[str, ...] = ()  # URL schemes in the environment that point at it
    package: str | None = None     # the Debian package that provides it, for the operator
    large_address_space: bool = False  # a runtime that reserves far more memory than it uses (Erlang)
    own_ports: tuple[int, ...] = ()    # other ports the server answers on itself (a mail catcher's HTTP API)

    def matches_image(self, image: str) -> bool:
        repository = image_repository(image)
        return any(re.fullmatch(pattern, repository) for pattern in self.images)


POSTGRESQL = ServerKind("postgresql", "PostgreSQL", 5432,
                        (r"(library/)?postgres", r"postgis/postgis", r"bitnami/postgresql(-repmgr)?",
                         r"timescale/timescaledb(-ha)?", r"ankane/pgvector", r"pgvector/pgvector",
                         r"cimg/postgres", r"circleci/postgres"),
                        aliases=("postgres", "postgresql", "pg", "pgsql"),
                        schemes=("postgres", "postgresql", "postgis"), package="postgresql")
REDIS = ServerKind("redis", "Redis", 6379,
                   (r"(library/)?redis", r"bitnami/redis", r"redis/redis-stack(-server)?", r"valkey/valkey",
                    r"eqalpha/keydb", r"cimg/redis", r"circleci/redis"),
                   aliases=("redis", "valkey", "keydb"), schemes=("redis", "rediss"), package="redis-server")
MYSQL = ServerKind("mysql", "MySQL/MariaDB", 3306,
                   (r"(library/)?mysql", r"(library/)?mariadb", r"bitnami/mysql", r"bitnami/mariadb",
                    r"mysql/mysql-server", r"cimg/mysql", r"cimg/mariadb", r"circleci/mysql", r"percona(/.*)?"),
                   aliases=("mysql", "mariadb"), schemes=("mysql", "mariadb"), package="mariadb-server")
RABBITMQ = ServerKind("rabbitmq", "RabbitMQ", 5672, (r"(library/)?rabbitmq", r"bitnami/rabbitmq"),
                      aliases=("rabbitmq", "amqp"), schemes=("amqp", "amqps"), package="rabbitmq-server",
                      large_address_space=True)
MEMCACHED = ServerKind("memcached", "Memcached", 11211, (r"(library/)?memcached", r"bitnami/memcached"),
                       aliases=("memcached", "memcache"), schemes=("memcached", "memcache"), package="memcached")
SMTP = ServerKind("smtp", "an SMTP mail catcher", 1025,
                  (r"mailhog/mailhog", r"axllent/mailpit", r"maildev/maildev", r"djfarrelly/maildev",
                   r"schickling/mailcatcher", r"rnwood/smtp4dev", r"reachfive/fake-smtp-server"),
                  aliases=("smtp", "mail", "mailhog", "mailpit", "maildev", "mailcatcher"), schemes=("smtp",),
                  own_ports=(8025, 1080))
AWS = ServerKind("aws", "AWS emulation (moto: S3, SQS, SNS, DynamoDB...)", 4566,
                 (r"localstack/localstack(-pro)?", r"softwaremill/elasticmq(-native)?", r"amazon/dynamodb-local",
                  r"minio/minio", r"bitnami/minio", r"motoserver/moto"),
                 aliases=("aws", "localstack", "moto", "sqs", "s3", "sns", "dynamodb", "elasticmq", "minio"))
NATS = ServerKind("nats", "NATS", 4222, (r"(library/)?nats", r"bitnami/nats"), aliases=("nats",),
                  schemes=("nats",), package="nats-server")
MQTT = ServerKind("mqtt", "an MQTT broker (Mosquitto)", 1883,
                  (r"eclipse-mosquitto", r"(library/)?eclipse-mosquitto", r"emqx/emqx", r"emqx", r"hivemq/hivemq.*",
                   r"vernemq/vernemq"),
                  aliases=("mqtt", "mosquitto", "emqx"), schemes=("mqtt", "mqtts"), package="mosquitto")
# Known to tests, not started here: the tests that need one are counted apart.
UNAVAILABLE = (
    ServerKind("mongodb", "MongoDB", 27017, (r"(library/)?mongo", r"bitnami/mongodb", r"mongodb/mongodb-.*"),
               aliases=("mongo", "mongodb"), schemes=("mongodb", "mongodb+srv")),
    ServerKind("kafka", "Kafka", 9092, (r"confluentinc/cp-kafka", r"bitnami/kafka", r"apache/kafka.*",
                                        r"wurstmeister/kafka", r"redpandadata/redpanda", r"vectorized/redpanda"),
               aliases=("kafka", "redpanda")),
    ServerKind("elasticsearch", "Elasticsearch", 9200, (r"(library/)?elasticsearch", r".*elasticsearch/elasticsearch",
                                                        r"opensearchproject/opensearch", r"bitnami/elasticsearch"),
               aliases=("elasticsearch", "opensearch")),
    ServerKind("zookeeper", "ZooKeeper", 2181, (r"(library/)?zookeeper", r"confluentinc/cp-zookeeper",
                                                r"bitnami/zookeeper"), aliases=("zookeeper",)),
    ServerKind("cassandra", "Cassandra", 9042, (r"(library/)?cassandra", r"bitnami/cassandra"), aliases=("cassandra",)),
)
STARTABLE = (POSTGRESQL, REDIS, MYSQL, RABBITMQ, MEMCACHED, SMTP, AWS, NATS, MQTT)
ALL_KINDS = STARTABLE + UNAVAILABLE
# The port a container listens on when its declaration publishes none (images of one kind that differ).
IMAGE_PORTS = {r"softwaremill/elasticmq(-native)?": 9324, r"amazon/dynamodb-local": 8000,
               r"(minio|bitnami)/minio": 9000, r"(maildev|djfarrelly)/maildev": 1025, r"rnwood/smtp4dev": 25,
               r"schickling/mailcatcher": 1025}
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


def image_port(image: str) -> int | None:
    repository = image_repository(image)
    return next((port for pattern, port in IMAGE_PORTS.items() if re.fullmatch(pattern, repository)), None)


def postgresql_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = []
    for path in glob.glob("/usr/lib/postgresql/*/bin"):
        version = Path(path).parent.name
        if version.isdigit() and (Path(path) / "postgres").is_file() and (Path(path) / "initdb").is_file():
            found.append((int(version), Path(path)))
    return max(found)[1] if found else None


def system_binary(name: str) -> Path | None:
    found = shutil.which(name, path=SYSTEM_PATH)
    return Path(found) if found else None


def redis_server() -> Path | None:
    return system_binary("redis-server")


def server_executable(kind: ServerKind) -> Path | None:
    """What a kind of server Debian packages starts from on this worker (PostgreSQL: its bin folder), or None."""
    if kind.name == "postgresql":
        return postgresql_bin_dir()
    if kind.name == "rabbitmq":
        return RABBITMQ_SERVER if RABBITMQ_SERVER.is_file() else None
    return system_binary(EXECUTABLES[kind.name]) if kind.name in EXECUTABLES else None


def availability(kind: ServerKind) -> str | None:
    """None when this worker can start `kind`, else why not (for the report)."""
    if kind.name in FROM_SERVICE_TOOLS:
        return None
    if kind not in STARTABLE:
        return f"this installation does not provide {kind.label}"
    if server_executable(kind) is None:
        return f"{kind.label} is not installed on this worker (Debian: {kind.package})"
    return None
