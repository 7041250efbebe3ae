"""Tell a test that failed because a declared server was not there from a test that failed on its own."""

import re
from collections.abc import Callable
from dataclasses import dataclass

# What drivers and the OS say when nothing listens at an address or a name does not resolve.
NOT_REACHED = re.compile(
    r"connection refused|ECONNREFUSED|Errno 111\b|Errno 99\b|could not connect to server|"
    r"Can't connect to (MySQL|MariaDB) server|Name or service not known|nodename nor servname|"
    r"Temporary failure in name resolution|getaddrinfo (ENOTFOUND|EAI_AGAIN)|Errno -[235]\b|"
    r"ServerSelectionTimeoutError|Mongo(ose)?ServerSelectionError|MongoNetworkError|NoBrokersAvailable|"
    r"AMQPConnectionError|connect ETIMEDOUT|Failed to establish a new connection|No connection could be made",
    re.IGNORECASE,
)

# Words a driver of that kind of server puts in its errors, beside the port and the declared host names.
CLIENT_WORDS: dict[str, tuple[str, ...]] = {
    "postgresql": ("postgres", "psycopg", "asyncpg", "pg8000"),
    "redis": ("redis", "ioredis"),
    "mysql": ("mysql", "mariadb", "pymysql", "mysqlclient", "aiomysql", "sequelize"),
    "mongodb": ("mongo", "mongoose", "pymongo", "motor"),
    "rabbitmq": ("amqp", "rabbitmq", "pika", "kombu", "aio_pika", "amqplib"),
    "kafka": ("kafka", "kafkajs", "redpanda"),
    "elasticsearch": ("elasticsearch", "opensearch", "elastic_transport"),
    "memcached": ("memcache", "pymemcache", "memjs"),
    "smtp": ("smtp", "smtplib", "nodemailer", "flask_mail", "mailhog", "mailpit"),
    "localstack": ("botocore", "boto3", "aws-sdk", "localstack", "endpoint url"),
    "minio": ("minio", "botocore", "boto3", "aws-sdk"),
    "nats": ("nats",),
    "mqtt": ("mqtt", "paho", "mosquitto"),
    "zookeeper": ("zookeeper", "kazoo"),
    "cassandra": ("cassandra",),
}


@dataclass(frozen=True)
class AbsentService:
    """A server the tests declared that the run did not have: how its failures read."""

    label: str                # as a reader says it: "MongoDB"
    kind: str                 # servers.ServerKind.name
    ports: tuple[int, ...]
    hosts: tuple[str, ...]    # names the declarations give it (compose service names)

    def explains(self, text: str) -> bool:
        """Whether a failure's text shows it could not reach this server."""
        if not NOT_REACHED.search(text):
            return False
        lowered = text.lower()
        if any(re.search(rf"(?<![\d.]){port}(?!\d)", text) for port in self.ports):
            return True
        words = CLIENT_WORDS.get(self.kind, ()) + self.hosts
        return any(re.search(rf"(?<![a-z0-9_]){re.escape(word.lower())}", lowered) for word in words)


Blame = Callable[[str], str | None]


def blame_for(absent: list[AbsentService]) -> Blame | None:
    """A function naming the absent server a failure's text shows was unreachable (else None), or None when every
    declared server was there."""
    if not absent:
        return None

    def blame(text: str) -> str | None:
        for service in absent:
            if service.explains(text):
                return service.label
        return None

    return blame
