"""LTI 1.3 endpoints: the tool's key set, the OIDC login a launch starts with, the launch itself (resource link or
deep linking), and the deep-linking answer. Launches that do not verify get a plain page and change nothing."""

import logging
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request, session, url_for
from flask_login import login_user
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from assessor.domain import lti
from assessor.errors import RubricError
from assessor.domain.submissions import find_available
from assessor.web.extensions import csrf, db, job_settings, rubrics, sealing_key

bp = Blueprint("lti", __name__, url_prefix="/lti")
logger = logging.getLogger("assessor.lti")
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)



def _tool():
    return lti.ToolConf(db(), kek=sealing_key()), lti.DatabaseLaunchStorage(db())


# PyLTI1p3's reasons, in words a learner or instructor can act on (the library's own text follows in brackets).
PLAIN_REASONS = (
    ("expired", "the launch expired before it arrived: open the activity again from your course"),
    ("Invalid Nonce", "this launch was already used (a page sent twice): open the activity again from your course"),
    ("deployment", "this course's LMS deployment is not registered here: the course team has to register it"),
    ("Signature verification failed", "the launch is not signed by the registered LMS"),
    ("Unable to find public key", "the launch is not signed by the registered LMS"),
    ("State not found", "the launch did not come back from the login it started (are cookies blocked for this "
                        "site?): open the activity in a new window"),
    ("Registration not found", "this LMS is not registered here: the course team has to register it"),
    ("Client id not registered", "this LMS is not registered here: the course team has to register it"),
)


def _plain(error: Exception) -> str:
    text = str(error)
    for clue, words in PLAIN_REASONS:
        if clue in text:
            return f"{words} [{text[:200]}]"
    return text[:300]


def _refused(reason: str, status: int = 400):
    logger.info("LTI launch refused: %s", reason)
    return render_template("lti/refused.html", reason=reason), status


def _launch_url() -> str:
    return f"{job_settings().public_url}{url_for('lti.launch')}"


@bp.route("/jwks.json")
def jwks():
    return jsonify(lti.tool_jwks(db(), kek=sealing_key()))


@bp.route("/login", methods=["GET", "POST"])
@csrf.exempt  # the platform starts it; the state and nonce it sets protect the launch
def login():
    conf, storage = _tool()
    target = request.values.get("target_link_uri", "")
    # Only this tool's own launch address: anything else would make the login an open redirect.
    if urlsplit(target)._replace(query="").geturl() != _launch_url():
        return _refused("the launch names another address than this tool's launch URL")
    try:
        oidc = FlaskOIDCLogin(FlaskRequest(), conf, launch_data_storage=storage)
        return oidc.redirect(target)
    except Exception as error:  # PyLTI1p3 raises its own and plain exceptions alike
        return _refused(f"the login could not start: {_plain(error)}")


@bp.route("/launch", methods=["POST"])
@csrf.exempt  # the platform posts the signed id_token; PyLTI1p3 checks state, nonce and signature
def launch():
    conf, storage = _tool()
    message = FlaskMessageLaunch(FlaskRequest(), conf, launch_data_storage=storage)
    try:
        claims = message.get_launch_data()
    except Exception as error:
        db().rollback()
        return _refused(f"the launch did not verify: {_plain(error)}")
    try:
        launched = lti.read_launch(db(), claims)
        user = lti.account_for(db(), launched)
    except lti.LtiError as error:
        db().rollback()
        return _refused(str(error))
    session.clear()
    login_user(user)
    if launched.deep_linking:
        if launched.role != "mentor":
            return _refused("only instructors place a capstone in a course", 403)
        try:
            offered = rubrics()
        except RubricError:
            offered = []
        return render_template("lti/deep_link.html", launch_id=message.get_launch_id(), rubrics=offered)
    if launched.role == "mentor":
        return redirect(url_for("mentor.dashboard"))
    if launched.rubric_id:
        return redirect(url_for("learner.submit", rubric=launched.rubric_id))
    return redirect(url_for("learner.home"))


@bp.route("/deep-link/<launch_id>", methods=["POST"])
@csrf.exempt  # bound to a verified launch the instructor just made (its id is random and server-side)
def deep_link(launch_id: str):
    conf, storage = _tool()
    try:
        message = FlaskMessageLaunch.from_cache(launch_id, FlaskRequest(), conf, launch_data_storage=storage)
    except Exception as error:
        return _refused(f"that placement expired or is unknown: {error}")
    if not message.is_deep_link_launch():
        return _refused("this launch is not a deep-linking request")
    try:
        rubric = find_available(rubrics(), request.form.get("rubric", ""))
    except RubricError:
        rubric = None
    if rubric is None:
        return _refused("choose one of the capstones listed")
    resource = (DeepLinkResource().set_url(_launch_url()).set_title(f"{rubric.course}: {rubric.title}")
                .set_custom_params({"rubric": rubric.id})
                .set_lineitem(LineItem().set_tag(rubric.id).set_score_maximum(100).set_label(rubric.title)))
    token = message.get_deep_link().get_response_jwt([resource])
    return_url = message.get_launch_data()[DEEP_LINKING_SETTINGS]["deep_link_return_url"]
    response = current_app.response_class(render_template("lti/deep_link_return.html", return_url=return_url,
                                                          token=token, rubric=rubric))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(return_url))
    # This one page posts back to the platform, so its own policy names the platform as a form target.
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'self'; "
        f"form-action 'self' {origin}; frame-ancestors 'none'")
    return response
