"""digitalbazaar's Verifiable Credential libraries, installed from the npm registry at test time into a cache
outside the repository (never copied into it), and run on what the product issues."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from tests.jsonld_contexts import cache_dir, published_contexts

HERE = Path(__file__).resolve().parent / "node"


def installed() -> Path:
    """The folder holding the verifier script beside its node_modules (installed once per package.json)."""
    manifest = (HERE / "package.json").read_bytes()
    folder = cache_dir().parent / f"node-verifiers-{hashlib.sha256(manifest).hexdigest()[:12]}"
    if not (folder / "node_modules" / "@digitalbazaar" / "vc").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_bytes(manifest)
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=folder,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"npm install of the test verifiers failed (the npm registry is needed once): "
                               f"{done.stderr.strip()[-800:]}")
    for script in HERE.glob("*.mjs"):
        shutil.copyfile(script, folder / script.name)
    return folder


def verify_data_integrity(credential: dict, *, web: str, extra_contexts: dict | None = None) -> dict:
    """digitalbazaar's `vc` with the eddsa-rdfc-2022 cryptosuite and its Bitstring Status List checker."""
    folder = installed()
    contexts = {**published_contexts(), **(extra_contexts or {})}
    done = subprocess.run(["node", str(folder / "verify_data_integrity.mjs")], cwd=folder,
                          input=json.dumps({"credential": credential, "contexts": contexts, "web": web}),
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"the verifier failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout)
