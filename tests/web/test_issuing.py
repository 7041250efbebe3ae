"""Issuing certificates: idempotent per attempt, only for approved passing attempts; keys, rotation, status list,
revocation; an independent JOSE library (PyJWT) verifies the credential against the JWKS."""

import json
import threading
from pathlib import Path

import jwt as pyjwt
import pytest
from sqlmodel import Session, func, select

from assessor.domain import issuing
from assessor.certificates import verify_credential, verify_pdf
from assessor.certificates.describe import describe
from assessor.domain.models import CHANGES_REQUESTED, Certificate, Event

from tests.web.certificate_helpers import approve, settings


@pytest.fixture
def mentor(make_user):
    return make_user("mentor", courses=["test-capstone"], name="Mona Mentor")


@pytest.fixture
def learner(make_user):
    return make_user(name="Ada Lovelace", email="ada.private@example.org")


@pytest.fixture
def approved(db, app, make_attempt, learner, mentor):
    attempt = make_attempt(learner)
    review = approve(db, app, attempt, mentor)
    assert review.final_outcome == "pass"
    return attempt


def count(db, model) -> int:
    return db.exec(select(func.count()).select_from(model)).one()


def test_issue_is_idempotent_and_records_what_an_employer_needs(db, app, approved, learner):
    first = issuing.issue_certificate(db, attempt_id=approved.id, settings=settings(app))
    again = issuing.issue_certificate(db, attempt_id=approved.id, settings=settings(app))
    assert again.id == first.id and count(db, Certificate) == 1
    kinds = [e.kind for e in db.exec(select(Event).where(Event.attempt_id == approved.id)).all()]
    assert kinds.count("certified") == 1

    keys = issuing.jwks(db, settings=settings(app))
    verdict = verify_credential(first.token, keys, retired=keys)
    assert verdict.ok, verdict
    credential = verdict.credential
    text = json.dumps(credential)
    assert learner.email not in text and "ada.private" not in text
    subject = credential["credentialSubject"]
    assert subject["name"] == "Ada Lovelace"
    view = describe(credential)
    # each criterion's level out of the rubric's top level (tests 0-2, coverage and complexity 0-1, ...)
    assert [line.level for line in view.criteria] == ["level 2 of 2", "level 1 of 1", "level 1 of 1",
                                                      "level 1 of 2", "level 2 of 2", "level 2 of 2"]
    assert view.pass_mark == "60" and view.approved_by == "Mona Mentor"
    repo, assessment = credential["evidence"]
    assert repo["commit"] == approved.commit
    assert repo["id"] == view.repository == approved.source_url
    assert assessment["rubricId"] == "test-capstone" and len(assessment["rubricSha256"]) == 64
    assert len(assessment["reportSha256"]) == 64
    # stored at issue time: the issuer id and the key's URL, what verifiers resolve for ever after
    assert first.issuer_id == settings(app).issuer_id == credential["issuer"]["id"]
    assert pyjwt.get_unverified_header(first.token)["kid"] == f"{first.issuer_id}/keys/{first.kid}"
    assert credential["credentialStatus"]["statusListIndex"] == str(first.status_index)
    # the stored PDF is sealed and verifies
    assert verify_pdf(first.pdf, keys, retired=keys).ok


def test_concurrent_issues_yield_one_certificate(db, app, approved):
    engine = app.extensions["assessor.engine"]
    results, errors = [], []

    def run():
        try:
            with Session(engine, expire_on_commit=False) as session:
                results.append(issuing.issue_certificate(session, attempt_id=approved.id, settings=settings(app)).public_id)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    issuing.active_key(db, settings=settings(app))  # one key, so the race is about the certificate
    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(results)) == 1 and count(db, Certificate) == 1


