"""Module results reach the service three ways (the CLI, the admin page, a course platform's API call) and each
refuses a bad file whole, naming the lines."""

import io

import click
import pytest
from click.testing import CliRunner
from sqlmodel import func, select

from assessor.cli.certificates import register
from assessor.domain.models import ApiToken, ModuleResult

from tests.web.conftest import csrf_token

HEADER = "email,course,module,title,score,max_score,completed_on"
GOOD = (f"{HEADER}\n"
        "ada@example.org,test-capstone,m1-http,HTTP services in depth,92,100,2026-09-14\n"
        "grace@example.org,test-capstone,m1-http,HTTP services in depth,88.5,100,2026-09-15\n")
BAD = (f"{HEADER}\n"
       "ada@example.org,test-capstone,m1-http,HTTP services in depth,92,100,2026-09-14\n"
       "grace@example.org,other-course,m1-http,HTTP services in depth,88,100,2026-09-15\n"
       "alan@example.org,test-capstone,m2,Data,120,100,2026-09-15\n")


def results(db) -> list[tuple]:
    return [(r.email, r.module, r.score) for r in db.exec(select(ModuleResult).order_by(ModuleResult.email))]


@pytest.fixture
def cli(app, monkeypatch):
    monkeypatch.setenv("ASSESSOR_INSTANCE", app.instance_path)
    monkeypatch.setenv("ASSESSOR_SECRET_KEY", "test-secret-key")
    monkeypatch.setenv("ASSESSOR_RUBRICS", app.config["RUBRICS_DIR"])
    group = click.Group("assessor")
    register(group)
    runner = CliRunner()
    return lambda *args: runner.invoke(group, list(args), catch_exceptions=False)


def test_cli_imports_a_good_file_and_refuses_a_bad_one_whole(cli, db, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD)
    result = cli("modules", "import", str(bad))
    assert result.exit_code == 2
    assert "line 3: no course 'other-course'" in result.output and "line 4: score 120" in result.output
    assert results(db) == []
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    result = cli("modules", "import", str(good))
    assert result.exit_code == 0 and "imported 2 module result(s): 2 new, 0 updated" in result.output
    good.write_text(GOOD.replace(",92,", ",95,"))
    assert "1 new" not in cli("modules", "import", str(good)).output
    db.expire_all()
    assert results(db) == [("ada@example.org", "m1-http", 95), ("grace@example.org", "m1-http", 88.5)]
    assert cli("modules", "import", str(tmp_path / "missing.csv")).exit_code == 2


def test_admin_page_upload(client, auth, db, make_user):
    auth.as_(make_user())
    assert client.get("/admin/modules").status_code == 403
    auth.logout()
    auth.as_(make_user("admin"))
    page = client.get("/admin/modules")
    assert page.status_code == 200 and HEADER in page.get_data(as_text=True)

    def upload(text: str | bytes, name="results.csv"):
        body = text.encode() if isinstance(text, str) else text
        return client.post("/admin/modules", data={"csrf_token": csrf_token(client, "/admin/modules"),
                                                   "results": (io.BytesIO(body), name)},
                           content_type="multipart/form-data")

    refused = upload(BAD)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Nothing was imported" in html
    assert "Line 3: no course" in html and "Line 4: score 120" in html and results(db) == []
    assert upload(b"\x89PNG\r\n\x1a\n\x00binary", name="photo.png").status_code == 400
    no_file = client.post("/admin/modules", data={"csrf_token": csrf_token(client, "/admin/modules")},
                          content_type="multipart/form-data")
    assert no_file.status_code == 400 and "choose a CSV file" in no_file.get_data(as_text=True)
    done = upload(GOOD)
    assert done.status_code == 302
    page = client.get("/admin/modules").get_data(as_text=True)
    assert "Imported 2 module results" in page and "<code>test-capstone</code></th><td>2</td><td>2</td>" in page


