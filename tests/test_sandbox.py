"""The bubblewrap runner: isolation, limits, capped output, and refusing to run unsafely."""

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from assessor.engine import sandbox
from assessor.errors import SandboxError
from assessor.engine.sandbox import (
    OutputKeeper, SandboxLimits, limits_from_mapping, run_sandboxed, size_capped_dir,
)
from tests.sandbox_fixtures import (
    TEST_LIMITS, Listener, assert_no_sandbox_processes, bare_venv, free_disk_bytes, fresh_dir,
    pool_uids_with_processes, sandbox_base,
)

# Skipped on a developer machine without bubblewrap; in CI (CI=true) a missing bubblewrap fails loudly instead.
pytestmark = pytest.mark.skipif(not sandbox.bubblewrap_available() and not os.environ.get("CI"),
                                reason="bubblewrap is not available on this machine")


def run_python(code: str, *, limits: SandboxLimits = TEST_LIMITS, workdir: Path | None = None, **options):
    """Run a Python snippet in the sandbox with a fresh, size-capped work dir."""
    code = textwrap.dedent(code)
    if workdir is not None:
        return run_sandboxed([str(bare_venv() / "bin" / "python"), "-c", code], workdir=workdir, venv=bare_venv(),
                             limits=limits, **options)
    area = fresh_dir("run") / "area"
    with size_capped_dir(area, limits.workdir_mb):
        return run_sandboxed([str(bare_venv() / "bin" / "python"), "-c", code], workdir=area, venv=bare_venv(),
                             limits=limits, **options)


# ---------------------------------------------------------------- pure parts

def test_output_keeper_keeps_head_and_tail_and_counts_everything():
    keeper = OutputKeeper(10)
    for chunk in (b"abc", b"defgh", b"ijklmnop", b"qrstuvwxyz"):
        keeper.add(chunk)
    head, tail, truncated = keeper.texts()
    assert (head, tail, truncated) == ("abcde", "vwxyz", True)
    assert keeper.total == 26


def test_output_keeper_short_output_is_whole():
    keeper = OutputKeeper(10)
    keeper.add(b"abcdefg")
    head, tail, truncated = keeper.texts()
    assert head + tail == "abcdefg" and not truncated


def test_limits_from_mapping_overrides_and_rejects_unknown():
    limits = limits_from_mapping({"wall_seconds": 12, "memory_mb": 300})
    assert limits.wall_seconds == 12.0 and limits.memory_mb == 300 and limits.cpu_seconds == 240
    with pytest.raises(ValueError, match="unknown sandbox limit"):
        limits_from_mapping({"wall_secs": 1})
    with pytest.raises(ValueError, match="must be a number"):
        limits_from_mapping({"memory_mb": "lots"})
    with pytest.raises(ValueError, match="positive"):
        SandboxLimits(processes=0)


def test_defaults_are_sane():
    limits = SandboxLimits()
    assert limits.wall_seconds == 300 and limits.cpu_seconds == 240 and limits.memory_mb == 2048
    assert limits.processes == 128 and limits.output_bytes == 64 * 1024


# ---------------------------------------------------------------- isolation

@pytest.mark.slow
def test_runs_as_unprivileged_uid_with_own_pid_namespace_and_clean_environment(monkeypatch):
    monkeypatch.setenv("ASSESSOR_SECRET_KEY", "host-secret-value")
    result = run_python("""
        import os
        print("uid", os.getuid(), "pid", os.getpid())
        print("pids", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
        print("env", sorted(os.environ))
        print("root", sorted(os.listdir("/")))
    """)
    assert result.exit_code == 0, result.output
    assert result.backend == "bubblewrap" and result.killed_by is None
    uid = int(result.output.split("uid ")[1].split()[0])
    assert uid == result.uid and uid >= sandbox.UID_POOL_START
    assert int(result.output.split(" pid ")[1].split()[0]) < 10
    assert max(eval(result.output.split("pids ")[1].splitlines()[0])) < 10
    assert "ASSESSOR_SECRET_KEY" not in result.output and "host-secret-value" not in result.output
    assert_no_sandbox_processes(result.uid)


@pytest.mark.slow
def test_system_and_venv_are_read_only_and_only_workdir_and_tmp_are_writable():
    venv = bare_venv()
    result = run_python(f"""
        import os
        for target in ["/usr/evil", "/etc/evil", "/evil", "{venv}/evil", "/bin/evil"]:
            try:
                open(target, "w").write("x")
                print("WROTE", target)
            except OSError as error:
                print("refused", target, error.errno)
        open("in-workdir.txt", "w").write("ok")
        open("/tmp/in-tmp.txt", "w").write("ok")
        print("writable ok")
    """)
    assert result.exit_code == 0, result.output
    assert "WROTE" not in result.output and "writable ok" in result.output
    assert not (venv / "evil").exists()


