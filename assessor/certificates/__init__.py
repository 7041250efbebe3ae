"""Certificate engine: keys, Open Badges 3.0 credentials, PDF rendering and verification.

Pure functions over dataclasses: no Flask, no database.
"""

from assessor.certificates.credential import (
    CertificateData,
    CriterionResult,
    build_credential,
    issue,
    sign_credential,
    subject_id_for,
)
from assessor.certificates.keys import (
    KeyInfo,
    KeyRecord,
    build_jwks,
    generate_key,
    kid_url,
    load_private_key,
    public_jwk,
    retired_keys,
)
from assessor.certificates.verify import Verdict, verify_credential, verify_pdf

__all__ = [
    "CertificateData",
    "CriterionResult",
    "KeyInfo",
    "KeyRecord",
    "Verdict",
    "build_credential",
    "build_jwks",
    "generate_key",
    "issue",
    "kid_url",
    "load_private_key",
    "public_jwk",
    "retired_keys",
    "sign_credential",
    "subject_id_for",
    "verify_credential",
    "verify_pdf",
]
