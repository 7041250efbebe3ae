"""What real projects declare, read without running anything: dependencies, test commands, services, manifests."""

from pathlib import Path

import pytest

from assessor.engine.manifest import Manifest, read_manifest
from assessor.engine.services import ServicePolicy, choose_test_step, plan_services, read_declarations
from assessor.engine.services.servers import image_repository, kind_for_image
from assessor.engine.toolchains import Unrecognised, detect
from assessor.engine.toolchains.python.dependencies import poetry_constraint, read_requirements
from assessor.engine.toolchains.python.pytest_config import selection_from_command
from tests.conftest import write_tree


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    write_tree(tmp_path, files)
    return tmp_path


# ---------------------------------------------------------------- Poetry constraints

@pytest.mark.parametrize("constraint, expected", [
    ("^1.2.3", ">=1.2.3,<2.0.0"),
    ("^1.2", ">=1.2,<2.0"),
    ("^1", ">=1,<2"),
    ("^0.2.3", ">=0.2.3,<0.3.0"),
    ("^0.0.3", ">=0.0.3,<0.0.4"),
    ("^0", ">=0,<1"),
    ("~1.2.3", ">=1.2.3,<1.3"),
    ("~1.2", ">=1.2,<1.3"),
    ("~1", ">=1,<2"),
    ("*", ""),
    ("1.2.*", "==1.2.*"),
    ("1.2.3", "==1.2.3"),
    (">=1.2 <1.5", ">=1.2,<1.5"),
    (">= 1.2, < 1.5", ">=1.2,<1.5"),
    ("~=1.4", "~=1.4"),
    ("^1.0 || ^2.0", ">=2.0,<3.0"),
    ("not a version", None),
])
def test_poetry_constraints_translate_to_pep440(constraint, expected):
    assert poetry_constraint(constraint) == expected


def test_poetry_dependencies_groups_and_table_forms(tmp_path):
    root = tree(tmp_path, {"pyproject.toml": """
        [tool.poetry]
        name = "shop-api"
        [tool.poetry.dependencies]
        python = "^3.9"
        fastapi = "^0.79.1"
        pydantic = { version = "^1.9", extras = ["email"] }
        tomli = { version = "^2.0", python = "<3.11" }
        internal = { path = "../internal" }
        extra-only = { version = "^1", optional = true }
        [tool.poetry.dev-dependencies]
        pytest = "^7.1"
        [tool.poetry.group.test.dependencies]
        httpx = "~0.23.0"
        [tool.poetry.group.docs]
        optional = true
        [tool.poetry.group.docs.dependencies]
        sphinx = "*"
    """})
    found = read_requirements(root)
    assert found.requirements == [
        "fastapi>=0.79.1,<0.80.0", "pydantic[email]>=1.9,<2.0", 'tomli>=2.0,<3.0 ; (python_version < "3.11")',
        "pytest>=7.1,<8.0", "httpx>=0.23.0,<0.24",
    ]
    assert found.own_name == "shop-api" and not found.needs_metadata_build
    assert any("'internal'" in problem and "registry" in problem for problem in found.problems)
    assert any("docs" in note and "optional" in note for note in found.notes)


# ---------------------------------------------------------------- other declarations

def test_requirements_folder_with_includes_and_constraints(tmp_path):
    root = tree(tmp_path, {
        "requirements/base.txt": "flask>=3\n-c constraints.txt\n",
        "requirements/constraints.txt": "werkzeug==3.0.1\n",
        "requirements/dev.txt": "-r base.txt\npytest\n",
        "requirements/production.txt": "gunicorn\n",
    })
    found = read_requirements(root)
    assert found.requirements == ["flask>=3", "pytest"]      # production.txt is not what tests need
    assert found.constraints == ["werkzeug==3.0.1"]
    assert found.sources == ["requirements/base.txt", "requirements/dev.txt"]


