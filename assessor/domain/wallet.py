"""What wallets and Data Integrity verifiers get: the issuer's did:web document, each certificate's credential with
an embedded ``eddsa-rdfc-2022`` proof (the same id and status entry as its VC-JWT), and the status list in the
same form. The VC-JWT names the issuer by its https profile; this form names it by the DID of the same address."""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key
from sqlmodel import Session, select

from assessor.domain import issuing
from assessor.certificates import contexts, dataintegrity
from assessor.certificates.credential import extension_context
from assessor.certificates.sealing import seal, unseal
from assessor.domain.db import as_utc, utcnow
from assessor.errors import CertificateError
from assessor.domain.issuing import IssuerSettings, IssuingError
from assessor.domain.models import Certificate, DidKey

logger = logging.getLogger("assessor.wallet")

JWT_ONLY_CLAIMS = ("iss", "jti", "nbf", "sub", "exp")


class WalletUnavailable(IssuingError):
    """The Data Integrity form cannot be made here now (the JSON-LD contexts are not cached and cannot be read)."""


def did_of(settings: IssuerSettings) -> str:
    return dataintegrity.did_web(settings.public_url)


def _loader(session: Session, settings: IssuerSettings, *, fetch: bool = False) -> contexts.DocumentLoader:
    if settings.jsonld_cache is None:
        raise WalletUnavailable("no cache folder for the JSON-LD contexts is configured")
    try:
        documents = contexts.published_contexts(settings.jsonld_cache, fetch=fetch)
    except CertificateError as error:
        raise WalletUnavailable(f"the credential for wallets cannot be made yet: {error}") from None
    for address in issuing.earlier_addresses(session, settings=settings):
        earlier = IssuerSettings(keys_dir=settings.keys_dir, public_url=address)
        documents[earlier.context_url] = extension_context(earlier.context_url)
    return contexts.document_loader(documents)


def _key(session: Session, settings: IssuerSettings) -> tuple[DidKey, Ed25519PrivateKey]:
    """The DID's signing key, made on first use (sealed like the issuer's other keys)."""
    row = session.exec(select(DidKey).order_by(DidKey.created_at.desc(), DidKey.id.desc())).first()
    if row is None:
        private = Ed25519PrivateKey.generate()
        fragment = "key-" + secrets.token_hex(8)
        pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        row = DidKey(fragment=fragment, public_multibase=dataintegrity.multikey(private.public_key()),
                     private_key_sealed=seal(pem, kek=issuing.sealing_key(settings), kid=fragment), created_at=utcnow())
        session.add(row)
        session.commit()
        return row, private
    private = load_pem_private_key(unseal(row.private_key_sealed, kek=issuing.sealing_key(settings), kid=row.fragment),
                                   password=None)
    return row, private


def did_document(session: Session, *, settings: IssuerSettings) -> dict:
    """The DID document of the issuer at this address: every key the DID ever signed with."""
    did = did_of(settings)
    rows = session.exec(select(DidKey).order_by(DidKey.created_at, DidKey.id)).all()
    if not rows:
        rows = [_key(session, settings)[0]]
    keys = [dataintegrity.VerificationKey(row.fragment, dataintegrity.public_key_of(row.public_multibase))
            for row in rows]
    return dataintegrity.did_document(did, keys)


def _as_ld(claims: dict, settings: IssuerSettings) -> dict:
    """The VC-JWT's credential, issuer named by the DID (the profile's name and page kept)."""
    credential = {key: value for key, value in claims.items() if key not in JWT_ONLY_CLAIMS}
    issuer = credential.get("issuer")
    profile = dict(issuer) if isinstance(issuer, dict) else {"type": ["Profile"]}
    profile["id"] = did_of(settings)
    credential["issuer"] = profile
    return credential


def fetch_contexts(settings: IssuerSettings) -> None:
    """Fill the JSON-LD context cache (at `assessor init`, and before a worker issues)."""
    if settings.jsonld_cache is not None:
        contexts.published_contexts(settings.jsonld_cache, fetch=True)


def _sign(session: Session, settings: IssuerSettings, document: dict, *, created: datetime,
          fetch: bool = False) -> dict:
    loader = _loader(session, settings, fetch=fetch)
    row, private = _key(session, settings)
    return dataintegrity.add_proof(document, private, verification_method=f"{did_of(settings)}#{row.fragment}",
                                   created=created, loader=loader)


def credential_for(session: Session, *, certificate: Certificate, settings: IssuerSettings,
                   fetch: bool = False) -> dict:
    """The certificate's credential with a Data Integrity proof, made once and kept (by the DID of the address it
    was issued under, so it survives a move like the rest). With `fetch`, contexts missing from the cache are
    fetched first (once per instance)."""
    if certificate.credential_ld:
        return json.loads(certificate.credential_ld)
    issued_under = issuing.settings_as_of(session, settings=settings, issuer_id=certificate.issuer_id) or settings
    claims = _claims(certificate.token)
    signed = _sign(session, issued_under, _as_ld(claims, issued_under),
                   created=as_utc(certificate.issued_at), fetch=fetch)
    row = session.get(Certificate, certificate.id)
    row.credential_ld = json.dumps(signed, separators=(",", ":"), ensure_ascii=False)
    session.add(row)
    session.commit()
    return signed


def _claims(token: str) -> dict:
    import base64

    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def status_list(session: Session, *, settings: IssuerSettings, number: int, now: datetime | None = None) -> dict:
    """The revocation list as JSON-LD with a Data Integrity proof by the DID (what DI verifiers read)."""
    now = now or utcnow()
    credential, _token = issuing.status_list_credential(session, settings=settings, number=number, now=now)
    credential = {**credential, "issuer": did_of(settings)}
    return _sign(session, settings, credential, created=now)


def add_wallet_form(session: Session, *, certificate: Certificate, settings: IssuerSettings) -> None:
    """Right after issuing: the Data Integrity form beside the VC-JWT (the contexts fetched first if need be).
    When it cannot be made now, it is made when first asked for."""
    try:
        fetch_contexts(settings)
        credential_for(session, certificate=certificate, settings=settings)
    except (CertificateError, IssuingError) as error:
        session.rollback()
        logger.warning("certificate %s: the credential for wallets is left for later: %s", certificate.public_id,
                       error)
