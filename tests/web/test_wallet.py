"""The credential for wallets: the same certificate with a Data Integrity proof (eddsa-rdfc-2022) by the issuer's
did:web, verified by digitalbazaar's libraries with its revocation entry, and the learner's "Add to wallet"."""

import json
import re
import threading
import urllib.request

import pytest

from assessor.domain import issuing, wallet
from assessor.certificates import dataintegrity

from tests.web.certificate_helpers import approve, settings
from tests.node_verifiers import verify_data_integrity


@pytest.fixture
def app_config(app_config):
    return {**app_config, "QUEUE_IMMEDIATE": True}


@pytest.fixture
def web(app):
    """The app on a real HTTP server on loopback, its public address set to it."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app.config["PUBLIC_URL"] = f"http://127.0.0.1:{server.server_port}"
    yield app.config["PUBLIC_URL"]
    server.shutdown()


@pytest.fixture
def certificate(db, app, web, make_attempt, make_user):
    learner, mentor = make_user(name="Ada Lovelace"), make_user("mentor", courses=["test-capstone"], name="Mona")
    attempt = make_attempt(learner)
    approve(db, app, attempt, mentor)
    issued = issuing.issue_certificate(db, attempt_id=attempt.id, settings=settings(app))
    wallet.add_wallet_form(db, certificate=issued, settings=settings(app))
    return issued


def fetch(url: str, accept: str = "application/ld+json") -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": accept}), timeout=10) as response:
        return json.loads(response.read())


def jwt_claims(token: str) -> dict:
    import base64

    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def test_the_wallet_credential_is_the_same_certificate_signed_by_the_issuers_did(db, web, certificate, make_user):
    credential = fetch(f"{web}/api/v1/certificates/{certificate.public_id}/credential.json")
    claims = jwt_claims(certificate.token)
    did = f"did:web:127.0.0.1%3A{web.rsplit(':', 1)[1]}"
    assert credential["id"] == claims["id"] and credential["credentialStatus"] == claims["credentialStatus"]
    assert credential["credentialSubject"] == claims["credentialSubject"] and credential["issuer"]["id"] == did
    proof = credential["proof"]
    assert (proof["type"], proof["cryptosuite"], proof["proofPurpose"]) == (
        "DataIntegrityProof", "eddsa-rdfc-2022", "assertionMethod")
    assert proof["verificationMethod"].startswith(did + "#")
    document = fetch(f"{web}/.well-known/did.json")
    assert document["id"] == did and proof["verificationMethod"] in document["assertionMethod"]

    # digitalbazaar's vc + eddsa-rdfc-2022 + bitstring status list: genuine and not revoked
    verdict = verify_data_integrity(credential, web=web)
    assert verdict["verified"] and verdict["statusVerified"] and verdict["revoked"] is False, verdict
    # a changed name breaks the proof
    forged = json.loads(json.dumps(credential))
    forged["credentialSubject"]["name"] = "Eve"
    assert not verify_data_integrity(forged, web=web)["verified"]
    # a second, independent implementation of the cryptosuite agrees (openbadgeslib, Python)
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from openbadgeslib.ob3.ldp import OB3VerificationError, verify_data_integrity_proof

    method = next(m for m in document["verificationMethod"] if m["id"] == proof["verificationMethod"])
    pem = dataintegrity.public_key_of(method["publicKeyMultibase"]).public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    ours = {credential["@context"][-1]: fetch(credential["@context"][-1])}
    verify_data_integrity_proof(credential, pem, extra_contexts=ours)
    with pytest.raises(OB3VerificationError):
        verify_data_integrity_proof(forged, pem, extra_contexts=ours)
    # revoked: the same verifier reads the bit from the list, which it checks is signed by the same DID
    issuing.revoke(db, certificate_id=certificate.public_id, admin=make_user("admin"), reason="copied capstone")
    verdict = verify_data_integrity(credential, web=web)
    assert verdict["statusVerified"] and verdict["revoked"] is True, verdict


def test_the_status_list_comes_in_the_form_each_verifier_asks_for(web, certificate):
    did = fetch(f"{web}/.well-known/did.json")["id"]
    with urllib.request.urlopen(f"{web}/status/1", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/vc+jwt")
    ld = fetch(f"{web}/status/1", "application/ld+json")
    assert ld["issuer"] == did and ld["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    assert ld["validUntil"] and ld["credentialSubject"]["ttl"] == issuing.STATUS_LIST_TTL_MS
    plain = fetch(f"{web}/status/1", "application/json")
    assert "proof" not in plain and plain["issuer"].endswith("/issuer")


def test_the_proof_is_checked_by_our_own_code_too_and_the_form_is_kept(db, app, web, certificate):
    from assessor.certificates import contexts
    from assessor.certificates.credential import extension_context

    stored = json.loads(db.get(type(certificate), certificate.id).credential_ld)
    again = wallet.credential_for(db, certificate=certificate, settings=settings(app))
    assert again == stored  # made once, then served as kept
    documents = contexts.published_contexts(settings(app).jsonld_cache)
    context_url = settings(app).context_url
    loader = contexts.document_loader({**documents, context_url: extension_context(context_url)})
    method = fetch(f"{web}/.well-known/did.json")["verificationMethod"][0]
    key = dataintegrity.public_key_of(method["publicKeyMultibase"])
    assert dataintegrity.proof_holds(stored, key, loader)
    stored["credentialSubject"]["result"][0]["value"] = "100"
    assert not dataintegrity.proof_holds(stored, key, loader)


@pytest.mark.parametrize("data, text", [
    (b"", ""),
    (b"\x00\x00", "11"),
    (b"Hello World!", "2NEpo7TZRRrLZSi2U"),
    (bytes(range(1, 40)), None),
])
def test_base58btc_round_trips(data, text):
    encoded = dataintegrity.base58btc(data)
    if text is not None:
        assert encoded == text
    assert dataintegrity.from_base58btc(encoded) == data


@pytest.mark.parametrize("url, did, path", [
    ("https://assessor.example.org", "did:web:assessor.example.org", "/.well-known/did.json"),
    ("http://127.0.0.1:5000", "did:web:127.0.0.1%3A5000", "/.well-known/did.json"),
    ("https://example.org/courses/assessor", "did:web:example.org:courses:assessor", "/courses/assessor/did.json"),
])
def test_did_web_of_an_address(url, did, path):
    assert dataintegrity.did_web(url) == did and dataintegrity.did_document_path(url) == path


def test_the_learner_adds_the_certificate_to_a_wallet_by_link_qr_or_file(client, auth, db, certificate, make_user):
    from assessor.domain.models import User

    auth.as_(db.get(User, certificate.user_id))
    url = f"/learner/attempts/{certificate.attempt_id}"
    page = client.get(url).get_data(as_text=True)
    section = page[page.index('id="wallet"'):]
    link = re.search(r'id="wallet-link" type="text" readonly value="([^"]+)"', section).group(1)
    assert link.endswith(f"/api/v1/certificates/{certificate.public_id}/credential.json")
    assert "<svg" in section[:section.index("wallet-link")]  # the QR a wallet scans
    download = re.search(r'href="([^"]+download=1)"', section).group(1)
    answer = client.get(download.replace("&amp;", "&"))
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    assert answer.get_json(force=True)["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    issuing.revoke(db, certificate_id=certificate.public_id, admin=make_user("admin"), reason="copied work")
    assert 'id="wallet"' not in client.get(url).get_data(as_text=True)  # no longer offered once revoked