def test_pipfile_setup_cfg_and_pdm(tmp_path):
    root = tree(tmp_path, {
        "Pipfile": """
            [packages]
            flask = "*"
            requests = {version = ">=2.31", extras = ["socks"]}
            mine = {path = ".", editable = true}
            [dev-packages]
            pytest = "==8.3.5"
        """,
        "setup.cfg": """
            [metadata]
            name = shop
            [options]
            install_requires =
                click>=8  # the CLI
                pyyaml
            [options.extras_require]
            test = freezegun
            docs = sphinx
        """,
        "pyproject.toml": """
            [project]
            name = "shop"
            dynamic = ["dependencies"]
            [tool.pdm.dev-dependencies]
            lint = ["ruff"]
        """,
        "setup.py": "raise SystemExit('never run on the host')\n",
    })
    found = read_requirements(root)
    assert found.requirements == ["ruff", "flask", "requests[socks]>=2.31", "pytest==8.3.5", "click>=8", "pyyaml",
                                  "freezegun"]
    assert not found.needs_metadata_build  # setup.cfg declares install_requires statically


def test_setup_py_only_project_needs_its_metadata_built(tmp_path):
    found = read_requirements(tree(tmp_path, {"setup.py": "from setuptools import setup\nsetup(name='x')\n"}))
    assert found.needs_metadata_build and found.requirements == []


@pytest.mark.parametrize("lock, text", [
    ("uv.lock", """
        version = 1
        [[package]]
        name = "shop"
        version = "0.1.0"
        source = { editable = "." }
        [[package]]
        name = "Flask"
        version = "3.0.3"
        source = { registry = "https://pypi.org/simple" }
        [[package]]
        name = "numpy"
        version = "1.26.4"
        source = { registry = "https://pypi.org/simple" }
        [[package]]
        name = "numpy"
        version = "2.0.0"
        source = { registry = "https://pypi.org/simple" }
    """),
    ("poetry.lock", """
        [[package]]
        name = "flask"
        version = "3.0.3"
        category = "main"
        optional = false
        [[package]]
        name = "private"
        version = "1.0"
        [package.source]
        type = "git"
        url = "https://example.org/private.git"
    """),
    ("pdm.lock", """
        [[package]]
        name = "flask"
        version = "3.0.3"
    """),
])
def test_lock_files_pin_versions_as_constraints(tmp_path, lock, text):
    root = tree(tmp_path, {"requirements.txt": "flask\n", lock: text})
    found = read_requirements(root)
    assert found.requirements == ["flask"]
    assert found.constraints == ["flask==3.0.3"]  # one version each; never a git source; never the project
    assert found.lock == lock


# ---------------------------------------------------------------- test commands

@pytest.mark.parametrize("command, paths, options, python_files", [
    ("pytest", (), (), ()),
    ("poetry run pytest tests/unit -q --cov=shop -x", ("tests/unit",), ("-q",), ()),
    ("uv run --frozen python -m pytest tests -p pytest_asyncio", ("tests",), ("-p", "pytest_asyncio"), ()),
    ("DATABASE_URL=x coverage run -m pytest tests/unit::test_one", ("tests/unit",), (), ()),
    ("pip install -e . && pytest tests/unit", ("tests/unit",), (), ()),
    ("python -m unittest discover -s tests -p '*_spec.py'", ("tests",), (), ("*_spec.py",)),
    ("python -m unittest", (), (), ("test*.py",)),
    ("python3 -m unittest tests.unit.test_cart", ("tests/unit/test_cart.py",), (), ("test*.py",)),
])
def test_declared_test_commands_keep_paths_and_harmless_options(tmp_path, command, paths, options, python_files):
    root = tree(tmp_path, {"tests/unit/test_cart.py": "", "tests/conftest.py": ""})
    selection = selection_from_command(command, root=root, source="ci")
    assert (selection.paths, selection.options, selection.python_files) == (paths, options, python_files)


def test_commands_that_run_no_tests_are_not_test_commands(tmp_path):
    for command in ("pip install -r requirements.txt", "flake8 .", "python manage.py test", "docker compose up"):
        assert selection_from_command(command, root=tmp_path, source="ci") is None


