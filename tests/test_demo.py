"""`assessor demo`: accounts with printed passwords, the mentor's course, both sample repositories; idempotent."""

import os
import subprocess

import click
import pytest
from click.testing import CliRunner
from sqlmodel import Session

from assessor.domain import accounts, demo, modules
from assessor.cli import main
from assessor.domain.db import init_db
from assessor.web import create_app


@pytest.fixture
def engine(tmp_path):
    instance = tmp_path / "instance"
    app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "test",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}", "QUEUE_URL": f"sqlite:///{tmp_path / 'q.db'}"})
    engine = app.extensions["assessor.engine"]
    init_db(engine)
    yield engine
    engine.dispose()


def signs_in(engine, email: str, password: str) -> bool:
    with Session(engine) as session:
        try:
            accounts.authenticate(session, email=email, password=password, ip="127.0.0.1")
        except accounts.AccountError:
            return False
        return True


def head_commit(repo) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_demo_makes_a_mentor_of_the_course_a_learner_and_both_samples(engine, tmp_path):
    setup = demo.prepare_demo(engine, tmp_path / "instance")

    by_role = {account.role: account for account in setup.accounts}
    assert set(by_role) == {"mentor", "learner"} and all(account.created for account in setup.accounts)
    for account in setup.accounts:
        assert len(account.password) >= accounts.MIN_PASSWORD_LENGTH
        assert signs_in(engine, account.email, account.password)
    assert by_role["mentor"].password != by_role["learner"].password
    with Session(engine) as session:
        mentor = accounts.find_user(session, email=by_role["mentor"].email)
        assert mentor.role == "mentor"
        assert accounts.assigned_courses(session, user=mentor) == [demo.DEMO_RUBRIC]
        # the learner's course modules, as a course platform would have sent them, for the certificate to list
        recorded = modules.results_for(session, email=demo.LEARNER_EMAIL, course=demo.DEMO_RUBRIC)
        assert [row.module for row in recorded] == [module for module, *_ in demo.DEMO_MODULES]
    assert set(setup.repos) == {"passing", "falling-short", "node-passing"}
    for path in setup.repos.values():
        assert path.is_relative_to((tmp_path / "instance" / "demo").resolve())
        assert len(head_commit(path)) == 40


def test_running_the_demo_again_reuses_accounts_and_repos_with_new_passwords(engine, tmp_path):
    first = demo.prepare_demo(engine, tmp_path / "instance")
    commits = {kind: head_commit(path) for kind, path in first.repos.items()}
    marker = first.repos["passing"] / "a-local-change.txt"
    marker.write_text("kept\n")
    with Session(engine) as session:
        ids = {a.email: accounts.find_user(session, email=a.email).id for a in first.accounts}
        mentor = accounts.find_user(session, email=demo.MENTOR_EMAIL)
        accounts.set_courses(session, user=mentor, rubric_ids=())
        session.commit()

    second = demo.prepare_demo(engine, tmp_path / "instance")

    assert not any(account.created for account in second.accounts)
    old = {a.email: a.password for a in first.accounts}
    for account in second.accounts:
        assert account.password != old[account.email]
        assert signs_in(engine, account.email, account.password)
        assert not signs_in(engine, account.email, old[account.email])
    with Session(engine) as session:
        assert {a.email: accounts.find_user(session, email=a.email).id for a in second.accounts} == ids
        mentor = accounts.find_user(session, email=demo.MENTOR_EMAIL)
        assert accounts.assigned_courses(session, user=mentor) == [demo.DEMO_RUBRIC]
    assert second.repos == first.repos
    assert {kind: head_commit(path) for kind, path in second.repos.items()} == commits
    assert marker.read_text() == "kept\n"


def test_a_half_written_sample_is_made_again(tmp_path):
    (tmp_path / "passing").mkdir()
    (tmp_path / "passing" / "stray.txt").write_text("left over\n")
    repos = demo.ensure_sample_repos(tmp_path)
    assert not (repos["passing"] / "stray.txt").exists()
    assert len(head_commit(repos["passing"])) == 40


