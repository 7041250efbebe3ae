"""A learner's private repositories: the deploy keys (and tokens) they add to their git host, and removing them."""

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from assessor import repository_access
from assessor.certificates.sealing import key_encryption_key
from assessor.repository_access import DEPLOY_KEY_STEPS, RepositoryAccessError
from assessor.web.extensions import db, job_settings
from assessor.web.forms import ActionForm, RepositoryKeyForm, RepositoryTokenForm, attach_error, choice

bp = Blueprint("repositories", __name__, url_prefix="/learner/repositories")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _kek() -> bytes:
    config = current_app.config
    return key_encryption_key(configured=config.get("KEY_ENCRYPTION_KEY"), secret_key=config.get("SECRET_KEY"))


def _forms():
    hosts = job_settings().git_hosts
    key_form, token_form = RepositoryKeyForm(prefix="key"), RepositoryTokenForm(prefix="token")
    for form in (key_form, token_form):
        form.host.choices = [choice(host.host, host.label) for host in hosts]
    return hosts, key_form, token_form


def _page(key_form, token_form, *, status: int = 200, added=None):
    hosts = job_settings().git_hosts
    rows = repository_access.keys_of(db(), user=current_user)
    by_host = {host.host: host for host in hosts}
    return render_template("learner/repositories.html", rows=rows, hosts=by_host, key_form=key_form,
                           token_form=token_form, added=added, steps=DEPLOY_KEY_STEPS,
                           delete_form=ActionForm()), status


@bp.route("/")
@login_required
def index():
    _hosts, key_form, token_form = _forms()
    return _page(key_form, token_form)


@bp.route("/<int:key_id>")
@login_required
def show(key_id: int):
    """A key just made: its public half and the host's steps to add it (the address a reload lands on)."""
    row = next((row for row in repository_access.keys_of(db(), user=current_user) if row.id == key_id), None)
    if row is None:
        abort(404)
    _hosts, key_form, token_form = _forms()
    return _page(key_form, token_form, added=row)


@bp.route("/keys", methods=["POST"])
@login_required
def add_key():
    hosts, key_form, token_form = _forms()
    if key_form.validate_on_submit():
        host = repository_access.find_host(hosts, key_form.host.data)
        try:
            row = repository_access.add_deploy_key(db(), user=current_user, host=host,
                                                   repository=key_form.repository.data, kek=_kek())
        except RepositoryAccessError as error:
            db().rollback()
            attach_error(key_form, "repository", str(error))
        else:
            return redirect(url_for("repositories.show", key_id=row.id, _anchor="added"))
    return _page(key_form, token_form, status=400)


@bp.route("/tokens", methods=["POST"])
@login_required
def add_token():
    hosts, key_form, token_form = _forms()
    if token_form.validate_on_submit():
        host = repository_access.find_host(hosts, token_form.host.data)
        try:
            repository_access.add_token(db(), user=current_user, host=host, repository=token_form.repository.data,
                                        token=token_form.token.data, kek=_kek())
        except RepositoryAccessError as error:
            db().rollback()
            attach_error(token_form, "repository" if "repository" in str(error) else "token", str(error))
        else:
            flash("The token is kept sealed; it is sent only to its own host, when your repository is cloned.",
                  "success")
            return redirect(url_for("repositories.index"))
    return _page(key_form, token_form, status=400)


@bp.route("/<int:key_id>/delete", methods=["POST"])
@login_required
def delete(key_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        repository_access.remove_key(db(), user=current_user, key_id=key_id)
    except RepositoryAccessError:
        abort(404)
    flash("Removed: the key is deleted here. Remove it from the repository's deploy keys on the host too.", "success")
    return redirect(url_for("repositories.index"))