def test_scripts_make_targets_and_working_directories_are_followed(tmp_path):
    checkout = tree(tmp_path, {
        "backend/scripts/test": "#!/bin/sh\nset -e\npytest tests/api --cov=app \"$@\"\n",
        "backend/tests/api/test_x.py": "",
        "backend/Makefile": "lint:\n\truff .\ntest: lint\n\t@python -m pytest tests\n",
    })
    root = checkout / "backend"
    by_script = selection_from_command("poetry run ./scripts/test", root=root, base=root, checkout=checkout,
                                       source="ci")
    assert by_script.paths == ("tests/api",)
    by_make = selection_from_command("make test", root=root, base=root, checkout=checkout, source="ci")
    assert by_make.paths == ("tests",)
    from_top = selection_from_command("cd backend && pytest tests/api", root=root, base=checkout,
                                      checkout=checkout, source="ci")
    assert from_top.paths == ("tests/api",)


# ---------------------------------------------------------------- services and environment

WORKFLOW = """
    name: tests
    on: [push]
    env:
      APP_ENV: test
    jobs:
      lint:
        runs-on: ubuntu-latest
        steps:
          - run: ruff check .
      test:
        runs-on: ubuntu-latest
        services:
          postgres:
            image: postgres:15-alpine
            env:
              POSTGRES_USER: shop
              POSTGRES_PASSWORD: secret
              POSTGRES_DB: shop_test
            ports: ["5433:5432"]
          cache:
            image: redis:7
        steps:
          - uses: actions/checkout@v4
          - name: Run tests
            env:
              DATABASE_URL: postgresql://shop:secret@localhost:${{ job.services.postgres.ports[5432] }}/shop_test
              API_TOKEN: ${{ secrets.TOKEN }}
            run: |
              pip install -r requirements.txt
              pytest tests -q
"""


def python_step(checkout):
    def recognise(run, folder):
        return selection_from_command(run, root=checkout, source="") is not None
    return recognise


def test_github_actions_services_env_and_test_step(tmp_path):
    checkout = tree(tmp_path, {".github/workflows/ci.yml": WORKFLOW, "tests/test_a.py": ""})
    declarations = read_declarations(checkout, checkout)
    step = choose_test_step(declarations, python_step(checkout))
    assert step.source == ".github/workflows/ci.yml job 'test', step 'Run tests'"
    plan = plan_services(declarations, manifest=Manifest(), policy=ServicePolicy(), test_step=step)
    assert plan.env == {"APP_ENV": "test", "DATABASE_URL": "postgresql://shop:secret@localhost:5432/shop_test"}
    assert any("API_TOKEN" in note and "secrets" in note for note in plan.notes)
    postgres, redis = plan.needs
    assert (postgres.kind.name, postgres.port, sorted(postgres.ports)) == ("postgresql", 5432, [5432, 5433])
    assert postgres.users == {"shop": "secret"} and postgres.databases == {"shop_test": "shop"}
    assert redis.kind.name == "redis" and redis.port == 6379
    assert {"postgres", "cache"} <= set(plan.hosts) and plan.absent([]) == []


def test_compose_backing_services_app_environment_and_missing_servers(tmp_path):
    checkout = tree(tmp_path, {
        "docker-compose.yml": """
            services:
              api:
                build: .
                environment:
                  - DB_HOST=db
                  - REDIS_URL=redis://:${REDIS_PASSWORD:-hunter2}@cache:6379/0
                env_file: .env.docker
              db:
                image: docker.io/library/postgres:16@sha256:abc
              cache:
                image: bitnami/redis:7.2
              mongo:
                image: mongo:6
              grafana:
                image: grafana/grafana
              worker:
                image: acme/thing:1
        """,
        ".env.docker": "SECRET_KEY=dev\n",
        ".env.example": "DATABASE_URL=postgresql://app:app@localhost:5432/app\nDEBUG=1\n",
    })
    declarations = read_declarations(checkout, checkout)
    plan = plan_services(declarations, manifest=Manifest(), policy=ServicePolicy(), test_step=None)
    assert plan.env == {"DATABASE_URL": "postgresql://app:app@localhost:5432/app", "DEBUG": "1", "SECRET_KEY": "dev",
                        "DB_HOST": "db", "REDIS_URL": "redis://:hunter2@cache:6379/0"}
    by_name = {need.kind.name: need for need in plan.needs}
    assert set(by_name) == {"postgresql", "redis", "mongodb"}
    assert by_name["postgresql"].users == {"postgres": "", "app": "app"}
    assert by_name["redis"].password == "hunter2"
    assert by_name["mongodb"].problem == "this installation does not provide MongoDB"
    assert plan.absence_notes([]) == ["MongoDB (docker-compose.yml service 'mongo' (mongo:6)) is not available "
                                      "here: this installation does not provide MongoDB; the tests that need it "
                                      "are counted apart"]
    assert [(service.label, service.ports, service.hosts) for service in plan.absent([])] == [
        ("MongoDB", (27017,), ("mongo",))]
    assert any("acme/thing:1" in note for note in plan.notes)           # unknown image: said, not started
    assert not any("grafana" in note for note in plan.notes)            # known auxiliary: not missed


