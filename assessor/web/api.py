"""The authenticated machine API: a course platform pushes module results (JSON or CSV) with an API key."""

from flask import Blueprint, Flask, jsonify, request

from assessor.domain import apitokens, modules
from assessor.errors import ModuleImportError
from assessor.web.extensions import csrf, db, rubrics
from assessor.web.jsonbody import json_body

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_JSON_BYTES = modules.MAX_BYTES


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _refused(problems: list[tuple[int, str]], code: int = 400):
    return jsonify({"status": "refused", "imported": 0,
                    "problems": [{"line": line, "message": message} for line, message in problems]}), code


@bp.route("/module-results", methods=["POST"])
@csrf.exempt  # authenticated by the bearer key, not a cookie
def module_results():
    """`{"results": [{email, course, module, title, score, max_score, completed_on}, ...]}` or a CSV body
    (text/csv) with those columns. All or nothing; problems by line (JSON: the position in `results`, from 1)."""
    session = db()
    token = apitokens.authenticate(session, header=request.headers.get("Authorization"))
    if token is None:
        response = jsonify({"status": "error", "reason": "send a live API key as `Authorization: Bearer <key>`"})
        response.headers["WWW-Authenticate"] = 'Bearer realm="module-results"'
        return response, 401
    request.max_content_length = MAX_JSON_BYTES
    courses = {rubric.id for rubric in rubrics()}
    try:
        if request.mimetype == "application/json":
            body = json_body()
            records = body.get("results") if isinstance(body, dict) else None
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                return _refused([(0, 'send {"results": [ {...}, ... ]} with one object per module result')])
            rows = modules.check_records(enumerate(records, start=1), courses=courses, allowed=token.course_scope)
        elif request.mimetype in ("text/csv", "application/csv"):
            rows = modules.parse_csv(request.get_data(), courses=courses, allowed=token.course_scope)
        else:
            return _refused([(0, "send application/json or text/csv")], 415)
    except ModuleImportError as error:
        session.commit()  # the key's last use, nothing else
        return _refused(error.problems)
    summary = modules.import_rows(session, rows, source=f"api:{token.id}")
    session.commit()
    return jsonify({"status": "imported", "imported": summary.total, "added": summary.added,
                    "updated": summary.updated})
