"""Certificate engine: keys, OB 3.0 credential, JWT verification (ours and PyJWT's), PDF render, seal, attacks.

Everything is real: Ed25519 keys on disk, WeasyPrint PDFs parsed back with pypdf, pyHanko seals.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import http.server
import io
import json
import os
import random
import re
import stat
import threading
import uuid
from datetime import datetime, timedelta, timezone

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pypdf import PdfReader, PdfWriter

from assessor.certificates import (
    CertificateData,
    CriterionResult,
    KeyRecord,
    build_credential,
    build_jwks,
    generate_key,
    kid_url,
    load_private_key,
    public_jwk,
    retired_keys,
    sign_credential,
    subject_id_for,
    verify_credential,
    verify_pdf,
)
from assessor.certificates import verify as v
from assessor.certificates.keys import thumbprint
from assessor.certificates.render import DataOnlyFetcher, render_certificate_pdf, seal_pdf
from assessor.errors import CertificateError

ISSUER = "https://assessor.example.org/issuer"
ISSUED = datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc)
LEARNER_EMAIL = "ada.lovelace@example.org"  # known to the app, must never reach the credential


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
            CriterionResult("tests", "Automated tests", "meets", 18, 20),
            CriterionResult("design", "API design", "exceeds", 25, 25),
            CriterionResult("docs", "Documentation", "meets", 7.5, 10),
        ),
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
    key: Ed25519PrivateKey
    kid: str
    other_key: Ed25519PrivateKey  # a second published key (e.g. the next one after rotation)
    other_kid: str
    jwks: dict


@pytest.fixture(scope="module")
def issuer(tmp_path_factory) -> Issuer:
    directory = tmp_path_factory.mktemp("keys")
    first = generate_key(directory)
    second = generate_key(directory)
    key, other = load_private_key(first.path), load_private_key(second.path)
    kid, other_kid = kid_url(ISSUER, first.kid), kid_url(ISSUER, second.kid)
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


def sign_raw(header: dict, payload: dict, key: Ed25519PrivateKey) -> str:
    signing_input = f"{segment(header)}.{segment(payload)}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


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


def test_public_jwk_and_jwks_keep_retired_keys(issuer):
    jwk = public_jwk(issuer.key.public_key(), issuer.kid)
    assert {k: jwk[k] for k in ("kty", "crv", "kid")} == {"kty": "OKP", "crv": "Ed25519", "kid": issuer.kid}
    raw = issuer.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert jwk["x"] == b64(raw) and "d" not in jwk
    retired_at = ISSUED + timedelta(days=30)
    records = [
        KeyRecord(issuer.kid, issuer.key.public_key(), ISSUED - timedelta(days=400), retired_at=retired_at),
        KeyRecord(issuer.other_kid, issuer.other_key.public_key(), ISSUED + timedelta(days=30)),
    ]
    jwks = build_jwks(records)
    assert [k["kid"] for k in jwks["keys"]] == [issuer.other_kid, issuer.kid]  # newest first, retired kept
    assert all(set(k) == {"kty", "crv", "x", "kid", "use", "alg"} for k in jwks["keys"])
    assert retired_keys(records) == {"retired": [{"kid": issuer.kid, "retired_at": retired_at.isoformat()}]}
    # a certificate signed before the rotation still verifies against the new JWKS
    old = sign_credential(build_credential(make_data()), issuer.key, issuer.kid)
    retired = retired_keys(records)
    assert verify_credential(old, jwks, retired=retired).status == "valid"
    # ... but the retired key must not sign anything dated after its retirement
    late = make_data(issued_at=retired_at + timedelta(days=1))
    late_token = sign_credential(build_credential(late), issuer.key, issuer.kid)
    verdict = verify_credential(late_token, jwks, retired=retired, now=retired_at + timedelta(days=2))
    assert verdict.status == "unknown_key" and "retired" in verdict.reason
    with pytest.raises(CertificateError, match="duplicate"):
        build_jwks(records + records[:1])


# ---------------------------------------------------------------- credential


def test_credential_is_an_open_badge_without_the_email(token, issuer):
    header, payload, _ = parts(token)
    assert header == {"alg": "EdDSA", "kid": issuer.kid, "typ": "JWT"}
    assert list(header) == ["alg", "kid", "typ"]
    assert payload["@context"] == [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    ]
    assert payload["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert payload["id"] == "urn:uuid:3f1d2c4b-5a69-4788-9a0b-1c2d3e4f5a6b" == payload["jti"]
    assert payload["issuer"] == {"id": ISSUER, "type": ["Profile"], "name": "Capstone Academy"} and payload["iss"] == ISSUER
    assert payload["validFrom"] == "2026-11-20T14:30:00Z" and payload["nbf"] == int(ISSUED.timestamp())
    subject = payload["credentialSubject"]
    assert subject["id"] == payload["sub"] == subject_id_for(ISSUER, "learner-42")
    assert subject["id"].startswith("urn:uuid:") and subject["type"] == ["AchievementSubject"]
    achievement = subject["achievement"]
    assert achievement["type"] == ["Achievement"] and achievement["name"] == "Backend Engineering: Library API"
    assert "35" in achievement["criteria"]["narrative"]
    assert [(r["level"], r["points"]) for r in subject["result"]] == [("meets", 18), ("exceeds", 25), ("meets", 7.5)]
    assert {r["resultDescription"] for r in subject["result"]} == {d["id"] for d in achievement["resultDescription"]}
    repo, assessment = payload["evidence"]
    assert repo["id"] == "https://github.com/ada/library-api" and repo["commit"] == make_data().commit
    assert assessment["rubric"] == {"id": "backend-capstone", "version": "3", "sha256": make_data().rubric_sha256}
    assert assessment["reportSha256"] == make_data().report_sha256
    assert (assessment["total"], assessment["passMark"], assessment["approvedBy"]) == (50.5, 35, "Grace Hopper")
    assert payload["credentialStatus"] == {
        "id": "https://assessor.example.org/status/1#1234",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "1234",
        "statusListCredential": "https://assessor.example.org/status/1",
    }
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", json.dumps(payload)) and LEARNER_EMAIL not in token


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
    key = pyjwt.PyJWK(jwk, algorithm="EdDSA")
    payload = pyjwt.decode(token, key=key, algorithms=["EdDSA"], issuer=ISSUER, options={"require": ["nbf", "jti", "sub", "iss"]})
    assert payload["jti"] == payload["id"] and payload["sub"] == payload["credentialSubject"]["id"]
    assert pyjwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": issuer.kid, "typ": "JWT"}
    # ... and PyJWT agrees the other key does not verify it
    other = next(k for k in issuer.jwks["keys"] if k["kid"] == issuer.other_kid)
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(token, key=pyjwt.PyJWK(other, algorithm="EdDSA"), algorithms=["EdDSA"])


def _attack(name, token, issuer):
    header, payload, signature = parts(token)
    stranger = Ed25519PrivateKey.generate()
    if name == "alg_none":
        return f"{segment({**header, 'alg': 'none'})}.{segment(payload)}."
    if name == "hs256_with_public_key_as_secret":
        jwk = next(k for k in issuer.jwks["keys"] if k["kid"] == issuer.kid)
        results = []
        for secret in (jwk["x"].encode(), json.dumps(jwk).encode(),
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
        evidence = [dict(e) for e in payload["evidence"]]
        evidence[1]["total"] = 55
        return f"{token.split('.')[0]}.{segment({**payload, 'evidence': evidence})}.{signature}"
    if name == "resigned_with_stranger_key_our_kid":
        return sign_raw(header, {**payload, "name": "Forged"}, stranger)
    if name == "resigned_with_stranger_key_own_kid":
        return sign_raw({**header, "kid": kid_url(ISSUER, "stranger")}, payload, stranger)
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
        raw_header = b64(('{"alg":"none","alg":"EdDSA","kid":%s,"typ":"JWT"}' % json.dumps(issuer.kid)).encode())
        signing_input = f"{raw_header}.{segment(payload)}"
        return f"{signing_input}.{b64(issuer.key.sign(signing_input.encode()))}"
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
            # the independent library rejects the same token when pinned to EdDSA
            with pytest.raises(pyjwt.PyJWTError):
                jwk = next(k for k in issuer.jwks["keys"] if k["kid"] == issuer.kid)
                pyjwt.decode(candidate, key=pyjwt.PyJWK(jwk, algorithm="EdDSA"), algorithms=["EdDSA"])


def test_future_credentials_are_not_yet_valid(issuer):
    future = sign_credential(build_credential(make_data(issued_at=ISSUED + timedelta(days=3))), issuer.key, issuer.kid)
    assert verify_credential(future, issuer.jwks, now=ISSUED).status == "not_yet_valid"
    assert verify_credential(future, issuer.jwks, now=ISSUED + timedelta(days=3)).status == "valid"


def test_unusable_jwks_is_a_configuration_error(token):
    with pytest.raises(CertificateError, match="no keys"):
        verify_credential(token, {"not": "a jwks"})
    # a JWKS entry under our kid that is not an Ed25519 key is an unknown key, never HMAC material
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
    for expected in ("Ada Lovelace", "Backend Engineering", "Library API", "Grace Hopper", "0123456789",
                     "3f1d2c4b-5a69-4788-9a0b-1c2d3e4f5a6b", "Automated tests", "50.5", "CAPSTONE ACADEMY"):
        assert expected in text, expected
    assert make_data().commit not in text  # short commit on the page, the full one is in the credential
    assert reader.attachments == {"credential.jwt": [token.encode()]}
    xmp = reader.trailer["/Root"]["/Metadata"].get_data().decode()
    assert re.search(r"pdfaid:part(>|=\")3", xmp) and re.search(r"pdfaid:conformance(>|=\")B", xmp)  # PDF/A-3b


def test_many_criteria_and_a_long_name_still_fit_one_page(issuer):
    data = make_data(
        learner_name="Maximiliana Wolfeschlegelsteinhausenbergerdorff-Featherstonehaugh " * 1 + "W" * 50,
        criteria=tuple(CriterionResult(f"c{i}", f"Criterion {i} with a fairly long name", "meets", 5, 5) for i in range(12)),
        total=60, max_total=60, course="C" * 100,
    )
    token = sign_credential(build_credential(data), issuer.key, issuer.kid)
    reader = PdfReader(io.BytesIO(render_certificate_pdf(data, token)))
    assert len(reader.pages) == 1
    assert "Criterion 11" in reader.pages[0].extract_text()


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
    if name == "sealed_by_a_stranger_key":
        stranger = Ed25519PrivateKey.generate()
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
]


@pytest.mark.parametrize("name, expected", PDF_ATTACKS, ids=[a[0] for a in PDF_ATTACKS])
def test_attacks_on_the_pdf_get_a_clear_verdict(name, expected, sealed, pdf, issuer):
    forged = _pdf_attack(name, sealed, pdf, issuer)
    verdict = verify_pdf(forged, issuer.jwks, now=ISSUED)
    assert verdict.status == expected, verdict.reason
    assert verdict.credential is None


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
