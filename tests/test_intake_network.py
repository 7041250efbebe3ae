"""The clone never reaches an internal address: literal ones in every spelling, names that resolve to one, and
redirects to one are refused, with one message, and a real listener on loopback sees no connection."""

import http.server
import shutil
import socket
import threading

import pytest

from assessor.errors import IntakeError, TransientIntakeError
from assessor.engine.intake import (
    CloneLimits, SourcePolicy, _git_config, check_source, clone, is_public_address, literal_address, pin_host,
    resolve_commit,
)
from tests.sandbox_fixtures import Listener

INTERNAL = "internal network address"


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "[::1]", "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]", "[::127.0.0.1]", "[::ffff:0:127.0.0.1]", "[64:ff9b:1::7f00:1]", "localhost",
])
def test_loopback_in_every_spelling_is_refused_and_nothing_connects(listener, tmp_path, host):
    url = f"https://{host}:{listener.port}/learner/capstone.git"
    with pytest.raises(IntakeError, match=INTERNAL) as refused:
        clone(url, tmp_path / "checkout", limits=CloneLimits(timeout_seconds=10))
    assert not isinstance(refused.value, TransientIntakeError)  # the learner's doing: never retried
    assert resolve_commit(url, None, policy=SourcePolicy()) is None
    assert listener.connections == 0
    assert not (tmp_path / "checkout").exists()


@pytest.mark.parametrize("address", [
    "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
    "255.255.255.255", "198.18.0.1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:10.0.0.1", "2002:a00:1::1",
    "64:ff9b::a00:1", "::10.0.0.1", "::ffff:0:192.168.1.1", "64:ff9b:1::a9fe:a9fe",
])
def test_internal_addresses_are_refused_before_any_network(address):
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(IntakeError, match=INTERNAL):
        check_source(f"https://{host}/learner/capstone.git", SourcePolicy())
    assert not is_public_address(literal_address(address))


def test_public_addresses_are_accepted():
    for address in ("93.184.215.14", "2606:4700::1111", "8.8.8.8", "::ffff:0:8.8.8.8"):
        assert is_public_address(literal_address(address))
    assert check_source("https://93.184.215.14/learner/capstone.git", SourcePolicy())


def test_a_public_ipv6_literal_is_cloned_without_a_pin_curl_cannot_parse():
    url = check_source("https://[2606:4700::1111]/learner/capstone.git", SourcePolicy())
    assert url == "https://[2606:4700::1111]/learner/capstone.git"
    # An address needs no second lookup: nothing is pinned (a pin spelled host:port:[address] broke every clone).
    assert pin_host(url, SourcePolicy()) is None


def test_an_operator_can_name_an_internal_host_and_git_is_pinned_to_the_checked_address(listener):
    policy = SourcePolicy(internal_hosts=frozenset({"localhost"}))
    pinned = pin_host(f"https://localhost:{listener.port}/group/capstone.git", policy)
    assert pinned.host == "localhost" and pinned.port == listener.port
    assert pinned.address in ("127.0.0.1", "::1")
    # git is told which address to use for the name: a second DNS answer (rebinding) is never asked for.
    assert f"http.curloptResolve=localhost:{listener.port}:" in " ".join(_git_config(policy, pinned))
    assert "http.followRedirects=false" in _git_config(SourcePolicy())


class Redirector(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):  # noqa: N802
        self.send_response(302)
        self.send_header("Location", self.target + self.path)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_redirect_to_an_internal_address_is_not_followed(listener, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Redirector)
    Redirector.target = f"http://127.0.0.3:{listener.port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # The operator allowed its own host on 127.0.0.2; the redirect points at another internal address.
        policy = SourcePolicy(allowed_schemes=frozenset({"http"}), internal_hosts=frozenset({"127.0.0.2"}))
        with pytest.raises(IntakeError, match="redirect, which is not followed"):
            clone(f"http://127.0.0.2:{server.server_port}/learner/capstone.git", tmp_path / "checkout",
                  policy=policy, limits=CloneLimits(timeout_seconds=10))
    finally:
        server.shutdown()
        server.server_close()
    assert listener.connections == 0


def test_every_connection_failure_gives_the_same_answer(tmp_path):
    """A closed port and an open port that is not a TLS git server: the messages must not tell them apart."""
    policy = SourcePolicy(internal_hosts=frozenset({"127.0.0.1"}))
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    messages = []
    try:
        for port in (closed_port, plain.server_port):
            with pytest.raises(IntakeError) as failure:
                clone(f"https://127.0.0.1:{port}/learner/capstone.git", tmp_path / f"c{port}", policy=policy,
                      limits=CloneLimits(timeout_seconds=10))
            messages.append(str(failure.value))
    finally:
        plain.shutdown()
        plain.server_close()
    assert messages[0] == messages[1] == "could not connect to 127.0.0.1 over a secure connection: check the " \
                                          "repository URL"


def test_local_sources_only_from_the_named_folders_with_one_message(tmp_path, make_repo):
    repo = make_repo({"README.md": "# capstone\n"}, name="sample")
    policy = SourcePolicy(allow_local=True, local_roots=(repo.parent,))
    assert check_source(str(repo), policy).startswith("file://")
    answers = set()
    for source in ("/etc", "file:///etc", str(tmp_path / "missing"), "/root", str(repo.parent)):
        with pytest.raises(IntakeError) as refused:
            check_source(source, policy)
        answers.add(str(refused.value))
    assert answers == {"only the sample repositories this server offers can be given as local paths"}


@pytest.mark.parametrize("disguise", ["gitdir-file", "linked-git", "alternates"])
def test_a_local_source_cannot_point_at_a_repository_outside_the_named_folders(tmp_path, make_repo, disguise):
    outside = make_repo({"secret.txt": "the operator's own code\n"}, name="outside")
    samples = tmp_path / "samples"
    inside = make_repo({"README.md": "# sample\n"}, name="samples-sample") if disguise == "alternates" else None
    folder = samples / "looks-like-a-sample"
    folder.mkdir(parents=True)
    if disguise == "gitdir-file":
        (folder / ".git").write_text(f"gitdir: {outside / '.git'}\n")
    elif disguise == "linked-git":
        (folder / ".git").symlink_to(outside / ".git")
    else:
        shutil.copytree(inside / ".git", folder / ".git")
        (folder / ".git" / "objects" / "info" / "alternates").write_text(f"{outside / '.git' / 'objects'}\n")
    policy = SourcePolicy(allow_local=True, local_roots=(samples,))
    with pytest.raises(IntakeError, match="only the sample repositories this server offers"):
        check_source(str(folder), policy)