def test_the_banner_shows_where_to_go_how_to_sign_in_and_what_to_paste(engine, tmp_path):
    setup = demo.prepare_demo(engine, tmp_path / "instance")
    text = demo.describe(setup, "http://127.0.0.1:8000/")
    assert "http://127.0.0.1:8000/" in text
    for account in setup.accounts:
        assert account.email in text and account.password in text
    for path in setup.repos.values():
        assert str(path) in text


def test_the_demo_command_prints_the_banner_and_serves_with_local_sources_allowed(tmp_path, monkeypatch):
    served = {}

    @click.command()
    @click.option("--host")
    @click.option("--port", type=int)
    @click.option("--threads", type=int)
    @click.option("--workers", type=int)
    def fake_serve(host, port, threads, workers):
        from assessor.web import create_app as make_app

        served.update(host=host, port=port, workers=workers,
                      allow_local=make_app().config["ALLOW_LOCAL_SOURCES"],
                      env=os.environ.get("ASSESSOR_ALLOW_LOCAL_SOURCES"), log_level=os.environ.get("ASSESSOR_LOG_LEVEL"),
                      samples=make_app().config["INTEGRITY_SAMPLES"])

    monkeypatch.setattr("assessor.cli.admin.serve", fake_serve)
    monkeypatch.setenv("ASSESSOR_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("ASSESSOR_ALLOW_LOCAL_SOURCES", "false")  # restored after the test
    monkeypatch.setenv("ASSESSOR_LOG_LEVEL", "unset")  # so the demo's own setting is undone after the test
    monkeypatch.delenv("ASSESSOR_LOG_LEVEL")
    monkeypatch.setenv("ASSESSOR_INTEGRITY_SAMPLES", "unset")  # likewise
    monkeypatch.delenv("ASSESSOR_INTEGRITY_SAMPLES")
    result = CliRunner().invoke(main, ["demo", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8123/" in result.output
    assert demo.LEARNER_EMAIL in result.output and demo.MENTOR_EMAIL in result.output
    assert str((tmp_path / "instance" / "demo" / "passing").resolve()) in result.output
    # A short start-up (the server and worker log warnings only), and the samples its learners submit are not
    # flagged as copies of themselves.
    assert served == {"host": "127.0.0.1", "port": 8123, "workers": 2, "allow_local": True, "env": "true",
                      "log_level": "WARNING", "samples": False}
    assert (tmp_path / "instance" / "secret_key").exists()


def test_the_demo_mailbox_is_a_real_smtp_server_saving_each_message(tmp_path):
    from email import message_from_bytes

    from assessor.domain.mail import MailSettings, deliver
    from assessor.domain.models import OutgoingMail

    mailbox = demo.DemoMailbox(tmp_path / "mail")
    port = mailbox.start()
    try:
        deliver(MailSettings(host="127.0.0.1", port=port, security="none"),
                OutgoingMail(to_address="learner@example.org", subject="Confirm your e-mail address",
                             body="the link", kind="verify"))
    finally:
        mailbox.stop()
    saved = list((tmp_path / "mail").glob("*.eml"))
    assert len(saved) == 1
    message = message_from_bytes(saved[0].read_bytes())
    assert message["To"] == "learner@example.org" and message["Subject"] == "Confirm your e-mail address"


def test_logging_keeps_library_chatter_out_and_takes_its_level_from_the_environment(monkeypatch):
    import logging

    from assessor import logs

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("alembic").level)
    try:
        monkeypatch.setenv("ASSESSOR_LOG_LEVEL", "warning")
        logs.configure()
        assert root.level == logging.WARNING
        monkeypatch.setenv("ASSESSOR_LOG_LEVEL", "no-such-level")
        logs.configure()
        assert root.level == logging.INFO
        assert not logging.getLogger("alembic.runtime.migration").isEnabledFor(logging.INFO)
        assert logging.getLogger("assessor.jobs").isEnabledFor(logging.INFO)
    finally:  # the test run's own logging, as it was
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("alembic").setLevel(saved[2])
