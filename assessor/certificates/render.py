"""The certificate PDF: WeasyPrint from ``templates/certificates``, PDF/A-3b with the JWT attached,
optionally sealed with a PAdES certification signature (no changes allowed) by the issuer key.

Learner-supplied strings go through Jinja2 autoescaping, and the URL fetcher serves ``data:`` URLs
only, so neither ``file://`` nor the network is ever read while rendering.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import segno
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from assessor.certificates.blocking import run_to_completion
from assessor.certificates.credential import CertificateData, score_text
from assessor.certificates.hsm import HsmPrivateKey
from assessor.certificates.keys import EDDSA, PrivateKey, algorithm_of
from assessor.certificates.verify import CREDENTIAL_ATTACHMENT
from assessor.errors import CertificateError

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "certificates"
TEMPLATE_NAME = "certificate.html"
CSS_NAME = "certificate.css"
SEAL_FIELD = "IssuerSeal"
SEAL_CERT_YEARS = 50
# Room for the CMS seal (certificate, ECDSA signature, attributes: under 2 KB). Given, it spares pyHanko a trial
# signature to measure the size, which is half the cost of sealing.
SEAL_RESERVED_BYTES = 8192


class DataOnlyFetcher:
    """Factory for WeasyPrint's fetcher restricted to ``data:`` URLs; records refused URLs."""

    def __init__(self) -> None:
        from weasyprint.urls import URLFetcher

        self.refused: list[str] = []
        outer = self

        class _Fetcher(URLFetcher):
            def fetch(self, url, headers=None):
                if not url.lower().startswith("data:"):
                    outer.refused.append(url)
                    raise ValueError(f"URL refused while rendering a certificate: {url[:80]}")
                return super().fetch(url, headers)

        self.fetcher = _Fetcher(allowed_protocols={"data"}, timeout=1, allow_redirects=False)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )


@lru_cache(maxsize=1)
def _stylesheet():
    from weasyprint import CSS

    return CSS(string=(TEMPLATE_DIR / CSS_NAME).read_text(encoding="utf-8"))


def qr_svg(url: str) -> Markup:
    """Inline SVG QR code for the verify URL (generated, so safe to mark up)."""
    svg = segno.make(url, error="m").svg_inline(scale=4, border=2, dark="#1d2733", omitsize=True)
    return Markup(svg)


def _name_points(name: str) -> int:
    length = len(name)
    return 28 if length <= 32 else 22 if length <= 48 else 16 if length <= 80 else 13


def certificate_html(data: CertificateData) -> str:
    dense = (len(data.criteria) > 6 or len(data.modules) > 6 or len(data.learner_name) > 48
             or len(data.course) + len(data.capstone) > 70)
    context = {
        "density": "dense" if dense else "roomy",
        "name_pt": _name_points(data.learner_name),
        "learner_name": data.learner_name,
        "course": data.course,
        "capstone": data.capstone,
        "total": score_text(data.total),
        "max_total": score_text(data.max_total),
        "pass_mark": score_text(data.pass_mark),
        "criteria": [
            {"name": c.name, "level": c.level_label, "points": score_text(c.points),
             "max_points": score_text(c.max_points)}
            for c in data.criteria
        ],
        "modules": [
            {"title": m.title, "score": score_text(m.score), "max_score": score_text(m.max_score),
             "completed": m.completed_on.strftime("%d %b %Y")}
            for m in data.modules
        ],
        "issued_date": data.issued_at.astimezone(timezone.utc).strftime("%d %B %Y"),
        "mentor_name": data.mentor_name,
        "repo_url": data.repo_url,
        "short_commit": data.short_commit,
        "rubric_id": data.rubric_id,
        "rubric_version": data.rubric_version,
        "certificate_id": str(data.certificate_id),
        "verify_url": data.verify_url,
        "issuer_name": data.issuer_name,
        "qr_svg": qr_svg(data.verify_url),
    }
    return _environment().get_template(TEMPLATE_NAME).render(**context)


