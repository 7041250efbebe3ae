"""Issuer keys: P-256 (ES256) for signing, Ed25519 (EdDSA) still read for certificates signed before; public
JWKs, the JWKS document, the keys' published states, and destroying a private key that must never sign again.

A key's short id is its RFC 7638 JWK thumbprint. In JWT headers and the JWKS a key is named by a URL fixed when
the key is made (``key_url``) that dereferences to its JWK; the URL is stored and published for ever, so a later
change of the service's address does not orphan what the key signed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.exceptions import InvalidSignature

from assessor.errors import CertificateError

PEM_SUFFIX = ".pem"
ES256, EDDSA = "ES256", "EdDSA"
SIGNING_ALGORITHM = ES256  # what new keys sign with: the OB 3.0 verifiers' common ground (RS256/ES256)
P256_COORDINATE_BYTES = 32

PrivateKey = ec.EllipticCurvePrivateKey | Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | Ed25519PublicKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class KeyInfo:
    kid: str  # RFC 7638 thumbprint of the public key
    path: Path  # PEM file holding the private key (mode 0600)
    created: datetime  # UTC


@dataclass(frozen=True)
class KeyRecord:
    """One published public key and its state: retired ones no longer sign; compromised ones are distrusted for
    everything dated from ``compromised_at``."""

    kid: str  # the key's URL, as in JWT headers
    public_key: PublicKey
    created: datetime
    retired_at: datetime | None = None
    compromised_at: datetime | None = None
    compromise_reason: str | None = None


def algorithm_of(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, (Ed25519PrivateKey, Ed25519PublicKey)):
        return EDDSA
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and isinstance(key.curve, ec.SECP256R1):
        return ES256
    raise CertificateError("issuer keys are EC P-256 (or, for old certificates, Ed25519)")


def _thumbprint_members(public_key: PublicKey) -> dict:
    if algorithm_of(public_key) == EDDSA:
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}
    numbers = public_key.public_numbers()
    return {"crv": "P-256", "kty": "EC", "x": b64url(numbers.x.to_bytes(P256_COORDINATE_BYTES, "big")),
            "y": b64url(numbers.y.to_bytes(P256_COORDINATE_BYTES, "big"))}


def thumbprint(public_key: PublicKey) -> str:
    """RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order."""
    canonical = json.dumps(_thumbprint_members(public_key), separators=(",", ":"), sort_keys=True).encode("ascii")
    return b64url(hashlib.sha256(canonical).digest())


def key_url(issuer_id: str, kid: str) -> str:
    """Where a new key is published (its JWK, on its own): a path under the issuer's id."""
    return f"{issuer_id}/keys/{kid}"


def kid_url(issuer_id: str, kid: str) -> str:
    """How keys made before key URLs were named (a fragment of the issuer's id); kept to read old rows."""
    return f"{issuer_id}#{kid}"