@pytest.mark.slow
def test_secrets_instance_folder_and_other_runs_are_invisible(monkeypatch):
    instance = fresh_dir("instance")
    (instance / "signing-key.pem").write_text("PRIVATE-KEY-MATERIAL")
    monkeypatch.setenv("ASSESSOR_INSTANCE_PATH", str(instance))
    other_run = fresh_dir("other-run")
    (other_run / "answers.txt").write_text("OTHER-LEARNER-DATA")
    os.chmod(other_run / "answers.txt", 0o644)
    service_instance = Path(sandbox.SERVICE_ROOT) / "instance"
    result = run_python(f"""
        for target in ["/etc/shadow", "{instance}/signing-key.pem", "{other_run}/answers.txt",
                       "{service_instance}/README.md", "{sandbox.SERVICE_ROOT}/pyproject.toml", "/root/.bashrc"]:
            try:
                print("LEAKED", target, open(target).read())
            except OSError as error:
                print("hidden", target, type(error).__name__)
    """)
    assert result.exit_code == 0, result.output
    assert "LEAKED" not in result.output
    assert "PRIVATE-KEY-MATERIAL" not in result.output and "OTHER-LEARNER-DATA" not in result.output


def test_refuses_to_bind_protected_paths(monkeypatch):
    instance = fresh_dir("instance")
    monkeypatch.setenv("ASSESSOR_INSTANCE_PATH", str(instance))
    for workdir in (instance, instance.parent.parent, Path(sandbox.SERVICE_ROOT) / "instance", Path(sys.prefix)):
        with pytest.raises(SandboxError, match="refusing to expose"):
            run_sandboxed(["true"], workdir=workdir, venv=bare_venv(), limits=TEST_LIMITS)


def test_refuses_to_bind_the_service_venv_as_learner_venv():
    with pytest.raises(SandboxError, match="refusing to expose"):
        run_sandboxed(["true"], workdir=fresh_dir("w"), venv=Path(sys.prefix), limits=TEST_LIMITS)