def render_certificate_pdf(data: CertificateData, token: str, *, fetcher: DataOnlyFetcher | None = None) -> bytes:
    """One landscape A4 page, PDF/A-3b, with the signed credential attached as ``credential.jwt``."""
    from weasyprint import HTML, Attachment

    fetcher = fetcher or DataOnlyFetcher()
    html = HTML(string=certificate_html(data), url_fetcher=fetcher.fetcher, base_url=None)
    attachment = Attachment(
        string=token,
        name=CREDENTIAL_ATTACHMENT,
        description="Open Badges 3.0 credential (VC-JWT)",
        relationship="Data",
        url_fetcher=fetcher.fetcher,
    )
    try:
        return html.write_pdf(
            stylesheets=[_stylesheet()],
            pdf_variant="pdf/a-3b",
            pdf_tags=True,  # a structure tree, so screen readers read the certificate in order
            attachments=[attachment],
            uncompressed_pdf=False,
            finisher=_describe_attachment,
        )
    except Exception as exc:  # WeasyPrint/pydyf errors have no common base
        raise CertificateError(f"rendering the certificate failed: {exc}") from exc


CREDENTIAL_MIME = "application/jwt"


def _describe_attachment(_document, pdf) -> None:
    """WeasyPrint's finishing hook: name the credential's MIME type (it guesses octet-stream from ".jwt") and list
    it once in the catalog's /AF (PDF/A-3 lists each associated file once; WeasyPrint adds it twice)."""
    for pdf_object in pdf.objects:
        extra = getattr(pdf_object, "extra", None)
        if isinstance(extra, dict) and extra.get("Type") == "/EmbeddedFile":
            extra["Subtype"] = "/" + CREDENTIAL_MIME.replace("/", "#2F")
    associated = pdf.catalog.get("AF")
    if associated is not None:
        unique = list(dict.fromkeys(associated))
        associated.clear()
        associated.extend(unique)


# ---------------------------------------------------------------- sealing


def seal_certificate(private_key: PrivateKey, issuer_name: str, kid: str, now: datetime | None = None):
    """A self-signed X.509 certificate for the issuer's key (the JWKS binds it to ``kid``)."""
    now = now or datetime.now(timezone.utc)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, issuer_name[:64] or "Issuer"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Certificate seal"),
    ])
    public_key = private_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365 * SEAL_CERT_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(kid)]), critical=False)
    )
    if isinstance(private_key, HsmPrivateKey):
        return _signed_in_hsm(builder, private_key)
    return builder.sign(private_key, None if algorithm_of(private_key) == EDDSA else hashes.SHA256())


