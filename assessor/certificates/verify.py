"""Verification of certificate JWTs and certificate PDFs: always a ``Verdict`` with the checks performed, never
an exception.

Only what our issuer produces is accepted: header exactly ``{"alg","kid","typ":"JWT"}``, the key chosen by
``kid`` from the JWKS, the algorithm the key's type dictates (ES256 for P-256, EdDSA for the Ed25519 keys of older
certificates: never the token's choice), and ``iss``/``jti``/``sub``/``nbf`` equal to the credential body. A key
the issuer declared compromised is distrusted for everything dated from the compromise.
"""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from assessor.certificates.blocking import run_to_completion
from assessor.certificates.credential import (
    CONTEXTS, CREDENTIAL_TYPES, EXTENSION_CONTEXT_PATH, JWT_CLAIMS, is_public_url,
)
from assessor.certificates.keys import (
    algorithm_of, b64url_decode, public_key_from_jwk, signature_matches, thumbprint,
)
from assessor.certificates.status import bit_is_set, decode_bitstring
from assessor.errors import CertificateError
from assessor.logs import quieted

MAX_TOKEN_CHARS = 64 * 1024
MAX_PDF_BYTES = 8 * 1024 * 1024
CREDENTIAL_ATTACHMENT = "credential.jwt"
CLOCK_SKEW_SECONDS = 300

VALID = "valid"
TAMPERED = "tampered"
UNKNOWN_KEY = "unknown_key"
KEY_COMPROMISED = "key_compromised"
MALFORMED = "malformed"
NOT_YET_VALID = "not_yet_valid"
# PDF-only verdicts
NOT_PDF = "not_pdf"
TRUNCATED = "truncated"
TOO_LARGE = "too_large"
NO_CREDENTIAL = "no_credential"
UNSEALED = "unsealed"
MODIFIED = "modified"  # sealed, but changed after sealing (incremental update) or seal broken
ALL_VERDICTS = frozenset({VALID, TAMPERED, UNKNOWN_KEY, KEY_COMPROMISED, MALFORMED, NOT_YET_VALID, NOT_PDF,
                          TRUNCATED, TOO_LARGE, NO_CREDENTIAL, UNSEALED, MODIFIED})

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One thing the verifier looked at, and what it found."""

    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Verdict:
    """``credential`` (the verified body, without the JWT claims) is set only when ``status`` is valid."""

    status: str
    reason: str
    credential: dict | None = field(default=None, compare=False)
    kid: str | None = None
    checks: tuple[Check, ...] = field(default=(), compare=False)
    token: str | None = field(default=None, compare=False)  # the compact JWS that verified (also from a PDF)

    @property
    def ok(self) -> bool:
        return self.status == VALID

    def with_check(self, check: Check, *, status: str | None = None, reason: str | None = None) -> "Verdict":
        """The verdict after one more check (a failing check may change the status)."""
        return Verdict(status or self.status, reason or self.reason, self.credential if (status or self.status) == VALID
                       else None, self.kid, self.checks + (check,))


class _Trail:
    """The checks of one verification, in order, ending in its verdict."""

    def __init__(self) -> None:
        self.checks: list[Check] = []

    def passed(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, True, detail))

    def fail(self, status: str, name: str, reason: str, kid: str | None = None) -> Verdict:
        self.checks.append(Check(name, False, reason))
        return Verdict(status, reason, None, kid, tuple(self.checks))

    def done(self, reason: str, credential: dict, kid: str, token: str) -> Verdict:
        return Verdict(VALID, reason, credential, kid, tuple(self.checks), token)


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


def _contexts_ok(contexts) -> bool:
    """VC 2.0 then OB 3.0 first (as OB requires), then at most the product's own extension context."""
    if not isinstance(contexts, list) or contexts[:2] != CONTEXTS or len(contexts) > 3:
        return False
    extension = contexts[2:]
    return all(isinstance(url, str) and is_public_url(url) and url.endswith(EXTENSION_CONTEXT_PATH)
               for url in extension)


def _claims_problem(payload: dict) -> str | None:
    """Why the payload is not a credential we issue, or None."""
    if not _contexts_ok(payload.get("@context")):
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


