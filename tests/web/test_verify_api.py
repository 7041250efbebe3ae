"""POST /api/v1/verify: the verdict and every check for a JWT or a PDF, for programs (no CSRF, CORS, a rate
limit); and what only the issuer's records can tell: a token our key signed that we never issued, a token a
compromised key signed after its compromise."""

import base64
import io
import uuid
from datetime import timedelta

import pytest

from assessor.domain import issuing
from assessor.certificates import sign_credential

from tests.web.certificate_helpers import approve, bomb_pdf, settings
from tests.web.conftest import csrf_token
from tests.web.test_open_badges import payload_of

PUBLIC = "https://certs.example.org"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "QUEUE_IMMEDIATE": True, "PUBLIC_URL": PUBLIC, "VERIFY_API_PER_MINUTE": 12}


@pytest.fixture
def certificate(db, app, make_attempt, make_user):
    attempt = make_attempt(make_user(name="Ada Lovelace"))
    approve(db, app, attempt, make_user("mentor", courses=["test-capstone"], name="Mona Mentor"))
    return issuing.issue_certificate(db, attempt_id=attempt.id, settings=settings(app))


def verify(client, **body):
    return client.post("/api/v1/verify", json=body, headers={"Origin": "https://hr.example"})


def _resign(certificate, db, app, **changes) -> str:
    """What a thief holding our private key could sign: the same credential with other claims."""
    key = issuing.active_key(db, settings=settings(app))
    credential = {k: v for k, v in payload_of(certificate.token).items() if k not in ("iss", "jti", "nbf", "sub")}
    credential.update(changes)
    return sign_credential(credential, issuing.private_key_of(key, settings(app)), issuing.published_kid(key, settings(app)))


def test_a_genuine_credential_and_pdf(client, certificate):
    response = verify(client, credential=certificate.token)
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "valid" and body["title"] == "Valid"
    assert body["credential_id"] == f"urn:uuid:{certificate.public_id}"
    assert body["verify_url"] == f"{PUBLIC}/verify/{certificate.public_id}"
    names = [check["check"] for check in body["checks"]]
    assert {"signature", "claims", "key status", "issued record", "revocation"} <= set(names)
    assert all(check["ok"] for check in body["checks"])
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    pdf = client.post("/api/v1/verify", data={"pdf": (io.BytesIO(certificate.pdf), "c.pdf")},
                      content_type="multipart/form-data")
    assert pdf.status_code == 200 and pdf.get_json()["status"] == "valid"
    assert any(check["check"] == "seal" and check["ok"] for check in pdf.get_json()["checks"])


