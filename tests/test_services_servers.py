"""Capstones whose tests need MariaDB, RabbitMQ, a mail catcher, AWS emulation, Memcached, NATS or MQTT, declared the
way projects declare them, assessed end to end: each server started inside the real sandbox from what the
declaration says (users, passwords, databases, vhosts, ports, host names), and the tests passing against it."""

import os

import pytest

from assessor.engine import sandbox
from assessor.config import resolve_paths
from assessor.engine.intake import SourcePolicy
from assessor.engine.pipeline import PipelineSettings, assess
from assessor.engine.rubric import find_rubric
from tests.sandbox_fixtures import fresh_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox.bubblewrap_available() and not os.environ.get("CI"),
                       reason="bubblewrap is not available on this machine"),
]


@pytest.fixture(scope="module")
def rubric():
    return find_rubric("senior-backend-capstone", resolve_paths().rubrics)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return PipelineSettings(work_root=fresh_dir("work"), cache_dir=tmp_path_factory.mktemp("cache"),
                            source_policy=SourcePolicy(allow_local=True), history=None)


ORDERS_MYSQL = '''\
import os
from urllib.parse import urlsplit

import pymysql


def connect():
    url = urlsplit(os.environ["DATABASE_URL"])
    return pymysql.connect(host=url.hostname, port=url.port, user=url.username, password=url.password,
                           database=url.path.lstrip("/"), autocommit=True)


def place(item, quantity):
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS orders (id INT AUTO_INCREMENT PRIMARY KEY, item TEXT, qty INT)")
        cursor.execute("INSERT INTO orders (item, qty) VALUES (%s, %s)", (item, quantity))
        cursor.execute("SELECT SUM(qty) FROM orders WHERE item = %s", (item,))
        return int(cursor.fetchone()[0])
'''
ORDERS_MYSQL_TESTS = '''\
import pymysql

from orders.store import place


def test_orders_add_up():
    assert place("pen", 2) == 2
    assert place("pen", 3) == 5


def test_root_has_the_declared_password():
    pymysql.connect(host="mysql", port=3306, user="root", password="rootpw").close()
'''
MYSQL_COMPOSE = """\
services:
  api:
    build: .
    environment:
      DATABASE_URL: mysql://shop:secret@mysql:3306/shop
  mysql:
    image: mysql:8.0
    environment:
      MYSQL_ROOT_PASSWORD: rootpw
      MYSQL_DATABASE: shop
      MYSQL_USER: shop
      MYSQL_PASSWORD: secret
"""

EVENTS_AMQP = '''\
import os

import pika


def round_trip(body):
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    channel = connection.channel()
    channel.queue_declare(queue="orders")
    channel.basic_publish(exchange="", routing_key="orders", body=body)
    method, _properties, received = channel.basic_get(queue="orders", auto_ack=True)
    connection.close()
    return received
'''
EVENTS_AMQP_TESTS = '''\
from events.bus import round_trip


def test_a_message_comes_back():
    assert round_trip(b"order-1") == b"order-1"
'''
RABBIT_WORKFLOW = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    services:
      rabbitmq:
        image: rabbitmq:3.12
        env:
          RABBITMQ_DEFAULT_USER: shop
          RABBITMQ_DEFAULT_PASS: hunter2
          RABBITMQ_DEFAULT_VHOST: orders
        ports: ["5672:5672"]
    steps:
      - uses: actions/checkout@v4
      - run: pytest
        env:
          AMQP_URL: amqp://shop:hunter2@localhost:5672/orders