@pytest.mark.slow
def test_no_network_even_to_a_listener_on_loopback():
    listener = Listener()
    try:
        result = run_python(f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {listener.port}), timeout=2)
                print("CONNECTED")
            except OSError as error:
                print("refused", type(error).__name__)
            try:
                socket.getaddrinfo("pypi.org", 443)
                print("RESOLVED")
            except OSError:
                print("no dns")
        """)
    finally:
        time.sleep(0.3)
        listener.close()
    assert "CONNECTED" not in result.output and "RESOLVED" not in result.output
    assert listener.connections == 0


# ---------------------------------------------------------------- limits

@pytest.mark.slow
def test_wall_clock_timeout_kills_the_whole_tree():
    limits = replace(TEST_LIMITS, wall_seconds=2)
    started = time.monotonic()
    result = run_python("""
        import os, subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(300)"])
        if os.fork() == 0:
            os.setsid()
            time.sleep(300)
        time.sleep(300)
    """, limits=limits)
    assert result.killed_by == "wall_time"
    assert time.monotonic() - started < 6
    assert_no_sandbox_processes(result.uid)


@pytest.mark.slow
def test_cpu_limit_stops_a_busy_loop():
    result = run_python("while True: pass", limits=replace(TEST_LIMITS, cpu_seconds=2))
    assert result.killed_by == "cpu_time"
    assert result.cpu_seconds >= 1.8
    assert_no_sandbox_processes(result.uid)


@pytest.mark.slow
def test_memory_limit_makes_allocation_fail():
    result = run_python("""
        import resource
        chunks = []
        try:
            while True:
                chunks.append(bytearray(16 * 1024 * 1024))
        except MemoryError:
            chunks.clear()
            print("memory refused")
        print("peak", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """, limits=replace(TEST_LIMITS, memory_mb=256))
    assert result.exit_code == 0 and "memory refused" in result.output
    # The process's own peak: the run's rusage also counts the forked launcher, which starts as big as this
    # test process is by then.
    assert int(result.output.split("peak ")[1].split()[0]) < 300


@pytest.mark.slow
def test_fork_bomb_is_contained_and_stopped():
    started = time.monotonic()
    result = run_python("""
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """)
    assert result.killed_by == "processes"
    assert time.monotonic() - started < 10
    assert_no_sandbox_processes(result.uid)
    follow_up = run_python("print('still fine')")
    assert follow_up.exit_code == 0 and "still fine" in follow_up.output


@pytest.mark.slow
def test_one_gigabyte_output_keeps_head_and_tail_without_touching_disk():
    disk_before = free_disk_bytes()
    result = run_python("""
        import sys
        sys.stdout.write("FIRST LINE\\n")
        block = "x" * (1 << 20)
        for _ in range(1024):
            sys.stdout.write(block)
        sys.stdout.write("\\nLAST LINE\\n")
    """, limits=replace(TEST_LIMITS, output_bytes=4096))
    assert result.exit_code == 0 and result.killed_by is None
    assert result.output_bytes_total >= 1024 * (1 << 20)
    assert result.output_truncated
    assert result.output_head.startswith("FIRST LINE") and result.output_tail.endswith("LAST LINE\n")
    assert len(result.output_head) + len(result.output_tail) <= 4096
    assert "bytes of output omitted" in result.output
    assert abs(free_disk_bytes() - disk_before) < 200 * 1024 * 1024


@pytest.mark.slow
def test_output_beyond_the_hard_cap_stops_the_run():
    result = run_python("""
        import sys
        while True:
            sys.stdout.write("y" * (1 << 20))
    """, limits=replace(TEST_LIMITS, max_output_mb=64))
    assert result.killed_by == "output"
    assert_no_sandbox_processes(result.uid)


@pytest.mark.slow
def test_ten_gigabyte_file_cannot_fill_the_disk():
    disk_before = free_disk_bytes()
    result = run_python("""
        block = b"z" * (1 << 20)
        try:
            with open("huge.bin", "wb") as handle:
                for _ in range(10 * 1024):
                    handle.write(block)
        except OSError as error:
            print("single file stopped", error.errno)
        written = 0
        try:
            for index in range(10 * 1024):
                with open(f"part{index}.bin", "wb") as handle:
                    for _ in range(16):
                        handle.write(block)
                        written += 1
        except OSError as error:
            print("many files stopped", error.errno, "after MB", written)
        try:
            with open("/tmp/huge.bin", "wb") as handle:
                for _ in range(10 * 1024):
                    handle.write(block)
        except OSError as error:
            print("tmp stopped", error.errno)
    """)
    assert "single file stopped 27" in result.output          # EFBIG from RLIMIT_FSIZE
    assert "many files stopped 28" in result.output           # ENOSPC from the size-capped work area
    assert "tmp stopped" in result.output
    assert abs(free_disk_bytes() - disk_before) < 200 * 1024 * 1024


@pytest.mark.slow
def test_open_files_limit():
    result = run_python("""
        handles = []
        try:
            while True:
                handles.append(open("/dev/null"))
        except OSError as error:
            print("stopped at", len(handles), error.errno)
    """, limits=replace(TEST_LIMITS, open_files=64))
    assert "stopped at" in result.output and " 24" in result.output
    assert int(result.output.split("stopped at ")[1].split()[0]) < 64


@pytest.mark.slow
def test_uncapped_workdir_is_watched_and_the_run_stopped():
    workdir = fresh_dir("plain-workdir")
    result = run_python("""
        block = b"w" * (1 << 20)
        index = 0
        while True:
            with open(f"f{index}.bin", "wb") as handle:
                for _ in range(8):
                    handle.write(block)
            index += 1
    """, workdir=workdir, limits=replace(TEST_LIMITS, workdir_mb=64))
    assert result.killed_by == "disk"
    total = sum(f.stat().st_size for f in workdir.iterdir())
    assert total < 1024 * 1024 * 1024


@pytest.mark.slow
def test_sandbox_dies_with_its_parent():
    workdir = fresh_dir("orphan")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(sandbox.SERVICE_ROOT)!r})
        from pathlib import Path
        from assessor.engine.sandbox import run_sandboxed, SandboxLimits
        run_sandboxed([{str(bare_venv() / "bin" / "python")!r}, "-c",
                       "import time; open('started', 'w').close(); time.sleep(120)"],
                      workdir=Path({str(workdir)!r}), venv=Path({str(bare_venv())!r}),
                      limits=SandboxLimits(wall_seconds=120))
    """)
    busy_before = pool_uids_with_processes()
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 10
    while not (workdir / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    started = pool_uids_with_processes() - busy_before
    assert started, "the sandbox never started"
    parent.kill()
    parent.wait()
    assert_no_sandbox_processes(*started, timeout=5)


@pytest.mark.slow
def test_orphans_of_a_dead_supervisor_are_reaped_before_the_next_run():
    if os.geteuid() != 0:
        pytest.skip("only root switches to a sandbox uid")
    uid = sandbox.UID_POOL_START + sandbox.UID_POOL_SIZE - 1
    orphan = subprocess.Popen(["sleep", "60"], user=uid, group=uid, extra_groups=[], start_new_session=True)
    try:
        result = run_python("print('next run')")
        assert "next run" in result.output
        assert orphan.wait(timeout=5) == -9
    finally:
        if orphan.poll() is None:
            orphan.kill()


# ---------------------------------------------------------------- no bubblewrap

def test_without_bubblewrap_refuses_unless_explicitly_unsafe(monkeypatch):
    monkeypatch.setattr(sandbox, "bubblewrap_available", lambda: False)
    workdir = fresh_dir("unsafe")
    with pytest.raises(SandboxError, match="--unsafe-no-sandbox"):
        run_sandboxed([str(bare_venv() / "bin" / "python"), "-c", "print(1)"], workdir=workdir, venv=bare_venv(),
                      limits=TEST_LIMITS)
    result = run_sandboxed([str(bare_venv() / "bin" / "python"), "-c", "print('ran')"], workdir=workdir,
                           venv=bare_venv(), limits=TEST_LIMITS, unsafe_no_sandbox=True)
    assert result.backend == "none" and result.exit_code == 0 and "ran" in result.output


def test_unsafe_mode_still_applies_limits(monkeypatch):
    monkeypatch.setattr(sandbox, "bubblewrap_available", lambda: False)
    result = run_sandboxed([str(bare_venv() / "bin" / "python"), "-c", "import time; time.sleep(30)"],
                           workdir=fresh_dir("unsafe"), venv=bare_venv(), limits=replace(TEST_LIMITS, wall_seconds=1),
                           unsafe_no_sandbox=True)
    assert result.backend == "none" and result.killed_by == "wall_time"


def test_the_services_own_private_directories_are_opened_for_search_only():
    if os.geteuid() != 0:
        pytest.skip("only root switches to a sandbox uid")
    job = fresh_dir("job")
    os.chmod(job, 0o700)                                       # like tempfile.mkdtemp
    (job / "run").mkdir()
    result = run_sandboxed([str(bare_venv() / "bin" / "python"), "-c", "print('reached')"], workdir=job / "run",
                           venv=bare_venv(), limits=TEST_LIMITS)
    assert "reached" in result.output
    assert oct(job.stat().st_mode & 0o777) == "0o701"


def test_a_directory_the_service_does_not_own_is_a_clear_setup_error():
    if os.geteuid() != 0:
        pytest.skip("only root switches to a sandbox uid")
    foreign = fresh_dir("foreign")
    os.chown(foreign, 65534, 65534)
    os.chmod(foreign, 0o700)
    (foreign / "run").mkdir()
    with pytest.raises(SandboxError, match="not searchable"):
        run_sandboxed(["true"], workdir=foreign / "run", venv=bare_venv(), limits=TEST_LIMITS)


def test_every_writable_mount_is_bounded_and_dev_shm_refuses_past_its_limit():
    limits = replace(TEST_LIMITS, shm_mb=8, tmp_mb=16)
    result = run_python("""
        import errno, json, os, stat
        writable = []
        for line in open("/proc/self/mountinfo"):
            fields = line.split()
            point, options = fields[4], fields[5].split(",")
            # Device nodes (/dev/null...) store nothing; /dev itself holds only them.
            device = stat.S_ISCHR(os.stat(point).st_mode)
            if "rw" in options and not device and not point.startswith(("/proc", "/dev/pts", "/dev/mqueue")) \
                    and point != "/dev":
                stats = os.statvfs(point)
                writable.append((point, stats.f_blocks * stats.f_frsize // (1024 * 1024)))
        print("WRITABLE", json.dumps(sorted(writable)))
        chunk = b"x" * (1024 * 1024)
        written = 0
        try:
            with open("/dev/shm/fill", "wb") as sink:
                for _ in range(64):
                    sink.write(chunk)
                    sink.flush()
                    written += 1
        except OSError as error:
            print("SHM FULL", written, errno.errorcode[error.errno])
    """, limits=limits)
    assert result.exit_code == 0, result.output
    sizes = dict(json.loads(result.output.split("WRITABLE ", 1)[1].splitlines()[0]))
    assert sizes["/dev/shm"] == 8 and sizes["/tmp"] == 16
    # Nothing else is writable but the work area, which the host caps (size_capped_dir) and the watchdog watches.
    others = set(sizes) - {"/dev/shm", "/tmp"}
    assert len(others) == 1 and others.pop().startswith(str(sandbox_base())), sizes
    assert "SHM FULL" in result.output and "ENOSPC" in result.output
    assert int(result.output.split("SHM FULL ", 1)[1].split()[0]) <= 8
