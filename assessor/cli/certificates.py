"""Certificate commands: `assessor verify`, `assessor certificates|keys|modules|api-tokens ...`.

`assessor verify FILE.pdf|FILE.jwt [--jwks FILE|URL] [--status-list FILE|URL] [--offline]` needs only what the
issuer publishes: exit 0 valid, 1 not valid (revoked, tampered ... with the reason), 2 bad input, 3 genuine but
not checked for revocation (--offline). Without --jwks it asks this instance's database (keys, issued records,
revocations).
"""

import json
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import click

EXIT_VALID, EXIT_INVALID, EXIT_BAD_INPUT = 0, 1, 2
# A script that treats 0 as "valid" must not take "signature fine, revocation never asked" for it.
EXIT_REVOCATION_UNCHECKED = 3
MAX_JWKS_BYTES = 1024 * 1024
MAX_FILE_BYTES = 8 * 1024 * 1024


def register(main: click.Group) -> None:
    main.add_command(verify)
    main.add_command(certificates)
    main.add_command(keys)
    main.add_command(modules)
    main.add_command(api_tokens)
    main.add_command(lti_group)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _app():
    from assessor.errors import AssessorError
    from assessor.web import create_app

    try:
        app = create_app()
    except AssessorError as error:
        _fail(str(error))
    return app


def _session(app):
    from sqlmodel import Session

    return Session(app.extensions["assessor.engine"], expire_on_commit=False)


def _settings(app):
    from assessor.domain.issuing import settings_from_config

    return settings_from_config(app.config)


def _read_source(source: str, *, limit: int, accept: str = "*/*") -> bytes:
    """A file, or the body of an http(s) URL, up to `limit` bytes."""
    try:
        if source.startswith(("https://", "http://")):
            request = urllib.request.Request(source, headers={"Accept": accept, "User-Agent": "assessor-verify"})
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - the operator's URL
                raw = response.read(limit + 1)
        else:
            raw = Path(source).read_bytes()[: limit + 1]
    except (OSError, ValueError) as error:
        _fail(f"cannot read {source}: {error}")
    if len(raw) > limit:
        _fail(f"{source} is too large")
    return raw


def load_jwks(source: str) -> dict:
    """A JWKS from a file or an http(s) URL."""
    try:
        document = json.loads(_read_source(source, limit=MAX_JWKS_BYTES, accept="application/json"))
    except ValueError:
        _fail(f"{source} is not JSON")
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        _fail(f"{source} is not a JWKS (no 'keys' list)")
    return document


def _status_source(credential: dict, jwks_source: str | None, status_source: str | None) -> str | None:
    """Where the status list is read: the one given, else the list the credential names, fetched from the
    JWKS's own origin when the JWKS came from a URL (so a moved issuer is still asked, not its old host)."""
    if status_source:
        return status_source
    named = str((credential.get("credentialStatus") or {}).get("statusListCredential") or "")
    if jwks_source and jwks_source.startswith(("https://", "http://")) and named.startswith(("https://", "http://")):
        origin, path = urllib.parse.urlsplit(jwks_source), urllib.parse.urlsplit(named)
        query = path.query
        issuer = credential.get("issuer")
        issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
        if (origin.scheme, origin.netloc) != (path.scheme, path.netloc) and isinstance(issuer_id, str):
            # Asked at its new address, the issuer answers with the list its earlier address published.
            query = "&".join(filter(None, (query, urllib.parse.urlencode({"issuer": issuer_id}))))
        return urllib.parse.urlunsplit((origin.scheme, origin.netloc, path.path, query, ""))
    return named or None


def _revocation_reason(status_url: str, credential: dict) -> str | None:
    """The reason the issuer gives on its certificate API (same origin as the status list), when it says."""
    public_id = str(credential.get("id", "")).removeprefix("urn:uuid:")
    origin = urllib.parse.urlsplit(status_url)
    url = urllib.parse.urlunsplit((origin.scheme, origin.netloc, f"/api/v1/certificates/{public_id}", "", ""))
    try:
        with urllib.request.urlopen(url, timeout=15) as response:  # noqa: S310 - the issuer's own host
            body = json.loads(response.read(MAX_JWKS_BYTES))
    except (OSError, ValueError):
        return None
    revocation = body.get("revocation") if isinstance(body, dict) else None
    return revocation.get("reason") if isinstance(revocation, dict) else None


