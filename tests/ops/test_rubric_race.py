"""Many first submissions against a rubric version nobody has used yet, at the same moment, on every database."""

import threading

from sqlmodel import Session, select

from assessor.domain.models import RubricSnapshot
from assessor.engine.rubric import load_rubric
from assessor.domain.submissions import snapshot_rubric


def test_concurrent_first_uses_of_a_new_rubric_version_store_it_once(app, rubrics_dir):
    path = rubrics_dir / "test-capstone.toml"
    path.write_text(path.read_text().replace('version = "', 'version = "9.', 1))
    rubric = load_rubric(path)
    engine = app.extensions["assessor.engine"]
    start, problems, stored = threading.Barrier(10), [], []

    def submit() -> None:
        try:
            with Session(engine) as session:
                start.wait()
                stored.append(snapshot_rubric(session, rubric=rubric).sha256)
                session.commit()
        except Exception as error:  # the failure the test is about: it must not happen
            problems.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == [] and stored == [rubric.sha256] * 10
    with Session(engine) as session:
        rows = session.exec(select(RubricSnapshot).where(RubricSnapshot.sha256 == rubric.sha256)).all()
    assert len(rows) == 1 and rows[0].version.startswith("9.")
