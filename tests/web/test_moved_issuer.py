"""A service moved to a new public URL keeps answering for every certificate issued under the old one: the ids a
certificate carries were fixed when it was issued, and both addresses serve them."""

import base64
import gzip
import json
import threading
import urllib.request

import click
import jwt as pyjwt
import pytest
from click.testing import CliRunner
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import KeySet

from assessor.domain import issuing
from assessor.cli.certificates import register

from tests.node_verifiers import verify_data_integrity
from tests.web.certificate_helpers import approve, settings


@pytest.fixture
def app_config(app_config):
    return {**app_config, "QUEUE_IMMEDIATE": True}


@pytest.fixture
def port(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


@pytest.fixture
def cli(app, monkeypatch):
    monkeypatch.setenv("ASSESSOR_INSTANCE", app.instance_path)
    monkeypatch.setenv("ASSESSOR_SECRET_KEY", "test-secret-key")
    monkeypatch.setenv("ASSESSOR_RUBRICS", app.config["RUBRICS_DIR"])
    group = click.Group("assessor")
    register(group)
    return lambda *args: CliRunner().invoke(group, list(args), catch_exceptions=False)


def fetch(url: str, accept: str = "application/vc+jwt") -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": accept}), timeout=10) as response:
        return response.read()


def claims(token: str) -> dict:
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def revoked_by_list(status_token: str, credential: dict) -> bool:
    """The credential's bit, read from the list the way the spec describes it (not with our own code)."""
    encoded = claims(status_token)["credentialSubject"]["encodedList"][1:]
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    index = int(credential["credentialStatus"]["statusListIndex"])
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def test_every_earlier_certificate_verifies_after_the_service_moves(app, db, client, cli, port, make_attempt,
                                                                   make_user):
    old, new = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    mentor = make_user("mentor", courses=["test-capstone"], name="Mona Mentor")
    learner = make_user(name="Ada Lovelace")
    app.config["PUBLIC_URL"] = old
    issued = []
    for _ in range(2):
        attempt = make_attempt(learner)
        approve(db, app, attempt, mentor)
        issued.append(issuing.issue_certificate(db, attempt_id=attempt.id, settings=settings(app)))
    kept, revoked = issued
    issuing.revoke(db, certificate_id=revoked.public_id, admin=make_user("admin"), reason="copied capstone")

    app.config["PUBLIC_URL"] = new  # the move
    attempt = make_attempt(learner)
    approve(db, app, attempt, mentor)
    after = issuing.issue_certificate(db, attempt_id=attempt.id, settings=settings(app))
    assert claims(after.token)["iss"] == f"{new}/issuer"
    # one learner keeps one subject id across the move
    assert claims(after.token)["sub"] == claims(kept.token)["sub"] == claims(revoked.token)["sub"]

    jwks = json.loads(fetch(f"{new}/.well-known/jwks.json", "application/json"))
    expected = {kept.public_id: False, revoked.public_id: True, after.public_id: False}
    for certificate in (kept, revoked, after):
        credential = claims(certificate.token)
        is_revoked = expected[certificate.public_id]
        # the CLI, given only the new address's key set
        pdf = app.instance_path + f"/{certificate.public_id}.pdf"
        with open(pdf, "wb") as out:
            out.write(certificate.pdf)
        result = cli("verify", pdf, "--jwks", f"{new}/.well-known/jwks.json")
        assert result.exit_code == (1 if is_revoked else 0), result.output
        assert result.output.startswith("revoked: copied capstone" if is_revoked else "valid"), result.output
        # the verify API and the public page
        body = client.post("/api/v1/verify", json={"credential": certificate.token}).get_json()
        assert body["status"] == ("revoked" if is_revoked else "valid"), body
        page = client.get(f"/verify/{certificate.public_id}").get_data(as_text=True)
        assert ("Revoked" if is_revoked else "Valid") in page

        # two independent libraries: the credential and the list it names, fetched from the address it names
        status_url = credential["credentialStatus"]["statusListCredential"]
        assert status_url.startswith(old if certificate is not after else new)
        status_token = fetch(status_url).decode()
        for token in (certificate.token, status_token):
            header = pyjwt.get_unverified_header(token)
            key = pyjwt.PyJWK.from_dict(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
            pyjwt.decode(token, key=key, algorithms=["ES256", "EdDSA"], options={"verify_sub": False})
            joserfc_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256", "EdDSA"])
        status_claims = claims(status_token)
        assert status_claims["issuer"] == credential["issuer"]["id"] and status_claims["id"] == status_url
        assert revoked_by_list(status_token, credential) is is_revoked
        # the issuer id still dereferences to the issuer's profile, from the address it names
        assert json.loads(fetch(credential["issuer"]["id"], "application/ld+json"))["id"] == credential["issuer"]["id"]
        # and so does the achievement id, to the badge class the credential embeds
        achievement = credential["credentialSubject"]["achievement"]
        assert json.loads(fetch(achievement["id"], "application/ld+json"))["id"] == achievement["id"]

    # a list asked for at the new address on behalf of the old issuer is the old issuer's; a stranger's is refused
    asked = claims(fetch(f"{new}/status/1?issuer={old}/issuer").decode())
    assert asked["issuer"] == f"{old}/issuer" and asked["id"] == f"{old}/status/1"
    assert client.get("/status/1?issuer=https://elsewhere.example/issuer").status_code == 404

    # the credential for wallets of an earlier certificate names the DID of the address it was issued under, and
    # digitalbazaar's verifier resolves that DID and its status list at the old address
    for certificate, is_revoked in ((kept, False), (revoked, True)):
        ld = json.loads(fetch(f"{new}/api/v1/certificates/{certificate.public_id}/credential.json",
                              "application/ld+json"))
        assert ld["issuer"]["id"] == f"did:web:127.0.0.1%3A{port}"
        verdict = verify_data_integrity(ld, web=old)
        assert verdict["verified"] and verdict["revoked"] is is_revoked, verdict