def test_only_approved_passing_attempts_are_certified(db, app, make_attempt, make_user, mentor):
    open_attempt = make_attempt(make_user())
    with pytest.raises(issuing.IssuingError, match="not approved"):
        issuing.issue_certificate(db, attempt_id=open_attempt.id, settings=settings(app))
    failing = make_attempt(make_user())
    review = approve(db, app, failing, mentor, levels={"tests": 2, "coverage": 1, "complexity": 1, "docs": 1,
                                                        "design": 0, "defense": 0})
    assert review.final_outcome == "fail"
    with pytest.raises(issuing.IssuingError, match="did not pass"):
        issuing.issue_certificate(db, attempt_id=failing.id, settings=settings(app))
    changes = make_attempt(make_user())
    approve(db, app, changes, mentor, decision=CHANGES_REQUESTED)
    with pytest.raises(issuing.IssuingError):
        issuing.issue_certificate(db, attempt_id=changes.id, settings=settings(app))
    assert count(db, Certificate) == 0


def test_the_private_key_is_sealed_in_the_database_and_any_machine_with_the_key_encryption_key_signs(
        db, app, approved, tmp_path):
    from dataclasses import replace

    from assessor.certificates.sealing import key_encryption_key

    key = issuing.active_key(db, settings=settings(app))
    assert key.private_key_path == "" and key.private_key_sealed.startswith("aesgcm1:")
    assert not Path(app.config["KEYS_DIR"]).exists() or not list(Path(app.config["KEYS_DIR"]).iterdir())
    dumped = "\n".join("|".join(map(str, row)) for row in db.connection().exec_driver_sql(
        "SELECT * FROM signing_keys").fetchall())
    assert "PRIVATE KEY" not in dumped and '"d"' not in key.public_jwk  # never in clear, never in the JWK
    # Another machine: its own instance folder, no key file, the same secret key (so the same KEK).
    elsewhere = replace(settings(app), keys_dir=tmp_path / "elsewhere" / "keys")
    certificate = issuing.issue_certificate(db, attempt_id=approved.id, settings=elsewhere)
    assert verify_credential(certificate.token, issuing.jwks(db, settings=elsewhere)).ok
    # A machine with another key-encryption key cannot open it, and says why.
    stranger = replace(elsewhere, kek=key_encryption_key(configured=None, secret_key="another secret"))
    with pytest.raises(issuing.IssuingError, match="key-encryption key differs"):
        issuing.private_key_of(key, stranger)


def test_key_files_of_an_earlier_version_are_sealed_in_and_destroyed(db, app):
    from assessor.certificates import generate_key
    from assessor.domain.models import SigningKey

    keys_dir = Path(app.config["KEYS_DIR"])
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = generate_key(keys_dir)
    issuing._add_key(db, path=info.path, settings=settings(app), active=True, activates_at=issuing.utcnow())
    db.commit()
    assert issuing.active_key(db, settings=settings(app)).kid == info.kid
    row = db.exec(select(SigningKey).where(SigningKey.kid == info.kid)).one()
    assert row.private_key_sealed and row.private_key_path == "" and not info.path.exists()
    assert issuing.private_key_of(row, settings(app)).public_key().public_numbers() == \
        issuing.load_pem_private_key(issuing.unseal(row.private_key_sealed, kek=settings(app).kek, kid=row.kid),
                                     password=None).public_key().public_numbers()


def test_operator_key_file(db, app, tmp_path):
    from assessor.certificates import generate_key

    info = generate_key(tmp_path / "operator")
    app.config["SIGNING_KEY_FILE"] = str(info.path)
    key = issuing.active_key(db, settings=settings(app))
    assert key.kid == info.kid and key.active
    with pytest.raises(issuing.IssuingError):
        issuing.rotate_key(db, settings=settings(app))