def generate_key(directory: str | os.PathLike) -> KeyInfo:
    """Create a new P-256 private key as ``<kid>.pem`` (mode 0600) in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    private_key = ec.generate_private_key(ec.SECP256R1())
    kid = thumbprint(private_key.public_key())
    path = directory / f"{kid}{PEM_SUFFIX}"
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        # O_EXCL: never overwrite a key; the mode is set at creation, so the key is never world-readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:  # pragma: no cover - 256-bit collision
        raise CertificateError(f"key file already exists: {path}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(path, 0o600)  # in case the umask or filesystem interfered
    return KeyInfo(kid=kid, path=path, created=datetime.now(timezone.utc))


def load_private_key(path: str | os.PathLike) -> PrivateKey:
    """Load a PEM private key; refuse group/world-readable files and other kinds of key."""
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise CertificateError(f"private key {path} is readable by others (mode {mode:o}); chmod 600 it")
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise CertificateError(f"cannot read private key {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise CertificateError(f"{path} is not a PEM private key") from exc
    try:
        algorithm_of(key)
    except CertificateError:
        raise CertificateError(f"{path} is neither an EC P-256 nor an Ed25519 key") from None
    return key


def destroy_private_key(path: str | os.PathLike) -> bool:
    """Overwrite and remove a private key file, so a retired or compromised key can never sign again; False when
    there was nothing to remove. (On copy-on-write or journalled storage the overwrite is best effort; the
    removal is not.)"""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    with open(path, "r+b", buffering=0) as handle:
        handle.write(os.urandom(max(size, 1)))
        os.fsync(handle.fileno())
    path.unlink()
    return True


def sign(private_key: PrivateKey, data: bytes) -> tuple[str, bytes]:
    """(alg, JWS signature): ES256 as the raw 64-byte r||s that JWS wants, not DER."""
    algorithm = algorithm_of(private_key)
    if algorithm == EDDSA:
        return EDDSA, private_key.sign(data)
    r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
    return ES256, r.to_bytes(P256_COORDINATE_BYTES, "big") + s.to_bytes(P256_COORDINATE_BYTES, "big")


def signature_matches(public_key: PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        if algorithm_of(public_key) == EDDSA:
            if len(signature) != 64:
                return False
            public_key.verify(signature, data)
        else:
            if len(signature) != 2 * P256_COORDINATE_BYTES:
                return False
            r = int.from_bytes(signature[:P256_COORDINATE_BYTES], "big")
            s = int.from_bytes(signature[P256_COORDINATE_BYTES:], "big")
            public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def public_jwk(public_key: PublicKey, kid: str) -> dict:
    """The public JWK (RFC 7518 EC, or RFC 8037 OKP for old Ed25519 keys)."""
    return {**_thumbprint_members(public_key), "kid": kid, "use": "sig", "alg": algorithm_of(public_key)}


def build_jwks(records: list[KeyRecord]) -> dict:
    """The JWKS document: every key, active, next, retired and compromised, newest first."""
    kids = [record.kid for record in records]
    if len(set(kids)) != len(kids):
        raise CertificateError("duplicate kid in the key list")
    ordered = sorted(records, key=lambda record: record.created, reverse=True)
    return {"keys": [public_jwk(record.public_key, record.kid) for record in ordered]}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def key_states(records: list[KeyRecord]) -> dict:
    """Which published keys are retired or compromised, and since when (JWKS has no standard member for it, so
    the document carries it beside ``keys``)."""
    return {
        "retired": [{"kid": record.kid, "retired_at": _iso(record.retired_at)}
                    for record in records if record.retired_at is not None],
        "compromised": [{"kid": record.kid, "since": _iso(record.compromised_at),
                         "reason": record.compromise_reason or "the private key was exposed"}
                        for record in records if record.compromised_at is not None],
    }




def public_key_from_jwk(jwk: dict) -> PublicKey:
    """Parse a public EC P-256 or OKP Ed25519 JWK; CertificateError on anything else."""
    if not isinstance(jwk, dict):
        raise CertificateError("not a JWK")
    if "d" in jwk:
        raise CertificateError("a published JWK must not contain the private part")
    if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
        raw = b64url_decode(jwk.get("x"))
        if raw is None or len(raw) != 32:
            raise CertificateError("JWK x is not a 32-byte base64url value")
        return Ed25519PublicKey.from_public_bytes(raw)
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        x, y = b64url_decode(jwk.get("x")), b64url_decode(jwk.get("y"))
        if x is None or y is None or len(x) != P256_COORDINATE_BYTES or len(y) != P256_COORDINATE_BYTES:
            raise CertificateError("JWK x and y must be 32-byte base64url values")
        try:
            return ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                                 ec.SECP256R1()).public_key()
        except ValueError:
            raise CertificateError("JWK x and y are not a point on P-256") from None
    raise CertificateError("not an EC P-256 or Ed25519 key")


_B64URL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def b64url_decode(text: str) -> bytes | None:
    """Strict unpadded base64url decoding; None when the text is not canonical base64url."""
    if not isinstance(text, str) or not set(text) <= _B64URL_CHARS or len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:  # pragma: no cover - excluded by the character check
        return None
    return raw if b64url(raw) == text else None
