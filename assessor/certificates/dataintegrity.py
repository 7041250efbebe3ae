"""Data Integrity proofs (W3C ``eddsa-rdfc-2022``) and the issuer's ``did:web``: the credential as wallets take it.

The proof follows the cryptosuite's steps: canonicalise the document without its proof and the proof options
(with the document's ``@context``) with RDF Dataset Canonicalization, hash each with SHA-256, sign the proof
options' hash followed by the document's hash with Ed25519, and write the signature as multibase base58btc.
The verification method is a ``Multikey`` in the issuer's DID document.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from assessor.certificates.contexts import DocumentLoader
from assessor.certificates.credential import iso_utc
from assessor.errors import CertificateError

CRYPTOSUITE = "eddsa-rdfc-2022"
PROOF_TYPE = "DataIntegrityProof"
DID_CONTEXTS = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ED25519_PUB_MULTICODEC = b"\xed\x01"


def base58btc(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = ""
    while number:
        number, remainder = divmod(number, 58)
        digits = _BASE58[remainder] + digits
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + digits


def from_base58btc(text: str) -> bytes:
    number = 0
    for character in text:
        index = _BASE58.find(character)
        if index < 0:
            raise CertificateError("not base58btc")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def multikey(public_key: Ed25519PublicKey) -> str:
    """``publicKeyMultibase`` of an Ed25519 key: base58btc of the ed25519-pub multicodec prefix and the key."""
    return "z" + base58btc(_ED25519_PUB_MULTICODEC + public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def public_key_of(multibase: str) -> Ed25519PublicKey:
    if not isinstance(multibase, str) or not multibase.startswith("z"):
        raise CertificateError("publicKeyMultibase is not base58btc")
    raw = from_base58btc(multibase[1:])
    if not raw.startswith(_ED25519_PUB_MULTICODEC) or len(raw) != 34:
        raise CertificateError("publicKeyMultibase is not an Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(raw[2:])


def did_web(public_url: str) -> str:
    """``did:web`` of the service's public address: the port percent-encoded, a path as colon-separated parts."""
    parts = urlsplit(public_url)
    if not parts.hostname:
        raise CertificateError(f"{public_url!r} has no host for a did:web")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    segments = [quote(host, safe="")] + [quote(part, safe="") for part in parts.path.split("/") if part]
    return "did:web:" + ":".join(segments)


def did_document_path(public_url: str) -> str:
    """Where a did:web resolver reads the document, relative to the host: /.well-known/did.json at the root."""
    path = urlsplit(public_url).path.rstrip("/")
    return f"{path}/did.json" if path else "/.well-known/did.json"


@dataclass(frozen=True)
class VerificationKey:
    fragment: str  # the key's id inside the DID document (``#`` + this)
    public_key: Ed25519PublicKey


def did_document(did: str, keys: list[VerificationKey]) -> dict:
    methods = [{"id": f"{did}#{key.fragment}", "type": "Multikey", "controller": did,
                "publicKeyMultibase": multikey(key.public_key)} for key in keys]
    return {"@context": list(DID_CONTEXTS), "id": did, "verificationMethod": methods,
            "assertionMethod": [method["id"] for method in methods]}


def canonical(document: dict, loader: DocumentLoader) -> str:
    """RDF Dataset Canonicalization of a JSON-LD document, as N-Quads."""
    from pyld import jsonld

    try:
        return jsonld.normalize(document, {"algorithm": "URDNA2015", "format": "application/n-quads",
                                           "documentLoader": loader, "safe": True})
    except jsonld.JsonLdError as error:
        raise CertificateError(f"the document cannot be canonicalised: {str(error)[:300]}") from None


def _hash_data(document: dict, proof_options: dict, loader: DocumentLoader) -> bytes:
    unsecured = {key: value for key, value in document.items() if key != "proof"}
    options = {**{key: value for key, value in proof_options.items() if key != "proofValue"},
               "@context": document["@context"]}
    return (hashlib.sha256(canonical(options, loader).encode()).digest()
            + hashlib.sha256(canonical(unsecured, loader).encode()).digest())


def add_proof(document: dict, private_key: Ed25519PrivateKey, *, verification_method: str, created: datetime,
              loader: DocumentLoader) -> dict:
    """The document with an ``eddsa-rdfc-2022`` proof for the assertion method ``verification_method``."""
    options = {"type": PROOF_TYPE, "cryptosuite": CRYPTOSUITE, "created": iso_utc(created),
               "verificationMethod": verification_method, "proofPurpose": "assertionMethod"}
    signature = private_key.sign(_hash_data(document, options, loader))
    return {**copy.deepcopy(document), "proof": {**options, "proofValue": "z" + base58btc(signature)}}


def proof_holds(document: dict, public_key: Ed25519PublicKey, loader: DocumentLoader) -> bool:
    """Whether the document's one ``eddsa-rdfc-2022`` proof is a signature by this key over what it says now."""
    proof = document.get("proof") if isinstance(document, dict) else None
    if not isinstance(proof, dict) or proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        return False
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        return False
    try:
        public_key.verify(from_base58btc(value[1:]), _hash_data(document, proof, loader))
    except (InvalidSignature, CertificateError):
        return False
    return True
