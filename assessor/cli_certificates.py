"""Certificate commands: `assessor verify`, `assessor certificates ...`, `assessor keys ...`.

`assessor verify FILE.pdf|FILE.jwt [--jwks FILE|URL]` needs only the public keys: exit 0 valid, 1 not valid
(with the verdict), 2 bad input. Without --jwks it reads the keys of this instance's database.
"""

import json
import sys
import urllib.request
from pathlib import Path

import click

EXIT_VALID, EXIT_INVALID, EXIT_BAD_INPUT = 0, 1, 2
MAX_JWKS_BYTES = 1024 * 1024
MAX_FILE_BYTES = 8 * 1024 * 1024


def register(main: click.Group) -> None:
    main.add_command(verify)
    main.add_command(certificates)
    main.add_command(keys)


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
    from assessor.issuing import settings_from_config

    return settings_from_config(app.config)


def load_jwks(source: str) -> dict:
    """A JWKS from a file or an http(s) URL."""
    try:
        if source.startswith(("https://", "http://")):
            with urllib.request.urlopen(source, timeout=15) as response:  # noqa: S310 - the operator's URL
                raw = response.read(MAX_JWKS_BYTES + 1)
        else:
            raw = Path(source).read_bytes()[: MAX_JWKS_BYTES + 1]
    except (OSError, ValueError) as error:
        _fail(f"cannot read the JWKS {source}: {error}")
    if len(raw) > MAX_JWKS_BYTES:
        _fail(f"the JWKS {source} is too large")
    try:
        document = json.loads(raw)
    except ValueError:
        _fail(f"{source} is not JSON")
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        _fail(f"{source} is not a JWKS (no 'keys' list)")
    return document


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--jwks", "jwks_source", help="The issuer's JWKS: a file or an https URL (default: this instance's keys).")
def verify(file: Path, jwks_source: str | None) -> None:
    """Check a certificate PDF or credential (JWT) with the issuer's public keys only."""
    from assessor.certificates import verify_credential, verify_pdf
    from assessor.errors import CertificateError

    try:
        data = file.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as error:
        _fail(f"cannot read {file}: {error.strerror or error}")
    if jwks_source:
        document = load_jwks(jwks_source)
    else:
        from assessor.issuing import jwks

        app = _app()
        with _session(app) as session:
            document = jwks(session, settings=_settings(app))
    try:
        if data.startswith(b"%PDF-") or file.suffix.lower() == ".pdf":
            verdict = verify_pdf(data, document, retired=document)
        else:
            verdict = verify_credential(data.strip(), document, retired=document)
    except CertificateError as error:
        _fail(f"the JWKS is not usable: {error}")
    if verdict.ok:
        subject = verdict.credential["credentialSubject"]
        click.echo(f"valid: {verdict.reason}")
        click.echo(f"  {subject['name']}: {subject['achievement']['name']}")
        click.echo(f"  issued {verdict.credential['validFrom']} by {verdict.credential['issuer']['name']}")
        click.echo(f"  status list entry {verdict.credential['credentialStatus']['id']} (check it online for revocation)")
        sys.exit(EXIT_VALID)
    click.echo(f"{verdict.status}: {verdict.reason}")
    sys.exit(EXIT_INVALID)


@click.group()
def certificates() -> None:
    """List, issue and revoke certificates."""


@certificates.command("list")
def certificates_list() -> None:
    from assessor.issuing import list_certificates

    app = _app()
    with _session(app) as session:
        for row in list_certificates(session, limit=10_000):
            state = f"revoked {row.revoked_at:%Y-%m-%d}: {row.revoked_reason}" if row.revoked_at else "valid"
            click.echo(f"{row.public_id}  attempt {row.attempt_id}  issued {row.issued_at:%Y-%m-%d}  {state}")


@certificates.command("issue")
@click.argument("attempt_id", type=int)
def certificates_issue(attempt_id: int) -> None:
    """Issue the certificate of an approved, passing attempt now (idempotent)."""
    from assessor.issuing import IssuingError, issue_certificate

    app = _app()
    with _session(app) as session:
        try:
            certificate = issue_certificate(session, attempt_id=attempt_id, settings=_settings(app))
        except IssuingError as error:
            _fail(str(error))
        click.echo(f"{certificate.public_id}  {_settings(app).verify_url(certificate.public_id)}")


@certificates.command("revoke")
@click.argument("certificate_id")
@click.option("--reason", required=True, help="Why (shown on the public verify page).")
def certificates_revoke(certificate_id: str, reason: str) -> None:
    from assessor.issuing import IssuingError, revoke

    app = _app()
    with _session(app) as session:
        try:
            certificate = revoke(session, certificate_id=certificate_id, admin=None, reason=reason)
        except IssuingError as error:
            _fail(str(error))
        click.echo(f"revoked {certificate.public_id}: {certificate.revoked_reason}")


@click.group()
def keys() -> None:
    """The certificate signing keys."""


@keys.command("list")
def keys_list() -> None:
    from assessor.issuing import list_keys

    app = _app()
    with _session(app) as session:
        for row in list_keys(session):
            state = "active" if row.active else (f"retired {row.retired_at:%Y-%m-%d %H:%M}" if row.retired_at else "inactive")
            click.echo(f"{row.kid}  {state}  created {row.created_at:%Y-%m-%d %H:%M}  {row.private_key_path}")


@keys.command("rotate")
def keys_rotate() -> None:
    """A new signing key for new certificates; the old one stays published (retired), so old ones still verify."""
    from assessor.issuing import IssuingError, rotate_key

    app = _app()
    with _session(app) as session:
        try:
            row = rotate_key(session, settings=_settings(app))
        except IssuingError as error:
            _fail(str(error))
        click.echo(f"new active key {row.kid} ({row.private_key_path}, mode 0600)")


def ensure_key(app) -> str:
    """`assessor init`: create the first signing key if there is none (returns a line to print)."""
    from assessor.issuing import active_key

    with _session(app) as session:
        row = active_key(session, settings=_settings(app))
        return f"signing key {row.kid} ({row.private_key_path})"
