"""Dependencies that exist only as source are built inside the sandbox, never on the host: served here from a
real local package index (PEP 691 JSON) that uv and the builder both read, next to PyPI."""

import hashlib
import io
import json
import os
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assessor.engine import sandbox
from assessor.errors import EnvironmentBuildError
from assessor.engine.toolchains.python.environment import build_environment
from tests.conftest import write_tree
from tests.sandbox_fixtures import Listener, fresh_dir, uv_cache

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox.bubblewrap_available() and not os.environ.get("CI"),
                       reason="bubblewrap is not available on this machine"),
]


def sdist(name: str, version: str, setup_py: str) -> bytes:
    """A source distribution as setuptools makes them: one top folder with setup.py, PKG-INFO and a package."""
    top = f"{name.replace('-', '_')}-{version}"
    files = {
        "setup.py": setup_py,
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name.replace('-', '_')}/__init__.py": "VALUE = 'built'\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Index:
    """A package index on loopback serving only the given sdists; anything else is a 404 (uv then asks PyPI)."""

    def __init__(self, packages: dict[str, tuple[str, bytes]]) -> None:
        self.files = {f"{name.replace('-', '_')}-{version}.tar.gz": data for name, (version, data) in packages.items()}
        self.packages = packages
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                parts = [part for part in self.path.split("/") if part]
                if len(parts) == 2 and parts[0] == "simple" and parts[1] in index.packages:
                    version, data = index.packages[parts[1]]
                    filename = f"{parts[1].replace('-', '_')}-{version}.tar.gz"
                    body = json.dumps({"meta": {"api-version": "1.0"}, "name": parts[1], "files": [{
                        "filename": filename, "url": f"/files/{filename}",
                        "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}]}).encode()
                    self._send(body, "application/vnd.pypi.simple.v1+json")
                elif len(parts) == 2 and parts[0] == "files" and parts[1] in index.files:
                    self._send(index.files[parts[1]], "application/octet-stream")
                else:
                    self.send_error(404)

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/simple"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def index(monkeypatch):
    created = []

    def serve(packages):
        served = Index(packages)
        created.append(served)
        monkeypatch.setenv("UV_INDEX", served.url)
        return served

    yield serve
    for served in created:
        served.close()


def project(requirements: str) -> Path:
    root = fresh_dir("project")
    write_tree(root, {"requirements.txt": requirements})
    return root


def test_a_hostile_build_script_runs_in_the_sandbox_and_reaches_nothing(index, monkeypatch, tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "secret_key").write_text("TOP-SECRET")
    monkeypatch.setenv("ASSESSOR_INSTANCE", str(instance))
    listener = Listener()
    host_flag = Path(f"/tmp/assessor-build-escaped-{os.getpid()}")
    setup_py = f"""
import socket
from setuptools import setup

stolen = []
for path in ({str(instance / 'secret_key')!r}, "/etc/shadow", "/root/.ssh/id_rsa"):
    try:
        stolen.append(open(path).read())
    except OSError:
        pass
try:
    socket.create_connection(("127.0.0.1", {listener.port}), timeout=1)
    stolen.append("network")
except OSError:
    pass
try:
    open({str(host_flag)!r}, "w").write("escaped")
except OSError:
    pass
open("nosy_pkg/__init__.py", "a").write("STOLEN = %r\\n" % stolen)
setup(name="nosy-pkg", version="1.0", packages=["nosy_pkg"])
"""
    try:
        index({"nosy-pkg": ("1.0", sdist("nosy-pkg", "1.0", setup_py))})
        environment = build_environment(project("nosy-pkg==1.0\n"), fresh_dir("work"), cache_dir=uv_cache())
        venv = environment.venv
    finally:
        listener.close()
    assert environment.built_from_source == ["nosy-pkg==1.0"]
    module = next(venv.glob("lib/python3*/site-packages/nosy_pkg/__init__.py")).read_text()
    assert "STOLEN = []" in module  # it built, saw no secret, no network, and the host's /tmp stayed clean
    assert listener.connections == 0 and not host_flag.exists()


def test_a_package_that_cannot_be_built_is_named_with_the_reason_and_so_is_every_other(index):
    index({
        "broken-pkg": ("2.0", sdist("broken-pkg", "2.0", "raise SystemExit('this package needs a Fortran compiler')\n")),
        "also-broken": ("1.0", sdist("also-broken", "1.0", "import nonexistent_build_helper\n")),
    })
    with pytest.raises(EnvironmentBuildError) as raised:
        build_environment(project("broken-pkg\nalso-broken\niniconfig\n"), fresh_dir("work"),
                          cache_dir=uv_cache())
    message = str(raised.value)
    assert "broken-pkg has no wheel and could not be built from source: " in message
    assert "Fortran compiler" in message
    assert "also-broken has no wheel and could not be built from source: " in message
    assert "nonexistent_build_helper" in message


def test_a_built_wheel_is_reused_by_the_next_assessment(index):
    index({"tiny-pkg": ("0.3", sdist("tiny-pkg", "0.3", "from setuptools import setup\nsetup(name='tiny-pkg', "
                                                         "version='0.3', packages=['tiny_pkg'])\n"))})
    first = build_environment(project("tiny-pkg\n"), fresh_dir("work"), cache_dir=uv_cache())
    second = build_environment(project("tiny-pkg\n"), fresh_dir("work"), cache_dir=uv_cache())
    assert first.built_from_source == second.built_from_source == ["tiny-pkg==0.3"]
    assert any("tiny-pkg 0.3 has no wheel; a wheel built from its source in the sandbox was reused" in note
               for note in second.notes)
    assert "tiny-pkg==0.3" in second.installed
