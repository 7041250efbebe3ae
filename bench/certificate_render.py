"""Certificate issuing cost: median of N warm runs for sign, render (PDF/A-3b), seal and verify_pdf, in ms."""

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assessor.certificates import (  # noqa: E402
    CertificateData,
    CriterionResult,
    KeyRecord,
    build_credential,
    build_jwks,
    generate_key,
    kid_url,
    load_private_key,
    sign_credential,
    subject_id_for,
    verify_pdf,
)
from assessor.certificates.render import render_certificate_pdf, seal_pdf  # noqa: E402

ISSUER = "https://assessor.example.org/issuer"


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
        criteria=tuple(CriterionResult(f"c{i}", f"Criterion {i}", "meets", 8, 10) for i in range(6)),
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
    kid = kid_url(ISSUER, info.kid)
    jwks = build_jwks([KeyRecord(kid, key.public_key(), info.created)])
    data = sample_data()

    started = time.perf_counter()
    token = sign_credential(build_credential(data), key, kid)
    render_certificate_pdf(data, token)
    cold = (time.perf_counter() - started) * 1000

    sign_ms, token = median_ms(lambda: sign_credential(build_credential(data), key, kid), options.repeats)
    render_ms, pdf = median_ms(lambda: render_certificate_pdf(data, token), options.repeats)
    seal_ms, sealed = median_ms(lambda: seal_pdf(pdf, key, issuer_name=data.issuer_name, kid=kid), options.repeats)
    verify_ms, verdict = median_ms(lambda: verify_pdf(sealed, jwks), options.repeats)
    assert verdict.status == "valid", verdict
    print(f"first render (cold imports, fonts) {cold:8.1f} ms")
    print(f"build+sign credential   median {sign_ms:8.2f} ms  (n={options.repeats})")
    print(f"render PDF/A-3b         median {render_ms:8.1f} ms  ({len(pdf)} bytes)")
    print(f"seal (PAdES certify)    median {seal_ms:8.1f} ms  ({len(sealed)} bytes)")
    print(f"verify_pdf              median {verify_ms:8.1f} ms")


if __name__ == "__main__":
    main()
