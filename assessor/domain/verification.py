"""Verifying a certificate the way this service vouches for it: the engine's signature, key and seal checks,
then our records (the token must be one we issued, and not revoked). Used by the verify pages, the verify API
and `assessor verify` on this instance."""

from dataclasses import dataclass

from sqlmodel import Session

from assessor.domain import issuing
from assessor.certificates import Check, verify_credential, verify_pdf
from assessor.certificates.verify import extract_credential_token
from assessor.logs import quieted
from assessor.certificates import verify as engine

REVOKED, NOT_ISSUED = issuing.REVOKED, issuing.NOT_ISSUED

# What each outcome means, in plain words for someone who never heard of us.
MEANINGS = {
    engine.VALID: ("Valid", "This certificate was issued by us, has not been changed and is not revoked."),
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


# The engine's checks, grouped into the few questions an employer asks, in the words shown on every page.
# (question, words when it holds, words when it does not)
PLAIN_CHECKS = (
    ({"format", "header", "key", "signature", "claims", "key status", "dates"},
     "Signed by the issuer",
     "It carries the issuer's digital signature, and nothing in it changed since it was signed.",
     "It does not carry a valid signature of ours: it was changed, or was never signed by us."),
    ({"pdf", "seal", "archival format"},
     "The PDF file", "The PDF is the one we sealed, unchanged, in the archival PDF/A format.",
     "The PDF file was changed after we sealed it, or is not one of our PDFs."),
    ({"issued record"},
     "In our records", "We issued exactly this certificate.",
     "We have no record of issuing this certificate as it stands."),
    ({"revocation"},
     "Still valid", "It has not been revoked.",
     "It has been revoked."),
)


@dataclass(frozen=True)
class PlainCheck:
    question: str
    ok: bool
    words: str
    technical: tuple[Check, ...]  # the engine's own checks, shown folded


def plain_checks(checks: tuple[Check, ...]) -> list[PlainCheck]:
    """The checks made, as the questions they answer; a question is answered yes only when all of its checks pass."""
    grouped = []
    for names, question, yes, no in PLAIN_CHECKS:
        members = tuple(check for check in checks if check.name in names)
        if members:
            ok = all(check.ok for check in members)
            grouped.append(PlainCheck(question, ok, yes if ok else no, members))
    return grouped


@dataclass(frozen=True)
class Outcome:
    status: str
    reason: str
    checks: tuple[Check, ...]
    credential: dict | None = None  # set when the signature verified (also for a revoked certificate)
    certificate: object | None = None  # our record, when there is one
    original: object | None = None  # a changed PDF whose credential is one we issued: that certificate's record

    @property
    def questions(self) -> list[PlainCheck]:
        return plain_checks(self.checks)

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
        return {"status": self.status, "title": self.title, "meaning": self.meaning, "reason": self.reason,
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
        return Outcome(verdict.status, verdict.reason, verdict.checks,
                       original=_original_of(session, pdf, keys) if pdf is not None else None)
    record = issuing.check_record(session, credential=verdict.credential, token=verdict.token)
    checks = verdict.checks + (Check("issued record", record.status in ("valid", REVOKED), record.reason
                                     if record.status != REVOKED else "this is the certificate we issued"),)
    if record.status in (REVOKED, "valid"):
        checks += (Check("revocation", record.status == "valid",
                         record.reason if record.status == REVOKED else "not revoked"),)
    return Outcome(record.status, record.reason, checks, verdict.credential, record.certificate)


def _original_of(session: Session, pdf: bytes, keys: dict):
    """The certificate a changed PDF was made from, when the credential it still carries is one we issued."""
    with quieted("pypdf", "pyhanko"):
        token, problem = extract_credential_token(pdf)
    if problem is not None or not token:
        return None
    verdict = verify_credential(token, keys, retired=keys)
    if not verdict.ok:
        return None
    record = issuing.check_record(session, credential=verdict.credential, token=verdict.token)
    return record.certificate if record.status in ("valid", REVOKED) else None


def verify_issued(session: Session, *, settings: issuing.IssuerSettings, certificate) -> Outcome:
    """One of our stored certificates, checked as a stranger's copy would be (a key declared compromised since
    it was signed makes it untrusted like any other)."""
    return verify_submission(session, settings=settings, token=certificate.token)