def _print_credential(credential: dict) -> None:
    subject = credential["credentialSubject"]
    click.echo(f"  {subject['name']}: {subject['achievement']['name']}")
    click.echo(f"  issued {credential['validFrom']} by {credential['issuer']['name']}")


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--jwks", "jwks_source", help="The issuer's JWKS: a file or an https URL (default: this instance's keys).")
@click.option("--status-list", "status_source",
              help="The issuer's signed status list (a file or URL; default: the one the credential names, "
                   "from the JWKS's host).")
@click.option("--offline", is_flag=True, help="Check the signature and seal only, without reading the status list.")
def verify(file: Path, jwks_source: str | None, status_source: str | None, offline: bool) -> None:
    """Check a certificate PDF or credential (JWT): signature and seal with the issuer's public keys, then
    revocation with the issuer's status list. Exit 0 valid, 1 not valid (revoked, tampered ...), 2 bad input,
    3 genuine with revocation not checked (--offline)."""
    from assessor.certificates import verify_credential, verify_pdf
    from assessor.certificates.verify import check_revocation
    from assessor.errors import CertificateError

    try:
        data = file.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as error:
        _fail(f"cannot read {file}: {error.strerror or error}")
    is_pdf = data.startswith(b"%PDF-") or file.suffix.lower() == ".pdf"
    if not jwks_source and not status_source:
        _verify_on_this_instance(data, is_pdf, offline)
    if offline and jwks_source and jwks_source.startswith(("https://", "http://")):
        _fail("--offline reads nothing from the network: give the JWKS as a file")
    document = load_jwks(jwks_source) if jwks_source else _instance_jwks()
    try:
        verdict = verify_pdf(data, document, retired=document) if is_pdf else verify_credential(
            data.strip(), document, retired=document)
    except CertificateError as error:
        _fail(f"the JWKS is not usable: {error}")
    if not verdict.ok:
        click.echo(f"{verdict.status}: {verdict.reason}")
        sys.exit(EXIT_INVALID)
    if offline:
        click.echo(f"genuine, revocation not checked (offline): {verdict.reason}")
        _print_credential(verdict.credential)
        sys.exit(EXIT_REVOCATION_UNCHECKED)
    source = _status_source(verdict.credential, jwks_source, status_source)
    if source is None:
        click.echo("unverified: the credential names no status list; give one with --status-list")
        sys.exit(EXIT_INVALID)
    status_token = _read_source(source, limit=MAX_JWKS_BYTES, accept="application/vc+jwt").decode("ascii", "replace")
    check = check_revocation(status_token.strip(), document, verdict.credential)
    if not check.ok:
        if check.detail.startswith("revoked"):
            reason = _revocation_reason(source, verdict.credential) if source.startswith("http") else None
            click.echo(f"revoked: {reason}" if reason else check.detail)
        else:
            click.echo(f"unverified: {check.detail} (read from {source}; --offline skips this check)")
        sys.exit(EXIT_INVALID)
    click.echo(f"valid: {verdict.reason}; {check.detail}")
    _print_credential(verdict.credential)
    sys.exit(EXIT_VALID)


def _instance_jwks() -> dict:
    from assessor.domain.issuing import jwks

    app = _app()
    with _session(app) as session:
        return jwks(session, settings=_settings(app))


