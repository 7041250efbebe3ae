"""A learner's private repositories: the deploy keys (and tokens) they add to their git host, and removing them."""

from flask import Blueprint, Flask, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from assessor.domain import repository_access, webhooks
from assessor.errors import RubricError
from assessor.domain.repository_access import DEPLOY_KEY_STEPS, RepositoryAccessError
from assessor.web.extensions import db, job_settings, rubrics, sealing_key
from assessor.web.forms import (
    ActionForm, RepositoryKeyForm, RepositoryLinkForm, RepositoryTokenForm, attach_error, choice,
)

PROVIDER_NAMES = {"github": "GitHub", "gitlab": "GitLab", "gitea": "Gitea or Forgejo"}

bp = Blueprint("repositories", __name__, url_prefix="/learner/repositories")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)



def _forms():
    hosts = job_settings().git_hosts
    key_form, token_form = RepositoryKeyForm(prefix="key"), RepositoryTokenForm(prefix="token")
    for form in (key_form, token_form):
        form.host.choices = [choice(host.host, host.label) for host in hosts]
    return hosts, key_form, token_form


def _link_form() -> RepositoryLinkForm:
    form = RepositoryLinkForm(prefix="link")
    try:
        offered = rubrics()
    except RubricError:
        offered = []
    form.rubric.choices = [choice(rubric.id, f"{rubric.course}: {rubric.title}") for rubric in offered]
    form.provider.choices = [choice(name, label) for name, label in PROVIDER_NAMES.items()]
    return form


def _page(key_form, token_form, *, status: int = 200, added=None, link_form=None, new_link=None):
    hosts = job_settings().git_hosts
    rows = repository_access.keys_of(db(), user=current_user)
    by_host = {host.host: host for host in hosts}
    return render_template("learner/repositories.html", rows=rows, hosts=by_host, key_form=key_form,
                           token_form=token_form, added=added, steps=DEPLOY_KEY_STEPS,
                           links=webhooks.links_of(db(), user=current_user), link_form=link_form or _link_form(),
                           new_link=new_link, hook_steps=webhooks.HOOK_STEPS, providers=PROVIDER_NAMES), status


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
                                                   repository=key_form.repository.data, kek=sealing_key())
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
                                        token=token_form.token.data, kek=sealing_key())
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


def _hook_url(link) -> str:
    return f"{job_settings().public_url}{url_for('hooks.receive', link_id=link.id)}"


@bp.route("/links", methods=["POST"])
@login_required
def add_link():
    _hosts, key_form, token_form = _forms()
    form = _link_form()
    if form.validate_on_submit():
        try:
            link, secret = webhooks.create_link(
                db(), user=current_user, rubric_id=form.rubric.data, source=form.source.data,
                provider=form.provider.data, branch=form.branch.data, tag_pattern=form.tag_pattern.data,
                policy=job_settings().source_policy, kek=sealing_key())
        except webhooks.WebhookError as error:
            db().rollback()
            attach_error(form, "source", str(error))
        else:
            return _page(key_form, token_form, status=201, link_form=_link_form(),
                         new_link={"link": link, "secret": secret, "url": _hook_url(link)})
    return _page(key_form, token_form, status=400, link_form=form)


@bp.route("/links/<int:link_id>/secret", methods=["POST"])
@login_required
def new_link_secret(link_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    link = next((link for link in webhooks.links_of(db(), user=current_user) if link.id == link_id), None)
    if link is None:
        abort(404)
    secret = webhooks.new_secret(db(), link=link, kek=sealing_key())
    _hosts, key_form, token_form = _forms()
    return _page(key_form, token_form, new_link={"link": link, "secret": secret, "url": _hook_url(link)})


@bp.route("/links/<int:link_id>/delete", methods=["POST"])
@login_required
def delete_link(link_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        webhooks.remove_link(db(), user=current_user, link_id=link_id)
    except webhooks.WebhookError:
        abort(404)
    flash("The link is removed: pushes no longer submit. Remove the webhook on the host too.", "success")
    return redirect(url_for("repositories.index"))
