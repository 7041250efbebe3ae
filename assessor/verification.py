"""Verifying a certificate the way this service vouches for it: the engine's signature, key and seal checks,
then our records (the token must be one we issued, and not revoked). Used by the verify pages, the verify API
and `assessor verify` on this instance."""

from dataclasses import dataclass

from sqlmodel import Session

from assessor import issuing
from assessor.certificates import Check, verify_credential, verify_pdf
from assessor.certificates import verify as engine

REVOKED, NOT_ISSUED = issuing.REVOKED, issuing.NOT_ISSUED

# What each outcome means, in plain words for someone who never heard of us.
MEANINGS = {
    engine.VALID: ("Genuine", "This certificate was issued by us, has not been changed and is not revoked."),
    REVOKED: ("Revoked", "This certificate was issued by us but has since been revoked: it is no longer valid."),
    NOT_ISSUED: ("Never issued", "We have no record of issuing this certificate, whatever its signature says."),
    engine.TAMPERED: ("Tampered", "The certificate has been changed after it was issued."),
    engine.UNKNOWN_KEY: ("Unknown signer", "This certificate was not signed by any of our keys."),
    engine.KEY_COMPROMISED: ("Untrusted signature", "It was signed with one of our keys after that key was exposed: "
                                                    "it cannot be trusted."),
    engine.MALFORMED: ("Not a certificate", "This is not a certificate we can read."),
    engine.NOT_YET_VALID: ("Not yet valid", "This certificate is dated in the future."),
    engine.NOT_PDF: ("Not a PDF", "The file is not a PDF document."),
    engine.TRUNCATED: ("Damaged file", "The PDF is cut short or damaged."),
    engine.TOO_LARGE: ("Too large", "The file is larger than any certificate we issue."),
    engine.NO_CREDENTIAL: ("No certificate inside", "The PDF does not carry one of our credentials."),
    engine.UNSEALED: ("Not sealed", "The PDF carries no issuer seal: it was not produced by us as is."),
    engine.MODIFIED: ("Modified", "The PDF was changed after we sealed it."),
}


# How each outcome looks: good (green), warn (amber: cannot say yes yet), bad (red: do not trust it).
TONES = {engine.VALID: "good", engine.NOT_YET_VALID: "warn", engine.UNSEALED: "warn", engine.TOO_LARGE: "warn",
         engine.NOT_PDF: "warn", engine.MALFORMED: "warn", engine.NO_CREDENTIAL: "warn"}
ICONS = {"good": "✓", "warn": "!", "bad": "✗"}


@dataclass(frozen=True)
class Outcome:
    status: str
    reason: str
    checks: tuple[Check, ...]
    credential: dict | None = None  # set when the signature verified (also for a revoked certificate)
    certificate: object | None = None  # our record, when there is one

    @property
    def title(self) -> str:
        return MEANINGS.get(self.status, ("Not valid", ""))[0]

    @property
    def tone(self) -> str:
        return TONES.get(self.status, "bad")

    @property
    def icon(self) -> str:
        return ICONS[self.tone]

    @property
    def meaning(self) -> str:
        return MEANINGS.get(self.status, ("", "This certificate could not be verified."))[1]

    def as_dict(self) -> dict:
        return {"status": self.status, "title": self.title, "reason": self.reason,
                "checks": [check.as_dict() for check in self.checks],
                "credential_id": (self.credential or {}).get("id")}


def verify_submission(session: Session, *, settings: issuing.IssuerSettings, pdf: bytes | None = None,
                      token: str | None = None) -> Outcome:
    """A PDF or a pasted VC-JWT, against our keys and then our records."""
    keys = issuing.jwks(session, settings=settings)
    if pdf is not None:
        verdict = verify_pdf(pdf, keys, retired=keys)
    else:
        verdict = verify_credential(token or "", keys, retired=keys)
    if not verdict.ok:
        return Outcome(verdict.status, verdict.reason, verdict.checks)
    record = issuing.check_record(session, credential=verdict.credential, token=verdict.token)
    checks = verdict.checks + (Check("issued record", record.status in ("valid", REVOKED), record.reason
                                     if record.status != REVOKED else "this is the certificate we issued"),)
    if record.status in (REVOKED, "valid"):
        checks += (Check("revocation", record.status == "valid",
                         record.reason if record.status == REVOKED else "not revoked"),)
    return Outcome(record.status, record.reason, checks, verdict.credential, record.certificate)


def verify_issued(session: Session, *, settings: issuing.IssuerSettings, certificate) -> Outcome:
    """One of our stored certificates, checked as a stranger's copy would be (a key declared compromised since
    it was signed makes it untrusted like any other)."""
    return verify_submission(session, settings=settings, token=certificate.token)