"""

MAIL_AND_QUEUE = '''\
import json
import os
import smtplib
import urllib.request
from email.message import EmailMessage

import boto3
import psycopg


def record_order(sku):
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS orders (sku text)")
        connection.execute("INSERT INTO orders VALUES (%s)", (sku,))
        return connection.execute("SELECT count(*) FROM orders WHERE sku = %s", (sku,)).fetchone()[0]


def notify(address, sku):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "shop@example.org", address, f"Out of stock: {sku}"
    message.set_content(f"{sku} is out of stock")
    with smtplib.SMTP(os.environ["SMTP_HOST"], int(os.environ["SMTP_PORT"]), timeout=5) as server:
        server.send_message(message)


def mails_about(sku):
    url = f"http://{os.environ['SMTP_HOST']}:8025/api/v2/search?kind=containing&query={sku}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)["items"]


def enqueue(body):
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=body)
    return sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"]
'''
MAIL_AND_QUEUE_TESTS = '''\
from shop.outbox import enqueue, mails_about, notify, record_order


def test_an_order_is_stored():
    assert record_order("pen") == 1


def test_the_mail_is_caught_and_read_back_through_the_catchers_api():
    notify("stock@example.org", "sku-42")
    mail = mails_about("sku-42")[0]
    assert mail["Raw"]["From"] == "shop@example.org" and mail["Raw"]["To"] == ["stock@example.org"]
    assert "Out of stock: sku-42" in mail["Raw"]["Data"]


def test_the_queue_hands_the_order_back():
    assert enqueue("order-7") == "order-7"
'''
MAIL_COMPOSE = """\
services:
  app:
    build: .
    environment:
      DATABASE_URL: postgresql://shop:secret@postgres:5432/shop
      SMTP_HOST: mailhog
      SMTP_PORT: "1025"
      AWS_ENDPOINT_URL: http://localstack:4566
    ports: ["5005:80"]
  postgres:
    image: postgres:16
    environment: {POSTGRES_USER: shop, POSTGRES_PASSWORD: secret, POSTGRES_DB: shop}
    ports: ["54321:5432"]
  mailhog:
    image: mailhog/mailhog
    ports: ["11025:1025", "18025:8025"]
  localstack:
    image: localstack/localstack:3
    environment:
      SERVICES: sqs
"""

WIRE_TESTS = '''\
import socket


def talk(host, port, payload, until):
    with socket.create_connection((host, port), timeout=5) as connection:
        if payload:
            connection.sendall(payload)
        answer = b""
        while until not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


def test_memcached_keeps_a_value():
    answer = talk("cache", 11211, b"set stock 0 60 2\\r\\n42\\r\\nget stock\\r\\n", b"END")
    assert b"STORED" in answer and b"42" in answer


def test_nats_greets():
    assert talk("events", 4222, b"", b"\\r\\n").startswith(b"INFO")


def test_mqtt_accepts_a_client():
    connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0])
    assert talk("telemetry", 1883, connect, b"\\x00\\x00")[:2] == b"\\x20\\x02"
'''
WIRE_COMPOSE = """\
services:
  cache:
    image: memcached:1.6
  events:
    image: nats:2.10
  telemetry:
    image: eclipse-mosquitto:2
"""


@pytest.mark.parametrize("files, passed, servers", [
    ({"docker-compose.yml": MYSQL_COMPOSE, "requirements.txt": "pymysql>=1.1\n", "orders/__init__.py": "",
      "orders/store.py": ORDERS_MYSQL, "tests/test_store.py": ORDERS_MYSQL_TESTS}, 2, ["mysql"]),
    ({".github/workflows/ci.yml": RABBIT_WORKFLOW, "requirements.txt": "pika>=1.3\n", "events/__init__.py": "",
      "events/bus.py": EVENTS_AMQP, "tests/test_bus.py": EVENTS_AMQP_TESTS}, 1, ["rabbitmq"]),
    ({"docker-compose.yml": MAIL_COMPOSE, "requirements.txt": "boto3>=1.34\npsycopg[binary]>=3.1\n",
      "shop/__init__.py": "", "shop/outbox.py": MAIL_AND_QUEUE, "tests/test_outbox.py": MAIL_AND_QUEUE_TESTS}, 3,
     ["aws", "postgresql", "smtp"]),
    ({"docker-compose.yml": WIRE_COMPOSE, "requirements.txt": "", "wire/__init__.py": "VERSION = 1\n",
      "tests/test_wire.py": WIRE_TESTS}, 3, ["memcached", "mqtt", "nats"]),
], ids=["mariadb-from-compose", "rabbitmq-from-ci", "postgresql-mail-catcher-and-sqs", "memcached-nats-mqtt"])
def test_declared_servers_are_started_and_the_tests_pass_against_them(make_repo, settings, rubric, files, passed,
                                                                      servers):
    report = assess(str(make_repo(files)), rubric, settings=settings)

    assert report.tests == {"passed": passed, "failed": 0, "errors": 0, "skipped": 0, "total": passed}, \
        report.output_tail
    started = report.services["started"]
    assert sorted(entry["name"] for entry in started) == servers
    assert all(entry["status"] == "started" and entry["seconds"] < 30 for entry in started), started
    assert not any("not available here" in note for note in report.notes)
    assert next(score for score in report.criteria if score.kind == "tests").status == "scored"
