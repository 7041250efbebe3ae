"""Certificate engine: keys, OB 3.0 credential, JWT verification (ours and PyJWT's), PDF render, seal, attacks.

Everything is real: P-256 keys on disk, WeasyPrint PDFs parsed back with pypdf, pyHanko seals. What other tools make
of the same credentials and PDFs (JOSE libraries, JSON-LD, pikepdf) is in test_open_badges.py.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import html
import http.server
import io
import json
import os
import random
import re
import stat
import threading
import uuid
from datetime import date, datetime, timedelta, timezone

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pypdf import PdfReader, PdfWriter

from assessor.certificates import (
    CertificateData,
    CriterionResult,
    KeyRecord,
    LevelDescription,
    ModuleResult,
    build_credential,
    build_jwks,
    generate_key,
    key_states,
    key_url,
    load_private_key,
    public_jwk,
    sign_credential,
    subject_id_for,
    verify_credential,
    verify_pdf,
)
from assessor.certificates import verify as v
from assessor.certificates.keys import sign, thumbprint
from assessor.certificates.render import DataOnlyFetcher, render_certificate_pdf, seal_pdf
from assessor.errors import CertificateError

ISSUER = "https://assessor.example.org/issuer"
ISSUED = datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc)
LEARNER_EMAIL = "ada.lovelace@example.org"  # known to the app, must never reach the credential


LEVELS = (LevelDescription(1, 5, "Works"), LevelDescription(2, 15, "Tested"), LevelDescription(3, 25, "Operable"))
MODULES = (
    ModuleResult("m1-http", "HTTP services in depth", 92, 100, date(2026, 9, 14)),
    ModuleResult("m2-data", "Data modelling and PostgreSQL", 81.25, 100, date(2026, 10, 2)),
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def make_data(**changes) -> CertificateData:
    base = CertificateData(
        certificate_id=uuid.UUID("3f1d2c4b-5a69-4788-9a0b-1c2d3e4f5a6b"),
        subject_id=subject_id_for(ISSUER, "learner-42"),
        learner_name="Ada Lovelace",
        course="Backend Engineering",
        capstone="Library API",
        rubric_id="backend-capstone",
        rubric_version="3",
        rubric_sha256=hashlib.sha256(b"rubric").hexdigest(),
        criteria=(
            CriterionResult("tests", "Automated tests", 2, 18, 20, LEVELS),
            CriterionResult("design", "API design", 3, 25, 25, LEVELS),
            CriterionResult("docs", "Documentation", 2, 7.5, 10, LEVELS),
        ),
        modules=MODULES,
        total=50.5,
        max_total=55,
        pass_mark=35,
        repo_url="https://github.com/ada/library-api",
        commit="0123456789abcdef0123456789abcdef01234567",
        report_sha256=hashlib.sha256(b"{}").hexdigest(),
        mentor_name="Grace Hopper",
        assessed_at=ISSUED - timedelta(days=2),
        approved_at=ISSUED - timedelta(hours=3),
        issued_at=ISSUED,
        verify_url="https://assessor.example.org/certificates/3f1d2c4b",
        status_list_url="https://assessor.example.org/status/1",
        status_list_index=1234,
        issuer_id=ISSUER,
        issuer_name="Capstone Academy",
    )
    return dataclasses.replace(base, **changes)


@dataclasses.dataclass
class Issuer:
    key: ec.EllipticCurvePrivateKey
    kid: str
    other_key: ec.EllipticCurvePrivateKey  # a second published key (e.g. the next one after rotation)
    other_kid: str
    jwks: dict


@pytest.fixture(scope="module")
def issuer(tmp_path_factory) -> Issuer:
    directory = tmp_path_factory.mktemp("keys")
    first = generate_key(directory)
    second = generate_key(directory)
    key, other = load_private_key(first.path), load_private_key(second.path)
    kid, other_kid = key_url(ISSUER, first.kid), key_url(ISSUER, second.kid)
    jwks = build_jwks([
        KeyRecord(kid, key.public_key(), first.created),
        KeyRecord(other_kid, other.public_key(), second.created),
    ])
    return Issuer(key, kid, other, other_kid, jwks)


@pytest.fixture(scope="module")
def token(issuer) -> str:
    return sign_credential(build_credential(make_data()), issuer.key, issuer.kid)


@pytest.fixture(scope="module")
def pdf(token) -> bytes:
    return render_certificate_pdf(make_data(), token)


@pytest.fixture(scope="module")
def sealed(pdf, issuer) -> bytes:
    return seal_pdf(pdf, issuer.key, issuer_name="Capstone Academy", kid=issuer.kid)


def parts(token: str) -> tuple[dict, dict, str]:
    h, p, s = token.split(".")
    pad = lambda t: base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))  # noqa: E731
    return json.loads(pad(h)), json.loads(pad(p)), s


def sign_raw(header: dict, payload: dict, key) -> str:
    signing_input = f"{segment(header)}.{segment(payload)}"
    return f"{signing_input}.{b64(sign(key, signing_input.encode())[1])}"


# ---------------------------------------------------------------- keys


def test_generate_key_writes_private_pem_0600_named_by_thumbprint(tmp_path):
    info = generate_key(tmp_path / "keys")
    assert stat.S_IMODE(os.stat(info.path).st_mode) == 0o600
    assert info.path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    key = load_private_key(info.path)
    assert info.kid == thumbprint(key.public_key()) and info.path.name == f"{info.kid}.pem"
    assert info.created.tzinfo is not None
    assert generate_key(tmp_path / "keys").kid != info.kid


def test_load_private_key_refuses_readable_and_foreign_files(tmp_path):
    info = generate_key(tmp_path)
    os.chmod(info.path, 0o644)
    with pytest.raises(CertificateError, match="readable by others"):
        load_private_key(info.path)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    os.chmod(junk, 0o600)
    with pytest.raises(CertificateError, match="not a PEM"):
        load_private_key(junk)
    with pytest.raises(CertificateError, match="cannot read"):
        load_private_key(tmp_path / "missing.pem")


def test_new_keys_are_p256_and_sign_es256(tmp_path):
    info = generate_key(tmp_path)
    key = load_private_key(info.path)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    algorithm, signature = sign(key, b"data")
    assert algorithm == "ES256" and len(signature) == 64  # raw r||s as JWS wants, not DER


def test_key_urls_live_under_the_issuer_and_dereference_by_thumbprint():
    assert key_url(ISSUER, "abc") == f"{ISSUER}/keys/abc"


def test_public_jwk_and_jwks_keep_retired_keys(issuer):
    jwk = public_jwk(issuer.key.public_key(), issuer.kid)
    assert {k: jwk[k] for k in ("kty", "crv", "kid", "alg")} == {"kty": "EC", "crv": "P-256", "kid": issuer.kid,
                                                                  "alg": "ES256"}
    numbers = issuer.key.public_key().public_numbers()
    assert jwk["x"] == b64(numbers.x.to_bytes(32, "big")) and jwk["y"] == b64(numbers.y.to_bytes(32, "big"))
    assert "d" not in jwk
    retired_at = ISSUED + timedelta(days=30)
    records = [
        KeyRecord(issuer.kid, issuer.key.public_key(), ISSUED - timedelta(days=400), retired_at=retired_at),
        KeyRecord(issuer.other_kid, issuer.other_key.public_key(), ISSUED + timedelta(days=30)),
    ]
    jwks = build_jwks(records)
    assert [k["kid"] for k in jwks["keys"]] == [issuer.other_kid, issuer.kid]  # newest first, retired kept
    assert all(set(k) == {"kty", "crv", "x", "y", "kid", "use", "alg"} for k in jwks["keys"])
    states = key_states(records)
    assert states == {"retired": [{"kid": issuer.kid, "retired_at": retired_at.isoformat()}], "compromised": []}
    # a certificate signed before the rotation still verifies against the new JWKS
    old = sign_credential(build_credential(make_data()), issuer.key, issuer.kid)
    assert verify_credential(old, jwks, retired=states).status == "valid"
    # ... but the retired key must not sign anything dated after its retirement
    late = make_data(issued_at=retired_at + timedelta(days=1))
    late_token = sign_credential(build_credential(late), issuer.key, issuer.kid)
    verdict = verify_credential(late_token, jwks, retired=states, now=retired_at + timedelta(days=2))
    assert verdict.status == "unknown_key" and "retired" in verdict.reason
    with pytest.raises(CertificateError, match="duplicate"):
        build_jwks(records + records[:1])


def test_a_key_declared_compromised_invalidates_what_it_signed_since_then(issuer):
    since = ISSUED + timedelta(days=10)
    records = [KeyRecord(issuer.kid, issuer.key.public_key(), ISSUED - timedelta(days=400), retired_at=since,
                         compromised_at=since, compromise_reason="key file copied to a laptop that was stolen")]
    jwks, states = build_jwks(records), key_states(records)
    before = sign_credential(build_credential(make_data()), issuer.key, issuer.kid)
    assert verify_credential(before, jwks, retired=states).status == "valid"
    # the thief signs a credential dated after the compromise: refused, with the reason
    forged = sign_credential(build_credential(make_data(issued_at=since + timedelta(hours=1))), issuer.key,
                             issuer.kid)
    verdict = verify_credential(forged, jwks, retired=states, now=since + timedelta(days=1))
    assert verdict.status == "key_compromised" and not verdict.ok
    assert "stolen" in verdict.reason and since.date().isoformat() in verdict.reason
    assert [check.name for check in verdict.checks if not check.ok] == ["key status"]


def test_old_ed25519_keys_still_verify_what_they_signed(tmp_path):
    old = Ed25519PrivateKey.generate()
    kid = key_url(ISSUER, thumbprint(old.public_key()))
    token = sign_credential(build_credential(make_data()), old, kid)
    assert parts(token)[0]["alg"] == "EdDSA"
    jwks = build_jwks([KeyRecord(kid, old.public_key(), ISSUED - timedelta(days=1))])
    assert jwks["keys"][0]["kty"] == "OKP" and verify_credential(token, jwks).status == "valid"
    # the algorithm is the key's, never the header's: an ES256 header on an Ed25519 key is refused
    header, payload, _ = parts(token)
    assert verify_credential(sign_raw({**header, "alg": "ES256"}, payload, old), jwks).status == "tampered"


# ---------------------------------------------------------------- credential


def test_credential_is_an_open_badge_without_the_email(token, issuer):
    header, payload, _ = parts(token)
    assert header == {"alg": "ES256", "kid": issuer.kid, "typ": "JWT"}
    assert list(header) == ["alg", "kid", "typ"]
    assert payload["@context"] == [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    ]
    assert payload["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert payload["id"] == "urn:uuid:3f1d2c4b-5a69-4788-9a0b-1c2d3e4f5a6b" == payload["jti"]
    assert payload["issuer"] == {"id": ISSUER, "type": ["Profile"], "name": "Capstone Academy"} and payload["iss"] == ISSUER
    assert payload["validFrom"] == "2026-11-20T14:30:00Z" and payload["nbf"] == int(ISSUED.timestamp())
    assert payload["awardedDate"] == "2026-11-20T11:30:00Z"
    subject = payload["credentialSubject"]
    assert subject["id"] == payload["sub"] == subject_id_for(ISSUER, "learner-42")
    assert subject["id"].startswith("urn:uuid:") and subject["type"] == ["AchievementSubject"]
    achievement = subject["achievement"]
    assert achievement["type"] == ["Achievement"] and achievement["name"] == "Backend Engineering: Library API"
    assert achievement["achievementType"] == "Certificate" and "35" in achievement["criteria"]["narrative"]
    descriptions = {d["id"]: d for d in achievement["resultDescription"]}
    results = subject["result"]
    assert {r["resultDescription"] for r in results} == set(descriptions)
    criteria = [r for r in results if descriptions[r["resultDescription"]]["resultType"] == "RubricCriterionLevel"]
    assert [r["value"] for r in criteria] == ["18", "25", "7.5"]
    tests_description = descriptions[criteria[0]["resultDescription"]]
    assert [lvl["level"] for lvl in tests_description["rubricCriterionLevel"]] == ["1", "2", "3"]
    assert criteria[0]["achievedLevel"] == tests_description["rubricCriterionLevel"][1]["id"]  # level 2 of 3
    total = next(r for r in results if descriptions[r["resultDescription"]]["resultType"] == "RubricScore")
    assert total["value"] == "50.5" and descriptions[total["resultDescription"]]["requiredValue"] == "35"
    modules = [r for r in results if descriptions[r["resultDescription"]]["resultType"] == "RawScore"]
    assert [(descriptions[r["resultDescription"]]["name"], r["value"], r["completedOn"]) for r in modules] == [
        ("HTTP services in depth", "92", "2026-09-14"), ("Data modelling and PostgreSQL", "81.2", "2026-10-02")]
    repo, assessment = payload["evidence"]
    assert repo["id"] == "https://github.com/ada/library-api" and repo["commit"] == make_data().commit
    assert (assessment["rubricId"], assessment["rubricVersion"]) == ("backend-capstone", "3")
    assert assessment["rubricSha256"] == make_data().rubric_sha256
    assert assessment["reportSha256"] == make_data().report_sha256 and assessment["approvedBy"] == "Grace Hopper"
    assert payload["credentialSchema"][0]["type"] == "1EdTechJsonSchemaValidator2019"
    assert payload["credentialStatus"] == {
        "id": "https://assessor.example.org/status/1#1234",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "1234",
        "statusListCredential": "https://assessor.example.org/status/1",
    }
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", json.dumps(payload)) and LEARNER_EMAIL not in token


def test_identity_is_a_salted_hash_an_employer_can_check():
    from assessor.certificates import identity_hash_for, identity_matches

    salt = "c2FsdHNhbHQ"
    credential = build_credential(make_data(identity_hash=identity_hash_for(LEARNER_EMAIL, salt), identity_salt=salt))
    [identity] = credential["credentialSubject"]["identifier"]
    assert identity == {"type": "IdentityObject", "identityHash": identity_hash_for(LEARNER_EMAIL, salt),
                        "identityType": "emailAddress", "hashed": True, "salt": salt}
    assert identity["identityHash"] == "sha256$" + hashlib.sha256((LEARNER_EMAIL + salt).encode()).hexdigest()
    assert identity_matches(credential, "  Ada.Lovelace@Example.org ")  # as people type it
    assert not identity_matches(credential, "someone.else@example.org")
    assert LEARNER_EMAIL not in json.dumps(credential)
    with pytest.raises(CertificateError, match="salt"):
        build_credential(make_data(identity_hash=identity_hash_for(LEARNER_EMAIL, salt)))


@pytest.mark.parametrize(("value", "text"), [(50.5, "50.5"), (81.25, "81.2"), (81.26, "81.3"), (35, "35"),
                                             (34.999, "35"), (0, "0"), (99.96, "100"), (99.94, "99.9")])
def test_one_score_precision_everywhere(value, text):
    from assessor.certificates import score_text

    assert score_text(value) == text


def test_the_extension_context_defines_every_term_the_credential_adds():
    from assessor.certificates.credential import EXTENSION_TERMS, extension_context

    document = extension_context("https://assessor.example.org/contexts/capstone-v1.jsonld")
    terms = document["@context"]
    assert terms["@protected"] is True and set(EXTENSION_TERMS) <= set(terms)
    assert terms["assessedAt"]["@type"].endswith("#dateTime") and terms["completedOn"]["@type"].endswith("#date")
    credential = build_credential(make_data(extension_context_url="https://assessor.example.org/contexts/capstone-v1.jsonld"))
    assert credential["@context"][-1] == "https://assessor.example.org/contexts/capstone-v1.jsonld"
    used = set(re.findall(r'"(\w+)":', json.dumps(credential)))
    assert {"commit", "rubricSha256", "reportSha256", "approvedBy", "assessedAt", "completedOn"} <= used


def test_subject_ids_are_stable_opaque_and_never_from_an_email():
    assert subject_id_for(ISSUER, "learner-42") == subject_id_for(ISSUER, "learner-42")
    assert subject_id_for(ISSUER, "learner-42") != subject_id_for(ISSUER, "learner-43")
    with pytest.raises(CertificateError, match="email"):
        subject_id_for(ISSUER, LEARNER_EMAIL)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"total": 20}, "below the pass mark"),
        ({"subject_id": LEARNER_EMAIL}, "urn:uuid"),
        ({"commit": "main"}, "commit"),
        ({"report_sha256": "xyz"}, "sha256"),
        ({"verify_url": "http://evil.example/"}, "https"),
        ({"learner_name": "x" * 121}, "learner_name"),
        ({"criteria": ()}, "criterion"),
        ({"issued_at": datetime(2026, 11, 20)}, "timezone-aware"),
    ],
)
def test_build_credential_refuses_bad_data(changes, message):
    with pytest.raises(CertificateError, match=message):
        build_credential(make_data(**changes))


# ---------------------------------------------------------------- JWT verification


def test_valid_token_verifies_with_our_verifier(token, issuer):
    verdict = verify_credential(token, issuer.jwks, now=ISSUED)
    assert verdict.status == "valid" and verdict.ok and verdict.kid == issuer.kid
    assert verdict.credential == build_credential(make_data())


def test_pyjwt_independently_verifies_our_token_with_the_jwks(token, issuer):
    jwk = next(k for k in issuer.jwks["keys"] if k["kid"] == pyjwt.get_unverified_header(token)["kid"])
    key = pyjwt.PyJWK(jwk, algorithm="ES256")
    payload = pyjwt.decode(token, key=key, algorithms=["ES256"], issuer=ISSUER, options={"require": ["nbf", "jti", "sub", "iss"]})
    assert payload["jti"] == payload["id"] and payload["sub"] == payload["credentialSubject"]["id"]
    assert pyjwt.get_unverified_header(token) == {"alg": "ES256", "kid": issuer.kid, "typ": "JWT"}
    # ... and PyJWT agrees the other key does not verify it
    other = next(k for k in issuer.jwks["keys"] if k["kid"] == issuer.other_kid)
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(token, key=pyjwt.PyJWK(other, algorithm="ES256"), algorithms=["ES256"])


def _attack(name, token, issuer):
    header, payload, signature = parts(token)
    stranger = ec.generate_private_key(ec.SECP256R1())
    if name == "alg_none":
        return f"{segment({**header, 'alg': 'none'})}.{segment(payload)}."
    if name == "hs256_with_public_key_as_secret":
        jwk = next(k for k in issuer.jwks["keys"] if k["kid"] == issuer.kid)
        results = []
        for secret in (jwk["x"].encode(), (jwk["x"] + jwk["y"]).encode(), json.dumps(jwk).encode(),
                       issuer.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo)):
            signing_input = f"{segment({**header, 'alg': 'HS256'})}.{segment(payload)}"
            mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            results.append(f"{signing_input}.{b64(mac)}")
        return results
    if name == "swapped_kid":  # our signature, but header names the other published key
        return f"{segment({**header, 'kid': issuer.other_kid})}.{segment(payload)}.{signature}"
    if name == "edited_payload":
        edited = {**payload, "credentialSubject": {**payload["credentialSubject"], "name": "Mallory"}}
        return f"{token.split('.')[0]}.{segment(edited)}.{signature}"
    if name == "edited_score":
        subject = payload["credentialSubject"]
        results = [{**r, "value": "55"} if r.get("value") == "50.5" else r for r in subject["result"]]
        edited = {**payload, "credentialSubject": {**subject, "result": results}}
        return f"{token.split('.')[0]}.{segment(edited)}.{signature}"
    if name == "es256_signature_as_der":  # the same signature in the DER form some libraries emit
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        return f"{token.rsplit('.', 1)[0]}.{b64(der)}"
    if name == "alg_switched_to_eddsa":
        return f"{segment({**header, 'alg': 'EdDSA'})}.{segment(payload)}.{signature}"
    if name == "resigned_with_stranger_key_our_kid":
        return sign_raw(header, {**payload, "name": "Forged"}, stranger)
    if name == "resigned_with_stranger_key_own_kid":
        return sign_raw({**header, "kid": key_url(ISSUER, "stranger")}, payload, stranger)
    if name == "embedded_jwk_header":
        jwk = public_jwk(stranger.public_key(), issuer.kid)
        return sign_raw({**header, "jwk": jwk}, payload, stranger)
    if name == "typ_changed":
        return sign_raw({**header, "typ": "vc+ld+json"}, payload, issuer.key)
    if name == "sub_mismatch":
        return sign_raw(header, {**payload, "sub": "urn:uuid:00000000-0000-0000-0000-000000000000"}, issuer.key)
    if name == "iss_mismatch":
        return sign_raw(header, {**payload, "iss": "https://evil.example"}, issuer.key)
    if name == "jti_mismatch":
        return sign_raw(header, {**payload, "jti": "urn:uuid:00000000-0000-0000-0000-000000000000"}, issuer.key)
    if name == "nbf_mismatch":
        return sign_raw(header, {**payload, "nbf": payload["nbf"] - 86400}, issuer.key)
    if name == "not_an_open_badge":
        return sign_raw(header, {**payload, "type": ["VerifiableCredential"]}, issuer.key)
    if name == "duplicate_alg_member":
        raw_header = b64(('{"alg":"none","alg":"ES256","kid":%s,"typ":"JWT"}' % json.dumps(issuer.kid)).encode())
        signing_input = f"{raw_header}.{segment(payload)}"
        return f"{signing_input}.{b64(sign(issuer.key, signing_input.encode())[1])}"
    if name == "deeply_nested_json":
        return f"{token.split('.')[0]}.{b64(b'[' * 40000 + b']' * 40000)}.{signature}"
    if name == "truncated_signature":
        return token[:-10]
    if name == "two_parts":
        return ".".join(token.split(".")[:2])
    if name == "padded_base64":
        return token + "=="
    if name == "not_json":
        return f"{b64(b'not json')}.{b64(b'[1]')}.{signature}"
    if name == "empty":
        return ""
    if name == "huge":
        return "a" * (v.MAX_TOKEN_CHARS + 1)
    if name == "not_a_string":
        return 12345
    raise AssertionError(name)


ATTACKS = [
    ("alg_none", "tampered"),
    ("hs256_with_public_key_as_secret", "tampered"),
    ("swapped_kid", "tampered"),
    ("edited_payload", "tampered"),
    ("edited_score", "tampered"),
    ("es256_signature_as_der", "tampered"),
    ("alg_switched_to_eddsa", "tampered"),
    ("resigned_with_stranger_key_our_kid", "tampered"),
    ("resigned_with_stranger_key_own_kid", "unknown_key"),
    ("embedded_jwk_header", "tampered"),
    ("typ_changed", "tampered"),
    ("sub_mismatch", "malformed"),
    ("iss_mismatch", "malformed"),
    ("jti_mismatch", "malformed"),
    ("nbf_mismatch", "malformed"),
    ("not_an_open_badge", "malformed"),
    ("duplicate_alg_member", "malformed"),
    ("deeply_nested_json", "malformed"),
    ("truncated_signature", "tampered"),
    ("two_parts", "malformed"),
    ("padded_base64", "malformed"),
    ("not_json", "malformed"),
    ("empty", "malformed"),
    ("huge", "malformed"),
    ("not_a_string", "malformed"),
]


# validly signed by our key, refused only because our profile is stricter than plain JWS
SIGNED_BY_US = {"typ_changed"}


@pytest.mark.parametrize("name, expected", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attacks_on_the_token_get_a_clear_verdict(name, expected, token, issuer):
    forged = _attack(name, token, issuer)
    for candidate in forged if isinstance(forged, list) else [forged]:
        verdict = verify_credential(candidate, issuer.jwks, now=ISSUED)
        assert verdict.status == expected, verdict.reason
        assert verdict.credential is None
        if expected in ("tampered", "unknown_key") and name not in SIGNED_BY_US:
            # the independent library rejects the same token when pinned to ES256
            with pytest.raises(pyjwt.PyJWTError):
                jwk = next(k for k in issuer.jwks["keys"] if k["kid"] == issuer.kid)
                pyjwt.decode(candidate, key=pyjwt.PyJWK(jwk, algorithm="ES256"), algorithms=["ES256"])


def test_future_credentials_are_not_yet_valid(issuer):
    future = sign_credential(build_credential(make_data(issued_at=ISSUED + timedelta(days=3))), issuer.key, issuer.kid)
    assert verify_credential(future, issuer.jwks, now=ISSUED).status == "not_yet_valid"
    assert verify_credential(future, issuer.jwks, now=ISSUED + timedelta(days=3)).status == "valid"


def test_unusable_jwks_is_a_configuration_error(token):
    with pytest.raises(CertificateError, match="no keys"):
        verify_credential(token, {"not": "a jwks"})
    # a JWKS entry under our kid that is not an EC or OKP key is an unknown key, never HMAC material
    header, _, _ = parts(token)
    jwks = {"keys": [{"kty": "oct", "k": b64(b"secret"), "kid": header["kid"]}]}
    assert verify_credential(token, jwks).status == "unknown_key"


# ---------------------------------------------------------------- PDF


def test_pdf_is_one_landscape_a4_page_with_text_and_credential(pdf, token):
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (842, 595)  # A4 landscape in points
    text = reader.pages[0].extract_text()
    text = text.replace("COURSE MODULES PASSED", "Course modules passed")
    for expected in ("Ada Lovelace", "Backend Engineering", "Library API", "Grace Hopper", "0123456789",
                     "3f1d2c4b-5a69-4788-9a0b-1c2d3e4f5a6b", "Automated tests", "50.5", "CAPSTONE ACADEMY",
                     "Course modules passed", "HTTP services in depth", "81.2", "level 2 of 3"):
        assert expected in text, expected
    assert make_data().commit not in text  # short commit on the page, the full one is in the credential
    assert reader.attachments == {"credential.jwt": [token.encode()]}
    xmp = reader.trailer["/Root"]["/Metadata"].get_data().decode()
    assert re.search(r"pdfaid:part(>|=\")3", xmp) and re.search(r"pdfaid:conformance(>|=\")B", xmp)  # PDF/A-3b


def test_many_criteria_and_a_long_name_still_fit_one_page(issuer):
    data = make_data(
        learner_name="Maximiliana Wolfeschlegelsteinhausenbergerdorff-Featherstonehaugh " * 1 + "W" * 50,
        criteria=tuple(CriterionResult(f"c{i}", f"Criterion {i} with a fairly long name", 3, 5, 5, LEVELS) for i in range(12)),
        total=60, max_total=60, course="C" * 100,
        modules=tuple(ModuleResult(f"m{i}", f"Module {i}: a title of ordinary length", 90, 100, date(2026, 1, i + 1))
                      for i in range(16)),
    )
    token = sign_credential(build_credential(data), issuer.key, issuer.kid)
    reader = PdfReader(io.BytesIO(render_certificate_pdf(data, token)))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Criterion 11" in text and "Module 15" in text
    assert any(data.verify_url in line for line in text.splitlines())  # dense, and still whole


def test_the_verify_address_is_printed_whole_on_one_line_and_is_a_link(pdf):
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    url = make_data().verify_url
    assert any(url in line for line in page.extract_text().splitlines())  # never broken mid-id
    links = [annotation.get_object()["/A"]["/URI"] for annotation in page.get("/Annots", [])
             if annotation.get_object().get("/Subtype") == "/Link"]
    assert url in links


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_injected_markup_in_the_name_is_escaped_and_nothing_is_fetched(issuer, listener):
    evil = f'<link rel=attachment href="file:///etc/passwd"><img src="{listener}/x.png">'
    data = make_data(learner_name=evil)
    token = sign_credential(build_credential(data), issuer.key, issuer.kid)
    fetcher = DataOnlyFetcher()
    pdf = render_certificate_pdf(data, token, fetcher=fetcher)
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.attachments == {"credential.jwt": [token.encode()]}
    text = reader.pages[0].extract_text().replace("\n", "")
    assert "<link rel=attachment" in text and "/x.png" in text  # shown as text, not parsed as markup
    assert fetcher.refused == [] and _Recorder.hits == []
    assert b"root:x:0" not in pdf


def test_the_fetcher_itself_refuses_file_and_network_urls(listener):
    """Defence in depth: even unescaped markup cannot make the renderer read files or the network."""
    from weasyprint import HTML

    fetcher = DataOnlyFetcher()
    html = (f'<link rel=attachment href="file:///etc/passwd"><link rel=stylesheet href="{listener}/s.css">'
            f'<img src="{listener}/x.png"><img src="data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22/%3E">')
    pdf = HTML(string=html, url_fetcher=fetcher.fetcher).write_pdf()
    assert PdfReader(io.BytesIO(pdf)).attachments == {}
    assert sorted(fetcher.refused) == sorted(["file:///etc/passwd", f"{listener}/s.css", f"{listener}/x.png"])
    assert _Recorder.hits == []


# ---------------------------------------------------------------- PDF verification and seal


def _swap_attachment(sealed: bytes, new_token: str) -> bytes:
    """An incremental update that replaces credential.jwt, as an attacker with a PDF editor would."""
    writer = PdfWriter(io.BytesIO(sealed), incremental=True)
    names = writer.root_object["/Names"]
    del names["/EmbeddedFiles"]
    writer.add_attachment("credential.jwt", new_token.encode())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_sealed_pdf_verifies(sealed, issuer, token):
    verdict = verify_pdf(sealed, issuer.jwks, now=ISSUED)
    assert verdict.status == "valid", verdict.reason
    assert verdict.token == token  # what a caller compares with the issued record
    reader = PdfReader(io.BytesIO(sealed))
    assert "/DocMDP" in reader.trailer["/Root"]["/Perms"]  # a certification seal, not a plain signature
    xmp = reader.trailer["/Root"]["/Metadata"].get_data().decode()
    assert re.search(r"pdfaid:part(>|=\")3", xmp)  # still claims PDF/A-3 after the incremental seal
    assert reader.attachments == {"credential.jwt": [token.encode()]}
    assert verdict.credential["credentialSubject"]["name"] == "Ada Lovelace"
    assert PdfReader(io.BytesIO(sealed)).pages[0].extract_text().count("Ada Lovelace") == 1


def test_unsealed_pdf_is_reported_as_such(pdf, issuer):
    assert verify_pdf(pdf, issuer.jwks, now=ISSUED).status == "unsealed"
    assert verify_pdf(pdf, issuer.jwks, require_seal=False, now=ISSUED).status == "valid"


def _pdf_attack(name, sealed, pdf, issuer):
    if name == "truncated":
        return sealed[: len(sealed) // 2]
    if name == "truncated_tail":
        return sealed[:-40]
    if name == "cut_back_to_the_unsealed_revision":
        first_eof = sealed.index(b"%%EOF") + len(b"%%EOF\n")
        return sealed[:first_eof]
    if name == "random_bytes":
        return random.Random(1).randbytes(5000)
    if name == "pdf_header_then_garbage":
        return b"%PDF-1.7\n" + random.Random(2).randbytes(3000) + b"\n%%EOF\n"
    if name == "empty":
        return b""
    if name == "too_large":
        return b"%PDF-1.7\n" + b"0" * v.MAX_PDF_BYTES
    if name == "not_bytes":
        return "a string"
    if name == "attachment_swapped_by_incremental_update":
        other = make_data(learner_name="Mallory", certificate_id=uuid.uuid4(), subject_id=subject_id_for(ISSUER, "m"))
        genuine_other_token = sign_credential(build_credential(other), issuer.key, issuer.kid)
        return _swap_attachment(sealed, genuine_other_token)
    if name == "attachment_removed_by_incremental_update":
        writer = PdfWriter(io.BytesIO(sealed), incremental=True)
        del writer.root_object["/Names"]["/EmbeddedFiles"]
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()
    if name == "object_stream_filter_misspelled":
        # pypdf answers an unknown filter name with NotImplementedError, which is no parse error of its own
        start = sealed.index(b"/ObjStm")
        dictionary_start = sealed.rindex(b" obj", 0, start)
        filter_at = sealed.index(b"/FlateDecode", dictionary_start)
        return sealed[:filter_at] + b"/FlateDeco\xe6\xb2" + sealed[filter_at + len(b"/FlateDecode"):]
    if name == "sealed_by_a_stranger_key":
        stranger = ec.generate_private_key(ec.SECP256R1())
        return seal_pdf(pdf, stranger, issuer_name="Capstone Academy", kid=issuer.kid)
    if name == "sealed_by_the_other_published_key":
        return seal_pdf(pdf, issuer.other_key, issuer_name="Capstone Academy", kid=issuer.other_kid)
    raise AssertionError(name)


PDF_ATTACKS = [
    ("truncated", "truncated"),
    ("truncated_tail", "truncated"),
    ("cut_back_to_the_unsealed_revision", "unsealed"),
    ("random_bytes", "not_pdf"),
    ("pdf_header_then_garbage", "malformed"),
    ("empty", "not_pdf"),
    ("too_large", "too_large"),
    ("not_bytes", "malformed"),
    ("attachment_swapped_by_incremental_update", "modified"),
    ("attachment_removed_by_incremental_update", "no_credential"),
    ("sealed_by_a_stranger_key", "tampered"),
    ("sealed_by_the_other_published_key", "tampered"),
    ("object_stream_filter_misspelled", "malformed"),
]


@pytest.mark.parametrize("name, expected", PDF_ATTACKS, ids=[a[0] for a in PDF_ATTACKS])
def test_attacks_on_the_pdf_get_a_clear_verdict(name, expected, sealed, pdf, issuer):
    forged = _pdf_attack(name, sealed, pdf, issuer)
    verdict = verify_pdf(forged, issuer.jwks, now=ISSUED)
    assert verdict.status == expected, verdict.reason
    assert verdict.credential is None


def test_reading_the_credential_out_of_a_mangled_pdf_gives_a_verdict_not_an_error(sealed, issuer, pdf):
    # the web's "which certificate was this made from?" reads the token without the full check around it
    token, problem = v.extract_credential_token(_pdf_attack("object_stream_filter_misspelled", sealed, pdf, issuer))
    assert token is None and problem.status == "malformed"
    assert "NotImplementedError" in problem.reason


def test_damaged_sealed_pdfs_never_raise_and_never_pass(sealed, issuer):
    # The signature's own /Contents hex is the one place not covered by the seal (and partly zero
    # padding), so flips there only have to not raise; flips anywhere else must never pass.
    start = sealed.rindex(b"/Contents <")
    end = sealed.index(b">", start)
    outside = [i for i in range(len(sealed)) if not start <= i <= end]
    rng = random.Random(7)
    for round_ in range(30):
        damaged = bytearray(sealed)
        positions = rng.sample(range(start, end), 3) if round_ % 5 == 4 else rng.sample(outside, rng.randint(1, 3))
        for position in positions:
            damaged[position] = (damaged[position] + rng.randrange(1, 256)) % 256
        verdict = verify_pdf(bytes(damaged), issuer.jwks, now=ISSUED)
        assert verdict.status in v.ALL_VERDICTS
        if round_ % 5 != 4:
            assert verdict.status != "valid", positions
    for cut in (100, 1000, len(sealed) - 2000, len(sealed) - 1):
        assert verify_pdf(sealed[:cut], issuer.jwks, now=ISSUED).status != "valid"


@pytest.mark.parametrize(("url", "accepted"), [
    ("https://assessor.example.org/verify/abc", True),
    ("http://127.0.0.1:8000/verify/abc", True),
    ("http://localhost/verify/abc", True),
    ("http://[::1]:8000/", True),
    ("http://assessor.example.org/verify/abc", False),
    ("http://127.0.0.1.evil.example/verify", False),
    ("http://localhost@evil.example/", False),
    ("file:///etc/passwd", False),
    ("javascript:alert(1)", False),
])
def test_only_https_or_loopback_http_urls_go_on_a_certificate(url, accepted):
    from assessor.certificates.credential import is_public_url

    assert is_public_url(url) is accepted


def test_sealing_and_verifying_work_inside_a_running_event_loop(pdf, issuer):
    """An async caller (or a browser driver's loop in the same thread) must get the same verdict, not a false
    'tampered' from pyHanko refusing to start a second loop."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    async def seal_and_verify_in_a_loop():
        sealed = seal_pdf(pdf, issuer.key, issuer_name="Capstone Academy", kid=issuer.kid)
        return verify_pdf(sealed, issuer.jwks, now=ISSUED)

    # A thread of its own, so the test starts its loop whatever else this process is running.
    with ThreadPoolExecutor(max_workers=1) as pool:
        verdict = pool.submit(asyncio.run, seal_and_verify_in_a_loop()).result()
    assert verdict.status == "valid", verdict.reason


def test_a_sealed_certificate_says_its_version_archival_claim_and_seal_agree(sealed, issuer):
    from assessor.certificates.verify import archival_check

    verdict = verify_pdf(sealed, issuer.jwks, now=ISSUED)
    archival = next(check for check in verdict.checks if check.name == "archival format")
    assert archival.ok and "PDF/A-3b, PDF 1.7" in archival.detail
    # a file that claimed PDF 2.0 in its catalog would contradict PDF/A-3
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(sealed)))
    from pypdf.generic import NameObject

    writer.root_object[NameObject("/Version")] = NameObject("/2.0")
    out = io.BytesIO()
    writer.write(out)
    check = archival_check(out.getvalue())
    assert not check.ok and "2.0 contradicts" in check.detail
    stripped = PdfWriter(clone_from=PdfReader(io.BytesIO(sealed)))
    del stripped.root_object["/Metadata"]
    out = io.BytesIO()
    stripped.write(out)
    assert "no PDF/A conformance" in archival_check(out.getvalue()).detail


@pytest.mark.parametrize("capstone, course, title", [
    ("Capstone 3: Backend Architecture Defense and Handover", "Backend Engineering: Scalable Architectures",
     "Backend Architecture Defense and Handover"),
    ("Capstone: A Background Job System You Can Trust", "Background Jobs & Workers",
     "A Background Job System You Can Trust"),
    ("Capstone project 2: Resilient Core", "Scalable Architectures", "Resilient Core"),
    ("Observability Capstone", "Ops", "Observability Capstone"),
    ("Capstone:", "Ops", "Capstone:"),
])
def test_each_capstones_badge_names_the_capstone_whole(capstone, course, title):
    from assessor.certificates.badge import badge_svg, badge_texts

    texts = badge_texts(course=course, capstone=capstone, issuer="Example Academy")
    assert texts["title"] == title and texts["subtitle"] == course
    drawn = html.unescape(" ".join(re.findall(r">([^<>]+)</tspan>", badge_svg(**texts))))
    assert title in drawn and course in drawn  # nothing cut: every word of both is on the badge
