"""Private signing keys sealed for the database with AES-256-GCM under a key-encryption key every machine shares."""

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from assessor.errors import CertificateError

SEALED_PREFIX = "aesgcm1:"
NONCE_BYTES = 12
KEK_BYTES = 32
DERIVATION_LABEL = b"capstone-assessor signing-key encryption v1"


def key_encryption_key(*, configured: str | None, secret_key: str | None) -> bytes:
    """The key-encryption key: ASSESSOR_KEY_ENCRYPTION_KEY (32 bytes, base64) when set, otherwise derived from
    the service's secret key with HKDF-SHA256, so a deployment whose machines share the secret key needs nothing
    more. Raises CertificateError for a configured value that is not 32 bytes of base64."""
    if configured:
        try:
            value = base64.urlsafe_b64decode(configured.strip() + "=" * (-len(configured.strip()) % 4))
        except (binascii.Error, ValueError):
            raise CertificateError("ASSESSOR_KEY_ENCRYPTION_KEY is not base64") from None
        if len(value) != KEK_BYTES:
            raise CertificateError(f"ASSESSOR_KEY_ENCRYPTION_KEY must be {KEK_BYTES} bytes (base64 of them), "
                                   f"not {len(value)}")
        return value
    if not secret_key:
        raise CertificateError("no key-encryption key: set ASSESSOR_KEY_ENCRYPTION_KEY or ASSESSOR_SECRET_KEY")
    return HKDF(algorithm=hashes.SHA256(), length=KEK_BYTES, salt=None,
                info=DERIVATION_LABEL).derive(secret_key.encode("utf-8"))


def seal(private_pem: bytes, *, kek: bytes, kid: str) -> str:
    """The key, encrypted and bound to its kid (a sealed key moved to another row does not open)."""
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(kek).encrypt(nonce, private_pem, kid.encode("ascii"))
    return SEALED_PREFIX + base64.b64encode(nonce + ciphertext).decode("ascii")


def unseal(sealed: str, *, kek: bytes, kid: str) -> bytes:
    if not sealed.startswith(SEALED_PREFIX):
        raise CertificateError(f"the stored private key of {kid} is in an unknown format")
    try:
        data = base64.b64decode(sealed[len(SEALED_PREFIX):], validate=True)
        return AESGCM(kek).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], kid.encode("ascii"))
    except (binascii.Error, ValueError, InvalidTag):
        raise CertificateError(
            f"the private key of {kid} cannot be opened on this machine: its key-encryption key differs from the "
            f"one the key was sealed with. Give every machine the same ASSESSOR_KEY_ENCRYPTION_KEY (or the same "
            f"ASSESSOR_SECRET_KEY when none is set)") from None