def _state(states: dict | None, member: str, kid: str) -> dict | None:
    entries = (states or {}).get(member) if isinstance(states, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("kid") == kid:
            return entry
    return None


def _moment(text) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _verified_jws(token, jwks: dict, trail: _Trail) -> tuple[dict, str, str] | Verdict:
    """(payload, kid, token as text) of a compact JWS our issuer signed, or the failing Verdict."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            return trail.fail(MALFORMED, "format", "token is not ASCII")
    if not isinstance(token, str):
        return trail.fail(MALFORMED, "format", "token is not a string")
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS:
        return trail.fail(MALFORMED, "format", "token too long")
    parts = token.split(".")
    if len(parts) != 3:
        return trail.fail(MALFORMED, "format", "not a compact JWS (three dot-separated parts)")
    header = _decode_json_segment(parts[0])
    payload = _decode_json_segment(parts[1])
    signature = b64url_decode(parts[2])
    if header is None or payload is None or signature is None:
        return trail.fail(MALFORMED, "format", "a JWS segment is not base64url JSON")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        return trail.fail(MALFORMED, "format", "header has no kid")
    trail.passed("format", "a compact JWS with a key id")
    # Our issuer writes exactly these three members; anything else (alg none/HS256, jwk, jku, crit,
    # b64, x5c ...) was not produced by us.
    if set(header) != {"alg", "kid", "typ"} or header.get("typ") != "JWT":
        return trail.fail(TAMPERED, "header", "unexpected JWS header members", kid)
    jwk = _find_jwk(jwks, kid)
    if jwk is None:
        return trail.fail(UNKNOWN_KEY, "key", f"kid {kid!r} is not in the issuer's key set", kid)
    try:
        public_key = public_key_from_jwk(jwk)
    except CertificateError as exc:
        return trail.fail(UNKNOWN_KEY, "key", f"kid {kid!r} does not name a usable key: {exc}", kid)
    expected_alg = algorithm_of(public_key)
    if header.get("alg") != expected_alg:
        return trail.fail(TAMPERED, "header", f"algorithm {header.get('alg')!r} refused (the key is {expected_alg})",
                          kid)
    trail.passed("header", f"{expected_alg}, as the issuer's key requires")
    trail.passed("key", f"{kid} is one of the issuer's published keys")
    if not signature_matches(public_key, signature, f"{parts[0]}.{parts[1]}".encode("ascii")):
        return trail.fail(TAMPERED, "signature", "signature does not match", kid)
    trail.passed("signature", "the signature matches the content")
    return payload, kid, token


def verify_credential(
    token: str, jwks: dict, *, now: datetime | None = None, retired: dict | None = None
) -> Verdict:
    """Check a compact JWT credential against the issuer's JWKS.

    ``retired`` is the key-states document (``keys.key_states()``, which the JWKS we publish carries too): a
    retired key still verifies what it signed before its retirement, but a credential dated after it is refused
    (``unknown_key``); a compromised key verifies nothing dated from the compromise (``key_compromised``).
    Raises CertificateError only when the JWKS itself is unusable (the verifier's configuration); anything wrong
    with the token is a Verdict.
    """
    trail = _Trail()
    checked = _verified_jws(token, jwks, trail)
    if isinstance(checked, Verdict):
        return checked
    payload, kid, token = checked
    problem = _claims_problem(payload)
    if problem:
        # Correctly signed but not shaped as we issue: a signing bug, not a forgery.
        return trail.fail(MALFORMED, "claims", problem, kid)
    trail.passed("claims", "iss, jti, sub and nbf agree with the credential")
    compromised = _state(retired, "compromised", kid)
    since = _moment(compromised.get("since")) if compromised else None
    if compromised is not None and (since is None or payload["nbf"] >= since.timestamp()):
        reason = compromised.get("reason") or "the private key was exposed"
        return trail.fail(KEY_COMPROMISED, "key status",
                          f"the issuer declared this signing key compromised since "
                          f"{(since or datetime.min).date().isoformat()} ({reason}): nothing it signed since then "
                          f"can be trusted", kid)
    retirement = _state(retired, "retired", kid)
    retired_at = _moment(retirement.get("retired_at")) if retirement else None
    if retired_at is not None and payload["nbf"] > retired_at.timestamp():
        return trail.fail(UNKNOWN_KEY, "key status", f"kid {kid!r} was retired before this credential's date", kid)
    trail.passed("key status", "the key was in use when the credential was issued")
    credential = {k: v for k, v in payload.items() if k not in JWT_CLAIMS}
    current = now or datetime.now(timezone.utc)
    if payload["nbf"] > current.timestamp() + CLOCK_SKEW_SECONDS:
        return trail.fail(NOT_YET_VALID, "dates", "validFrom is in the future", kid)
    trail.passed("dates", "issued in the past")
    return trail.done("signature and claims check out", credential, kid, token)


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


# What any stream of a certificate decodes to at most: the largest of ours (subset fonts, a QR code) decodes to
# about 40 KB. A crafted file that inflates further (a flate bomb) is refused before it takes the server's memory.
MAX_DECODED_STREAM_BYTES = 2 * 1024 * 1024
MAX_DECODED_DOCUMENT_BYTES = 8 * 1024 * 1024


def _bounded_pypdf():
    """pypdf's decompression limits tightened to a certificate's, for this thread's reading only."""
    from pypdf import apply_configuration

    limit = MAX_DECODED_STREAM_BYTES
    return apply_configuration(
        maximum_declared_stream_length=limit, array_based_stream_maximum_output_length=limit,
        zlib_maximum_output_length=limit, lzw_maximum_output_length=limit, run_length_maximum_output_length=limit,
        jbig2_maximum_output_length=limit, brotli_maximum_output_length=limit)


def _pyhanko_limits():
    from pyhanko.pdf_utils.decode_limits import DecodeLimits, DocumentDecodeBudget, StreamDecodeLimits

    return DecodeLimits(per_stream=StreamDecodeLimits(max_output_size=MAX_DECODED_STREAM_BYTES),
                        document_budget=DocumentDecodeBudget(base_allowance=MAX_DECODED_DOCUMENT_BYTES, max_ratio=20))


def _log_unreadable(exc: Exception) -> None:
    # A hostile or broken upload is expected input, not our failure: one quiet line, the trace only in debug.
    log.info("certificate PDF could not be checked: %s: %s", type(exc).__name__, str(exc)[:200])
    log.debug("certificate PDF check failed", exc_info=True)


def extract_credential_token(pdf: bytes) -> tuple[str | None, Verdict | None]:
    """The embedded ``credential.jwt`` (exactly one), or a verdict saying why not."""
    from pypdf import PdfReader  # local import: pypdf is only needed for PDFs

    try:
        with _bounded_pypdf():
            reader = PdfReader(io.BytesIO(pdf), strict=True)
            attachments = reader.attachments
            found = attachments.get(CREDENTIAL_ATTACHMENT)
            names = list(attachments)
    except Exception as exc:  # pypdf meets hostile bytes with any error type (a mangled filter name is NotImplemented)
        _log_unreadable(exc)
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

    The seal must be a single certification signature (DocMDP: no changes) covering the entire file, made with
    the same key the JWKS lists under the credential's ``kid``. Its self-signed certificate is trusted only
    because of that key match.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import MDPPerm
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko_certvalidator import ValidationContext

    from cryptography import x509

    reader = PdfFileReader(io.BytesIO(pdf), strict=True, decode_limits=_pyhanko_limits())
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
        expected = thumbprint(public_key_from_jwk(jwk)) if jwk else None
        sealed_with = thumbprint(x509.load_der_x509_certificate(signer_cert.dump()).public_key())
    except (CertificateError, ValueError, TypeError) as exc:
        return Verdict(TAMPERED, f"the seal's key is not the issuer key: {exc}")
    if expected is None or sealed_with != expected:
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


_PDFA_PART = re.compile(rb"pdfaid:part(?:>|=[\"'])\s*(\d)")
_PDFA_CONFORMANCE = re.compile(rb"pdfaid:conformance(?:>|=[\"'])\s*([ABU])")


def archival_check(pdf: bytes) -> Check:
    """Whether the file is what PDF/A-3b needs and claims: PDF 1.7 at most (also after sealing: no later catalog
    version), and XMP metadata saying PDF/A-3B. Informative: the seal already vouches for every byte."""
    from pypdf import PdfReader

    header = pdf[5:8]
    try:
        with _bounded_pypdf():
            root = PdfReader(io.BytesIO(pdf)).trailer["/Root"]
            catalog_version = str(root.get("/Version", "")).lstrip("/")
            metadata = root["/Metadata"].get_object().get_data() if "/Metadata" in root else b""
    except Exception as exc:  # as above: any error type from a damaged file
        _log_unreadable(exc)
        return Check("archival format", False, f"cannot read the PDF's version and metadata: {type(exc).__name__}")
    part, conformance = _PDFA_PART.search(metadata), _PDFA_CONFORMANCE.search(metadata)
    claim = f"PDF/A-{part.group(1).decode()}{conformance.group(1).decode().lower()}" if part and conformance else None
    version = catalog_version or header.decode("ascii", "replace")
    if claim != "PDF/A-3b":
        return Check("archival format", False, f"the file claims {claim or 'no PDF/A conformance'}, not PDF/A-3b")
    if version > "1.7" or header > b"1.7":
        return Check("archival format", False, f"PDF {version} contradicts its PDF/A-3b claim (PDF 1.7 based)")
    return Check("archival format", True, f"PDF/A-3b, PDF {version}: version, archival claim and seal agree")


def _pdf_verdict(status: str, reason: str, checks: tuple[Check, ...] = (), kid: str | None = None) -> Verdict:
    return Verdict(status, reason, None, kid, checks + (Check("pdf", False, reason),))


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
        return _pdf_verdict(problem.status, problem.reason)
    with quieted("pypdf", "pyhanko"):
        return _checked_pdf(bytes(pdf_bytes), jwks, require_seal=require_seal, now=now, retired=retired)


def _checked_pdf(pdf_bytes: bytes, jwks: dict, *, require_seal: bool, now: datetime | None,
                 retired: dict | None) -> Verdict:
    try:
        token, problem = extract_credential_token(pdf_bytes)
        if problem:
            return _pdf_verdict(problem.status, problem.reason)
        verdict = verify_credential(token, jwks, now=now, retired=retired)
        checks = (Check("pdf", True, "a PDF carrying one credential.jwt"),) + verdict.checks
        if not verdict.ok:
            return Verdict(verdict.status, verdict.reason, None, verdict.kid, checks)
        seal = check_seal(pdf_bytes, jwks, verdict.kid)
    except CertificateError:
        raise
    except Exception as exc:  # never let a hostile file surface as a 500
        _log_unreadable(exc)
        return _pdf_verdict(MALFORMED, f"cannot check the PDF: {type(exc).__name__}")
    if seal is None:
        if require_seal:
            reason = "the PDF carries no issuer seal (its credential alone verifies)"
            return Verdict(UNSEALED, reason, None, verdict.kid, checks + (Check("seal", False, reason),))
        return Verdict(VALID, verdict.reason, verdict.credential, verdict.kid, checks, verdict.token)
    if not seal.ok:
        return Verdict(seal.status, seal.reason, None, verdict.kid, checks + (Check("seal", False, seal.reason),))
    return Verdict(VALID, "credential and seal check out", verdict.credential, verdict.kid,
                   checks + (Check("seal", True, seal.reason), archival_check(pdf_bytes)), verdict.token)


# ---------------------------------------------------------------- revocation


REVOKED = "revoked"


def check_revocation(status_token: str, jwks: dict, credential: dict, *, now: datetime | None = None) -> Check:
    """Whether the issuer's signed BitstringStatusListCredential (a VC-JWT) marks ``credential`` revoked.

    ``ok`` is False for revoked and for a list that cannot be trusted, read, or is past its `validUntil` (a saved
    list says nothing about a revocation since; the detail says which)."""
    entry = credential.get("credentialStatus") if isinstance(credential, dict) else None
    if not isinstance(entry, dict) or entry.get("statusPurpose") != "revocation":
        return Check("revocation", False, "the credential names no revocation status list")
    checked = _verified_jws(status_token, jwks, _Trail())
    if isinstance(checked, Verdict):
        return Check("revocation", False, f"the status list does not verify: {checked.reason}")
    payload, _kid, _token = checked
    subject = payload.get("credentialSubject") if isinstance(payload.get("credentialSubject"), dict) else {}
    if ("BitstringStatusListCredential" not in (payload.get("type") or []) or subject.get("statusPurpose") != "revocation"
            or payload.get("iss") != (credential.get("issuer") or {}).get("id")):
        return Check("revocation", False, "the status list is not this issuer's revocation list")
    if payload.get("id") != entry.get("statusListCredential"):
        return Check("revocation", False, "the status list is not the one the credential names")
    until = payload.get("validUntil")
    if until is not None:
        try:
            expired = datetime.fromisoformat(str(until).replace("Z", "+00:00")) < (now or datetime.now(timezone.utc))
        except ValueError:
            return Check("revocation", False, "the status list's validUntil is not a date")
        if expired:
            return Check("revocation", False, f"the status list expired at {until}: fetch a fresh one from the issuer")
    try:
        index = int(entry.get("statusListIndex"))
        revoked = bit_is_set(decode_bitstring(subject.get("encodedList")), index)
    except (TypeError, ValueError, CertificateError) as error:
        return Check("revocation", False, f"the status list cannot be read: {error}")
    if revoked:
        return Check("revocation", False, f"{REVOKED}: the issuer's status list marks entry {index} revoked")
    return Check("revocation", True, f"entry {index} of the issuer's status list is not revoked")
