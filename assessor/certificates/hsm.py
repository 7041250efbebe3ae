"""An issuer key held in an HSM through PKCS#11: signing happens in the module, and the private key never leaves it."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from assessor.errors import CertificateError

P256_BYTES = 32
_LIBRARIES: dict[str, object] = {}
_LOADING = threading.Lock()
_LOCK = threading.RLock()  # one session at a time: many modules are not safe for concurrent use


@dataclass(frozen=True)
class HsmSettings:
    """Where the key is: the module (a .so), the token's label, the user PIN, the key pair's label."""

    module: str
    token_label: str
    key_label: str
    pin: str = field(repr=False, default="")

    @property
    def uri(self) -> str:
        """What the database records instead of a key: an RFC 7512 PKCS#11 URI (no PIN)."""
        return f"pkcs11:token={self.token_label};object={self.key_label}"


def _library(module: str):
    import pkcs11

    with _LOADING:
        if module not in _LIBRARIES:
            try:
                _LIBRARIES[module] = pkcs11.lib(module)
            except Exception as error:  # a missing or foreign .so
                raise CertificateError(f"the PKCS#11 module {module} cannot be loaded: {error}") from None
        return _LIBRARIES[module]


class HsmPrivateKey(ec.EllipticCurvePrivateKey):
    """A P-256 key in the HSM, usable wherever the service signs with a private key (the credential's JWS, the
    seal's certificate); its private half cannot be exported."""

    def __init__(self, settings: HsmSettings) -> None:
        self.settings = settings
        self._public: ec.EllipticCurvePublicKey | None = None

    def session(self):
        """An open, logged-in session on the token (close it: `with key.session() as session`)."""
        from pkcs11 import PKCS11Error

        try:
            token = _library(self.settings.module).get_token(token_label=self.settings.token_label)
            return token.open(user_pin=self.settings.pin)
        except PKCS11Error as error:
            raise CertificateError(f"the HSM token {self.settings.token_label!r} cannot be opened: "
                                   f"{type(error).__name__}") from None

    def _key(self, session, object_class):
        from pkcs11 import KeyType, PKCS11Error

        try:
            return session.get_key(object_class=object_class, key_type=KeyType.EC, label=self.settings.key_label)
        except PKCS11Error as error:
            raise CertificateError(f"no P-256 key labelled {self.settings.key_label!r} on the HSM token "
                                   f"{self.settings.token_label!r} ({type(error).__name__})") from None

    @property
    def curve(self) -> ec.EllipticCurve:
        return ec.SECP256R1()

    @property
    def key_size(self) -> int:
        return 256

    def public_key(self) -> ec.EllipticCurvePublicKey:
        if self._public is None:
            from pkcs11 import ObjectClass
            from pkcs11.util.ec import encode_ec_public_key

            with _LOCK, self.session() as session:
                der = encode_ec_public_key(self._key(session, ObjectClass.PUBLIC_KEY))
            public = serialization.load_der_public_key(der)
            if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
                raise CertificateError("the HSM key is not a P-256 key: Open Badges verifiers need ES256")
            self._public = public
        return self._public

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """ECDSA over SHA-256 of `data`, made in the HSM (the digest is computed here, the raw mechanism signs
        it), returned DER-encoded as cryptography's own keys return it."""
        from pkcs11 import Mechanism, ObjectClass

        if not isinstance(signature_algorithm, ec.ECDSA) or not isinstance(signature_algorithm.algorithm,
                                                                             hashes.SHA256):
            raise CertificateError("the HSM key signs ECDSA with SHA-256 only")
        digest = hashlib.sha256(data).digest()
        with _LOCK, self.session() as session:
            raw = self._key(session, ObjectClass.PRIVATE_KEY).sign(digest, mechanism=Mechanism.ECDSA)
        return encode_dss_signature(int.from_bytes(raw[:P256_BYTES], "big"), int.from_bytes(raw[P256_BYTES:], "big"))

    def exchange(self, algorithm, peer_public_key) -> bytes:
        raise CertificateError("the HSM key only signs")

    def private_numbers(self):
        raise CertificateError("the private key stays in the HSM")

    def private_bytes(self, encoding, format, encryption_algorithm) -> bytes:
        raise CertificateError("the private key stays in the HSM")

    def __copy__(self) -> "HsmPrivateKey":
        return self

    def __deepcopy__(self, memo) -> "HsmPrivateKey":
        return self