def test_course_platform_pushes_results_with_an_api_key(client, auth, db, make_user, cli):
    created = cli("api-tokens", "add", "course platform", "--course", "test-capstone")
    assert created.exit_code == 0
    key = created.output.split(": ", 1)[1].splitlines()[0].strip()
    assert key.startswith("cak_") and db.exec(select(ApiToken)).one().token_hash != key  # only its hash is kept
    headers = {"Authorization": f"Bearer {key}"}
    rows = [dict(zip(HEADER.split(","), line.split(","))) for line in GOOD.splitlines()[1:]]

    assert client.post("/api/v1/module-results", json={"results": rows}).status_code == 401
    wrong = client.post("/api/v1/module-results", json={"results": rows}, headers={"Authorization": "Bearer cak_x"})
    assert wrong.status_code == 401 and wrong.get_json()["status"] == "error"

    bad = client.post("/api/v1/module-results", json={"results": [rows[0], {**rows[1], "completed_on": "soon"}]},
                      headers=headers)
    assert bad.status_code == 400 and bad.get_json()["problems"] == [
        {"line": 2, "message": "completed_on 'soon' is not a date like 2026-11-30"}]
    assert results(db) == []
    assert client.post("/api/v1/module-results", json={"rows": rows}, headers=headers).status_code == 400
    nested = '{"results": ' + "[" * 100_000 + "]" * 100_000 + "}"  # deeper than the decoder recurses
    assert client.post("/api/v1/module-results", data=nested, headers={**headers, "Content-Type": "application/json"}
                       ).status_code == 400
    assert client.post("/api/v1/module-results", data="x", headers={**headers, "Content-Type": "text/plain"}).status_code == 415

    done = client.post("/api/v1/module-results", json={"results": rows}, headers=headers)
    assert done.status_code == 200 and done.get_json() == {"status": "imported", "imported": 2, "added": 2, "updated": 0}
    as_csv = client.post("/api/v1/module-results", data=GOOD.replace(",92,", ",97,"),
                         headers={**headers, "Content-Type": "text/csv"})
    assert as_csv.get_json()["updated"] == 2
    db.expire_all()
    assert results(db)[0] == ("ada@example.org", "m1-http", 97)
    listing = cli("api-tokens", "list").output
    assert "course platform  active" in listing and "last used" in listing

    token_id = db.exec(select(ApiToken)).one().id
    assert cli("api-tokens", "revoke", str(token_id)).exit_code == 0
    assert client.post("/api/v1/module-results", json={"results": rows}, headers=headers).status_code == 401
    assert cli("api-tokens", "revoke", "999").exit_code == 2
    assert db.exec(select(func.count()).select_from(ModuleResult)).one() == 2


def test_admin_makes_and_revokes_api_keys_on_the_page(client, auth, db, make_user):
    auth.as_(make_user("admin"))
    page = auth.post("/admin/api-keys", {"name": "LMS", "course": "test-capstone"}, token_from="/admin/modules")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="new-key"' in html and "LMS: cak_" in html
    assert "<td>test-capstone</td>" in html
    unscoped = auth.post("/admin/api-keys", {"name": "LMS 2"}, token_from="/admin/modules")
    assert unscoped.status_code == 302 and db.exec(select(func.count()).select_from(ApiToken)).one() == 1
    assert "cak_" not in client.get("/admin/modules").get_data(as_text=True)  # shown once
    row = db.exec(select(ApiToken)).one()
    assert auth.post(f"/admin/api-keys/{row.id}/revoke", token_from="/admin/modules").status_code == 302
    db.refresh(row)
    assert row.revoked_at is not None
    assert auth.post("/admin/api-keys", {"name": " "}, token_from="/admin/modules").status_code == 302


def test_an_api_key_writes_results_only_for_its_own_courses(client, db, cli):
    assert cli("api-tokens", "add", "no scope").exit_code != 0                      # a scope must be chosen
    unknown = cli("api-tokens", "add", "typo", "--course", "test-capstonee")
    assert unknown.exit_code != 0 and "no course test-capstonee" in unknown.output
    created = cli("api-tokens", "add", "other platform", "--course", "other-capstone")
    key = created.output.split(": ", 1)[1].splitlines()[0].strip()
    headers = {"Authorization": f"Bearer {key}"}
    rows = [dict(zip(HEADER.split(","), line.split(","))) for line in GOOD.splitlines()[1:]]

    refused = client.post("/api/v1/module-results", json={"results": rows}, headers=headers)
    assert refused.status_code == 400 and refused.get_json()["problems"][0] == {
        "line": 1, "message": "this API key may not write results for the course 'test-capstone' (its courses: "
                              "other-capstone)"}
    spaced = GOOD.replace("\n", "\n\n", 2)  # blank lines: the problems still name the file's own lines
    as_csv = client.post("/api/v1/module-results", data=spaced, headers={**headers, "Content-Type": "text/csv"})
    assert as_csv.status_code == 400 and [problem["line"] for problem in as_csv.get_json()["problems"]] == [3, 5]
    assert results(db) == []

    everything = cli("api-tokens", "add", "the school's platform", "--all-courses")
    key = everything.output.split(": ", 1)[1].splitlines()[0].strip()
    done = client.post("/api/v1/module-results", json={"results": rows}, headers={"Authorization": f"Bearer {key}"})
    assert done.status_code == 200 and done.get_json()["imported"] == 2
    listing = cli("api-tokens", "list").output
    assert "courses: other-capstone" in listing and "courses: every course" in listing


def test_admins_browse_recorded_results_by_course_and_learner(client, auth, make_user, db):
    from assessor.domain import modules

    rows = modules.check_records([(n, {"email": f"learner{n}@example.org", "course": "test-capstone",
                                       "module": f"m{n}", "title": f"Module {n}", "score": 80, "max_score": 100,
                                       "completed_on": "2026-11-01"}) for n in range(1, 4)],
                                 courses={"test-capstone", "other-capstone"})
    modules.import_rows(db, rows, source="csv")
    db.commit()
    auth.as_(make_user("admin"))
    page = client.get("/admin/modules?course=test-capstone&q=learner2").get_data(as_text=True)
    table = page[page.index('id="module-results"'):]
    assert "learner2@example.org" in table and "learner1@example.org" not in table and "80 of 100" in table
    assert "No results match" in client.get("/admin/modules?course=other-capstone").get_data(as_text=True)
    assert client.get("/admin/modules?course=<x>&page=zz").status_code == 200
