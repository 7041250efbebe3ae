"""Certificates on the web: issued at approval (queued, immediate here), the owner's PDF, the public verify page,
API, JWKS and status list, upload-to-verify verdicts (never a 500), admin revocation, and `assessor verify`."""

import io
import os
import re
import threading

import click
import pytest
from click.testing import CliRunner
from pypdf import PdfReader, PdfWriter
from sqlmodel import func, select

from assessor.domain import issuing
from assessor.cli.certificates import register
from assessor.domain.models import Certificate, OutgoingMail

from tests.web.certificate_helpers import approve, settings
from tests.web.conftest import csrf_token
from tests.web.test_mentor import review_data


@pytest.fixture
def app_config(app_config):
    return {**app_config, "QUEUE_IMMEDIATE": True, "PUBLIC_URL": "https://certs.example.org"}


@pytest.fixture
def mentor(make_user):
    return make_user("mentor", courses=["test-capstone"], name="Mona Mentor")


@pytest.fixture
def learner(make_user):
    return make_user(name="Ada Lovelace")


@pytest.fixture
def certificate(db, app, make_attempt, learner, mentor):
    attempt = make_attempt(learner)
    approve(db, app, attempt, mentor)
    return issuing.issue_certificate(db, attempt_id=attempt.id, settings=settings(app))


def count(db) -> int:
    return db.exec(select(func.count()).select_from(Certificate)).one()


def passing_review(**overrides):
    return review_data(**{"level-design": "2", "level-defense": "2", "action": "approve", **overrides})