def _verify_on_this_instance(data: bytes, is_pdf: bool, offline: bool) -> None:
    """Our own records: the keys, whether we issued exactly this token, and its revocation, with the reason."""
    from assessor.domain.verification import verify_submission

    app = _app()
    with _session(app) as session:
        outcome = verify_submission(session, settings=_settings(app), pdf=data if is_pdf else None,
                                    token=None if is_pdf else data.decode("ascii", "replace").strip())
    line = outcome.reason if outcome.reason.startswith(outcome.status) else f"{outcome.status}: {outcome.reason}"
    click.echo(line)
    if outcome.credential is not None and outcome.status == "valid":
        _print_credential(outcome.credential)
    sys.exit(EXIT_VALID if outcome.status == "valid" else EXIT_INVALID)


@click.group()
def certificates() -> None:
    """List, issue and revoke certificates."""


@certificates.command("list")
def certificates_list() -> None:
    from assessor.domain.issuing import list_certificates

    app = _app()
    with _session(app) as session:
        for row in list_certificates(session, limit=10_000):
            state = f"revoked {row.revoked_at:%Y-%m-%d}: {row.revoked_reason}" if row.revoked_at else "valid"
            click.echo(f"{row.public_id}  attempt {row.attempt_id}  issued {row.issued_at:%Y-%m-%d}  {state}")


@certificates.command("issue")
@click.argument("attempt_id", type=int)
def certificates_issue(attempt_id: int) -> None:
    """Issue the certificate of an approved, passing attempt now (idempotent)."""
    from assessor.domain.issuing import IssuingError, issue_certificate

    app = _app()
    with _session(app) as session:
        try:
            certificate = issue_certificate(session, attempt_id=attempt_id, settings=_settings(app))
        except IssuingError as error:
            _fail(str(error))
        from assessor.domain.wallet import add_wallet_form

        add_wallet_form(session, certificate=certificate, settings=_settings(app))
        click.echo(f"{certificate.public_id}  {_settings(app).verify_url(certificate.public_id)}")


@certificates.command("revoke")
@click.argument("certificate_id")
@click.option("--reason", required=True, help="Why (shown on the public verify page).")
def certificates_revoke(certificate_id: str, reason: str) -> None:
    from assessor.domain.issuing import IssuingError, revoke, settings_from_config

    app = _app()
    with _session(app) as session:
        try:
            certificate = revoke(session, certificate_id=certificate_id, admin=None, reason=reason,
                                 base_url=settings_from_config(app.config).public_url)
        except IssuingError as error:
            _fail(str(error))
        click.echo(f"revoked {certificate.public_id}: {certificate.revoked_reason} (the learner is told by e-mail)")


@click.group()
def keys() -> None:
    """The certificate signing keys."""


@keys.command("list")
def keys_list() -> None:
    """Every key with its state (next, active, retired, compromised), its published URL and its private key."""
    from assessor.domain.issuing import key_state, list_keys, published_kid

    app = _app()
    with _session(app) as session:
        for row in list_keys(session):
            state = key_state(row)
            if state == "next":
                state = f"next (signs from {row.activates_at:%Y-%m-%d %H:%M} UTC)"
            elif state == "retired":
                state = f"retired {row.retired_at:%Y-%m-%d %H:%M}"
            elif state == "compromised":
                state = f"compromised since {row.compromised_at:%Y-%m-%d %H:%M}: {row.compromise_reason}"
            private = ("private key sealed in the database" if row.private_key_sealed else row.private_key_path
                       or ("private key destroyed" if row.destroyed_at else "no private key"))
            click.echo(f"{row.kid}  {row.algorithm}  {state}  created {row.created_at:%Y-%m-%d %H:%M}  "
                       f"{published_kid(row, _settings(app))}  {private}")


@keys.command("rotate")
@click.option("--now", "immediately", is_flag=True,
              help="Switch at once (an emergency): verifiers' cached key sets may not know the new key for a few "
                   "minutes.")
def keys_rotate(immediately: bool) -> None:
    """A new signing key: published at once, signing after a notice longer than the JWKS cache; the old key then
    retires, its private key destroyed and its public half kept published, so what it signed still verifies."""
    from assessor.domain.issuing import IssuingError, rotate_key

    app = _app()
    with _session(app) as session:
        try:
            row = rotate_key(session, settings=_settings(app), immediately=immediately)
        except IssuingError as error:
            _fail(str(error))
        if immediately:
            click.echo(f"new active key {row.kid} (sealed in the database); the old private key is destroyed")
        else:
            click.echo(f"new key {row.kid} published; it signs from {row.activates_at:%Y-%m-%d %H:%M} UTC, when the "
                       f"current key retires and its private key is destroyed")