def test_rotation_publishes_the_next_key_before_it_signs_then_destroys_the_old_one(
        db, app, approved, make_attempt, make_user, mentor):
    old = issuing.issue_certificate(db, attempt_id=approved.id, settings=settings(app))
    first_key = issuing.active_key(db, settings=settings(app))
    rotated_at = issuing.utcnow()
    next_key = issuing.rotate_key(db, settings=settings(app), now=rotated_at)
    assert next_key.kid != first_key.kid and issuing.key_state(next_key) == "next"
    # published at once, while the old key goes on signing for the notice period (longer than the JWKS cache)
    keys = issuing.jwks(db, settings=settings(app))
    assert {k["kid"].rsplit("/", 1)[1] for k in keys["keys"]} == {first_key.kid, next_key.kid}
    assert issuing.ROTATION_NOTICE.total_seconds() >= 2 * issuing.JWKS_MAX_AGE_SECONDS
    assert issuing.active_key(db, settings=settings(app), now=rotated_at).kid == first_key.kid
    with pytest.raises(issuing.IssuingError, match="under way"):
        issuing.rotate_key(db, settings=settings(app), now=rotated_at)
    # the notice over, the new key signs; the old one is retired and its private key is gone from the disk
    later = rotated_at + issuing.ROTATION_NOTICE
    assert issuing.active_key(db, settings=settings(app), now=later).kid == next_key.kid
    db.refresh(first_key)
    assert issuing.key_state(first_key) == "retired" and first_key.destroyed_at is not None
    assert first_key.private_key_sealed is None and first_key.private_key_path == ""
    second = make_attempt(make_user(name="Grace"))
    approve(db, app, second, mentor)
    new = issuing.issue_certificate(db, attempt_id=second.id, settings=settings(app))
    assert new.kid == next_key.kid and old.kid == first_key.kid
    keys = issuing.jwks(db, settings=settings(app))
    assert [r["kid"].rsplit("/", 1)[1] for r in keys["retired"]] == [first_key.kid]
    assert verify_credential(old.token, keys, retired=keys).ok  # the public half stays published
    assert verify_credential(new.token, keys, retired=keys).ok
    assert verify_pdf(old.pdf, keys, retired=keys).ok


def test_an_emergency_rotation_switches_at_once(db, app):
    first_key = issuing.active_key(db, settings=settings(app))
    new_key = issuing.rotate_key(db, settings=settings(app), immediately=True)
    assert issuing.active_key(db, settings=settings(app)).kid == new_key.kid
    db.refresh(first_key)
    assert issuing.key_state(first_key) == "retired" and first_key.private_key_sealed is None


def test_changing_the_public_url_keeps_earlier_certificates_valid(db, app, approved, make_attempt, make_user,
                                                                  mentor):
    old = issuing.issue_certificate(db, attempt_id=approved.id, settings=settings(app))
    old_issuer = old.issuer_id
    app.config["PUBLIC_URL"] = "https://certificates.new-domain.example"
    moved = settings(app)
    keys = issuing.jwks(db, settings=moved)
    # the key keeps the id it was published under; the old certificate verifies from the new domain's JWKS
    assert pyjwt.get_unverified_header(old.token)["kid"] in {k["kid"] for k in keys["keys"]}
    assert verify_credential(old.token, keys, retired=keys).ok
    assert issuing.check_record(db, credential=verify_credential(old.token, keys).credential,
                                token=old.token).status == "valid"
    assert issuing.issuer_profile(moved)["id"] == "https://certificates.new-domain.example/issuer" != old_issuer
    second = make_attempt(make_user(name="Grace"))
    approve(db, app, second, mentor)
    new = issuing.issue_certificate(db, attempt_id=second.id, settings=moved)
    assert new.issuer_id == moved.issuer_id and old.issuer_id == old_issuer


def test_pyjwt_verifies_the_credential_with_the_jwks(db, app, approved):
    certificate = issuing.issue_certificate(db, attempt_id=approved.id, settings=settings(app))
    keys = issuing.jwks(db, settings=settings(app))
    header = pyjwt.get_unverified_header(certificate.token)
    jwk = next(k for k in keys["keys"] if k["kid"] == header["kid"])
    public = pyjwt.PyJWK(jwk).key
    claims = pyjwt.decode(certificate.token, public, algorithms=["ES256"],
                          issuer=settings(app).issuer_id, options={"require": ["iss", "nbf", "sub", "jti"]})
    assert claims["jti"] == f"urn:uuid:{certificate.public_id}"
    with pytest.raises(pyjwt.InvalidSignatureError):
        forged = certificate.token[:-4] + ("AAAA" if not certificate.token.endswith("AAAA") else "BBBB")
        pyjwt.decode(forged, public, algorithms=["ES256"], options={"verify_aud": False})


