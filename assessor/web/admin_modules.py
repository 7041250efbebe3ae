"""Administration of course-module results: the CSV upload, what has been recorded, and the API keys a course
platform pushes results with."""

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from sqlmodel import func, select

from assessor.domain import apitokens, modules
from assessor.errors import ModuleImportError
from assessor.domain.models import ModuleResult
from assessor.domain.reviews import Page
from assessor.web.extensions import db, role_required, rubrics
from assessor.web.forms import ActionForm

bp = Blueprint("admin_modules", __name__, url_prefix="/admin")
UPLOAD_FIELD = "results"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _page(*, problems=(), code: int = 200, new_key: str | None = None):
    session = db()
    counts = session.exec(select(ModuleResult.course, func.count(), func.count(func.distinct(ModuleResult.email)))
                          .group_by(ModuleResult.course).order_by(ModuleResult.course)).all()
    courses = sorted(rubric.id for rubric in rubrics())
    course = request.args.get("course") or None
    if course not in courses:
        course = None
    search = (request.args.get("q") or "")[:100]
    try:
        page = max(1, min(int(request.args.get("page", 1)), 100_000))
    except ValueError:
        page = 1
    rows, total = modules.browse(session, course=course, search=search, page=page, per_page=BROWSE_PAGE)
    return render_template("admin/modules.html", form=ActionForm(), columns=modules.COLUMNS, counts=counts,
                           courses=courses, problems=problems, tokens=apitokens.list_tokens(session),
                           new_key=new_key, results=rows, results_page=Page(rows, page, BROWSE_PAGE, total),
                           course=course, search=search), code


BROWSE_PAGE = 50


@bp.route("/modules")
@role_required("admin")
def modules_page():
    return _page()


@bp.route("/modules", methods=["POST"])
@role_required("admin")
def upload():
    if not ActionForm().validate_on_submit():
        abort(400)
    upload = request.files.get(UPLOAD_FIELD)
    if upload is None or not upload.filename:
        return _page(problems=[(0, "choose a CSV file")], code=400)
    data = upload.stream.read(modules.MAX_BYTES + 1)
    session = db()
    try:
        rows = modules.parse_csv(data, courses={rubric.id for rubric in rubrics()})
    except ModuleImportError as error:
        return _page(problems=error.problems, code=400)
    summary = modules.import_rows(session, rows, source="admin page")
    session.commit()
    flash(f"Imported {summary.total} module results from {upload.filename}: {summary.added} new, "
          f"{summary.updated} updated.", "success")
    return redirect(url_for("admin_modules.modules_page"))


@bp.route("/api-keys", methods=["POST"])
@role_required("admin")
def add_key():
    if not ActionForm().validate_on_submit():
        abort(400)
    chosen = request.form.getlist("course")
    every = "__every__" in chosen
    try:
        row, raw = apitokens.create_token(db(), name=request.form.get("name", ""),
                                          courses=None if every else [course for course in chosen if course],
                                          known_courses=[rubric.id for rubric in rubrics()])
    except apitokens.ApiTokenError as error:
        flash(str(error), "error")
        return redirect(url_for("admin_modules.modules_page"))
    # Shown on this response only: the key is stored as its hash.
    return _page(new_key=f"{row.name}: {raw}")


@bp.route("/api-keys/<int:token_id>/revoke", methods=["POST"])
@role_required("admin")
def revoke_key(token_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        row = apitokens.revoke(db(), token_id=token_id)
    except apitokens.ApiTokenError:
        abort(404)
    flash(f"API key {row.name} revoked.", "success")
    return redirect(url_for("admin_modules.modules_page"))
