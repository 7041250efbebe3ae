"""Shared helpers for the certificate tests: an approved, passing attempt, and the issuer settings of an app."""

import zlib
from pathlib import Path

from assessor.domain import issuing
from assessor.domain.models import APPROVED, CHANGES_REQUESTED
from assessor.domain.reviews import save_review
from assessor.engine.rubric import find_rubric
from assessor.domain.submissions import load_report

PASSING_LEVELS = {"tests": 2, "coverage": 1, "complexity": 1, "docs": 1, "design": 2, "defense": 2}


def approve(db, app, attempt, mentor, *, levels=None, decision=APPROVED, comment=""):
    rubric = find_rubric(attempt.rubric_id, Path(app.config["RUBRICS_DIR"]))
    report = load_report(db, attempt=attempt)
    entries = {cid: (str(level), "", "") for cid, level in (levels or PASSING_LEVELS).items()}
    if decision == CHANGES_REQUESTED and not comment:
        comment = "change this"
    return save_review(db, mentor=mentor, attempt=attempt, rubric=rubric, report=report, entries=entries,
                       comment=comment, decision=decision)


def settings(app) -> issuing.IssuerSettings:
    return issuing.settings_from_config(app.config)


def bomb_pdf(inflated_mb: int) -> bytes:
    """A PDF whose only attachment, credential.jwt, inflates to `inflated_mb` MB of zeros (a flate bomb)."""
    compressor = zlib.compressobj(9)
    chunk = b"\0" * (1024 * 1024)
    data = b"".join(compressor.compress(chunk) for _ in range(inflated_mb)) + compressor.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(credential.jwt) 4 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        b"<< /Type /Filespec /F (credential.jwt) /UF (credential.jwt) /EF << /F 5 0 R >> >>",
        b"<< /Type /EmbeddedFile /Filter /FlateDecode /Length %d >>\nstream\n" % len(data) + data + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
