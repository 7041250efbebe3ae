"""Certificate engine: keys, Open Badges 3.0 credentials, PDF rendering, badge images and verification.

Pure functions over dataclasses: no Flask, no database.
"""

from assessor.certificates.credential import (
    CertificateData,
    CriterionResult,
    LevelDescription,
    ModuleResult,
    build_credential,
    identity_hash_for,
    identity_matches,
    issue,
    score_text,
    sign_credential,
    subject_id_for,
)
from assessor.certificates.keys import (
    KeyInfo,
    KeyRecord,
    build_jwks,
    generate_key,
    key_states,
    key_url,
    kid_url,
    load_private_key,
    public_jwk,
)
from assessor.certificates.verify import Check, Verdict, verify_credential, verify_pdf

__all__ = [
    "CertificateData",
    "Check",
    "CriterionResult",
    "KeyInfo",
    "KeyRecord",
    "LevelDescription",
    "ModuleResult",
    "Verdict",
    "build_credential",
    "build_jwks",
    "generate_key",
    "identity_hash_for",
    "identity_matches",
    "issue",
    "key_states",
    "key_url",
    "kid_url",
    "load_private_key",
    "public_jwk",
    "score_text",
    "sign_credential",
    "subject_id_for",
    "verify_credential",
    "verify_pdf",
]
