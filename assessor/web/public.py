"""Public certificate pages (no login): the verify page and API, the JWKS, the status list, upload-to-verify."""

import base64
import json
from functools import lru_cache

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from assessor import issuing
from assessor.certificates import verify_credential, verify_pdf
from assessor.certificates import verify as v
from assessor.models import Attempt
from assessor.submissions import load_report
from assessor.web.extensions import csrf, db, engine

bp = Blueprint("public", __name__)

VALID, REVOKED, UNKNOWN = "valid", "revoked", "unknown"

# What each verdict means, in plain words for someone who never heard of us.
VERDICTS = {
    "valid": ("Genuine", "This certificate was issued by us and has not been changed."),
    "revoked": ("Revoked", "This certificate was issued by us but has since been revoked: it is no longer valid."),
    v.TAMPERED: ("Tampered", "The certificate has been changed after it was issued: its signature does not match."),
    v.UNKNOWN_KEY: ("Unknown signer", "This certificate was not signed by any of our keys."),
    v.MALFORMED: ("Not a certificate", "This is not a certificate we can read."),
    v.NOT_YET_VALID: ("Not yet valid", "This certificate is dated in the future."),
    v.NOT_PDF: ("Not a PDF", "The file is not a PDF document."),
    v.TRUNCATED: ("Damaged file", "The PDF is cut short or damaged."),
    v.TOO_LARGE: ("Too large", "The file is larger than any certificate we issue."),
    v.NO_CREDENTIAL: ("No certificate inside", "The PDF does not carry one of our credentials."),
    v.UNSEALED: ("Not sealed", "The PDF carries no issuer seal: it was not produced by us as is."),
    v.MODIFIED: ("Modified", "The PDF was changed after we sealed it."),
}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _settings() -> issuing.IssuerSettings:
    return issuing.settings_from_config(current_app.config)


def token_payload(token: str) -> dict:
    """The claims of one of our stored tokens (already trusted: we signed it)."""
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _credential(token: str) -> dict:
    return {k: val for k, val in token_payload(token).items() if k not in ("iss", "jti", "nbf", "sub")}


def _status(certificate) -> str:
    if certificate is None:
        return UNKNOWN
    return REVOKED if certificate.revoked_at is not None else VALID


def _iso(moment) -> str | None:
    return None if moment is None else moment.isoformat()


def evidence_summary(attempt: Attempt | None) -> list[str]:
    """A few plain lines from the stored assessment report (numbers only: no file lists, no logs)."""
    if attempt is None:
        return []
    report = load_report(db(), attempt=attempt)
    if report is None:
        return []
    lines = []
    tests = report.tests or {}
    if tests.get("total"):
        lines.append(f"Automated tests: {tests.get('passed', 0)} of {tests['total']} passed")
    line_percent = (report.coverage or {}).get("line_percent")
    if isinstance(line_percent, (int, float)):
        lines.append(f"Line coverage: {line_percent:.1f}%")
    average = (report.complexity or {}).get("average")
    if isinstance(average, (int, float)):
        lines.append(f"Average cyclomatic complexity: {average:.2f}")
    for artifact in report.artifacts:
        lines.append(f"{artifact.get('title', 'Document')}: {artifact.get('status', 'unknown')}")
    return lines


@bp.route("/verify/<public_id>")
def verify_certificate(public_id: str):
    certificate = issuing.get_certificate(db(), public_id=public_id)
    status = _status(certificate)
    credential = _credential(certificate.token) if certificate else None
    attempt = db().get(Attempt, certificate.attempt_id) if certificate else None
    return render_template("public/certificate.html", status=status, certificate=certificate,
                           credential=credential, evidence=evidence_summary(attempt), public_id=public_id,
                           verdicts=VERDICTS), 200 if certificate else 404


@bp.route("/api/v1/certificates/<public_id>")
def certificate_api(public_id: str):
    """Status (read fresh on every request, so a revocation shows at once), the credential and its JWT."""
    row = issuing.certificate_status(engine(), public_id=public_id)
    if row is None:
        return jsonify({"id": public_id, "status": UNKNOWN}), 404
    body = _api_body(row.public_id, row.token, _iso(row.issued_at), _iso(row.revoked_at), row.revoked_reason,
                     current_app.config["PUBLIC_URL"])
    return current_app.response_class(body, mimetype="application/json")


