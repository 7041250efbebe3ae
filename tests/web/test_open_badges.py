"""What tools other than ours make of an issued certificate: two JOSE libraries verify it from the served JWKS
alone, its payload meets Open Badges 3.0's requirements, JSON-LD processing with the published contexts keeps
every term, pikepdf and pyHanko read the PDF as PDF/A-3b sealed with the issuer's key, badges carry it baked in."""

import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime

import jwt as pyjwt
import pikepdf
import pytest
from joserfc import jwt as joserfc_jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws
from PIL import Image
from pyld import jsonld

from assessor.domain import issuing, modules
from assessor.certificates.badge import PNG_KEYWORD, SVG_NAMESPACE

from tests.jsonld_contexts import OB_V303, VC_V2, published_contexts
from tests.web.certificate_helpers import approve, settings

PUBLIC = "https://certs.example.org"
LEARNER_EMAIL = "ada.lovelace@example.org"
MODULES_CSV = (
    "email,course,module,title,score,max_score,completed_on\n"
    f"{LEARNER_EMAIL},test-capstone,m1-http,HTTP services in depth,92,100,2026-09-14\n"
    f"{LEARNER_EMAIL},test-capstone,m2-data,Data modelling and PostgreSQL,81.25,100,2026-10-02\n"
    "someone.else@example.org,test-capstone,m1-http,HTTP services in depth,70,100,2026-09-14\n"
)
RESULT_TYPES = {"GradePointAverage", "LetterGrade", "Percent", "PerformanceLevel", "PredictedScore", "RawScore",
                "Result", "RubricCriterion", "RubricCriterionLevel", "RubricScore", "ScaledScore"}
RESULT_STATUSES = {"Completed", "Enrolled", "Failed", "InProgress", "OnHold", "Provisional", "Withdrew"}
ACHIEVEMENT_TYPES = {"Achievement", "ApprenticeshipCertificate", "Assessment", "Assignment", "AssociateDegree",
                     "Award", "Badge", "BachelorDegree", "Certificate", "CertificateOfCompletion", "Certification",
                     "CommunityService", "Competency", "Course", "CoCurricular", "Degree", "Diploma",
                     "DoctoralDegree", "Fieldwork", "GeneralEducationDevelopment", "JourneymanCertificate",
                     "LearningProgram", "License", "Membership", "ProfessionalDoctorate", "QualityAssuranceCredential",
                     "MasterCertificate", "MasterDegree", "MicroCredential", "ResearchDoctorate", "SecondarySchoolDiploma"}


@pytest.fixture
def app_config(app_config):
    return {**app_config, "QUEUE_IMMEDIATE": True, "PUBLIC_URL": PUBLIC}


@pytest.fixture
def certificate(db, app, make_attempt, make_user):
    learner = make_user(name="Ada Lovelace", email=LEARNER_EMAIL)
    mentor = make_user("mentor", courses=["test-capstone"], name="Mona Mentor")
    modules.import_rows(db, modules.parse_csv(MODULES_CSV.encode(), courses={"test-capstone"}), source="test")
    db.commit()
    attempt = make_attempt(learner)
    approve(db, app, attempt, mentor)
    return issuing.issue_certificate(db, attempt_id=attempt.id, settings=settings(app))


@pytest.fixture
def served_jwks(client) -> dict:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return response.get_json()