def test_tampered_revoked_and_nonsense(client, db, certificate, make_user):
    header, payload, signature = certificate.token.split(".")
    tampered = verify(client, credential=f"{header}.{payload[:-3]}AAA.{signature}").get_json()
    assert tampered["status"] in ("tampered", "malformed") and not all(c["ok"] for c in tampered["checks"])
    flipped = bytearray(certificate.pdf)
    flipped[len(flipped) // 2] ^= 1
    pdf = client.post("/api/v1/verify", data={"pdf": (io.BytesIO(bytes(flipped)), "c.pdf")},
                      content_type="multipart/form-data").get_json()
    assert pdf["status"] != "valid"
    issuing.revoke(db, certificate_id=certificate.public_id, admin=make_user("admin"), reason="copied work")
    revoked = verify(client, credential=certificate.token).get_json()
    assert revoked["status"] == "revoked" and "copied work" in revoked["reason"]
    assert [c for c in revoked["checks"] if c["check"] == "revocation"][0]["ok"] is False
    for body in ({}, {"credential": 5}, {"credential": ""}, {"token": certificate.token}):
        refused = verify(client, **body)
        assert refused.status_code == 400 and refused.get_json()["status"] == "error"
    assert client.post("/api/v1/verify", data="credential=x").status_code == 415
    assert client.post("/api/v1/verify", data="{", content_type="application/json").status_code == 400
    nested = '{"credential": ' + "[" * 100_000 + "]" * 100_000 + "}"  # deeper than the decoder recurses
    assert client.post("/api/v1/verify", data=nested, content_type="application/json").status_code == 400
    payload = base64.urlsafe_b64encode(("[" * 50_000 + "]" * 50_000).encode()).decode().rstrip("=")
    deep_token = verify(client, credential=f"{certificate.token.split('.')[0]}.{payload}.AAAA")
    assert deep_token.status_code == 200 and deep_token.get_json()["status"] in ("malformed", "tampered")
    assert verify(client, credential="x" * 70000).get_json()["status"] == "malformed"
    assert client.get("/api/v1/verify").status_code == 405
    assert client.get("/api/v1/verify").mimetype == "application/json"  # programs get JSON errors


def test_signed_by_our_key_but_never_issued(client, db, app, certificate):
    forged_id = uuid.uuid4()
    token = _resign(certificate, db, app, id=f"urn:uuid:{forged_id}")
    body = verify(client, credential=token).get_json()
    assert body["status"] == "not_issued" and body["title"] == "Never issued"
    signature = next(c for c in body["checks"] if c["check"] == "signature")
    assert signature["ok"]  # a valid signature is not enough
    # the same id as a real certificate, other content: not what we issued either
    upgraded = _resign(certificate, db, app, name="Distinction: " + payload_of(certificate.token)["name"])
    assert verify(client, credential=upgraded).get_json()["status"] == "tampered"


def test_signed_by_a_compromised_key_after_its_compromise(client, db, app, certificate):
    stolen = issuing.active_key(db, settings=settings(app))
    private = issuing.private_key_of(stolen, settings(app))  # what the thief copied
    kid = issuing.published_kid(stolen, settings(app))
    since = certificate.issued_at + timedelta(seconds=1)
    credential = {k: v for k, v in payload_of(certificate.token).items() if k not in ("iss", "jti", "nbf", "sub")}
    credential.update(id=f"urn:uuid:{uuid.uuid4()}", validFrom=(since + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    forged = sign_credential(credential, private, kid)
    row, revoked = issuing.compromise_key(db, settings=settings(app), kid=stolen.kid, since=since,
                                          reason="key file left in a public backup",
                                          now=since + timedelta(minutes=10))
    assert revoked == []  # the genuine certificate was signed before the compromise
    assert not issuing.find_key(db, kid=stolen.kid).private_key_sealed  # destroyed
    body = verify(client, credential=forged).get_json()
    assert body["status"] == "key_compromised" and "public backup" in body["reason"]
    assert verify(client, credential=certificate.token).get_json()["status"] == "valid"
    # a new key signs from now on, and the compromised one is published as such
    assert issuing.active_key(db, settings=settings(app)).kid != stolen.kid
    jwks = client.get("/.well-known/jwks.json").get_json()
    assert [entry["kid"] for entry in jwks["compromised"]] == [kid]


def test_the_api_is_rate_limited_per_address_and_open_to_browsers(client, certificate):
    preflight = client.options("/api/v1/verify", headers={"Origin": "https://hr.example",
                                                          "Access-Control-Request-Method": "POST",
                                                          "Access-Control-Request-Headers": "Content-Type"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    codes = [verify(client, credential=certificate.token).status_code for _ in range(13)]
    assert codes[:12] == [200] * 12 and codes[12] == 429
    assert verify(client, credential=certificate.token).get_json()["status"] == "error"
    other = client.post("/api/v1/verify", json={"credential": certificate.token},
                        environ_overrides={"REMOTE_ADDR": "203.0.113.9"})
    assert other.status_code == 200


def test_a_flate_bomb_is_refused_on_the_page_and_the_api_and_the_page_is_rate_limited(app, client, certificate):
    bomb = bomb_pdf(64)  # 64 KB that would inflate to 64 MB
    page = client.post("/verify", data={"pdf": (io.BytesIO(bomb), "certificate.pdf"),
                                        "csrf_token": csrf_token(client, "/verify")},
                       content_type="multipart/form-data")
    assert page.status_code == 200 and "cannot parse the PDF" in page.get_data(as_text=True)
    api = client.post("/api/v1/verify", data={"pdf": (io.BytesIO(bomb), "c.pdf")}, content_type="multipart/form-data")
    assert api.status_code == 200 and api.get_json()["status"] == "malformed"

    app.config["VERIFY_API_PER_MINUTE"] = 3
    codes = [client.post("/verify", data={"token": certificate.token, "csrf_token": csrf_token(client, "/verify")}
                         ).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]  # the bomb's check was the first of this minute
    assert "checks a minute came from your address" in client.post(
        "/verify", data={"token": certificate.token, "csrf_token": csrf_token(client, "/verify")}
    ).get_data(as_text=True)