def test_status_list_has_the_revoked_bit(db, app, approved, make_user):
    certificate = issuing.issue_certificate(db, attempt_id=approved.id, settings=settings(app))
    admin = make_user("admin")
    credential, token = issuing.status_list_credential(db, settings=settings(app))
    bits = issuing.decode_bitstring(credential["credentialSubject"]["encodedList"])
    assert len(bits) * 8 == issuing.STATUS_LIST_SIZE == 131072
    assert not issuing.bit_is_set(bits, certificate.status_index)
    with pytest.raises(issuing.IssuingError, match="reason"):
        issuing.revoke(db, certificate_id=certificate.public_id, admin=admin, reason="  ")
    issuing.revoke(db, certificate_id=certificate.public_id, admin=admin, reason="plagiarised capstone")
    credential, token = issuing.status_list_credential(db, settings=settings(app))
    assert credential["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert credential["credentialSubject"]["statusPurpose"] == "revocation"
    bits = issuing.decode_bitstring(credential["credentialSubject"]["encodedList"])
    assert issuing.bit_is_set(bits, certificate.status_index) and sum(bin(b).count("1") for b in bits) == 1
    keys = issuing.jwks(db, settings=settings(app))
    jwk = keys["keys"][0]
    claims = pyjwt.decode(token, pyjwt.PyJWK(jwk).key, algorithms=["ES256"])
    assert claims["credentialSubject"]["encodedList"] == credential["credentialSubject"]["encodedList"]


def test_retried_task_issues_once(app, db, approved):
    from assessor.domain.jobs import make_huey, settings_from_config

    queue = make_huey(settings_from_config({**app.config, "QUEUE_IMMEDIATE": True}))
    queue.assessor_certificate_task(approved.id)
    queue.assessor_certificate_task(approved.id)
    assert count(db, Certificate) == 1


def test_a_public_url_that_is_not_https_is_a_clear_error(db, app, approved):
    app.config["PUBLIC_URL"] = "http://assessor.example.org"
    with pytest.raises(issuing.IssuingError, match="not an https URL"):
        issuing.issue_certificate(db, attempt_id=approved.id, settings=settings(app))
    assert count(db, Certificate) == 0


def test_encoded_list_is_multibase_base64url_gzip():
    import base64
    import gzip

    encoded = issuing.encode_bitstring([0, 7, 131071])
    assert encoded.startswith("u") and "=" not in encoded
    raw = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert len(raw) == 16384 and raw[0] == 0b10000001 and raw[-1] == 0b00000001
    assert issuing.decode_bitstring(encoded) == raw


def test_a_worker_that_cannot_sign_tells_the_admin_and_the_learner_and_the_certificate_waits(
        app, db, approved, learner, make_user, client, auth):
    import time

    from assessor.domain import jobs
    from tests.web.conftest import csrf_token

    issuing.active_key(db, settings=settings(app))  # the web servers' key, sealed under their secret
    db.commit()
    stranger = jobs.settings_from_config({**app.config, "SECRET_KEY": "another machine's secret"})
    huey = jobs.make_huey(stranger)
    with jobs.ThreadConsumer(huey, workers=1, periodic=False):
        jobs.enqueue_certificate(huey, approved.id)
        deadline = time.monotonic() + 30
        while not issuing.blocked_certificates(db) and time.monotonic() < deadline:
            time.sleep(0.1)
    [(attempt_id, why)] = issuing.blocked_certificates(db)
    assert attempt_id == approved.id and "key-encryption key differs" in why
    assert count(db, Certificate) == 0
    auth.as_(learner)
    page = client.get(f"/learner/attempts/{approved.id}").get_data(as_text=True)
    assert "could not be signed yet" in page and "The course team has been told" in page
    auth.as_(make_user("admin"))
    jobs_page = client.get("/admin/jobs").get_data(as_text=True)
    assert "1 certificate could not be signed" in jobs_page and f"Attempt #{approved.id}" in jobs_page
    # The worker gets the right key; the admin issues it again.
    good = jobs.make_huey(app.extensions["assessor.job_settings"])
    with jobs.ThreadConsumer(good, workers=1, periodic=False):
        response = client.post(f"/admin/jobs/{approved.id}/certificate",
                               data={"csrf_token": csrf_token(client, "/admin/jobs")})
        assert response.status_code == 302
        deadline = time.monotonic() + 30
        while count(db, Certificate) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
            db.expire_all()
    assert count(db, Certificate) == 1 and issuing.blocked_certificates(db) == []


def test_a_web_server_that_cannot_sign_answers_the_status_list_with_503_not_500(app, db, client):
    issuing.active_key(db, settings=settings(app))  # sealed under the app's secret
    db.commit()
    app.config["SECRET_KEY"] = "a web server set up with another secret"
    response = client.get(f"/status/{issuing.STATUS_LIST_ID}")
    assert response.status_code == 503 and response.headers["Retry-After"] == "60"
    assert "temporarily unavailable" in response.get_json()["error"]


def _test_ca():
    """A CA of our own making, standing in for a commercial one (the signing is the same)."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Seal CA")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _seal_certificate_for(public_key, ca_key, ca_cert):
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.now(timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Capstone Academy")]))
            .issuer_name(ca_cert.subject).public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=10))
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256()))


def test_a_seal_certificate_from_a_ca_makes_the_seal_trusted_by_readers_that_trust_that_ca(db, app, approved,
                                                                                       tmp_path):
    import io

    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    from asn1crypto import x509 as asn1_x509

    from assessor.certificates import generate_key, load_private_key

    operator = generate_key(tmp_path / "operator")
    ca_key, ca_cert = _test_ca()
    leaf = _seal_certificate_for(load_private_key(operator.path).public_key(), ca_key, ca_cert)
    chain_file = tmp_path / "seal-chain.pem"
    chain_file.write_bytes(leaf.public_bytes(Encoding.PEM))
    app.config["SIGNING_KEY_FILE"] = str(operator.path)
    app.config["SEAL_CERTIFICATE_FILE"] = str(chain_file)
    certificate = issuing.issue_certificate(db, attempt_id=approved.id, settings=settings(app))

    root = asn1_x509.Certificate.load(ca_cert.public_bytes(Encoding.DER))
    signature = PdfFileReader(io.BytesIO(certificate.pdf)).embedded_signatures[0]
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[root]))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    untrusted = validate_pdf_signature(signature, ValidationContext(trust_roots=[]))
    assert untrusted.intact and not untrusted.trusted  # trusted because of the CA, not by accident
    # our own verifier still ties the seal to the issuer's published key
    jwks = issuing.jwks(db, settings=settings(app))
    assert verify_pdf(certificate.pdf, jwks, retired=jwks).ok


def test_a_seal_certificate_for_another_key_stops_issuing_with_the_reason(db, app, approved, tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    from assessor.certificates import generate_key

    operator = generate_key(tmp_path / "operator")
    ca_key, ca_cert = _test_ca()
    stranger = _seal_certificate_for(ec.generate_private_key(ec.SECP256R1()).public_key(), ca_key, ca_cert)
    chain_file = tmp_path / "seal-chain.pem"
    chain_file.write_bytes(stranger.public_bytes(Encoding.PEM))
    app.config["SIGNING_KEY_FILE"] = str(operator.path)
    app.config["SEAL_CERTIFICATE_FILE"] = str(chain_file)
    with pytest.raises(issuing.IssuingError, match="another key than the issuer's signing key"):
        issuing.issue_certificate(db, attempt_id=approved.id, settings=settings(app))
    chain_file.write_text("not a certificate")
    with pytest.raises(issuing.IssuingError, match="ASSESSOR_SEAL_CERTIFICATE_FILE"):
        issuing.issue_certificate(db, attempt_id=approved.id, settings=settings(app))
    assert issuing.certificate_for_attempt(db, attempt_id=approved.id) is None
