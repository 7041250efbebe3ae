"""Mail delivery on every backend: parallel senders (two workers) deliver each queued message exactly once."""

import threading

from sqlmodel import Session, select

from assessor.domain import mail
from assessor.domain.models import OutgoingMail, User


def test_parallel_senders_deliver_each_message_once(app, make_user, inbox):
    engine = app.extensions["assessor.engine"]
    learner = make_user(email="many@example.org")
    with Session(engine) as session:
        user = session.get(User, learner.id)
        for n in range(12):
            mail.queue(session, to=user, kind="verify", subject=f"message {n}", body="hello")
        session.commit()
    settings = mail.MailSettings(host="127.0.0.1", port=inbox.port, security="none")
    start = threading.Barrier(3)

    def sender():
        with Session(engine) as session:
            start.wait()
            mail.send_due(session, settings)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    inbox.wait_for(12)
    assert sorted(message["Subject"] for message in inbox.messages) == sorted(f"message {n}" for n in range(12))
    with Session(engine) as session:
        rows = session.exec(select(OutgoingMail)).all()
    assert all(row.sent_at is not None and row.attempts == 1 for row in rows)
