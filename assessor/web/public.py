"""Public certificate pages and documents (no login): the verify page, upload-to-verify and its JSON API, the
certificate API, badge images, and what verifiers fetch (issuer profile, keys, JWKS, status list, our context)."""

import base64
import json
import logging
from datetime import timedelta
from functools import lru_cache

from flask import Blueprint, Flask, abort, current_app, jsonify, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from assessor.domain import issuing, ratelimit, verification, wallet
from assessor.certificates import identity_matches
from assessor.certificates import verify as v
from assessor.certificates.badge import badge_png, badge_svg, badge_texts, bake_png, bake_svg
from assessor.certificates.credential import (
    CONTEXTS, EXTENSION_CONTEXT_PATH, JWT_CLAIMS, build_achievement, extension_context,
)
from assessor.certificates.describe import describe
from assessor.errors import RubricError
from assessor.domain.models import Attempt
from assessor.domain.submissions import find_available, load_report
from assessor.web.extensions import csrf, db, engine, rubrics
from assessor.web.jsonbody import json_body

bp = Blueprint("public", __name__)

VALID, REVOKED, UNKNOWN = "valid", "revoked", "unknown"
logger = logging.getLogger("assessor.web")
_MINUTE = timedelta(minutes=1)
# Documents that wallets and verifiers in other origins read from a browser: open to any origin, read only.
OPEN_ENDPOINTS = frozenset({"certificate_api", "certificate_jwt", "jwks", "status_list", "issuer", "issuer_key",
                            "achievement", "did_document", "certificate_ld",
                            "context", "verify_api", "badge", "certificate_badge"})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.after_request(_open_to_other_origins)


def _open_to_other_origins(response):
    if request.blueprint == bp.name and (request.endpoint or "").split(".")[-1] in OPEN_ENDPOINTS:
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS" if request.endpoint.endswith(
            "verify_api") else "GET, HEAD, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "86400"
        response.headers.setdefault("Cross-Origin-Resource-Policy", "cross-origin")
    return response


def _settings() -> issuing.IssuerSettings:
    return issuing.settings_from_config(current_app.config)


def _issuer_as_asked() -> issuing.IssuerSettings | None:
    """The issuer as the certificates a verifier holds name it: an earlier address answers as it did then."""
    asked = request.args.get("issuer", type=str)
    if asked is not None and len(asked) > 1000:
        return None
    return issuing.settings_as_of(db(), settings=_settings(), issuer_id=asked, address=request.host_url)


def _unknown_issuer():
    return jsonify({"error": "certificates were never issued under that issuer id here"}), 404


def token_payload(token: str) -> dict:
    """The claims of one of our stored tokens (already trusted: we signed it)."""
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _credential(token: str) -> dict:
    return {k: val for k, val in token_payload(token).items() if k not in JWT_CLAIMS}


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


# ------------------------------------------------------------------------------------------- the verify page

def _certificate_page(public_id: str, *, identity: dict | None = None, code: int = 200):
    session = db()
    certificate = issuing.get_certificate(session, public_id=public_id)
    if certificate is None:
        return render_template("public/certificate.html", outcome=None, public_id=public_id), 404
    settings = _settings()
    outcome = verification.verify_issued(session, settings=settings, certificate=certificate)
    credential = outcome.credential or _credential(certificate.token)
    attempt = session.get(Attempt, certificate.attempt_id)
    return render_template("public/certificate.html", outcome=outcome, certificate=certificate,
                           view=describe(credential), evidence=evidence_summary(attempt), public_id=public_id,
                           identity=identity, canonical_url=settings.verify_url(certificate.public_id),
                           badge_url=f"{settings.verify_url(certificate.public_id)}/badge.png"), code


@bp.route("/verify/<public_id>")
def verify_certificate(public_id: str):
    return _certificate_page(public_id)


