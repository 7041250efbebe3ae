"""A backup restored into an empty instance: old certificates still verify (and a revoked one stays revoked), and
the restored instance issues new ones with the same key, on both databases; the CLI refuses a database that
already holds data."""

import re
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import Session

from assessor.domain import issuing
from assessor.domain.backup import read_manifest, restore_database, restore_instance_files, take_backup
from assessor.certificates import verify_credential
from assessor.domain.db import init_db
from assessor.web import create_app

from tests.web.certificate_helpers import approve, settings


def _approved(app, session, make_user, make_attempt, name: str):
    mentor = make_user("mentor", courses=["test-capstone"])
    attempt = make_attempt(make_user(name=name))
    approve(session, app, attempt, mentor)
    return attempt


def _certify(app, session, make_user, make_attempt, name: str):
    attempt = _approved(app, session, make_user, make_attempt, name)
    return issuing.issue_certificate(session, attempt_id=attempt.id, settings=settings(app))


def test_a_restored_backup_verifies_old_certificates_and_issues_new_ones(app, app_config, db, make_user,
                                                                        make_attempt, tmp_path, deployment):
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "secret_key").write_text(app.config["SECRET_KEY"] + "\n")  # where `assessor init` keeps it
    kept = _certify(app, db, make_user, make_attempt, "Ada")
    revoked = _certify(app, db, make_user, make_attempt, "Bob")
    issuing.revoke(db, certificate_id=revoked.public_id, admin=None, reason="copied")
    waiting = _approved(app, db, make_user, make_attempt, "Cy")  # approved; its certificate comes after the move
    backup = tmp_path / "backup"
    manifest = take_backup(database_url=app.config["DATABASE_URL"], instance=instance, destination=backup,
                           kek_from_environment=False)
    assert manifest.instance_files == ("secret_key",) and read_manifest(backup) == manifest
    assert oct(backup.stat().st_mode & 0o777) == "0o700"

    # The machine is lost: a new instance folder, and an empty database.
    new_url = app.config["DATABASE_URL"]
    if deployment == "embedded":
        new_url = f"sqlite:///{tmp_path / 'new' / 'assessor.db'}"
    else:
        schema = re.search(r"search_path%3D(\w+)|search_path=(\w+)", new_url)
        name = next(group for group in schema.groups() if group)
        with app.extensions["assessor.engine"].begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    app.extensions["assessor.engine"].dispose()
    restore_instance_files(source=backup, instance=tmp_path / "new")
    restore_database(source=backup, database_url=new_url, database_is_empty=True)
    restored = create_app({**app_config, "INSTANCE_PATH": str(tmp_path / "new"), "DATABASE_URL": new_url,
                           "SECRET_KEY": None, "KEYS_DIR": str(tmp_path / "new" / "keys")})
    assert restored.config["SECRET_KEY"] == app.config["SECRET_KEY"]  # read back from the restored file
    init_db(restored.extensions["assessor.engine"])
    client = restored.test_client()
    assert client.get(f"/api/v1/certificates/{kept.public_id}").get_json()["status"] == "valid"
    assert client.get(f"/api/v1/certificates/{revoked.public_id}").get_json()["status"] == "revoked"
    with Session(restored.extensions["assessor.engine"], expire_on_commit=False) as session:
        keys = issuing.jwks(session, settings=settings(restored))
        assert verify_credential(kept.token, keys).ok
        # The restored instance signs with the restored key (sealed under the restored secret).
        new = issuing.issue_certificate(session, attempt_id=waiting.id, settings=settings(restored))
        assert new.kid == kept.kid and verify_credential(new.token, issuing.jwks(session, settings=settings(restored))).ok
    restored.extensions["assessor.engine"].dispose()


def test_the_cli_backs_up_and_refuses_to_restore_over_data(tmp_path, monkeypatch, rubrics_dir):
    from assessor.cli import main

    instance = tmp_path / "instance"
    monkeypatch.setenv("ASSESSOR_INSTANCE", str(instance))
    monkeypatch.setenv("ASSESSOR_RUBRICS", str(rubrics_dir))
    monkeypatch.delenv("ASSESSOR_DATABASE_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["init"], catch_exceptions=False).exit_code == 0
    original_key = runner.invoke(main, ["keys", "list"], catch_exceptions=False).output.split()[0]
    taken = runner.invoke(main, ["backup", str(tmp_path / "b")], catch_exceptions=False)
    assert taken.exit_code == 0 and "sqlite database, secret_key" in taken.output
    assert "derived from secret_key, which is in this backup" in taken.output
    again = runner.invoke(main, ["backup", str(tmp_path / "b")])
    assert again.exit_code == 2 and "already exists" in again.output
    refused = runner.invoke(main, ["restore", str(tmp_path / "b")])
    assert refused.exit_code == 2 and "already holds data" in refused.output
    monkeypatch.setenv("ASSESSOR_INSTANCE", str(tmp_path / "fresh"))
    done = runner.invoke(main, ["restore", str(tmp_path / "b")], catch_exceptions=False)
    assert done.exit_code == 0 and "restored the sqlite database and secret_key" in done.output
    assert (tmp_path / "fresh" / "secret_key").read_text() == (instance / "secret_key").read_text()
    listed = runner.invoke(main, ["keys", "list"], catch_exceptions=False).output
    assert listed.split()[0] == original_key and "active" in listed and "sealed in the database" in listed