def _signed_in_hsm(builder, private_key: "HsmPrivateKey"):
    """The certificate signed by the HSM: the builder lays out the to-be-signed part (signed first with a
    throwaway P-256 key, which only fixes the algorithm), then the HSM signs that part."""
    from asn1crypto import x509 as asn1_x509

    draft = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    signature = private_key.sign(draft.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    certificate = asn1_x509.Certificate({
        "tbs_certificate": asn1_x509.TbsCertificate.load(draft.tbs_certificate_bytes),
        "signature_algorithm": {"algorithm": "sha256_ecdsa"},
        "signature_value": signature,
    })
    return x509.load_der_x509_certificate(certificate.dump())


def load_seal_chain(pem: bytes) -> tuple[x509.Certificate, ...]:
    """The operator's seal certificate (issued by a CA for the issuer key) followed by its intermediates."""
    try:
        chain = tuple(x509.load_pem_x509_certificates(pem))
    except ValueError as error:
        raise CertificateError(f"the seal certificate file is not PEM certificates: {error}") from None
    if not chain:
        raise CertificateError("the seal certificate file holds no certificate")
    return chain


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def seal_pdf(pdf: bytes, private_key: PrivateKey, *, issuer_name: str, kid: str,
             chain: tuple[x509.Certificate, ...] = ()) -> bytes:
    """Certify the PDF (PAdES, DocMDP: no changes allowed) with the issuer key. A P-256 seal keeps the file at
    PDF 1.7, which its PDF/A-3 claim needs (an Ed25519 one makes pyHanko declare PDF 2.0). With a ``chain`` (a
    CA-issued certificate for this key, then its intermediates) PDF readers that trust the CA show the seal as
    trusted; without one the seal carries a self-signed certificate that only the issuer's JWKS vouches for."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    if chain and _public_der(chain[0].public_key()) != _public_der(private_key.public_key()):
        raise CertificateError("the seal certificate was issued for another key than the issuer's signing key: "
                               "ask the CA for a certificate of the current key")
    cert = chain[0] if chain else seal_certificate(private_key, issuer_name, kid)
    signing_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    others = [asn1_x509.Certificate.load(extra.public_bytes(serialization.Encoding.DER)) for extra in chain[1:]]
    if isinstance(private_key, HsmPrivateKey):
        return _seal_in_hsm(pdf, private_key, signing_cert, issuer_name=issuer_name, others=others)
    signing_key = asn1_keys.PrivateKeyInfo.load(
        private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    signer = signers.SimpleSigner(
        signing_cert=signing_cert,
        signing_key=signing_key,
        cert_registry=SimpleCertificateStore.from_certs([signing_cert, *others]),
    )
    return _sign_pdf(pdf, signer, issuer_name=issuer_name, eddsa=algorithm_of(private_key) == EDDSA)


def _seal_meta(issuer_name: str, *, eddsa: bool):
    from pyhanko.sign import fields, signers

    return signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD,
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha512" if eddsa else "sha256",
        name=issuer_name,
        reason="Issuer seal: this certificate must not be changed",
    )


def _sign_pdf(pdf: bytes, signer, *, issuer_name: str, eddsa: bool) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        signer_class = signers.PdfSigner if eddsa else _pdf17_signer_class()
        pdf_signer = signer_class(_seal_meta(issuer_name, eddsa=eddsa), signer=signer)
        out = run_to_completion(pdf_signer.async_sign_pdf(writer, bytes_reserved=SEAL_RESERVED_BYTES,
                                                          output=io.BytesIO()))
    except Exception as exc:
        raise CertificateError(f"sealing the certificate failed: {exc}") from exc
    return out.getvalue()


def _seal_in_hsm(pdf: bytes, private_key: "HsmPrivateKey", signing_cert, *, issuer_name: str, others=()) -> bytes:
    """The same seal, signed in the HSM through pyHanko's PKCS#11 signer (the digest made here, the raw ECDSA
    mechanism in the module)."""
    from pyhanko.sign.pkcs11 import PKCS11Signer

    from assessor.certificates.hsm import _LOCK

    with _LOCK, private_key.session() as session:
        signer = PKCS11Signer(session, signing_cert=signing_cert, key_label=private_key.settings.key_label,
                              use_raw_mechanism=True, embed_roots=True, ca_chain=list(others) or None)
        return _sign_pdf(pdf, signer, issuer_name=issuer_name, eddsa=False)


@lru_cache(maxsize=1)
def _pdf17_signer_class():
    from pyhanko.sign import signers
    from pyhanko.sign.signers.constants import ESIC_EXTENSION_1

    class Pdf17Signer(signers.PdfSigner):
        """pyHanko declares ISO/TS 32002 (a PDF 2.0 extension) for every P-256 signature, which would make the
        file PDF 2.0 and contradict its PDF/A-3 (PDF 1.7) claim. ECDSA on P-256 is a PAdES algorithm of PDF 1.7
        already, so only the PAdES extension (ESIC) is declared."""

        def register_extensions(self, pdf_out, *, md_algorithm: str):
            pdf_out.ensure_output_version(version=(1, 7))
            pdf_out.register_extension(ESIC_EXTENSION_1)

    return Pdf17Signer