@bp.route("/verify/<public_id>/identity", methods=["POST"])
def check_identity(public_id: str):
    """An employer asks: is this certificate about the person with this e-mail address? Only a salted hash is in
    the credential, so the answer is computed here and the address is not kept."""
    certificate = issuing.get_certificate(db(), public_id=public_id)
    if certificate is None:
        abort(404)
    email = (request.form.get("email") or "").strip()[:254]
    if not email or "@" not in email:
        return _certificate_page(public_id, identity={"email": email, "error": "Enter an e-mail address."},
                                 code=400)
    if not ratelimit.hit(db(), key=f"identity:ip:{request.remote_addr}", window=_MINUTE) <= 30:
        return _certificate_page(public_id, identity={"email": email, "error": "Too many checks; wait a minute."},
                                 code=429)
    matches = identity_matches(_credential(certificate.token), email)
    return _certificate_page(public_id, identity={"email": email, "matches": matches})


def _badge_texts(credential: dict) -> dict:
    achievement = credential["credentialSubject"]["achievement"]
    course, _, capstone = achievement["name"].partition(": ")
    return badge_texts(course=course, capstone=capstone, issuer=credential["issuer"].get("name", ""))


@bp.route("/verify/<public_id>/badge.<any(png, svg):kind>")
def certificate_badge(public_id: str, kind: str):
    """The learner's badge with their credential baked in (OB 3.0 baking): any badge tool reads it back."""
    row = issuing.certificate_status(engine(), public_id=public_id)
    if row is None:
        abort(404)
    texts = _badge_texts(_credential(row.token))
    if kind == "png":
        body, mimetype = bake_png(badge_png(**texts), row.token), "image/png"
    else:
        body, mimetype = bake_svg(badge_svg(**texts), row.token).encode("utf-8"), "image/svg+xml"
    response = current_app.response_class(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'inline; filename="badge-{row.public_id}.{kind}"'
    return response


@bp.route("/badges/<rubric_id>.<any(png, svg):kind>")
def badge(rubric_id: str, kind: str):
    """A course's badge image (what the achievement's `image` points at)."""
    try:
        rubric = find_available(rubrics(), rubric_id)
    except RubricError:
        rubric = None
    if rubric is None:
        abort(404)
    texts = badge_texts(course=rubric.course, capstone=rubric.title, issuer=_settings().issuer_name)
    if kind == "png":
        response = current_app.response_class(badge_png(**texts), mimetype="image/png")
    else:
        response = current_app.response_class(badge_svg(**texts), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


# ------------------------------------------------------------------------------------------- the certificate API

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
    base = str(public_url or "https://localhost").rstrip("/")
    return json.dumps({
        "id": public_id,
        "status": REVOKED if revoked_at is not None else VALID,
        "issued_at": issued_at,
        "revocation": revocation,
        "verify_url": f"{base}/verify/{public_id}",
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


@bp.route("/api/v1/certificates/<public_id>/credential.json")
def certificate_ld(public_id: str):
    """The same credential with a Data Integrity proof by the issuer's did:web: what a wallet imports."""
    certificate = issuing.get_certificate(db(), public_id=public_id)
    if certificate is None:
        return jsonify({"id": public_id, "status": UNKNOWN}), 404
    try:
        # Made here when the worker has not made it yet (the first request may wait for the contexts, once).
        document = wallet.credential_for(db(), certificate=certificate, settings=_settings(), fetch=True)
    except wallet.WalletUnavailable as error:
        logger.warning("the credential for wallets of %s cannot be made now: %s", public_id, error)
        response = jsonify({"error": "the credential for wallets is not available yet; try again later"})
        response.status_code, response.headers["Retry-After"] = 503, "300"
        return response
    response = _json(document, mimetype="application/ld+json", max_age=300)
    if request.args.get("download"):
        response.headers["Content-Disposition"] = f'attachment; filename="certificate-{public_id}.json"'
    return response


# ------------------------------------------------------------------------------------------- what verifiers fetch

def _json(document: dict, *, mimetype: str = "application/json", max_age: int | None = None):
    response = current_app.response_class(json.dumps(document, indent=1), mimetype=mimetype)
    response.headers["Cache-Control"] = f"public, max-age={max_age}" if max_age is not None else "no-cache"
    return response


@bp.route("/.well-known/jwks.json")
def jwks():
    # Cached no longer than a rotation gives notice: a new key is published twice this long before it signs.
    return _json(issuing.jwks(db(), settings=_settings()), max_age=issuing.JWKS_MAX_AGE_SECONDS)


@bp.route("/issuer")
def issuer():
    settings = _issuer_as_asked()
    if settings is None:
        return _unknown_issuer()
    return _json(issuing.issuer_profile(settings), mimetype="application/ld+json", max_age=3600)


@bp.route("/issuer/achievements/<rubric_id>/<version>")
def achievement(rubric_id: str, version: str):
    """The badge class every certificate of this capstone names: a page for people, JSON-LD for machines."""
    settings = _issuer_as_asked()
    data = issuing.achievement_data(db(), settings=settings, rubric_id=rubric_id, version=version) if settings else None
    wants_html = request.accept_mimetypes.best_match(
        ["application/ld+json", "application/json", "text/html"]) == "text/html"
    if data is None:
        if wants_html:
            return render_template("public/achievement.html", data=None, rubric_id=rubric_id, version=version), 404
        return jsonify({"error": "no capstone with that rubric and version was ever assessed here"}), 404
    document = {"@context": list(CONTEXTS), **build_achievement(data)}
    if wants_html:
        response = current_app.response_class(render_template(
            "public/achievement.html", data=data, document=document, logo_url=settings.logo_url))
    else:
        response = _json(document, mimetype="application/ld+json", max_age=3600)
    response.headers["Vary"] = "Accept, Host"
    return response


@bp.route("/.well-known/did.json")
@bp.route("/did.json")
def did_document():
    """The issuer's did:web document at the address asked (each address is its own DID, fixed at issue time)."""
    settings = _issuer_as_asked()
    if settings is None:
        return _unknown_issuer()
    return _json(wallet.did_document(db(), settings=settings), mimetype="application/did+ld+json", max_age=300)


@bp.route("/issuer/keys/<thumb>")
def issuer_key(thumb: str):
    """Where each key's id points: its public JWK."""
    document = issuing.key_document(db(), settings=_settings(), thumb=thumb)
    if document is None:
        return jsonify({"error": "no such key"}), 404
    return _json(document, mimetype="application/jwk+json", max_age=issuing.JWKS_MAX_AGE_SECONDS)


@bp.route(EXTENSION_CONTEXT_PATH)
def context():
    return _json(extension_context(_settings().context_url), mimetype="application/ld+json", max_age=86400)


@bp.route("/status/<int:number>")
def status_list(number: int):
    if number != issuing.STATUS_LIST_ID:
        return jsonify({"error": "no such status list"}), 404
    settings = _issuer_as_asked()
    if settings is None:
        return _unknown_issuer()
    try:
        credential, token = issuing.status_list_credential(db(), settings=settings, number=number)
    except issuing.SigningUnavailable as error:  # this server cannot sign: verifiers are told to come back
        logger.error("the status list cannot be signed here: %s", error)
        response = jsonify({"error": "the status list is temporarily unavailable; try again later"})
        response.status_code, response.headers["Retry-After"] = 503, "60"
        return response
    # Signed by default (a verifier that asks for nothing in particular gets what it can verify); JSON-LD with a
    # Data Integrity proof by the issuer's DID to whoever asks for JSON-LD (wallets and their verifiers); the
    # unsecured JSON only to whoever asks for plain JSON by name, to read.
    accept = request.headers.get("Accept", "")
    asked = request.args.get("format")
    wants_jwt = asked == "jwt" or "application/vc+jwt" in accept or "application/jwt" in accept
    wants_ld = asked == "ld" or (not asked and not wants_jwt and "ld+json" in accept)
    wants_json = asked == "json" or (not asked and not wants_jwt and not wants_ld and "application/json" in accept)
    if wants_ld:
        try:
            response = _json(wallet.status_list(db(), settings=settings, number=number), mimetype="application/ld+json",
                             max_age=issuing.STATUS_LIST_TTL_MS // 1000)
        except wallet.WalletUnavailable as error:
            logger.warning("the status list for wallets cannot be made now: %s", error)
            response = jsonify({"error": "the status list as JSON-LD is not available yet; ask for application/vc+jwt"})
            response.status_code, response.headers["Retry-After"] = 503, "300"
            return response
    elif wants_json:
        response = jsonify(credential)
    else:
        response = current_app.response_class(token, mimetype="application/vc+jwt")
    response.headers["Cache-Control"] = f"max-age={issuing.STATUS_LIST_TTL_MS // 1000}"
    response.headers["Vary"] = "Accept, Host"
    return response


# ------------------------------------------------------------------------------------------- upload to verify

def _read_upload(limit: int):
    """(pdf bytes or None, pasted token, error response or None), within the size limit."""
    request.max_content_length = limit + 64 * 1024  # room for the form fields around the file
    try:
        upload = request.files.get("pdf")
        token = (request.form.get("token") or "").strip()
    except RequestEntityTooLarge:
        return None, "", v.TOO_LARGE
    if upload is not None and upload.filename:
        pdf = upload.stream.read(limit + 1)
        if len(pdf) > limit:
            return None, "", v.TOO_LARGE
        return pdf, token, None
    return None, token, None


@bp.route("/verify", methods=["GET", "POST"])
@csrf.exempt  # checked below, once the larger upload limit of this page is in place
def verify_upload():
    if request.method == "GET":
        return render_template("public/verify.html", outcome=None)
    per_minute = int(current_app.config.get("VERIFY_API_PER_MINUTE", 60))
    if ratelimit.hit(db(), key=f"verify-page:ip:{request.remote_addr}", window=_MINUTE) > per_minute:
        return render_template("public/verify.html", outcome=None,
                               error=f"More than {per_minute} checks a minute came from your address: wait a "
                                     f"minute and try again."), 429
    limit = int(current_app.config["CERTIFICATE_UPLOAD_MAX"])
    request.max_content_length = limit + 64 * 1024
    try:
        csrf.protect()
    except RequestEntityTooLarge:
        return _too_large_page(limit)
    pdf, token, problem = _read_upload(limit)
    if problem:
        return _too_large_page(limit)
    if pdf is None and not token:
        return render_template("public/verify.html", outcome=None,
                               error="Choose a PDF certificate or paste a credential."), 400
    outcome = verification.verify_submission(db(), settings=_settings(), pdf=pdf, token=token)
    return _outcome_page(outcome)


def _too_large_page(limit: int):
    reason = f"uploads are limited to {limit // (1024 * 1024)} MB"
    outcome = verification.Outcome(v.TOO_LARGE, reason, (v.Check("size", False, reason),))
    return _outcome_page(outcome, 413)


def _outcome_page(outcome, code: int = 200):
    view = describe(outcome.credential) if outcome.credential else None
    return render_template("public/verify.html", outcome=outcome, view=view), code


@bp.route("/api/v1/verify", methods=["POST", "OPTIONS"])
@csrf.exempt  # a machine API: no cookies are read, nothing changes
def verify_api():
    """`{"credential": "<JWT>"}` as JSON, or a PDF as the multipart field `pdf`; answers the status and every
    check performed. Limited per client address."""
    if request.method == "OPTIONS":
        return current_app.response_class(status=204)
    per_minute = int(current_app.config.get("VERIFY_API_PER_MINUTE", 60))
    if ratelimit.hit(db(), key=f"verify-api:ip:{request.remote_addr}", window=_MINUTE) > per_minute:
        return jsonify({"status": "error", "reason": f"more than {per_minute} checks a minute from your address"}), 429
    limit = int(current_app.config["CERTIFICATE_UPLOAD_MAX"])
    if request.mimetype == "application/json":
        body = json_body()
        token = body.get("credential") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token.strip():
            return jsonify({"status": "error", "reason": 'send {"credential": "<VC-JWT>"} or a PDF as "pdf"'}), 400
        pdf = None
    elif request.mimetype == "multipart/form-data":
        pdf, token, problem = _read_upload(limit)
        if problem:
            return jsonify({"status": v.TOO_LARGE, "reason": f"uploads are limited to {limit} bytes"}), 413
        if pdf is None and not token:
            return jsonify({"status": "error", "reason": 'send a PDF as the field "pdf"'}), 400
    else:
        return jsonify({"status": "error", "reason": "send JSON or multipart/form-data"}), 415
    outcome = verification.verify_submission(db(), settings=_settings(), pdf=pdf, token=token)
    body = outcome.as_dict()
    if outcome.certificate is not None:
        body["verify_url"] = _settings().verify_url(outcome.certificate.public_id)
    return jsonify(body)
