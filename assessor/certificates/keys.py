"""Ed25519 issuer keys: generation, loading, public JWKs and the JWKS document.

A key's short id (``KeyInfo.kid``) is its RFC 7638 JWK thumbprint. In JWT headers and
in the published JWKS the key is named by a URL, ``kid_url(issuer_id, kid)``.
Retired keys stay in the JWKS (so certificates they signed still verify); which
keys are retired, and since when, is published separately by ``retired_keys``
because JWKS has no standard member for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from assessor.errors import CertificateError

PEM_SUFFIX = ".pem"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class KeyInfo:
    kid: str  # RFC 7638 thumbprint of the public key
    path: Path  # PEM file holding the private key (mode 0600)
    created: datetime  # UTC


@dataclass(frozen=True)
class KeyRecord:
    """One published public key; ``retired_at`` set once it no longer signs new certificates."""

    kid: str  # the kid URL used in JWT headers
    public_key: Ed25519PublicKey
    created: datetime
    retired_at: datetime | None = None


def raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw_public_bytes(public_key))}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("ascii")
    return b64url(hashlib.sha256(canonical).digest())


def kid_url(issuer_id: str, kid: str) -> str:
    """The key's name in JWT headers and the JWKS: a fragment of the issuer's id."""
    return f"{issuer_id}#{kid}"


def generate_key(directory: str | os.PathLike) -> KeyInfo:
    """Create a new Ed25519 private key as ``<kid>.pem`` (mode 0600) in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    private_key = Ed25519PrivateKey.generate()
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


def load_private_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    """Load a PEM private key written by ``generate_key``; refuse group/world-readable files."""
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
    if not isinstance(key, Ed25519PrivateKey):
        raise CertificateError(f"{path} is not an Ed25519 key")
    return key


def public_jwk(public_key: Ed25519PublicKey, kid: str) -> dict:
    """The public JWK (RFC 8037) for an Ed25519 key."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(raw_public_bytes(public_key)),
        "kid": kid,
        "use": "sig",
        "alg": "EdDSA",
    }


def build_jwks(records: list[KeyRecord]) -> dict:
    """The JWKS document: every key, active and retired, newest first."""
    kids = [record.kid for record in records]
    if len(set(kids)) != len(kids):
        raise CertificateError("duplicate kid in the key list")
    ordered = sorted(records, key=lambda record: record.created, reverse=True)
    return {"keys": [public_jwk(record.public_key, record.kid) for record in ordered]}


def retired_keys(records: list[KeyRecord]) -> dict:
    """Which published keys are retired, and since when (kept out of the JWKS itself)."""
    return {
        "retired": [
            {"kid": record.kid, "retired_at": record.retired_at.astimezone(timezone.utc).isoformat()}
            for record in records
            if record.retired_at is not None
        ]
    }


def public_key_from_jwk(jwk: dict) -> Ed25519PublicKey:
    """Parse an OKP/Ed25519 public JWK; raises CertificateError on anything else."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise CertificateError("not an Ed25519 OKP key")
    if "d" in jwk:
        raise CertificateError("a published JWK must not contain the private part")
    x = jwk.get("x")
    if not isinstance(x, str):
        raise CertificateError("JWK has no x")
    raw = b64url_decode(x)
    if raw is None or len(raw) != 32:
        raise CertificateError("JWK x is not a 32-byte base64url value")
    return Ed25519PublicKey.from_public_bytes(raw)


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
