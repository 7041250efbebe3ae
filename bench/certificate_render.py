"""Certificate issuing cost: median of N warm runs for sign, render (PDF/A-3b), seal and verify_pdf, in ms.

Also the credential for wallets: the same credential signed with a Data Integrity proof (eddsa-rdfc-2022, RDF
canonicalisation with pyld) and its check, against the VC-JWT's signing in the same run. The PDF is tagged.

Targets: render under 150 ms warm, seal under 40 ms, for a typical certificate: 6 rubric criteria and the 5
modules of a course of the catalogue (chapters 01-05, then the capstone). Also measured: the largest certificate
(12 criteria, 16 modules), and in the same run the baselines, a render without modules and a seal with an Ed25519
key (the earlier signing key), printed as ratios.
"""

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
import uuid
import dataclasses
from datetime import date, datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assessor.certificates import (  # noqa: E402
    CertificateData,
    CriterionResult,
    KeyRecord,
    LevelDescription,
    ModuleResult,
    build_credential,
    build_jwks,
    generate_key,
    key_url,
    load_private_key,
    sign_credential,
    subject_id_for,
    verify_pdf,
)
from assessor.certificates.render import render_certificate_pdf, seal_pdf  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

ISSUER = "https://assessor.example.org/issuer"
RENDER_TARGET_MS, SEAL_TARGET_MS = 150, 40
LEVELS = tuple(LevelDescription(level, level * 4.0, f"level {level}") for level in range(4))


def sample_data() -> CertificateData:
    now = datetime.now(timezone.utc)
    return CertificateData(
        certificate_id=uuid.uuid4(),
        subject_id=subject_id_for(ISSUER, "bench-learner"),
        learner_name="Ada Lovelace",
        course="Backend Engineering",
        capstone="Library API",
        rubric_id="backend-capstone",
        rubric_version="3",
        rubric_sha256=hashlib.sha256(b"rubric").hexdigest(),
        criteria=tuple(CriterionResult(f"c{i}", f"Criterion {i}", 2, 8, 12, LEVELS) for i in range(6)),
        total=48,
        max_total=60,
        pass_mark=36,
        repo_url="https://github.com/ada/library-api",
        commit="0123456789abcdef0123456789abcdef01234567",
        report_sha256=hashlib.sha256(b"{}").hexdigest(),
        mentor_name="Grace Hopper",
        assessed_at=now,
        approved_at=now,
        issued_at=now,
        verify_url="https://assessor.example.org/certificates/bench",
        status_list_url="https://assessor.example.org/status/1",
        status_list_index=1,
        issuer_id=ISSUER,
        issuer_name="Capstone Academy",
        modules=tuple(ModuleResult(f"m{i}", title, 85.5, 100, date(2026, 1, i + 1)) for i, title in enumerate(
            ["Foundations of Senior Backend Engineering", "Core building blocks", "Working through real examples",
             "Edge cases & failure modes", "Putting it together"])),
    )


