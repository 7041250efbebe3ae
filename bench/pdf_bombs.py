"""Benchmark: 16 crafted certificate PDFs whose credential attachment inflates to 512 MB (flate bombs), checked 8 at
a time as a busy verify page would, with the process's peak memory: the product's verification against the same
files read by pypdf with its default limits, each in a fresh process, in one run.

Run: .venv/bin/python bench/pdf_bombs.py [--files 16] [--parallel 8] [--inflated-mb 512]
Target (issue 22): the process stays within 100 MB above its idle size; every bomb is refused, none is a 500.
"""

import argparse
import json
import resource
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.web.certificate_helpers import bomb_pdf  # noqa: E402  the same crafted file the tests refuse


def child(mode: str, files: int, parallel: int, inflated_mb: int) -> None:
    """Check the bombs in this process and print the outcomes and the peak memory as JSON."""
    import io

    from pypdf import PdfReader

    from assessor.certificates.verify import verify_pdf

    pdf = bomb_pdf(inflated_mb)
    idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def product(_number: int) -> str:
        return verify_pdf(pdf, {"keys": []}).status

    def pypdf_defaults(_number: int) -> str:
        try:
            PdfReader(io.BytesIO(pdf), strict=True).attachments.get("credential.jwt")
            return "read"
        except Exception as error:  # noqa: BLE001 - the baseline only reports what happened
            return type(error).__name__

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        outcomes = list(pool.map(product if mode == "product" else pypdf_defaults, range(files)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"outcomes": sorted(set(outcomes)), "idle_mb": idle // 1024, "peak_mb": peak // 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--inflated-mb", type=int, default=512)
    parser.add_argument("--child", choices=["product", "pypdf"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.files, args.parallel, args.inflated_mb)
        return
    size = len(bomb_pdf(args.inflated_mb))
    print(f"{args.files} bomb PDFs of {size / 1024:.0f} KB, each inflating to {args.inflated_mb} MB, "
          f"{args.parallel} at a time, each mode in a fresh process")
    results = {}
    for mode in ("pypdf", "product"):
        done = subprocess.run([sys.executable, __file__, "--child", mode, "--files", str(args.files), "--parallel",
                               str(args.parallel), "--inflated-mb", str(args.inflated_mb)],
                              capture_output=True, text=True, check=True)
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    for mode, label in (("pypdf", "pypdf, its default limits"), ("product", "the product's verification")):
        result = results[mode]
        print(f"  {label:<30} peak {result['peak_mb']:5d} MB (idle {result['idle_mb']} MB, "
              f"+{result['peak_mb'] - result['idle_mb']} MB); outcomes {result['outcomes']}")
    grown = results["product"]["peak_mb"] - results["product"]["idle_mb"]
    baseline = results["pypdf"]["peak_mb"] - results["pypdf"]["idle_mb"]
    print(f"  growth {grown} MB = {grown / max(baseline, 1):.2f}x pypdf's default; target <= 100 MB: "
          f"{'met' if grown <= 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
