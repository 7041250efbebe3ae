"""Regenerate the README's screenshots from the real-browser journey tests (never by hand).

    .venv/bin/python tests/browser/make_readme_screenshots.py

Runs the learner -> mentor -> employer journey in tests/browser/ (which saves its screenshots and the certificate
PDF in tests/browser/artifacts/), then copies the six pictures the README shows into tests/browser/screenshots/:
the report page, the first screen of a report that cannot pass, the mentor's review page, the code view with a
line comment, the certificate (its first PDF page, drawn by pdftoppm from Debian's poppler-utils) and the public
verify page.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ARTIFACTS = HERE / "artifacts"
SCREENSHOTS = HERE / "screenshots"
JOURNEY = ["learner_submits", "mentor_reviews", "certificate_and_an_employer", "a_failing_test_is_shown"]
PICTURES = {  # artifact -> README picture
    "readme-report.png": "report.png",
    "readme-mentor-review.png": "mentor-review.png",
    "readme-verify-page.png": "verify-page.png",
    "mentor-line-comment.png": "code-view.png",
    "learner-failing-first-screen.png": "failing-report.png",
}


def main() -> int:
    for name in [*PICTURES, "certificate.pdf"]:
        (ARTIFACTS / name).unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(HERE / "test_journeys.py"), "-k", " or ".join(JOURNEY)], cwd=ROOT)
    if done.returncode != 0:
        print("the journey tests failed: screenshots not updated", file=sys.stderr)
        return done.returncode
    SCREENSHOTS.mkdir(exist_ok=True)
    for artifact, picture in PICTURES.items():
        shutil.copyfile(ARTIFACTS / artifact, SCREENSHOTS / picture)
        print(f"updated {SCREENSHOTS / picture}")
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        print("no pdftoppm (apt-get install poppler-utils): certificate.png not updated", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([pdftoppm, "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
                        str(ARTIFACTS / "certificate.pdf"), str(Path(tmp) / "certificate")], check=True)
        shutil.copyfile(Path(tmp) / "certificate.png", SCREENSHOTS / "certificate.png")
    print(f"updated {SCREENSHOTS / 'certificate.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
