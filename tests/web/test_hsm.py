"""The issuer key in an HSM (Debian's SoftHSM2, a real PKCS#11 module): certificates and their PDF seals are signed
in the module, verify with independent libraries, and no private key is in the database or anywhere else."""

import json
import os
import shutil
import subprocess

import jwt as pyjwt
import pytest
from joserfc import jws
from joserfc.jwk import KeySet

from assessor.domain import issuing
from assessor.certificates import verify_credential, verify_pdf
from assessor.errors import CertificateError

from tests.web.certificate_helpers import approve, settings

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN, KEY_LABEL, PIN = "assessor-test", "issuer-2026", "246810"


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory):
    """A SoftHSM2 token of its own, holding a P-256 key pair generated in it (not extractable)."""
    if not os.path.exists(MODULE) or shutil.which("softhsm2-util") is None:
        if os.environ.get("CI"):
            pytest.fail("SoftHSM2 is not installed: .ci/setup installs Debian's softhsm2", pytrace=False)
        pytest.skip("Debian's softhsm2 is not installed on this machine (.ci/setup installs it)")
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    config = folder / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(config)  # read when the module is first loaded in this process
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "13579"],
                   check=True, capture_output=True)
    import pkcs11
    from pkcs11 import Attribute, KeyType
    from pkcs11.util.ec import encode_named_curve_parameters

    token = pkcs11.lib(MODULE).get_token(token_label=TOKEN)
    with token.open(rw=True, user_pin=PIN) as session:
        parameters = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
        parameters.generate_keypair(store=True, label=KEY_LABEL,
                                    private_template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True})
    return {"PKCS11_MODULE": MODULE, "PKCS11_TOKEN": TOKEN, "PKCS11_KEY_LABEL": KEY_LABEL, "PKCS11_PIN": PIN}


def test_certificates_are_signed_in_the_hsm_and_verify_independently(app, db, make_user, make_attempt, softhsm):
    app.config.update(softhsm)
    mentor = make_user("mentor", courses=["test-capstone"])
    attempt = make_attempt(make_user(name="Ada"))
    approve(db, app, attempt, mentor)
    certificate = issuing.issue_certificate(db, attempt_id=attempt.id, settings=settings(app))
    key = issuing.active_key(db, settings=settings(app))
    assert key.private_key_path == f"pkcs11:token={TOKEN};object={KEY_LABEL}" and key.private_key_sealed is None
    assert certificate.kid == key.kid

    keys = issuing.jwks(db, settings=settings(app))
    assert verify_credential(certificate.token, keys).ok
    assert verify_pdf(certificate.pdf, keys).ok  # the PAdES seal, made through pyHanko's PKCS#11 signer
    # Two other JOSE libraries, from the published key set alone.
    [jwk] = keys["keys"]
    public = pyjwt.PyJWK(jwk, algorithm="ES256")
    claims = pyjwt.decode(certificate.token, key=public, algorithms=["ES256"], options={"verify_aud": False})
    assert claims["jti"].endswith(certificate.public_id)
    assert jws.deserialize_compact(certificate.token, KeySet.import_key_set({"keys": [jwk]})).protected["kid"] == jwk["kid"]

    with pytest.raises(issuing.IssuingError, match="rotate it there"):
        issuing.rotate_key(db, settings=settings(app))
    with pytest.raises(CertificateError, match="stays in the HSM"):
        issuing.private_key_of(key, settings(app)).private_bytes(None, None, None)
    dumped = json.dumps([list(map(str, row)) for row in db.connection().exec_driver_sql(
        "SELECT * FROM signing_keys").fetchall()])
    assert "PRIVATE KEY" not in dumped and PIN not in dumped


def test_a_machine_without_the_hsm_says_so_instead_of_signing(app, db, make_user, make_attempt, softhsm):
    app.config.update(softhsm)
    key = issuing.active_key(db, settings=settings(app))
    elsewhere = issuing.settings_from_config({**app.config, "PKCS11_MODULE": None})
    with pytest.raises(issuing.SigningUnavailable, match="in an HSM .* this machine is not configured for"):
        issuing.private_key_of(key, elsewhere)
    wrong_pin = issuing.settings_from_config({**app.config, "PKCS11_PIN": "000000"})
    with pytest.raises(issuing.SigningUnavailable, match="cannot be opened"):
        issuing.active_key(db, settings=wrong_pin)
