"""Alembic: a migrated fresh database has exactly the schema of the models; upgrading is safe to repeat; a
database made before migrations existed is adopted; the append-only events survive migration."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

import assessor.domain.models  # noqa: F401
from assessor.domain.db import init_db, make_engine
from assessor.domain.migrate import INITIAL_REVISION, current, head, upgrade


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def schema_differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def triggers(engine) -> set[str]:
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            rows = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        else:
            rows = connection.execute(text("SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                                           "WHERE c.relname = 'events' AND NOT t.tgisinternal "
                                           "AND c.relnamespace = to_regnamespace(current_schema())"))
        return {row[0] for row in rows}


def test_a_migrated_fresh_database_has_the_schema_of_the_models(engine):
    assert current(engine) is None
    before, after = upgrade(engine)
    assert (before, after) == (None, head())
    assert schema_differences(engine) == []
    assert set(SQLModel.metadata.tables) <= set(inspect(engine).get_table_names())


def test_migrated_and_created_databases_have_the_same_triggers(engine, database_url):
    upgrade(engine)
    migrated = triggers(engine)
    assert migrated
    other = make_engine(database_url.replace("assessor.db", "created.db")) if database_url.startswith("sqlite") else None
    if other is not None:  # on PostgreSQL the names are checked against what models.py declares below
        init_db(other)
        assert triggers(other) == migrated
        other.dispose()
    else:
        assert migrated == {"events_no_update_or_delete"}


def test_upgrading_again_changes_nothing(engine):
    upgrade(engine)
    assert upgrade(engine) == (head(), head())
    assert schema_differences(engine) == []


def test_a_database_created_without_migrations_is_adopted(engine):
    init_db(engine)  # tables made straight from the models, as `assessor init` did before there were migrations
    before, after = upgrade(engine)
    assert before == after == head()
    assert schema_differences(engine) == []


def test_accounts_made_at_the_first_revision_survive_the_upgrade(engine):
    assert upgrade(engine, INITIAL_REVISION) == (None, INITIAL_REVISION)
    with engine.begin() as connection:
        for email in ("a@example.org", "b@example.org"):
            connection.execute(text("INSERT INTO users (email, name, password_hash, role, active, created_at) "
                                    "VALUES (:email, '', 'x', 'learner', :yes, CURRENT_TIMESTAMP)"),
                               {"email": email, "yes": True})
    upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT session_token, notify_assessment, email_verified_at FROM users")).all()
    tokens = {row[0] for row in rows}
    assert len(tokens) == 2 and all(len(token) == 32 for token in tokens)  # each its own, none empty
    assert all(row[1] and row[2] is None for row in rows)
    assert schema_differences(engine) == []


@pytest.mark.parametrize("make_schema", [upgrade, init_db], ids=["migrated", "created"])
def test_events_stay_append_only(engine, make_schema):
    make_schema(engine)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO users (email, name, password_hash, role, active, created_at, session_token, "
            "notify_assessment, notify_review, notify_certificate, notify_digest) "
            "VALUES ('a@example.org', '', 'x', 'learner', true, CURRENT_TIMESTAMP, 't', true, true, true, true)"))
        connection.execute(text("INSERT INTO rubric_snapshots (sha256, rubric_id, version, source, created_at) "
                                "VALUES ('s', 'r', '1', '', CURRENT_TIMESTAMP)"))
        connection.execute(text("INSERT INTO submissions (user_id, rubric_id, course, created_at) "
                                "VALUES (1, 'r', 'c', CURRENT_TIMESTAMP)"))
        connection.execute(text(
            "INSERT INTO attempts (submission_id, user_id, number, rubric_id, rubric_version, rubric_sha256, course, "
            "source_url, status, review_state, reused_report, tries, dead_letter, created_at) "
            "VALUES (1, 1, 1, 'r', '1', 's', 'c', 'u', 'queued', 'open', false, 0, false, CURRENT_TIMESTAMP)"))
        connection.execute(text("INSERT INTO events (attempt_id, kind, detail, created_at) "
                                "VALUES (1, 'submitted', '', CURRENT_TIMESTAMP)"))
    for statement in ("UPDATE events SET kind = 'x'", "DELETE FROM events"):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(text(statement))


def test_the_db_upgrade_command_migrates_the_configured_database(database_url, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from assessor.cli import main

    monkeypatch.setenv("ASSESSOR_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("ASSESSOR_SECRET_KEY", "k")
    monkeypatch.setenv("ASSESSOR_DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"empty -> {head()}" in result.output
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert "(unchanged)" in result.output
    result = CliRunner().invoke(main, ["db", "current"])
    assert f"current {head()}" in result.output


def _segment(obj: dict) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _submission_of_the_one_user(run) -> tuple[int, int]:
    """(user id, submission id): a submission, and the rubric snapshot its attempts point at, as 0002 has them."""
    user = run("SELECT id FROM users").scalar_one()
    run("INSERT INTO submissions (user_id, rubric_id, course, created_at) VALUES (:u, 'r', 'c', CURRENT_TIMESTAMP)",
        u=user)
    run("INSERT INTO rubric_snapshots (sha256, rubric_id, version, source, created_at) "
        "VALUES (:h, 'r', '1', 'x', CURRENT_TIMESTAMP)", h="a" * 64)
    return user, run("SELECT id FROM submissions").scalar_one()


def test_certificates_signed_before_es256_keep_their_key_url_and_issuer(engine):
    """0003: each Ed25519 key keeps the URL verifiers already hold (read from a certificate it signed) and each
    certificate keeps the issuer id it was signed with, whatever ASSESSOR_PUBLIC_URL says later."""
    upgrade(engine, INITIAL_REVISION)
    with engine.begin() as connection:  # an account as the first revision has it
        connection.execute(text("INSERT INTO users (email, name, password_hash, role, active, created_at) "
                                "VALUES ('a@example.org', '', 'x', 'learner', :yes, CURRENT_TIMESTAMP)"), {"yes": True})
    upgrade(engine, "0002")
    old_kid, old_issuer = "T" * 43, "https://old-domain.example/issuer"
    token = ".".join([_segment({"alg": "EdDSA", "kid": f"{old_issuer}#{old_kid}", "typ": "JWT"}),
                      _segment({"iss": old_issuer, "id": "urn:uuid:x"}), "c2ln"])
    with engine.begin() as connection:
        run = lambda sql, **values: connection.execute(text(sql), values)  # noqa: E731
        user, submission = _submission_of_the_one_user(run)
        run("INSERT INTO attempts (submission_id, user_id, number, rubric_id, rubric_version, rubric_sha256, course, "
            "source_url, status, reused_report, review_state, tries, dead_letter, created_at) VALUES (:s, :u, 1, 'r', "
            "'1', :h, 'c', 'https://git.example.org/a.git', 'done', :no, 'approved', 1, :no, CURRENT_TIMESTAMP)",
            s=submission, u=user, no=False, h="a" * 64)
        attempt = run("SELECT id FROM attempts").scalar_one()
        run("INSERT INTO signing_keys (kid, public_jwk, private_key_path, active, created_at) "
            "VALUES (:kid, '{}', '/keys/old.pem', :yes, CURRENT_TIMESTAMP)", kid=old_kid, yes=True)
        run("INSERT INTO certificates (public_id, attempt_id, user_id, kid, token, pdf, status_list, status_index, "
            "issued_at) VALUES ('p', :a, :u, :kid, :token, :pdf, 1, 7, CURRENT_TIMESTAMP)",
            a=attempt, u=user, kid=old_kid, token=token, pdf=b"%PDF")
    upgrade(engine)
    with engine.connect() as connection:
        key = connection.execute(text("SELECT key_url, algorithm, compromised_at FROM signing_keys")).one()
        issuer = connection.execute(text("SELECT issuer_id FROM certificates")).scalar_one()
        tables = set(inspect(connection).get_table_names())
    assert tuple(key) == (f"{old_issuer}#{old_kid}", "EdDSA", None)
    assert issuer == old_issuer and {"module_results", "api_tokens"} <= tables
    assert schema_differences(engine) == []


def test_self_assessments_made_before_drafts_existed_count_as_submitted(engine):
    """0004: every self-assessment saved before drafts existed was a submitted one; its attempt says so."""
    upgrade(engine, INITIAL_REVISION)
    with engine.begin() as connection:  # an account as the first revision has it
        connection.execute(text("INSERT INTO users (email, name, password_hash, role, active, created_at) "
                                "VALUES ('a@example.org', '', 'x', 'learner', :yes, CURRENT_TIMESTAMP)"), {"yes": True})
    upgrade(engine, "0003")
    with engine.begin() as connection:
        run = lambda sql, **values: connection.execute(text(sql), values)  # noqa: E731
        user, submission = _submission_of_the_one_user(run)
        for number in (1, 2):
            run("INSERT INTO attempts (submission_id, user_id, number, rubric_id, rubric_version, rubric_sha256, "
                "course, source_url, status, reused_report, review_state, tries, dead_letter, created_at) VALUES "
                "(:s, :u, :n, 'r', '1', :h, 'c', 'https://git.example.org/a.git', 'scored', :no, 'open', 1, :no, "
                "CURRENT_TIMESTAMP)", s=submission, u=user, n=number, no=False, h="a" * 64)
        first = run("SELECT id FROM attempts WHERE number = 1").scalar_one()
        run("INSERT INTO self_assessments (attempt_id, criterion_id, level, justification, updated_at) "
            "VALUES (:a, 'design', 2, 'why', CURRENT_TIMESTAMP)", a=first)
    upgrade(engine)
    with engine.connect() as connection:
        marked = dict(connection.execute(text("SELECT number, self_assessed_at IS NOT NULL FROM attempts")).all())
    assert marked == {1: True, 2: False}
    assert schema_differences(engine) == []