@keys.command("compromised")
@click.argument("kid")
@click.option("--since", "since_text", required=True, help="When the key may first have been exposed "
                                                           "(2026-11-30 or 2026-11-30T14:00, UTC).")
@click.option("--reason", required=True, help="How it was exposed (shown to verifiers).")
def keys_compromised(kid: str, since_text: str, reason: str) -> None:
    """Declare a key compromised since a date: everything it signed from then on is refused, the certificates we
    issued with it since then are revoked, its private key is destroyed, and a new key signs from now on.

    A key id may begin with '-' (ids are base64url): put it after '--', as in `... --reason R -- -t4pa...`."""
    from datetime import datetime, timezone

    from assessor.domain.issuing import IssuingError, compromise_key

    try:
        since = datetime.fromisoformat(since_text)
    except ValueError:
        _fail(f"--since {since_text!r} is not a date like 2026-11-30 or 2026-11-30T14:00")
    since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    app = _app()
    with _session(app) as session:
        try:
            row, revoked = compromise_key(session, settings=_settings(app), kid=kid, since=since, reason=reason)
        except IssuingError as error:
            _fail(str(error))
        click.echo(f"key {row.kid} compromised since {row.compromised_at:%Y-%m-%d %H:%M} UTC; "
                   f"{len(revoked)} certificate(s) revoked")
        for certificate in revoked:
            click.echo(f"  revoked {certificate.public_id}")


def ensure_key(app) -> str:
    """`assessor init`: create the first signing key if there is none (returns a line to print)."""
    from assessor.domain.issuing import active_key

    from assessor.errors import CertificateError
    from assessor.domain.wallet import fetch_contexts

    with _session(app) as session:
        row = active_key(session, settings=_settings(app))
        where = row.private_key_path or "sealed in the database"
    try:
        fetch_contexts(_settings(app))
        contexts = "JSON-LD contexts cached (credentials for wallets)"
    except CertificateError as error:
        contexts = f"JSON-LD contexts not cached yet ({error}); credentials for wallets wait for them"
    return f"signing key {row.kid} ({where})\n{contexts}"


@click.group()
def modules() -> None:
    """Course-module results, which certificates list beside the capstone."""