def test_manifest_services_and_rubric_rules_win(tmp_path):
    checkout = tree(tmp_path, {
        "capstone.toml": """
            root = "service"
            test = "pytest -q service/tests"
            [services.postgresql]
            port = 6543
            user = "ledger"
            password = "pw"
            [env]
            FEATURE_FLAGS = "on"
            RETRIES = 3
        """,
        "docker-compose.yml": "services:\n  mongo:\n    image: mongo:6\n",
    })
    manifest = read_manifest(checkout)
    assert (manifest.root, manifest.test, manifest.env) == ("service", "pytest -q service/tests",
                                                            {"FEATURE_FLAGS": "on", "RETRIES": "3"})
    declarations = read_declarations(checkout, checkout)
    plan = plan_services(declarations, manifest=manifest,
                         policy=ServicePolicy(require=("redis",), env={"FEATURE_FLAGS": "off"}), test_step=None)
    assert [need.kind.name for need in plan.needs] == ["postgresql", "redis"]   # the manifest replaces compose
    assert plan.needs[0].port == 6543 and plan.needs[0].users == {"ledger": "pw"}
    assert plan.env["FEATURE_FLAGS"] == "off"                                   # the rubric has the last word
    forbidden = plan_services(declarations, manifest=manifest, policy=ServicePolicy(forbid=("postgresql",)),
                              test_step=None)
    assert forbidden.needs == [] and any("does not allow PostgreSQL" in note for note in forbidden.notes)


@pytest.mark.parametrize("text, problem", [
    ('root = "../elsewhere"', "must be a folder inside the repository"),
    ('services = "postgres"', "services must be a list"),
    ('[env]\n"BAD NAME" = "x"', "not a valid variable name"),
    ("colour = 'blue'", "unknown field 'colour'"),
    ("root = [", "not valid TOML"),
])
def test_bad_manifests_are_notes_not_errors(tmp_path, text, problem):
    manifest = read_manifest(tree(tmp_path, {"capstone.toml": text}))
    assert any(problem in line for line in manifest.problems), manifest.problems


@pytest.mark.parametrize("image, repository, kind", [
    ("postgres:15", "postgres", "postgresql"),
    ("docker.io/library/postgres:16-alpine@sha256:00", "library/postgres", "postgresql"),
    ("ghcr.io/pgvector/pgvector:pg16", "pgvector/pgvector", "postgresql"),
    ("redis/redis-stack-server:latest", "redis/redis-stack-server", "redis"),
    ("localhost:5000/mongo", "mongo", "mongodb"),
    ("rabbitmq:3-management", "rabbitmq", "rabbitmq"),
    ("mariadb:11", "mariadb", "mysql"),
    ("mysql/mysql-server:8.0", "mysql/mysql-server", "mysql"),
    ("memcached:1.6-alpine", "memcached", "memcached"),
    ("mailhog/mailhog", "mailhog/mailhog", "smtp"),
    ("axllent/mailpit:latest", "axllent/mailpit", "smtp"),
    ("localstack/localstack:3", "localstack/localstack", "aws"),
    ("softwaremill/elasticmq-native", "softwaremill/elasticmq-native", "aws"),
    ("amazon/dynamodb-local", "amazon/dynamodb-local", "aws"),
    ("minio/minio", "minio/minio", "aws"),
    ("nats:2.10", "nats", "nats"),
    ("eclipse-mosquitto:2", "eclipse-mosquitto", "mqtt"),
    ("confluentinc/cp-kafka:7.5.0", "confluentinc/cp-kafka", "kafka"),
    ("nginx:alpine", "nginx", None),
])
def test_images_map_to_servers(image, repository, kind):
    assert image_repository(image) == repository
    found = kind_for_image(image)
    assert (found.name if found else None) == kind


