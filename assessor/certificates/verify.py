"""Verification of certificate JWTs and certificate PDFs: always a ``Verdict``, never an exception.

Only what our issuer produces is accepted: header exactly ``{"alg":"EdDSA","kid":...,"typ":"JWT"}``,
an OKP/Ed25519 key from the JWKS chosen by ``kid``, and ``iss``/``jti``/``sub``/``nbf`` equal to the
credential body. The algorithm is never taken from the token.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature

from assessor.certificates.blocking import run_to_completion
from assessor.certificates.credential import CONTEXTS, CREDENTIAL_TYPES, JWT_ALG
from assessor.certificates.keys import b64url_decode, public_key_from_jwk
from assessor.errors import CertificateError

MAX_TOKEN_CHARS = 64 * 1024
MAX_PDF_BYTES = 8 * 1024 * 1024
CREDENTIAL_ATTACHMENT = "credential.jwt"
CLOCK_SKEW_SECONDS = 300

VALID = "valid"
TAMPERED = "tampered"
UNKNOWN_KEY = "unknown_key"
MALFORMED = "malformed"
NOT_YET_VALID = "not_yet_valid"
# PDF-only verdicts
NOT_PDF = "not_pdf"
TRUNCATED = "truncated"
TOO_LARGE = "too_large"
NO_CREDENTIAL = "no_credential"
UNSEALED = "unsealed"
MODIFIED = "modified"  # sealed, but changed after sealing (incremental update) or seal broken
ALL_VERDICTS = frozenset({VALID, TAMPERED, UNKNOWN_KEY, MALFORMED, NOT_YET_VALID, NOT_PDF, TRUNCATED,
                          TOO_LARGE, NO_CREDENTIAL, UNSEALED, MODIFIED})

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """``credential`` (the verified body, without the JWT claims) is set only when ``status`` is valid."""

    status: str
    reason: str
    credential: dict | None = field(default=None, compare=False)
    kid: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == VALID


def _decode_json_segment(segment: str) -> dict | None:
    raw = b64url_decode(segment)
    if raw is None:
        return None
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _no_duplicates(pairs: list) -> dict:
    """Duplicate member names let two parsers read different values (e.g. two "alg"s): refuse them."""
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("duplicate member name")
    return value


def _find_jwk(jwks: dict, kid: str) -> dict | None:
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise CertificateError("the JWKS has no keys list")
    matches = [k for k in keys if isinstance(k, dict) and k.get("kid") == kid]
    return matches[0] if len(matches) == 1 else None


def _claims_problem(payload: dict) -> str | None:
    """Why the payload is not a credential we issue, or None."""
    if payload.get("@context") != CONTEXTS:
        return "unexpected @context"
    if payload.get("type") != CREDENTIAL_TYPES:
        return "not an OpenBadgeCredential"
    issuer = payload.get("issuer")
    subject = payload.get("credentialSubject")
    if not isinstance(issuer, dict) or not isinstance(subject, dict):
        return "issuer and credentialSubject must be objects"
    if not isinstance(payload.get("iss"), str) or payload.get("iss") != issuer.get("id"):
        return "iss does not match issuer.id"
    if not isinstance(payload.get("jti"), str) or payload.get("jti") != payload.get("id"):
        return "jti does not match the credential id"
    if not isinstance(payload.get("sub"), str) or payload.get("sub") != subject.get("id"):
        return "sub does not match credentialSubject.id"
    nbf = payload.get("nbf")
    valid_from = payload.get("validFrom")
    if type(nbf) is not int or not isinstance(valid_from, str):
        return "nbf and validFrom are required"
    try:
        moment = datetime.fromisoformat(valid_from.replace("Z", "+00:00"))
    except ValueError:
        return "validFrom is not a date"
    if moment.tzinfo is None or int(moment.timestamp()) != nbf:
        return "nbf does not match validFrom"
    return None


def _retired_at(retired: dict | None, kid: str) -> datetime | None:
    for entry in (retired or {}).get("retired", []):
        if entry.get("kid") == kid:
            return datetime.fromisoformat(entry["retired_at"])
    return None


def verify_credential(
    token: str, jwks: dict, *, now: datetime | None = None, retired: dict | None = None
) -> Verdict:
    """Check a compact JWT credential against the issuer's JWKS.

    ``retired`` is the ``keys.retired_keys()`` document: a retired key still verifies what it
    signed before its retirement, but a credential dated after it is refused (``unknown_key``).
    Raises CertificateError only when the JWKS itself is unusable (the verifier's configuration);
    anything wrong with the token is a Verdict.
    """
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            return Verdict(MALFORMED, "token is not ASCII")
    if not isinstance(token, str):
        return Verdict(MALFORMED, "token is not a string")
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS:
        return Verdict(MALFORMED, "token too long")
    parts = token.split(".")
    if len(parts) != 3:
        return Verdict(MALFORMED, "not a compact JWS (three dot-separated parts)")
    header = _decode_json_segment(parts[0])
    payload = _decode_json_segment(parts[1])
    signature = b64url_decode(parts[2])
    if header is None or payload is None or signature is None:
        return Verdict(MALFORMED, "a JWS segment is not base64url JSON")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        return Verdict(MALFORMED, "header has no kid")
    # Our issuer writes exactly these three members; anything else (alg none/HS256, jwk, jku, crit,
    # b64, x5c ...) was not produced by us.
    if header.get("alg") != JWT_ALG:
        return Verdict(TAMPERED, f"algorithm {header.get('alg')!r} refused (only EdDSA)", kid=kid)
    if set(header) != {"alg", "kid", "typ"} or header.get("typ") != "JWT":
        return Verdict(TAMPERED, "unexpected JWS header members", kid=kid)
    jwk = _find_jwk(jwks, kid)
    if jwk is None:
        return Verdict(UNKNOWN_KEY, f"kid {kid!r} is not in the issuer's key set", kid=kid)
    try:
        public_key = public_key_from_jwk(jwk)
    except CertificateError as exc:
        return Verdict(UNKNOWN_KEY, f"kid {kid!r} does not name an Ed25519 key: {exc}", kid=kid)
    if len(signature) != 64:
        return Verdict(TAMPERED, "signature has the wrong length", kid=kid)
    try:
        public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature:
        return Verdict(TAMPERED, "signature does not match", kid=kid)
    problem = _claims_problem(payload)
    if problem:
        # Correctly signed but not shaped as we issue: a signing bug, not a forgery.
        return Verdict(MALFORMED, problem, kid=kid)
    retired_at = _retired_at(retired, kid)
    if retired_at is not None and payload["nbf"] > retired_at.timestamp():
        return Verdict(UNKNOWN_KEY, f"kid {kid!r} was retired before this credential's date", kid=kid)
    credential = {k: v for k, v in payload.items() if k not in ("iss", "jti", "nbf", "sub")}
    current = now or datetime.now(timezone.utc)
    if payload["nbf"] > current.timestamp() + CLOCK_SKEW_SECONDS:
        return Verdict(NOT_YET_VALID, "validFrom is in the future", kid=kid)
    return Verdict(VALID, "signature and claims check out", credential, kid)


# ---------------------------------------------------------------- PDFs


def _pdf_shape_problem(pdf: bytes) -> Verdict | None:
    if not isinstance(pdf, (bytes, bytearray)):
        return Verdict(MALFORMED, "input is not bytes")
    if len(pdf) > MAX_PDF_BYTES:
        return Verdict(TOO_LARGE, f"larger than {MAX_PDF_BYTES} bytes")
    if not pdf.startswith(b"%PDF-"):
        return Verdict(NOT_PDF, "does not start with a PDF header")
    if b"%%EOF" not in pdf[-1024:]:
        return Verdict(TRUNCATED, "no end-of-file marker: the file is cut short")
    return None


def extract_credential_token(pdf: bytes) -> tuple[str | None, Verdict | None]:
    """The embedded ``credential.jwt`` (exactly one), or a verdict saying why not."""
    from pypdf import PdfReader  # local import: pypdf is only needed for PDFs
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(pdf), strict=True)
        attachments = reader.attachments
        found = attachments.get(CREDENTIAL_ATTACHMENT)
        names = list(attachments)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as exc:
        return None, Verdict(MALFORMED, f"cannot parse the PDF: {type(exc).__name__}")
    if not found:
        return None, Verdict(NO_CREDENTIAL, "no credential.jwt attachment")
    if len(found) != 1 or names != [CREDENTIAL_ATTACHMENT]:
        return None, Verdict(TAMPERED, f"unexpected attachments: {names}")
    try:
        return found[0].decode("ascii"), None
    except UnicodeDecodeError:
        return None, Verdict(MALFORMED, "credential attachment is not ASCII")


def check_seal(pdf: bytes, jwks: dict, kid: str) -> Verdict | None:
    """None when the PDF has no signature; otherwise whether the issuer's seal holds.

    The seal must be a single certification signature (DocMDP: no changes) covering the entire
    file, made with the same Ed25519 key the JWKS lists under the credential's ``kid``. Its
    self-signed certificate is trusted only because of that key match.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import MDPPerm
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko_certvalidator import ValidationContext

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    reader = PdfFileReader(io.BytesIO(pdf), strict=True)
    signatures = reader.embedded_signatures
    if not signatures:
        return None
    if len(signatures) != 1:
        return Verdict(MODIFIED, f"expected one issuer seal, found {len(signatures)} signatures")
    signature = signatures[0]
    if signature.docmdp_level != MDPPerm.NO_CHANGES:
        return Verdict(MODIFIED, "the signature is not a no-changes certification seal")
    signer_cert = signature.signer_cert
    jwk = _find_jwk(jwks, kid)
    try:
        expected = public_key_from_jwk(jwk) if jwk else None
        sealed_with = x509.load_der_x509_certificate(signer_cert.dump()).public_key()
        raw = sealed_with.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    except (CertificateError, ValueError, TypeError) as exc:
        return Verdict(TAMPERED, f"the seal's key is not the issuer key: {exc}")
    if expected is None or raw != expected.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw):
        return Verdict(TAMPERED, "the PDF was sealed with a key other than the credential's issuer key")
    context = ValidationContext(trust_roots=[signer_cert], allow_fetching=False)
    try:
        status = run_to_completion(async_validate_pdf_signature(signature, context))
    except SignatureValidationError as exc:
        return Verdict(TAMPERED, f"the seal does not validate: {exc}")
    if not (status.intact and status.valid):
        return Verdict(TAMPERED, "the seal's signature does not match the document")
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        return Verdict(MODIFIED, "content was appended after the seal (incremental update)")
    if status.modification_level != ModificationLevel.NONE or not status.docmdp_ok:
        return Verdict(MODIFIED, f"the document was modified after sealing ({status.modification_level})")
    if not status.trusted:
        return Verdict(TAMPERED, "the seal's certificate chain does not validate")
    return Verdict(VALID, "seal intact, nothing changed since sealing", kid=kid)