@modules.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def modules_import(file: Path) -> None:
    """Import FILE.csv with the columns email,course,module,title,score,max_score,completed_on (course is the
    rubric id). Every row is checked first; one bad row and nothing is imported."""
    from assessor.errors import ModuleImportError
    from assessor.domain.modules import MAX_BYTES, import_rows, parse_csv
    from assessor.domain.submissions import available_rubrics

    try:
        data = file.read_bytes()[: MAX_BYTES + 1]
    except OSError as error:
        _fail(f"cannot read {file}: {error.strerror or error}")
    app = _app()
    courses = {rubric.id for rubric in available_rubrics(app.config["RUBRICS_DIR"])}
    try:
        rows = parse_csv(data, courses=courses)
    except ModuleImportError as error:
        click.echo(f"error: nothing was imported from {file}:", err=True)
        for line, message in error.problems:
            click.echo(f"  line {line}: {message}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    with _session(app) as session:
        summary = import_rows(session, rows, source="cli")
        session.commit()
    click.echo(f"imported {summary.total} module result(s): {summary.added} new, {summary.updated} updated")


@click.group("api-tokens")
def api_tokens() -> None:
    """Keys for the machine API a course platform pushes module results with."""


@api_tokens.command("add")
@click.argument("name")
@click.option("--course", "courses", multiple=True, help="A course (rubric id) the key may write results for "
                                                           "(repeatable).")
@click.option("--all-courses", is_flag=True, help="Let the key write results for every course.")
def api_tokens_add(name: str, courses: tuple[str, ...], all_courses: bool) -> None:
    """A new key named after what will use it, for the courses it may write results for; it is shown once."""
    from assessor.domain.apitokens import ApiTokenError, create_token
    from assessor.domain.submissions import available_rubrics

    if bool(courses) == all_courses:
        _fail("give the courses the key may write results for (--course ID, repeatable) or --all-courses")
    app = _app()
    with _session(app) as session:
        try:
            known = [rubric.id for rubric in available_rubrics(app.config["RUBRICS_DIR"])]
            row, raw = create_token(session, name=name, courses=None if all_courses else courses,
                                    known_courses=known)
        except ApiTokenError as error:
            _fail(str(error))
        click.echo(f"API key {row.id} ({row.name}): {raw}")
        click.echo("It is shown only now: send it as `Authorization: Bearer <key>`.")


@api_tokens.command("list")
def api_tokens_list() -> None:
    from assessor.domain.apitokens import list_tokens

    app = _app()
    with _session(app) as session:
        for row in list_tokens(session):
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            used = f"last used {row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never used"
            scope = ", ".join(sorted(row.course_scope)) if row.course_scope is not None else "every course"
            click.echo(f"{row.id}  {row.name}  {state}  created {row.created_at:%Y-%m-%d}  {used}  courses: {scope}")


@api_tokens.command("revoke")
@click.argument("token_id", type=int)
def api_tokens_revoke(token_id: int) -> None:
    from assessor.domain.apitokens import ApiTokenError, revoke

    app = _app()
    with _session(app) as session:
        try:
            row = revoke(session, token_id=token_id)
        except ApiTokenError as error:
            _fail(str(error))
        click.echo(f"revoked API key {row.id} ({row.name})")


@click.group("lti")
def lti_group() -> None:
    """LTI 1.3: the platforms (LMSs) courses launch from, and what to give them."""


@lti_group.command("add-platform")
@click.option("--name", default="", help="How the admin pages name it.")
@click.option("--issuer", required=True, help="The platform's issuer, as its launches name it.")
@click.option("--client-id", required=True, help="The client id the platform gave this tool.")
@click.option("--auth-login-url", required=True, help="The platform's OIDC authentication URL.")
@click.option("--auth-token-url", required=True, help="The platform's OAuth 2 access token URL.")
@click.option("--key-set-url", required=True, help="The platform's public key set (JWKS) URL.")
@click.option("--deployment", "deployments", multiple=True, required=True, help="A deployment id (repeatable).")
def lti_add_platform(name, issuer, client_id, auth_login_url, auth_token_url, key_set_url, deployments) -> None:
    from assessor.domain import lti

    app = _app()
    with _session(app) as session:
        try:
            platform = lti.register_platform(session, name=name, issuer=issuer, client_id=client_id,
                                             auth_login_url=auth_login_url, auth_token_url=auth_token_url,
                                             key_set_url=key_set_url, deployment_ids=list(deployments))
        except lti.LtiError as error:
            _fail(str(error))
        click.echo(f"registered platform {platform.id}: {platform.name} "
                   f"({platform.issuer}, client {platform.client_id})")


@lti_group.command("platforms")
def lti_platforms() -> None:
    from assessor.domain import lti

    app = _app()
    with _session(app) as session:
        for platform in lti.platforms(session):
            click.echo(f"{platform.id}  {platform.name}  {platform.issuer}  client {platform.client_id}  "
                       f"deployments {', '.join(json.loads(platform.deployment_ids))}")


@lti_group.command("urls")
def lti_urls() -> None:
    """What the LMS administrator enters for this tool."""
    app = _app()
    base = str(app.config.get("PUBLIC_URL") or "https://localhost").rstrip("/")
    for label, path in (("OIDC login URL", "/lti/login"), ("launch / redirect URL", "/lti/launch"),
                        ("deep linking URL", "/lti/launch"), ("key set (JWKS) URL", "/lti/jwks.json")):
        click.echo(f"{label}: {base}{path}")