@lru_cache(maxsize=1024)
def _api_body(public_id: str, token: str, issued_at: str | None, revoked_at: str | None, reason: str | None,
              public_url: str) -> bytes:
    """The JSON document, built once per certificate state (every input is part of the cache key)."""
    revocation = {"revoked_at": revoked_at, "reason": reason} if revoked_at is not None else None
    return json.dumps({
        "id": public_id,
        "status": REVOKED if revoked_at is not None else VALID,
        "issued_at": issued_at,
        "revocation": revocation,
        "verify_url": issuing.IssuerSettings(keys_dir=None, public_url=str(public_url or "https://localhost")
                                             .rstrip("/")).verify_url(public_id),
        "credential": _credential(token),
        "credential_jwt_url": f"/api/v1/certificates/{public_id}/credential.jwt",
    }, separators=(",", ":")).encode("utf-8")


@bp.route("/api/v1/certificates/<public_id>/credential.jwt")
def certificate_jwt(public_id: str):
    """The signed credential itself (VC-JWT), to check with any JOSE library and the JWKS."""
    row = issuing.certificate_status(engine(), public_id=public_id)
    if row is None:
        return jsonify({"id": public_id, "status": UNKNOWN}), 404
    return current_app.response_class(row.token, mimetype="application/vc+jwt")


@bp.route("/.well-known/jwks.json")
def jwks():
    response = jsonify(issuing.jwks(db(), settings=_settings()))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.route("/status/<int:number>")
def status_list(number: int):
    if number != issuing.STATUS_LIST_ID:
        return jsonify({"error": "no such status list"}), 404
    credential, token = issuing.status_list_credential(db(), settings=_settings(), number=number)
    accept = request.headers.get("Accept", "")
    if "application/vc+jwt" in accept or "application/jwt" in accept or request.args.get("format") == "jwt":
        return current_app.response_class(token, mimetype="application/vc+jwt",
                                          headers={"Cache-Control": "no-cache"})
    response = jsonify(credential)  # the same, unsecured, for reading; the JWT is the verifiable form
    response.headers["Cache-Control"] = "no-cache"
    return response


def check_upload(pdf: bytes | None, token: str | None) -> tuple[str, str, dict | None]:
    """(verdict, reason, credential): a PDF or pasted JWT against our keys, then against revocation."""
    session = db()
    settings = _settings()
    keys = issuing.jwks(session, settings=settings)
    if pdf is not None:
        verdict = verify_pdf(pdf, keys, retired=keys)
    else:
        verdict = verify_credential(token or "", keys, retired=keys)
    if not verdict.ok:
        return verdict.status, verdict.reason, None
    revoked = issuing.is_revoked_token(session, credential=verdict.credential)
    if revoked is not None:
        return REVOKED, f"revoked: {revoked.revoked_reason}", verdict.credential
    return VALID, verdict.reason, verdict.credential


@bp.route("/verify", methods=["GET", "POST"])
@csrf.exempt  # checked below, once the larger upload limit of this page is in place
def verify_upload():
    if request.method == "GET":
        return render_template("public/verify.html", result=None)
    limit = int(current_app.config["CERTIFICATE_UPLOAD_MAX"])
    request.max_content_length = limit + 64 * 1024  # room for the form fields around the file
    try:
        csrf.protect()
        upload = request.files.get("pdf")
        token = (request.form.get("token") or "").strip()
    except RequestEntityTooLarge:
        return _verdict_page(v.TOO_LARGE, f"uploads are limited to {limit // (1024 * 1024)} MB", None, 413)
    pdf = None
    if upload is not None and upload.filename:
        pdf = upload.stream.read(limit + 1)
        if len(pdf) > limit:
            return _verdict_page(v.TOO_LARGE, f"uploads are limited to {limit // (1024 * 1024)} MB", None, 413)
    elif not token:
        return render_template("public/verify.html", result=None,
                               error="Choose a PDF certificate or paste a credential."), 400
    status, reason, credential = check_upload(pdf, token)
    return _verdict_page(status, reason, credential, 200)


def _verdict_page(status: str, reason: str, credential: dict | None, code: int):
    title, meaning = VERDICTS.get(status, ("Not valid", "This certificate could not be verified."))
    certificate = None
    if credential is not None:
        certificate = issuing.get_certificate(db(), public_id=str(credential.get("id", "")).removeprefix("urn:uuid:"))
    result = {"status": status, "title": title, "meaning": meaning, "reason": reason, "credential": credential,
              "certificate": certificate}
    return render_template("public/verify.html", result=result), code