def test_mentor_approval_issues_one_certificate_and_the_learner_gets_it(client, auth, db, make_attempt, learner,
                                                                        mentor, make_user):
    attempt = make_attempt(learner)
    url = f"/mentor/attempts/{attempt.id}"
    auth.as_(mentor)
    response = auth.post(f"{url}/review", passing_review(), token_from=url)
    assert response.status_code == 302
    assert count(db) == 1
    again = auth.post(f"{url}/review", passing_review(), token_from=url)  # approving twice
    assert again.status_code == 409 and count(db) == 1
    cert = db.exec(select(Certificate)).one()
    auth.logout()

    auth.as_(learner)
    page = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    assert "Download the PDF" in page and f"https://certs.example.org/verify/{cert.public_id}" in page
    linkedin = re.search(r'href="(https://www\.linkedin\.com/profile/add\?[^"]+)"', page).group(1)
    assert "startTask=CERTIFICATION_NAME" in linkedin and f"certId={cert.public_id}" in linkedin
    assert "certUrl=https%3A%2F%2Fcerts.example.org%2Fverify%2F" in linkedin and "issueYear=" in linkedin
    assert "name=Test+Course%3A+Test+capstone" in linkedin
    pdf = client.get(f"/learner/certificates/{cert.public_id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data == cert.pdf
    auth.logout()

    auth.as_(make_user())  # another learner
    assert client.get(f"/learner/certificates/{cert.public_id}.pdf").status_code == 404


def test_learner_sees_certificate_being_issued(client, auth, db, app, make_attempt, learner, mentor):
    attempt = make_attempt(learner)
    approve(db, app, attempt, mentor)  # approved, but the worker has not issued it yet
    auth.as_(learner)
    page = client.get(f"/learner/attempts/{attempt.id}").get_data(as_text=True)
    assert "being issued" in page


def test_verify_page_and_api_show_revocation_at_once(client, auth, db, certificate, make_user, learner):
    page = client.get(f"/verify/{certificate.public_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Valid." in html and "Ada Lovelace" in html and "Mona Mentor" in html
    assert "Automated tests: 2 of 2 passed" in html and "Line coverage: 90.0%" in html
    assert "Design judgement" in html and "git.example.org" in html
    api = client.get(f"/api/v1/certificates/{certificate.public_id}").get_json()
    assert api["status"] == "valid" and api["revocation"] is None
    assert api["issued_at"] == certificate.issued_at.isoformat() and api["issued_at"].endswith("+00:00")
    jwt_response = client.get(api["credential_jwt_url"])
    assert jwt_response.mimetype == "application/vc+jwt" and jwt_response.get_data(as_text=True) == certificate.token
    assert api["credential"]["id"] == f"urn:uuid:{certificate.public_id}"

    admin = make_user("admin")
    auth.as_(admin)
    listing = client.get("/admin/certificates").get_data(as_text=True)
    assert certificate.public_id in listing
    assert auth.post(f"/admin/certificates/{certificate.public_id}/revoke", {"reason": ""},
                     token_from="/admin/certificates").status_code == 302
    assert client.get(f"/api/v1/certificates/{certificate.public_id}").get_json()["status"] == "valid"
    no_csrf = client.post(f"/admin/certificates/{certificate.public_id}/revoke", data={"reason": "x"})
    assert no_csrf.status_code == 400
    assert "Test Course" in listing  # the course, not an attempt number
    asked = auth.post(f"/admin/certificates/{certificate.public_id}/revoke", {"reason": "copied work"},
                      token_from="/admin/certificates")  # asked once more, naming the learner
    assert asked.status_code == 200 and "Revoke the certificate of Ada Lovelace for Test Course?" in \
        asked.get_data(as_text=True)
    assert client.get(f"/api/v1/certificates/{certificate.public_id}").get_json()["status"] == "valid"
    done = auth.post(f"/admin/certificates/{certificate.public_id}/revoke", {"reason": "copied work",
                     "confirmed": "yes"}, token_from="/admin/certificates")
    assert done.status_code == 302
    told = db.exec(select(OutgoingMail).where(OutgoingMail.subject.contains("was revoked"))).one()
    assert "copied work" in told.body and told.to_address == learner.email
    auth.logout()

    html = client.get(f"/verify/{certificate.public_id}").get_data(as_text=True)
    assert "Revoked." in html and "copied work" in html
    api = client.get(f"/api/v1/certificates/{certificate.public_id}").get_json()
    assert api["status"] == "revoked" and api["revocation"]["reason"] == "copied work"
    assert api["revocation"]["revoked_at"].endswith("+00:00")
    status = client.get("/status/1", headers={"Accept": "application/json"}).get_json()
    bits = issuing.decode_bitstring(status["credentialSubject"]["encodedList"])
    assert issuing.bit_is_set(bits, certificate.status_index)
    signed = client.get("/status/1", headers={"Accept": "application/vc+jwt"})
    assert signed.mimetype == "application/vc+jwt" and signed.get_data(as_text=True).count(".") == 2


def test_unknown_certificate(client):
    response = client.get("/verify/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404 and "Unknown certificate" in response.get_data(as_text=True)
    api = client.get("/api/v1/certificates/nope")
    assert api.status_code == 404 and api.get_json()["status"] == "unknown"
    assert client.get("/verify/" + "x" * 500).status_code == 404
    assert client.get("/status/2").status_code == 404


def test_admin_pages_need_admin(client, auth, make_user, certificate):
    auth.as_(make_user())
    assert client.get("/admin/certificates").status_code == 403
    assert client.get("/admin/keys").status_code == 403


def test_keys_page_and_jwks_after_rotation(client, auth, db, app, certificate, make_user):
    old_kid = certificate.kid
    next_key = issuing.rotate_key(db, settings=settings(app))
    jwks_response = client.get("/.well-known/jwks.json")
    jwks = jwks_response.get_json()
    assert len(jwks["keys"]) == 2 and all("d" not in key for key in jwks["keys"])
    # cached for less than the rotation's notice, so every verifier holds the next key before it signs
    assert jwks_response.headers["Cache-Control"] == f"public, max-age={issuing.JWKS_MAX_AGE_SECONDS}"
    assert jwks["retired"] == [] and {k["kid"] for k in jwks["keys"]} == {
        f"https://certs.example.org/issuer/keys/{old_kid}", f"https://certs.example.org/issuer/keys/{next_key.kid}"}
    issuing.active_key(db, settings=settings(app), now=issuing.utcnow() + issuing.ROTATION_NOTICE)
    jwks = client.get("/.well-known/jwks.json").get_json()
    assert [entry["kid"] for entry in jwks["retired"]] == [f"https://certs.example.org/issuer/keys/{old_kid}"]
    auth.as_(make_user("admin"))
    html = client.get("/admin/keys").get_data(as_text=True)
    assert old_kid in html and 'data-state="retired"' in html and 'data-state="active"' in html
    assert "destroyed" in html
    auth.logout()
    assert verdict_of(upload(client, pdf=certificate.pdf)) == "valid"  # the old certificate still verifies


def test_each_key_id_dereferences_to_its_key_and_the_issuer_to_its_profile(client, certificate):
    import jwt as pyjwt

    kid = pyjwt.get_unverified_header(certificate.token)["kid"]
    assert kid.startswith("https://certs.example.org/issuer/keys/")
    path = kid.removeprefix("https://certs.example.org")
    jwk = client.get(path)
    assert jwk.status_code == 200 and jwk.mimetype == "application/jwk+json"
    assert jwk.get_json()["kid"] == kid and jwk.get_json()["kty"] == "EC" and "d" not in jwk.get_json()
    profile = client.get("/issuer")
    assert profile.status_code == 200 and profile.get_json()["id"] == "https://certs.example.org/issuer"
    assert profile.get_json()["type"] == ["Profile"]
    assert client.get("/issuer/keys/" + "A" * 43).status_code == 404
    assert client.get("/issuer/keys/" + "A" * 500).status_code == 404


def test_what_verifiers_fetch_is_open_to_any_origin_read_only(client, certificate):
    paths = ["/.well-known/jwks.json", "/status/1", "/issuer", "/contexts/capstone-v1.jsonld",
             f"/api/v1/certificates/{certificate.public_id}", f"/api/v1/certificates/{certificate.public_id}/credential.jwt"]
    for path in paths:
        response = client.get(path, headers={"Origin": "https://wallet.example"})
        assert response.status_code == 200, path
        assert response.headers["Access-Control-Allow-Origin"] == "*", path
        assert response.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS", path
        assert "Access-Control-Allow-Credentials" not in response.headers
        preflight = client.options(path, headers={"Origin": "https://wallet.example",
                                                  "Access-Control-Request-Method": "GET"})
        assert preflight.status_code in (200, 204) and preflight.headers["Access-Control-Allow-Origin"] == "*"
    # pages that use the session are not opened
    assert "Access-Control-Allow-Origin" not in client.get(f"/verify/{certificate.public_id}").headers
    assert "Access-Control-Allow-Origin" not in client.get("/login").headers


def upload(client, *, pdf: bytes | None = None, token: str | None = None, csrf: bool = True):
    data = {}
    if csrf:
        data["csrf_token"] = csrf_token(client, "/verify")
    if pdf is not None:
        data["pdf"] = (io.BytesIO(pdf), "certificate.pdf", "application/pdf")
    if token is not None:
        data["token"] = token
    return client.post("/verify", data=data, content_type="multipart/form-data")


def verdict_of(response) -> str | None:
    match = re.search(r'data-verdict="([a-z_]+)"', response.get_data(as_text=True))
    return match.group(1) if match else None


def resaved_pdf(pdf: bytes) -> bytes:
    """The certificate re-saved by another tool with its title changed: no longer what the issuer sealed."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_metadata({"/Title": "Certificate of Mallory"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_upload_verdicts_never_500(client, certificate, db, make_user):
    assert client.get("/verify").status_code == 200
    assert verdict_of(upload(client, pdf=certificate.pdf)) == "valid"
    assert verdict_of(upload(client, token=certificate.token)) == "valid"
    # tampered: a byte of the sealed file changed
    flipped = bytearray(certificate.pdf)
    middle = len(flipped) // 2
    flipped[middle] ^= 0x01
    response = upload(client, pdf=bytes(flipped))
    assert response.status_code == 200 and verdict_of(response) in {"tampered", "modified", "malformed", "no_credential"}
    # a re-saved copy with other content: no longer what we sealed
    assert verdict_of(upload(client, pdf=resaved_pdf(certificate.pdf))) in {"modified", "unsealed", "tampered"}
    assert verdict_of(upload(client, pdf=certificate.pdf[: len(certificate.pdf) // 2])) == "truncated"
    assert verdict_of(upload(client, pdf=os.urandom(4096))) == "not_pdf"
    assert verdict_of(upload(client, pdf=b"%PDF-1.7\n" + os.urandom(2048) + b"\n%%EOF")) in {"malformed", "no_credential"}
    # above the site-wide form limit but within this page's 5 MB: checked, not refused
    assert verdict_of(upload(client, pdf=b"%PDF-1.7\n" + b"0" * (2 * 1024 * 1024))) == "truncated"
    big = upload(client, pdf=b"%PDF-1.7\n" + b"0" * (6 * 1024 * 1024))
    assert big.status_code == 413 and verdict_of(big) == "too_large"
    # pasted JWTs: changed claims, alg none, garbage
    header, payload, signature = certificate.token.split(".")
    assert verdict_of(upload(client, token=f"{header}.{payload[:-2]}AA.{signature}")) in {"tampered", "malformed"}
    none_header = "eyJhbGciOiJub25lIiwia2lkIjoieCIsInR5cCI6IkpXVCJ9"  # {"alg":"none","kid":"x","typ":"JWT"}
    assert verdict_of(upload(client, token=f"{none_header}.{payload}.")) in {"tampered", "malformed", "unknown_key"}
    assert verdict_of(upload(client, token="not a jwt")) == "malformed"
    assert upload(client).status_code == 400  # nothing given
    assert upload(client, token=certificate.token, csrf=False).status_code == 400  # CSRF is on
    # revoked: a genuine PDF of a revoked certificate
    issuing.revoke(db, certificate_id=certificate.public_id, admin=make_user("admin"), reason="withdrawn")
    response = upload(client, pdf=certificate.pdf)
    assert verdict_of(response) == "revoked" and "withdrawn" in response.get_data(as_text=True)


def test_unknown_key(client, certificate, tmp_path):
    from assessor.certificates import generate_key, kid_url, load_private_key
    from assessor.certificates.credential import sign_credential
    from assessor.web.public import token_payload

    info = generate_key(tmp_path / "other")
    claims = token_payload(certificate.token)
    credential = {k: v for k, v in claims.items() if k not in ("iss", "jti", "nbf", "sub")}
    forged = sign_credential(credential, load_private_key(info.path), kid_url(credential["issuer"]["id"], info.kid))
    assert verdict_of(upload(client, token=forged)) == "unknown_key"


@pytest.fixture
def cli(app, monkeypatch):
    monkeypatch.setenv("ASSESSOR_INSTANCE", app.instance_path)
    monkeypatch.setenv("ASSESSOR_SECRET_KEY", "test-secret-key")
    monkeypatch.setenv("ASSESSOR_RUBRICS", app.config["RUBRICS_DIR"])
    monkeypatch.setenv("ASSESSOR_PUBLIC_URL", "https://certs.example.org")
    group = click.Group("assessor")
    register(group)
    runner = CliRunner()
    return lambda *args: runner.invoke(group, list(args), catch_exceptions=False)


@pytest.fixture
def served(app):
    """The app on a real HTTP server, as `assessor verify` on another machine would reach the issuer."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_cli_verify_offline_with_jwks_file(cli, client, certificate, tmp_path):
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(client.get("/.well-known/jwks.json").data)
    good = tmp_path / "cert.pdf"
    good.write_bytes(certificate.pdf)
    result = cli("verify", str(good), "--jwks", str(jwks), "--offline")
    # genuine, but a revocation since is not ruled out: its own exit code, never the 0 of "valid"
    assert result.exit_code == 3, result.output
    assert result.output.startswith("genuine, revocation not checked") and "Ada Lovelace" in result.output
    token = tmp_path / "cert.jwt"
    token.write_text(certificate.token)
    assert cli("verify", str(token), "--jwks", str(jwks), "--offline").exit_code == 3
    bad = tmp_path / "bad.pdf"
    flipped = bytearray(certificate.pdf)
    flipped[len(flipped) // 2] ^= 0x01
    bad.write_bytes(bytes(flipped))
    result = cli("verify", str(bad), "--jwks", str(jwks), "--offline")
    assert result.exit_code == 1 and result.output.split(":")[0] in {"tampered", "modified", "malformed", "no_credential"}
    assert cli("verify", str(tmp_path / "missing.pdf"), "--jwks", str(jwks)).exit_code == 2
    (tmp_path / "notjwks.json").write_text("[]")
    assert cli("verify", str(good), "--jwks", str(tmp_path / "notjwks.json")).exit_code == 2
    assert cli("verify", str(good), "--jwks", "https://certs.example.org/.well-known/jwks.json",
               "--offline").exit_code == 2  # offline reads no URL


def test_cli_verify_reads_the_signed_status_list_and_reports_a_revocation(cli, client, db, certificate, make_user,
                                                                          tmp_path):
    jwks, status, pdf = tmp_path / "jwks.json", tmp_path / "status.jwt", tmp_path / "cert.pdf"
    jwks.write_bytes(client.get("/.well-known/jwks.json").data)
    pdf.write_bytes(certificate.pdf)
    status.write_bytes(client.get("/status/1", headers={"Accept": "application/vc+jwt"}).data)
    result = cli("verify", str(pdf), "--jwks", str(jwks), "--status-list", str(status))
    assert result.exit_code == 0 and "not revoked" in result.output, result.output
    issuing.revoke(db, certificate_id=certificate.public_id, admin=make_user("admin"), reason="plagiarised")
    status.write_bytes(client.get("/status/1", headers={"Accept": "application/vc+jwt"}).data)
    result = cli("verify", str(pdf), "--jwks", str(jwks), "--status-list", str(status))
    assert result.exit_code == 1 and result.output.startswith("revoked"), result.output
    # a status list that is not signed by the issuer is not taken on trust
    status.write_bytes(client.get("/status/1?format=json").data)  # the unsigned JSON form
    result = cli("verify", str(pdf), "--jwks", str(jwks), "--status-list", str(status))
    assert result.exit_code == 1 and result.output.startswith("unverified"), result.output
    # this instance's own records say revoked, with the reason
    result = cli("verify", str(pdf))
    assert result.exit_code == 1 and result.output.strip() == "revoked: plagiarised", result.output


def test_cli_verify_from_the_issuers_urls_only(cli, served, db, certificate, make_user, tmp_path):
    pdf = tmp_path / "cert.pdf"
    pdf.write_bytes(certificate.pdf)
    jwks_url = f"{served}/.well-known/jwks.json"
    result = cli("verify", str(pdf), "--jwks", jwks_url)
    assert result.exit_code == 0 and "not revoked" in result.output, result.output
    issuing.revoke(db, certificate_id=certificate.public_id, admin=make_user("admin"), reason="copied capstone")
    result = cli("verify", str(pdf), "--jwks", jwks_url)
    # the status list from the JWKS's origin, and the reason from the issuer's certificate API
    assert result.exit_code == 1 and result.output.strip() == "revoked: copied capstone", result.output


def test_cli_certificates_and_keys(cli, certificate, db, app):
    listing = cli("certificates", "list")
    assert listing.exit_code == 0 and certificate.public_id in listing.output
    assert cli("certificates", "revoke", certificate.public_id, "--reason", " ").exit_code == 2
    result = cli("certificates", "revoke", certificate.public_id, "--reason", "fraud")
    assert result.exit_code == 0 and "revoked" in result.output
    assert "revoked" in cli("certificates", "list").output
    rotated = cli("keys", "rotate")
    assert rotated.exit_code == 0 and "published" in rotated.output, rotated.output
    assert cli("keys", "rotate").exit_code == 2  # one rotation at a time
    keys = cli("keys", "list").output.splitlines()
    assert len(keys) == 2 and "next (signs from" in keys[0] and "active" in keys[1]
    for line in keys:
        assert "ES256" in line and line.endswith("private key sealed in the database")
    now = cli("keys", "rotate", "--now")
    assert now.exit_code == 0 and "new active key" in now.output
    keys = cli("keys", "list").output.splitlines()
    assert "active" in keys[0] and "retired" in keys[1] and keys[1].endswith("private key destroyed")
    assert cli("certificates", "issue", str(certificate.attempt_id)).output.startswith(certificate.public_id)


def test_cli_declares_a_key_compromised(cli, certificate, db, app, tmp_path):
    from datetime import timedelta

    kid = certificate.kid
    since = (certificate.issued_at - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    # Key ids are base64url and may begin with '-': after '--' click takes them as the argument.
    assert cli("keys", "compromised", "--since", "yesterday", "--reason", "x", "--", kid).exit_code == 2
    assert cli("keys", "compromised", "--since", since, "--reason", "x", "--", "no-such-key").exit_code == 2
    assert cli("keys", "compromised", "--since", since, "--reason", " ", "--", kid).exit_code == 2
    result = cli("keys", "compromised", "--since", since, "--reason", "backup copied to a public bucket", "--", kid)
    assert result.exit_code == 0 and "1 certificate(s) revoked" in result.output, result.output
    keys = cli("keys", "list").output.splitlines()
    assert "active" in keys[0] and "compromised since" in keys[1] and "public bucket" in keys[1]
    pdf = tmp_path / "cert.pdf"
    pdf.write_bytes(certificate.pdf)
    result = cli("verify", str(pdf))
    assert result.exit_code == 1 and result.output.startswith("key_compromised"), result.output


def test_init_creates_the_signing_key(tmp_path, rubrics_dir, monkeypatch):
    from assessor.cli.admin import register as register_admin

    instance = tmp_path / "inst"
    monkeypatch.setenv("ASSESSOR_INSTANCE", str(instance))
    monkeypatch.setenv("ASSESSOR_RUBRICS", str(rubrics_dir))
    monkeypatch.setenv("ASSESSOR_WORK_ROOT", str(tmp_path / "work"))
    group = click.Group("assessor")
    register_admin(group)
    register(group)
    runner = CliRunner()
    result = runner.invoke(group, ["init"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "signing key" in result.output and "(sealed in the database)" in result.output
    assert not list(instance.glob("**/*.pem"))  # no private key in a file
    kid = result.output.split("signing key ")[1].split()[0]
    assert runner.invoke(group, ["init"], catch_exceptions=False).exit_code == 0
    listed = runner.invoke(group, ["keys", "list"], catch_exceptions=False)
    assert listed.exit_code == 0 and "active" in listed.output and listed.output.count("ES256") == 1  # kept
    assert listed.output.startswith(kid)


@pytest.mark.parametrize("organization, expected, absent", [
    (None, "organizationName=Capstone+Assessor", "organizationId"),
    ("2414183", "organizationId=2414183", "organizationName"),
])
def test_linkedin_link_names_the_issuer_by_its_company_id_when_set(app, client, auth, certificate, learner,
                                                                  organization, expected, absent):
    app.config["LINKEDIN_ORGANIZATION_ID"] = organization
    auth.as_(learner)
    page = client.get(f"/learner/attempts/{certificate.attempt_id}").get_data(as_text=True)
    linkedin = re.search(r'href="(https://www\.linkedin\.com/profile/add\?[^"]+)"', page).group(1)
    assert expected in linkedin and absent not in linkedin


def test_a_revoked_certificate_is_no_longer_offered_for_download_or_linkedin(client, auth, db, certificate, learner,
                                                                           make_user):
    auth.as_(learner)
    url = f"/learner/attempts/{certificate.attempt_id}"
    page = client.get(url).get_data(as_text=True)
    assert "Download the PDF" in page and "Add to LinkedIn profile" in page and 'data-copy="verify-link"' in page
    issuing.revoke(db, certificate_id=certificate.public_id, admin=make_user("admin"), reason="copied work")
    page = client.get(url).get_data(as_text=True)
    assert "This certificate was revoked" in page and "copied work" in page
    assert "Download the PDF" not in page and "linkedin.com" not in page
    assert certificate.public_id in page  # the verify link stays: it now says revoked


def test_the_status_list_is_signed_by_default_fresh_and_a_stale_copy_is_refused(client, db, app, certificate):
    from datetime import datetime, timedelta, timezone

    from assessor.certificates.verify import check_revocation, verify_credential
    from tests.web.certificate_helpers import settings

    plain = client.get("/status/1")  # what a verifier gets when it asks for nothing in particular
    assert plain.mimetype == "application/vc+jwt" and "Accept" in plain.headers["Vary"]
    assert plain.headers["Cache-Control"] == f"max-age={issuing.STATUS_LIST_TTL_MS // 1000}"
    readable = client.get("/status/1", headers={"Accept": "application/json"}).get_json()
    assert readable["credentialSubject"]["ttl"] == issuing.STATUS_LIST_TTL_MS
    until = datetime.fromisoformat(readable["validUntil"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < until - datetime.now(timezone.utc) <= issuing.STATUS_LIST_VALIDITY
    jwks = client.get("/.well-known/jwks.json").get_json()
    credential = verify_credential(certificate.token, jwks).credential
    assert check_revocation(plain.get_data(as_text=True), jwks, credential).ok
    # A copy saved two days ago (signed then, by the same key) is past its validUntil: it proves nothing now.
    old = datetime.now(timezone.utc) - timedelta(days=2)
    _credential, stale = issuing.status_list_credential(db, settings=settings(app), now=old)
    verdict = check_revocation(stale, jwks, credential)
    assert not verdict.ok and "expired" in verdict.detail and "fetch a fresh one" in verdict.detail


JARGON = ("JWS", "ES256", "kid", "jti", "nbf", "iss,", "base64")


def _outside_technical_details(page: str) -> str:
    return re.sub(r'<details class="checks technical">.*?</details>', "", page, flags=re.S)


def test_an_employer_reads_plain_words_first_and_a_changed_pdf_leads_to_the_original(client, certificate):
    valid = client.get(f"/verify/{certificate.public_id}").get_data(as_text=True)
    summary = re.search(r'<p class="lead" id="summary">(.*?)</p>', valid, re.S).group(1)
    assert "Ada Lovelace" in summary and "Mona Mentor" in summary and "still valid" in summary
    visible = _outside_technical_details(valid)
    assert not [word for word in JARGON if word in visible], visible
    assert "Signed by the issuer" in visible and "Still valid" in visible
    # the same vocabulary on the upload page
    uploaded = upload(client, pdf=certificate.pdf).get_data(as_text=True)
    assert ">Valid<" in uploaded and "Genuine" not in uploaded and "The PDF file" in uploaded
    assert not [word for word in JARGON if word in _outside_technical_details(uploaded)]
    # a PDF changed around a genuine credential: not valid, and a link to the record we keep
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(certificate.pdf)))
    writer.add_metadata({"/Title": "Certificate of Excellence (edited)"})
    changed = io.BytesIO()
    writer.write(changed)
    page = upload(client, pdf=changed.getvalue()).get_data(as_text=True)
    assert 'data-verdict="valid"' not in page
    assert f'href="/verify/{certificate.public_id}"' in re.search(r'id="original">(.*?)</p>', page, re.S).group(1)
    # a PDF that was never ours leads nowhere
    assert 'id="original"' not in upload(client, pdf=b"%PDF-1.7\n%%EOF\n").get_data(as_text=True)


def test_altered_uploads_leave_no_warnings_or_tracebacks_in_the_operators_log(client, certificate):
    import logging
    import random

    from assessor import logs

    stream = io.StringIO()
    handler = logs.handler("text", stream=stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        chance = random.Random(3)
        for _ in range(14):
            altered = bytearray(certificate.pdf)
            for _ in range(3):
                altered[chance.randrange(len(altered))] ^= 0xFF
            assert upload(client, pdf=bytes(altered)).status_code < 500
        upload(client, pdf=certificate.pdf[: len(certificate.pdf) // 2] + b"%%EOF")
        # the flip that once reached the operator as a 500: a misspelled filter on the object stream
        pdf = certificate.pdf
        filter_at = pdf.index(b"/FlateDecode", pdf.rindex(b" obj", 0, pdf.index(b"/ObjStm")))
        mangled = pdf[:filter_at] + b"/FlateDeco\xe6\xb2" + pdf[filter_at + len(b"/FlateDecode"):]
        answer = upload(client, pdf=mangled)
        assert answer.status_code == 200 and "cannot" in answer.get_data(as_text=True)
        logging.getLogger("pypdf").warning("outside a check, a library's warning still reaches the log")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    written = stream.getvalue()
    assert "Traceback" not in written
    warnings = [line for line in written.splitlines() if " WARNING " in line]
    assert warnings and all("outside a check" in line for line in warnings), warnings
