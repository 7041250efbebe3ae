"""A test LMS speaking LTI 1.3 on loopback, written here (an LMS cannot run in the tests): it signs id tokens with
its own RSA key, serves its key set, an OIDC authorization endpoint, an OAuth 2 token endpoint that checks the
tool's signed client assertion against the tool's own key set, an Assignment and Grade Services line item that
keeps the scores it receives, and a deep-linking return that checks the tool's signed answer."""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"


def _public_jwk(private_key, kid: str) -> dict:
    numbers = private_key.public_key().public_numbers()

    def b64(number: int) -> str:
        import base64

        return base64.urlsafe_b64encode(number.to_bytes((number.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": b64(numbers.n), "e": b64(numbers.e)}


@dataclass
class PlatformUser:
    sub: str
    name: str
    email: str
    roles: tuple[str, ...]


@dataclass
class TestPlatform:
    client_id: str = "tool-client-1"
    deployment_id: str = "deployment-1"
    tool_url: str = ""  # the tool's public address (its launch URL and key set are under it)
    users: dict[str, PlatformUser] = field(default_factory=dict)
    scores: list[dict] = field(default_factory=list)
    deep_link_answers: list[dict] = field(default_factory=list)
    token_requests: list[dict] = field(default_factory=list)
    # What the next id token gets wrong, for the refusal tests: "expired", "deployment", "signature", "issuer".
    spoil: str | None = None

    def __post_init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "platform-key-1"
        self.stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._tokens: set[str] = set()
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def lineitem(self) -> str:
        return f"{self.url}/lineitems/capstone"

    def registration(self) -> dict:
        return {"name": "Test LMS", "issuer": self.issuer, "client_id": self.client_id,
                "auth_login_url": f"{self.url}/auth", "auth_token_url": f"{self.url}/token",
                "key_set_url": f"{self.url}/jwks", "deployment_ids": [self.deployment_id]}

    def stop(self) -> None:
        self.server.shutdown()

    # The browser side of a launch: what the LMS page would make the browser do.
    def login_initiation(self, login_hint: str, message_hint: str) -> str:
        return f"{self.tool_url}/lti/login?" + urlencode({
            "iss": self.issuer, "login_hint": login_hint, "target_link_uri": f"{self.tool_url}/lti/launch",
            "lti_message_hint": message_hint, "client_id": self.client_id})

    def course_page(self, user: str, hint: str) -> str:
        return f"{self.url}/course?" + urlencode({"user": user, "hint": hint})

    def id_token(self, user: PlatformUser, *, nonce: str, message_hint: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer if self.spoil != "issuer" else "https://unknown-lms.example",
            "aud": self.client_id, "sub": user.sub, "iat": now, "exp": now + 300 if self.spoil != "expired" else now - 60,
            "nonce": nonce, "name": user.name, "email": user.email,
            CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": self.deployment_id if self.spoil != "deployment" else "deployment-unknown",
            CLAIM + "roles": list(user.roles),
            CLAIM + "target_link_uri": f"{self.tool_url}/lti/launch",
            CLAIM + "context": {"id": "course-1", "title": "Backend Engineering"},
        }
        if message_hint == "deep-link":
            claims[CLAIM + "message_type"] = "LtiDeepLinkingRequest"
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
                "deep_link_return_url": f"{self.url}/deep-link-return", "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["window", "iframe"], "accept_multiple": False}
        else:
            rubric = message_hint.removeprefix("resource:")
            claims[CLAIM + "message_type"] = "LtiResourceLinkRequest"
            claims[CLAIM + "resource_link"] = {"id": f"link-{rubric}", "title": rubric}
            claims[CLAIM + "custom"] = {"rubric": rubric}
            claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = {
                "scope": [SCORE_SCOPE, LINEITEM_SCOPE], "lineitem": self.lineitem,
                "lineitems": f"{self.url}/lineitems"}
        key = self.key if self.spoil != "signature" else self.stranger_key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    def _tool_keys(self) -> dict:
        with urllib.request.urlopen(f"{self.tool_url}/lti/jwks.json", timeout=10) as response:
            return json.loads(response.read())

    def _verify_from_tool(self, token: str, audience: str) -> dict:
        """What the tool signs, checked the way an LMS does: against the tool's published key set."""
        keys = jwt.PyJWKSet.from_dict(self._tool_keys())
        header = jwt.get_unverified_header(token)
        key = next((k for k in keys.keys if k.key_id == header.get("kid")), keys.keys[0])
        return jwt.decode(token, key=key, algorithms=["RS256"], audience=audience)

    def wsgi(self, environ, start_response):
        request = Request(environ)
        path = request.path
        if path == "/course":  # the LMS's course page: the activity link starts the tool's login
            link = html.escape(self.login_initiation(request.args["user"], request.args["hint"]))
            response = Response(f'<h1>Backend Engineering</h1><a href="{link}">Open the capstone</a>',
                                mimetype="text/html")
        elif path == "/jwks":
            response = Response(json.dumps({"keys": [_public_jwk(self.key, self.kid)]}), mimetype="application/json")
        elif path == "/auth":
            response = self._authorize(request)
        elif path == "/token" and request.method == "POST":
            response = self._token(request)
        elif path.startswith("/lineitems/") and path.endswith("/scores") and request.method == "POST":
            response = self._score(request)
        elif path == "/deep-link-return" and request.method == "POST":
            claims = self._verify_from_tool(request.form["JWT"], self.issuer)
            self.deep_link_answers.append(claims)
            response = Response("placed", status=200)
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)

    def _authorize(self, request: Request) -> Response:
        args = request.args
        if (args.get("response_type") != "id_token" or args.get("scope") != "openid"
                or args.get("client_id") != self.client_id or args.get("redirect_uri") != f"{self.tool_url}/lti/launch"
                or not args.get("nonce") or not args.get("state")):
            return Response("bad authorization request", status=400)
        user = self.users[args["login_hint"]]
        token = self.id_token(user, nonce=args["nonce"], message_hint=args.get("lti_message_hint", ""))
        page = (f'<form id="launch" method="post" action="{html.escape(args["redirect_uri"])}">'
                f'<input type="hidden" name="id_token" value="{token}">'
                f'<input type="hidden" name="state" value="{html.escape(args["state"])}"></form>'
                f"<script>document.getElementById('launch').submit()</script>")
        return Response(page, mimetype="text/html")

    def _token(self, request: Request) -> Response:
        form = request.form
        try:
            claims = self._verify_from_tool(form["client_assertion"], f"{self.url}/token")
        except (KeyError, jwt.PyJWTError) as error:
            return Response(json.dumps({"error": "invalid_client", "detail": str(error)}), status=401,
                            mimetype="application/json")
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return Response(json.dumps({"error": "invalid_client"}), status=401, mimetype="application/json")
        token = secrets.token_urlsafe(24)
        self._tokens.add(token)
        self.token_requests.append({"scope": form.get("scope"), "grant_type": form.get("grant_type")})
        return Response(json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                                    "scope": form.get("scope", "")}), mimetype="application/json")

    def _score(self, request: Request) -> Response:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self._tokens:
            return Response("unauthorized", status=401)
        if request.mimetype != "application/vnd.ims.lis.v1.score+json":
            return Response("unsupported media type", status=415)
        self.scores.append(json.loads(request.get_data()))
        return Response("", status=204)