# ---------------------------------------------------------------- which toolchain, which folder

@pytest.mark.parametrize("files, root, markers", [
    ({"pyproject.toml": "[project]\nname='x'\n", "x/__init__.py": ""}, ".", ("pyproject.toml",)),
    ({"project/requirements.txt": "flask\n", "project/app.py": "", "README.md": "#"}, "project",
     ("project/requirements.txt",)),
    ({"shop/__init__.py": "", "tests/test_shop.py": ""}, ".", ("shop/__init__.py",)),
    ({"app.py": "", "tests.py": ""}, ".", ("app.py", "tests.py")),
])
def test_python_project_root(tmp_path, files, root, markers):
    module, detection = detect(tree(tmp_path, files), manifest=Manifest())
    assert (module.NAME, detection.root, detection.detected_from) == ("python", root, markers)


def test_several_projects_need_a_name_unless_one_has_tests(tmp_path):
    checkout = tree(tmp_path, {"api/requirements.txt": "flask\n", "worker/requirements.txt": "rq\n"})
    found = detect(checkout, manifest=Manifest())
    assert isinstance(found, Unrecognised) and "api/, worker/" in found.reason and "capstone.toml" in found.reason
    write_tree(checkout, {"worker/tests/test_jobs.py": ""})
    module, detection = detect(checkout, manifest=Manifest())
    assert detection.root == "worker" and "the only one with tests" in detection.notes[0]
    module, detection = detect(checkout, manifest=Manifest(root="api"))
    assert detection.root == "api"


@pytest.mark.parametrize("files, said", [
    ({"go.mod": "module example.org/shop\n", "main.go": "package main\n"}, "a Go module (go.mod)"),
    ({"service/Cargo.toml": "[package]\n"}, "a Rust crate (service/Cargo.toml)"),
    ({"README.md": "# notes\n"}, "no project this installation recognises"),
])
def test_unsupported_languages_are_named(tmp_path, files, said):
    found = detect(tree(tmp_path, files), manifest=Manifest())
    assert isinstance(found, Unrecognised) and found.reason.startswith(said)
    assert "this installation assesses Python" in found.reason


def test_workflow_text_is_data_only(tmp_path):
    """A workflow that is not YAML, or is huge, is a note; nothing in it is run."""
    checkout = tree(tmp_path, {".github/workflows/bad.yml": "jobs: [unclosed\n",
                               ".github/workflows/big.yml": "x: " + "a" * (600 * 1024) + "\n"})
    declarations = read_declarations(checkout, checkout)
    assert declarations.jobs == [] and any("bad.yml is not valid YAML" in note for note in declarations.notes)



# ---------------------------------------------------------------- .env files

@pytest.mark.parametrize("text, expected", [
    ('FILE_UPLOAD_STRATEGY="direct" # pass-thru\n', {"FILE_UPLOAD_STRATEGY": "direct"}),
    ("export NODE_ENV='development' # or production\n", {"NODE_ENV": "development"}),
    ("PLAIN=value # a comment\n", {"PLAIN": "value"}),
    ("HASH=a#b\n", {"HASH": "a#b"}),
    ('KEY="-----BEGIN-----\nline\n-----END-----"\n', {"KEY": "-----BEGIN-----\nline\n-----END-----"}),
    ('ESCAPED="tab\\there"\n', {"ESCAPED": "tab\there"}),
    ("HOST=db\nURL=postgres://${HOST}:5432/app\n", {"HOST": "db", "URL": "postgres://db:5432/app"}),
    ("ONLY_A_NAME\nEMPTY=\n", {"EMPTY": ""}),
    ("# nothing but a comment\n\n", {}),
])
def test_dotenv_values_read_as_python_dotenv_reads_them(text, expected):
    from assessor.engine.services.declarations import parse_dotenv

    assert parse_dotenv(text) == expected


def test_dotenv_expansion_never_reads_the_workers_environment(monkeypatch):
    from assessor.engine.services.declarations import parse_dotenv

    monkeypatch.setenv("ASSESSOR_SECRET_KEY", "do-not-leak")
    assert parse_dotenv("LEAK=${ASSESSOR_SECRET_KEY}\nHOME_DIR=$HOME\n") == {"LEAK": "", "HOME_DIR": "$HOME"}