def verify_pdf(
    pdf_bytes: bytes,
    jwks: dict,
    *,
    require_seal: bool = True,
    now: datetime | None = None,
    retired: dict | None = None,
) -> Verdict:
    """Verify a certificate PDF: the embedded credential, and (when sealed) the PAdES seal."""
    problem = _pdf_shape_problem(pdf_bytes)
    if problem:
        return problem
    pdf_bytes = bytes(pdf_bytes)
    try:
        token, problem = extract_credential_token(pdf_bytes)
        if problem:
            return problem
        verdict = verify_credential(token, jwks, now=now, retired=retired)
        if not verdict.ok:
            return verdict
        seal = check_seal(pdf_bytes, jwks, verdict.kid)
    except CertificateError:
        raise
    except Exception as exc:  # never let a hostile file surface as a 500
        log.warning("certificate PDF check failed: %s", exc, exc_info=True)
        return Verdict(MALFORMED, f"cannot check the PDF: {type(exc).__name__}")
    if seal is None:
        if require_seal:
            return Verdict(UNSEALED, "the PDF carries no issuer seal (its credential alone verifies)", kid=verdict.kid)
        return verdict
    if not seal.ok:
        return Verdict(seal.status, seal.reason, None, verdict.kid)
    return Verdict(VALID, "credential and seal check out", verdict.credential, verdict.kid)