def payload_of(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


# ---------------------------------------------------------------- JOSE libraries we do not use


def test_joserfc_verifies_the_credential_from_the_served_jwks(certificate, served_jwks):
    keys = KeySet.import_key_set({"keys": served_jwks["keys"]})
    token = joserfc_jwt.decode(certificate.token, keys, algorithms=["ES256"])
    assert token.header["alg"] == "ES256" and token.header["kid"].startswith(f"{PUBLIC}/issuer/keys/")
    assert token.claims["jti"] == f"urn:uuid:{certificate.public_id}" and token.claims["iss"] == f"{PUBLIC}/issuer"
    header, payload, signature = certificate.token.split(".")
    edited = payload_of(certificate.token)
    edited["credentialSubject"]["name"] = "Mallory"
    forged = ".".join([header, pyjwt.utils.base64url_encode(json.dumps(edited).encode()).decode(), signature])
    with pytest.raises(BadSignatureError):
        joserfc_jwt.decode(forged, keys, algorithms=["ES256"])


def test_jwcrypto_verifies_the_credential_from_the_served_jwks(certificate, served_jwks):
    keys = jwcrypto_jwk.JWKSet.from_json(json.dumps({"keys": served_jwks["keys"]}))
    signed = jwcrypto_jws.JWS()
    signed.deserialize(certificate.token)
    kid = signed.jose_header["kid"]
    signed.verify(keys.get_key(kid), alg="ES256")
    assert json.loads(signed.payload)["sub"] == payload_of(certificate.token)["credentialSubject"]["id"]
    with pytest.raises(jwcrypto_jws.InvalidJWSSignature):
        tampered = jwcrypto_jws.JWS()
        tampered.deserialize(certificate.token[:-6] + ("AAAAAA" if not certificate.token.endswith("AAAAAA") else "BBBBBB"))
        tampered.verify(keys.get_key(kid), alg="ES256")


def test_the_key_id_dereferences_to_the_jwk_that_verifies(certificate, client):
    kid = pyjwt.get_unverified_header(certificate.token)["kid"]
    served = client.get(kid.removeprefix(PUBLIC))
    assert served.status_code == 200
    key = pyjwt.PyJWK(served.get_json())
    assert pyjwt.decode(certificate.token, key.key, algorithms=["ES256"])["iss"] == f"{PUBLIC}/issuer"


# ---------------------------------------------------------------- OB 3.0 requirements, checked by hand


def _types(node) -> list:
    value = node.get("type")
    return value if isinstance(value, list) else [value]


def _is_uri(value) -> bool:
    return isinstance(value, str) and re.match(r"^[a-z][a-z0-9+.-]*:\S+$", value) is not None


def _is_datetime(value) -> bool:
    return isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", value) is not None


def ob3_problems(payload: dict) -> list[str]:
    """Open Badges 3.0 (and VC-JWT) requirements of an OpenBadgeCredential, each violated one named."""
    problems = []
    context = payload.get("@context")
    if not isinstance(context, list) or context[:1] != [VC_V2] or not (
            len(context) > 1 and re.match(r"^https://purl\.imsglobal\.org/spec/ob/v3p0/context-3\.0\.\d+\.json$",
                                          context[1])):
        problems.append("@context must start with VC 2.0 then OB 3.0")
    if not _is_uri(payload.get("id")):
        problems.append("id must be a URI")
    if not {"VerifiableCredential", "OpenBadgeCredential"} <= set(_types(payload)):
        problems.append("type must include VerifiableCredential and OpenBadgeCredential")
    issuer = payload.get("issuer")
    if not isinstance(issuer, dict) or not _is_uri(issuer.get("id")) or "Profile" not in _types(issuer):
        problems.append("issuer must be a Profile with a URI id")
    if not _is_datetime(payload.get("validFrom")):
        problems.append("validFrom must be a dateTime")
    if "awardedDate" in payload and not _is_datetime(payload["awardedDate"]):
        problems.append("awardedDate must be a dateTime")
    for schema in payload.get("credentialSchema") or []:
        if not _is_uri(schema.get("id")) or not isinstance(schema.get("type"), str):
            problems.append("credentialSchema entries need id and type")
    subject = payload.get("credentialSubject") or {}
    if "AchievementSubject" not in _types(subject):
        problems.append("credentialSubject must be an AchievementSubject")
    if "id" not in subject and "identifier" not in subject:
        problems.append("credentialSubject needs an id or an identifier")
    for identity in subject.get("identifier") or []:
        if (identity.get("type") != "IdentityObject" or not isinstance(identity.get("hashed"), bool)
                or not isinstance(identity.get("identityHash"), str) or not identity.get("identityType")):
            problems.append("identifier entries must be IdentityObjects")
        if identity.get("hashed") and not identity["identityHash"].startswith(("sha256$", "md5$")):
            problems.append("a hashed identityHash names its algorithm (sha256$...)")
    achievement = subject.get("achievement") or {}
    if not _is_uri(achievement.get("id")) or "Achievement" not in _types(achievement):
        problems.append("achievement needs a URI id and type Achievement")
    for required in ("name", "description", "criteria"):
        if not achievement.get(required):
            problems.append(f"achievement.{required} is required")
    if not (achievement.get("criteria") or {}).get("narrative") and not (achievement.get("criteria") or {}).get("id"):
        problems.append("criteria needs a narrative or an id")
    achievement_type = achievement.get("achievementType")
    if achievement_type is not None and achievement_type not in ACHIEVEMENT_TYPES and not str(achievement_type).startswith("ext:"):
        problems.append(f"achievementType {achievement_type!r} is not in the enumeration")
    for image in (payload.get("image"), achievement.get("image")):
        if image is not None and (not _is_uri(image.get("id")) or image.get("type") != "Image"):
            problems.append("an image is an Image with a URI id")
    descriptions = {}
    levels = set()
    for description in achievement.get("resultDescription") or []:
        if not _is_uri(description.get("id")) or "ResultDescription" not in _types(description):
            problems.append("each resultDescription needs a URI id and its type")
        if not description.get("name") or description.get("resultType") not in RESULT_TYPES:
            problems.append(f"resultDescription {description.get('id')} needs a name and a known resultType")
        for level in description.get("rubricCriterionLevel") or []:
            if not _is_uri(level.get("id")) or "RubricCriterionLevel" not in _types(level) or not level.get("name"):
                problems.append("each rubricCriterionLevel needs an id, its type and a name")
            levels.add(level.get("id"))
        descriptions[description.get("id")] = description
    for result in subject.get("result") or []:
        if "Result" not in _types(result):
            problems.append("each result has type Result")
        if result.get("resultDescription") not in descriptions:
            problems.append("a result must point at one of the achievement's resultDescriptions")
        if "achievedLevel" in result and result["achievedLevel"] not in levels:
            problems.append("achievedLevel must be one of the rubric levels")
        if "status" in result and result["status"] not in RESULT_STATUSES:
            problems.append(f"result status {result['status']!r} is not in the enumeration")
        if "value" in result and not isinstance(result["value"], str):
            problems.append("result value is a string")
    for evidence in payload.get("evidence") or []:
        if "Evidence" not in _types(evidence):
            problems.append("evidence entries have type Evidence")
    status = payload.get("credentialStatus") or {}
    if not _is_uri(status.get("statusListCredential")) or not str(status.get("statusListIndex", "")).isdigit():
        problems.append("credentialStatus needs the status list URL and a numeric index")
    # VC-JWT: the registered claims mirror the credential
    if payload.get("iss") != (issuer or {}).get("id"):
        problems.append("iss must equal issuer.id")
    if payload.get("jti") != payload.get("id"):
        problems.append("jti must equal id")
    if payload.get("sub") != subject.get("id"):
        problems.append("sub must equal credentialSubject.id")
    try:
        nbf_matches = payload.get("nbf") == int(datetime.fromisoformat(payload["validFrom"].replace("Z", "+00:00")).timestamp())
    except (KeyError, ValueError, AttributeError):
        nbf_matches = False
    if not nbf_matches:
        problems.append("nbf must equal validFrom")
    return problems


def test_the_credential_meets_open_badges_3_requirements(certificate):
    payload = payload_of(certificate.token)
    assert ob3_problems(payload) == []
    assert pyjwt.get_unverified_header(certificate.token) == {
        "alg": "ES256", "kid": f"{PUBLIC}/issuer/keys/{certificate.kid}", "typ": "JWT"}
    assert payload["@context"][2] == f"{PUBLIC}/contexts/capstone-v1.jsonld"
    subject = payload["credentialSubject"]
    assert subject["achievement"]["achievementType"] == "Certificate"
    assert subject["achievement"]["image"]["id"] == f"{PUBLIC}/badges/test-capstone.png"


@pytest.mark.parametrize("break_it, problem", [
    (lambda p: p.update({"@context": list(reversed(p["@context"][:2]))}), "@context"),
    (lambda p: p.update({"type": ["VerifiableCredential"]}), "type must include"),
    (lambda p: p.update({"jti": "urn:uuid:00000000-0000-0000-0000-000000000000"}), "jti"),
    (lambda p: p.update({"nbf": p["nbf"] + 1}), "nbf"),
    (lambda p: p["credentialSubject"]["result"][0].update({"achievedLevel": "urn:x"}), "achievedLevel"),
    (lambda p: p["credentialSubject"]["achievement"].pop("criteria"), "criteria"),
])
def test_the_requirement_checks_catch_what_they_check(certificate, break_it, problem):
    payload = payload_of(certificate.token)
    break_it(payload)
    assert any(problem in line for line in ob3_problems(payload))


# ---------------------------------------------------------------- JSON-LD with the published contexts


@pytest.fixture(scope="session")
def contexts():
    return published_contexts()


def _loader(contexts, client):
    def load(url, options=None):
        if url in contexts:
            document = contexts[url]
        elif url.startswith(PUBLIC + "/contexts/"):
            response = client.get(url.removeprefix(PUBLIC))
            assert response.status_code == 200 and response.mimetype == "application/ld+json"
            document = response.get_json()
        else:
            raise jsonld.JsonLdError(f"no network in the tests: {url}", "loading document failed")
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": document}
    return load


def _member_names(node, found: set, *, skip=frozenset()) -> set:
    """Every member name in a JSON document, but keywords (@...) and `skip`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not key.startswith("@") and key not in skip:
                found.add(key)
            _member_names(value, found, skip=skip)
    elif isinstance(node, list):
        for item in node:
            _member_names(item, found, skip=skip)
    return found


def _terms(credential) -> set:
    return _member_names(credential, set(), skip={"id", "type"})


def _iris(expanded) -> set:
    return _member_names(expanded, set())


def test_json_ld_expansion_keeps_every_term(certificate, contexts, client):
    payload = payload_of(certificate.token)
    credential = {k: v for k, v in payload.items() if k not in ("iss", "jti", "nbf", "sub")}
    expanded = jsonld.expand(credential, {"documentLoader": _loader(contexts, client)})
    iris = _iris(expanded)
    local_names = {re.split(r"[#/]", iri)[-1].lower() for iri in iris}  # OB maps criteria to ...#Criteria
    dropped = sorted(term for term in _terms(credential) if term.lower() not in local_names)
    assert dropped == []
    # OB's own properties carry OB's meaning, ours our vocabulary
    ob = "https://purl.imsglobal.org/spec/vc/ob/vocab.html#"
    for term in ("achievedLevel", "resultDescription", "rubricCriterionLevel", "awardedDate", "achievementType",
                 "identityHash", "requiredValue"):
        assert ob + term in iris, term
    for term in ("commit", "reportSha256", "rubricSha256", "approvedBy", "assessedAt", "completedOn"):
        assert f"urn:capstone-assessor:vocab#{term}" in iris, term


def test_json_ld_expansion_would_catch_an_undefined_term(certificate, contexts, client):
    payload = payload_of(certificate.token)
    credential = {k: v for k, v in payload.items() if k not in ("iss", "jti", "nbf", "sub")}
    credential["credentialSubject"]["favouriteColour"] = "green"
    expanded = jsonld.expand(credential, {"documentLoader": _loader(contexts, client)})
    assert not any(iri.endswith("favouriteColour") for iri in _iris(expanded))


# ---------------------------------------------------------------- the PDF, read by pikepdf and pyHanko


def test_the_sealed_pdf_is_pdf_a_3b_with_one_jwt_attachment(certificate):
    assert certificate.pdf.startswith(b"%PDF-1.7")
    with pikepdf.open(io.BytesIO(certificate.pdf)) as pdf:
        assert pdf.pdf_version == "1.7"
        root = pdf.Root
        assert str(root.get("/Version", "/1.7")) == "/1.7"  # no later catalog version after the seal
        extensions = root.get("/Extensions")
        assert extensions is None or "/ISO_" not in str(extensions.keys())  # no PDF 2.0 extension declared
        with pdf.open_metadata() as xmp:
            assert xmp.get("pdfaid:part") == "3" and xmp.get("pdfaid:conformance") == "B"
        associated = root["/AF"]
        assert len(associated) == 1
        spec = associated[0]
        assert str(spec["/F"]) == "credential.jwt" and str(spec["/AFRelationship"]) == "/Data"
        embedded = spec["/EF"]["/F"]
        assert str(embedded["/Subtype"]) == "/application/jwt"
        assert embedded.read_bytes() == certificate.token.encode()
        assert list(pdf.attachments) == ["credential.jwt"]


def _structure_roles(node, found: list, depth: int = 0) -> list:
    if depth > 40 or len(found) > 2000:
        return found
    if isinstance(node, pikepdf.Array):
        for kid in node:
            _structure_roles(kid, found, depth + 1)
    elif isinstance(node, pikepdf.Dictionary):
        if "/S" in node:
            found.append(str(node["/S"]))
        if "/K" in node:
            _structure_roles(node["/K"], found, depth + 1)
    return found


def test_the_pdf_is_tagged_for_screen_readers_and_stays_pdf_a_3b(certificate):
    with pikepdf.open(io.BytesIO(certificate.pdf)) as pdf:
        assert bool(pdf.Root["/MarkInfo"]["/Marked"]) and str(pdf.Root["/Lang"]) == "en"
        roles = set(_structure_roles(pdf.Root["/StructTreeRoot"]["/K"], []))
        assert {"/H1", "/P", "/Table"} <= roles, roles
        with pdf.open_metadata() as xmp:
            assert (xmp.get("pdfaid:part"), xmp.get("pdfaid:conformance")) == ("3", "B")


def test_pyhanko_finds_an_intact_ecdsa_seal_by_the_issuers_key(certificate, served_jwks):
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature

    from assessor.certificates.keys import public_key_from_jwk

    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(io.BytesIO(certificate.pdf))
    [seal] = reader.embedded_signatures
    # The seal's certificate is the issuer's own (self-signed): trusting it is what trusting the JWKS key means.
    status = validate_pdf_signature(seal, signer_validation_context=ValidationContext(trust_roots=[seal.signer_cert]))
    assert status.intact and status.valid  # the bytes signed are the bytes here, and the signature matches them
    assert status.md_algorithm == "sha256" and "ecdsa" in status.pkcs7_signature_mechanism
    assert seal.docmdp_level is not None  # a certification seal: changes after it show
    signer_key = seal.signer_cert.public_key.dump()
    jwk = next(k for k in served_jwks["keys"] if k["kid"].endswith(certificate.kid))
    ours = public_key_from_jwk(jwk).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert signer_key == ours


# ---------------------------------------------------------------- badges with the credential baked in


def test_badges_carry_the_credential_as_open_badges_3_bakes_it(client, certificate, served_jwks):
    png = client.get(f"/verify/{certificate.public_id}/badge.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    image = Image.open(io.BytesIO(png.data))
    assert image.size[0] >= 200 and image.text[PNG_KEYWORD.decode()] == certificate.token
    svg = client.get(f"/verify/{certificate.public_id}/badge.svg")
    assert svg.mimetype == "image/svg+xml"
    tree = ET.fromstring(svg.data)
    # Read back the way 1EdTech's validator reads a baked SVG: the first openbadges:credential element under the
    # root, a VC-JWT in its `verify` attribute, no text.
    baked = tree.find(f"{{{SVG_NAMESPACE}}}credential")
    assert baked is not None and list(tree)[0] is baked
    assert baked.get("verify") == certificate.token and not (baked.text or "").strip()
    keys = KeySet.import_key_set({"keys": served_jwks["keys"]})
    assert joserfc_jwt.decode(baked.get("verify"), keys, algorithms=["ES256"]).claims["jti"] == f"urn:uuid:{certificate.public_id}"
    course_badge = client.get("/badges/test-capstone.png")
    assert course_badge.status_code == 200 and PNG_KEYWORD.decode() not in Image.open(io.BytesIO(course_badge.data)).text
    assert client.get("/badges/no-such-course.svg").status_code == 404
    assert client.get("/verify/00000000-0000-4000-8000-000000000000/badge.png").status_code == 404


# ---------------------------------------------------------------- the course record on every surface


def test_the_modules_passed_are_in_the_credential_the_pdf_and_the_verify_page(client, certificate):
    from pypdf import PdfReader

    from assessor.certificates.describe import describe

    view = describe(payload_of(certificate.token))
    assert [(m.title, m.score, m.max_score) for m in view.modules] == [
        ("HTTP services in depth", "92", "100"), ("Data modelling and PostgreSQL", "81.2", "100")]
    text = PdfReader(io.BytesIO(certificate.pdf)).pages[0].extract_text()
    assert "HTTP services in depth" in text and "81.2 / 100" in text and "Data modelling" in text
    page = client.get(f"/verify/{certificate.public_id}").get_data(as_text=True)
    modules_table = page[page.index('id="modules"'):]
    assert "Data modelling and PostgreSQL" in modules_table and "81.2 of 100" in modules_table
    assert "2 October 2026" in modules_table
    # another learner's results are not on this certificate
    assert "70 of 100" not in page


def test_the_verify_page_has_open_graph_tags_and_the_checks(client, certificate):
    page = client.get(f"/verify/{certificate.public_id}").get_data(as_text=True)
    assert f'<meta property="og:url" content="{PUBLIC}/verify/{certificate.public_id}">' in page
    assert f'<meta property="og:image" content="{PUBLIC}/verify/{certificate.public_id}/badge.png">' in page
    assert 'property="og:title" content="Ada Lovelace: Test Course: Test capstone"' in page
    for check in ("Signature", "Issued record", "Revocation"):
        assert f"<strong>{check}</strong>" in page, check
    assert LEARNER_EMAIL not in page


def test_an_employer_checks_the_identity_without_it_being_shown(client, certificate):
    from tests.web.conftest import csrf_token

    url = f"/verify/{certificate.public_id}"
    token = csrf_token(client, url)
    match = client.post(f"{url}/identity", data={"csrf_token": token, "email": " Ada.Lovelace@example.org"})
    assert match.status_code == 200 and "<strong>Match.</strong>" in match.get_data(as_text=True)
    other = client.post(f"{url}/identity", data={"csrf_token": token, "email": "mallory@example.org"})
    assert "<strong>No match.</strong>" in other.get_data(as_text=True)
    assert client.post(f"{url}/identity", data={"csrf_token": token, "email": "not an address"}).status_code == 400
    assert client.post(f"{url}/identity", data={"email": LEARNER_EMAIL}).status_code == 400  # CSRF is on
    assert client.post("/verify/00000000-0000-4000-8000-000000000000/identity",
                       data={"csrf_token": token, "email": LEARNER_EMAIL}).status_code == 404


def test_the_achievement_id_is_a_page_for_people_and_json_for_machines(client, app, certificate, db):
    achievement_id = payload_of(certificate.token)["credentialSubject"]["achievement"]["id"]
    path = achievement_id.removeprefix(app.config["PUBLIC_URL"])
    document = client.get(path).get_json(force=True)  # a machine asks for nothing in particular
    embedded = payload_of(certificate.token)["credentialSubject"]["achievement"]
    assert document["id"] == achievement_id and document["type"] == ["Achievement"]
    # the served badge class is the one every credential embeds (less nothing, plus its contexts)
    assert {key: value for key, value in document.items() if key != "@context"} == embedded
    assert document["alignment"][0]["targetName"] == "Test-driven development"
    assert document["criteria"]["id"] == achievement_id and "pass" not in document["name"].lower()
    page = client.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    text = page.get_data(as_text=True)
    assert page.mimetype == "text/html" and "Accept" in page.headers["Vary"]
    for level in embedded["resultDescription"][0]["rubricCriterionLevel"]:
        assert level["name"] in text
    assert "Test-driven development" in text and embedded["name"].split(": ")[1] in text
    assert client.get(path.replace("/achievements/test-capstone/", "/achievements/nope/")).status_code == 404
    missing = client.get(path + "9", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "was ever assessed here" in missing.get_data(as_text=True)