def test_quoted_env_values_with_comments_reach_the_tests_unquoted(tmp_path):
    root = tree(tmp_path, {
        "pyproject.toml": "[project]\nname='svc'\nversion='1'\n",
        ".env.example": 'FILE_UPLOAD_STRATEGY="direct" # pass-thru\nDEBUG=off # never on in tests\n',
        "tests/test_x.py": "def test_x():\n    pass\n",
    })
    plan = plan_services(read_declarations(root, root), manifest=Manifest(), policy=ServicePolicy(), test_step=None)
    assert plan.env == {"FILE_UPLOAD_STRATEGY": "direct", "DEBUG": "off"}


COMPOSE_SERVICES = """
services:
  api:
    build: .
    environment:
      DATABASE_URL: mysql://shop:secret@mysql:3306/shop
      AMQP_URL: amqp://orders:hunter2@broker:5672/orders
      SMTP_HOST: mailhog
      AWS_ENDPOINT_URL: http://localstack:4566
  mysql:
    image: mysql:8
    environment:
      MYSQL_ROOT_PASSWORD: rootpw
      MYSQL_DATABASE: shop
      MYSQL_USER: shop
      MYSQL_PASSWORD: secret
  broker:
    image: rabbitmq:3.12-management
    environment:
      RABBITMQ_DEFAULT_USER: orders
      RABBITMQ_DEFAULT_PASS: hunter2
      RABBITMQ_DEFAULT_VHOST: orders
  mailhog:
    image: mailhog/mailhog
    ports: ["1025:1025", "8025:8025"]
  localstack:
    image: localstack/localstack
  queue:
    image: softwaremill/elasticmq-native
  cache:
    image: memcached:1.6
  events:
    image: nats:2
  telemetry:
    image: eclipse-mosquitto:2
"""


def test_compose_services_of_every_kind_are_started_with_their_declared_settings(tmp_path):
    checkout = tree(tmp_path, {"docker-compose.yml": COMPOSE_SERVICES})
    plan = plan_services(read_declarations(checkout, checkout), manifest=Manifest(), policy=ServicePolicy(),
                         test_step=None)
    by_name = {need.kind.name: need for need in plan.needs}
    assert set(by_name) == {"mysql", "rabbitmq", "smtp", "aws", "memcached", "nats", "mqtt"}
    assert plan.absent([]) == []                                       # every one can be started here
    mysql, rabbitmq = by_name["mysql"], by_name["rabbitmq"]
    assert (mysql.users, mysql.databases, mysql.password, mysql.port) == ({"shop": "secret"}, {"shop": "shop"},
                                                                         "rootpw", 3306)
    assert (rabbitmq.users, rabbitmq.databases) == ({"orders": "hunter2"}, {"orders": "orders"})
    assert by_name["smtp"].ports == {1025, 8025} and by_name["smtp"].port == 1025
    assert by_name["aws"].ports == {4566, 9324} and by_name["aws"].port == 4566  # elasticmq answered by the same
    assert {"mysql", "broker", "mailhog", "localstack", "queue", "cache", "events", "telemetry"} <= set(plan.hosts)
    # An AWS emulator accepts any credentials; the tests get some when the project declares none.
    assert (plan.env["AWS_ACCESS_KEY_ID"], plan.env["AWS_DEFAULT_REGION"]) == ("test", "us-east-1")


def test_mysql_and_amqp_urls_add_their_server_with_its_credentials(tmp_path):
    checkout = tree(tmp_path, {".env.example": "DATABASE_URL=mysql+pymysql://root:rootpw@localhost:3307/shop\n"
                                               "BROKER_URL=amqp://guest:guest@localhost:5672//\n"})
    plan = plan_services(read_declarations(checkout, checkout), manifest=Manifest(), policy=ServicePolicy(),
                         test_step=None)
    by_name = {need.kind.name: need for need in plan.needs}
    assert (by_name["mysql"].password, by_name["mysql"].databases, by_name["mysql"].port) == (
        "rootpw", {"shop": "root"}, 3307)
    assert (by_name["rabbitmq"].users, by_name["rabbitmq"].databases) == ({}, {})