def median_ms(run, repeats: int) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="assessor-bench-keys-") as directory:
        info = generate_key(directory)
        key = load_private_key(info.path)
    kid = key_url(ISSUER, info.kid)
    jwks = build_jwks([KeyRecord(kid, key.public_key(), info.created)])
    data = sample_data()

    started = time.perf_counter()
    token = sign_credential(build_credential(data), key, kid)
    render_certificate_pdf(data, token)
    cold = (time.perf_counter() - started) * 1000

    sign_ms, token = median_ms(lambda: sign_credential(build_credential(data), key, kid), options.repeats)
    render_ms, pdf = median_ms(lambda: render_certificate_pdf(data, token), options.repeats)
    plain = dataclasses.replace(data, modules=())
    plain_ms, _ = median_ms(lambda: render_certificate_pdf(plain, token), options.repeats)
    largest = dataclasses.replace(
        data, criteria=tuple(CriterionResult(f"c{i}", f"Criterion {i}", 2, 5, 12, LEVELS) for i in range(12)),
        modules=tuple(ModuleResult(f"m{i}", f"Module {i}: a title of ordinary length", 85.5, 100,
                                   date(2026, 1, i + 1)) for i in range(16)))
    largest_ms, _ = median_ms(lambda: render_certificate_pdf(largest, token), options.repeats)
    seal_ms, sealed = median_ms(lambda: seal_pdf(pdf, key, issuer_name=data.issuer_name, kid=kid), options.repeats)
    old_key = Ed25519PrivateKey.generate()
    ed_ms, _ = median_ms(lambda: seal_pdf(pdf, old_key, issuer_name=data.issuer_name, kid=kid), options.repeats)
    verify_ms, verdict = median_ms(lambda: verify_pdf(sealed, jwks), options.repeats)
    assert verdict.status == "valid", verdict
    di_ms, di_check_ms = _data_integrity(data, options.repeats)
    print(f"first render (cold imports, fonts) {cold:8.1f} ms")
    print(f"build+sign credential (ES256) median {sign_ms:8.2f} ms  (n={options.repeats})")
    print(f"render PDF/A-3b, 5 modules    median {render_ms:8.1f} ms  ({len(pdf)} bytes)  target < {RENDER_TARGET_MS} ms: "
          f"{'met' if render_ms < RENDER_TARGET_MS else 'MISSED'}")
    print(f"render PDF/A-3b, no modules   median {plain_ms:8.1f} ms  (baseline; with 5 modules x{render_ms / plain_ms:.2f})")
    print(f"render, 12 criteria+16 modules median {largest_ms:7.1f} ms  (the largest certificate; x{largest_ms / plain_ms:.2f})")
    print(f"seal (PAdES certify, P-256)   median {seal_ms:8.1f} ms  ({len(sealed)} bytes)  target < {SEAL_TARGET_MS} ms: "
          f"{'met' if seal_ms < SEAL_TARGET_MS else 'MISSED'}")
    print(f"seal (Ed25519, earlier key)   median {ed_ms:8.1f} ms  (baseline; P-256 x{seal_ms / ed_ms:.2f})")
    print(f"verify_pdf                    median {verify_ms:8.1f} ms")
    print(f"sign Data Integrity (RDFC)    median {di_ms:8.1f} ms  (x{di_ms / sign_ms:.0f} the VC-JWT's signing)")
    print(f"check Data Integrity proof    median {di_check_ms:8.1f} ms")
    total = sign_ms + di_ms + render_ms + seal_ms
    print(f"issue: both forms+render+seal median {total:7.1f} ms (sum of the medians above)")


def _data_integrity(data, repeats: int) -> tuple[float, float]:
    from assessor.certificates import contexts, dataintegrity
    from assessor.certificates.credential import extension_context

    cache = Path.home() / ".cache" / "capstone-assessor-bench" / "jsonld"
    documents = contexts.published_contexts(cache, fetch=True)
    context_url = "https://assessor.example.org/contexts/capstone-v1.jsonld"
    loader = contexts.document_loader({**documents, context_url: extension_context(context_url)})
    credential = {**build_credential(dataclasses.replace(data, extension_context_url=context_url)),
                  "issuer": {"id": "did:web:assessor.example.org", "type": ["Profile"], "name": data.issuer_name}}
    key = Ed25519PrivateKey.generate()
    method = "did:web:assessor.example.org#key-1"
    now = datetime.now(timezone.utc)
    dataintegrity.add_proof(credential, key, verification_method=method, created=now, loader=loader)  # warm
    sign_ms, signed = median_ms(lambda: dataintegrity.add_proof(credential, key, verification_method=method,
                                                                created=now, loader=loader), repeats)
    check_ms, holds = median_ms(lambda: dataintegrity.proof_holds(signed, key.public_key(), loader), repeats)
    assert holds
    return sign_ms, check_ms


if __name__ == "__main__":
    main()
