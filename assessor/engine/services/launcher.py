"""Runs inside the sandbox before the tests (system Python, -I -S): starts the servers the tests need on the
sandbox's own loopback, waits until they answer, then runs the test command and exits with its status. Nothing
here is trusted by the host beyond what it reports about start-up; the servers die with the sandbox."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

POLL_SECONDS = 0.01


def wait_for_port(port, deadline, process):
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with status {process.returncode} before it accepted connections"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return None
        except OSError:
            time.sleep(POLL_SECONDS)
    return "did not accept connections in time"


def start_postgresql(service, deadline, log):
    binaries = service["bin"]
    options = ["-D", service["data"], "-c", "listen_addresses=127.0.0.1", "-c", f"port={service['port']}",
               "-c", "unix_socket_directories=" + ",".join(service["socket_dirs"]),
               "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
               "-c", "max_connections=100", "-c", "shared_buffers=32MB", "-c", "logging_collector=off"]
    process = subprocess.Popen([os.path.join(binaries, "postgres"), *options], stdout=log, stderr=log,
                               stdin=subprocess.DEVNULL)
    problem = wait_for_port(service["port"], deadline, process)
    if problem:
        return process, problem
    statements = service.get("setup", [])
    while True:
        done = subprocess.run([os.path.join(binaries, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                               "127.0.0.1", "-p", str(service["port"]), "-U", "postgres", "-d", "postgres",
                               *[argument for statement in statements or ["SELECT 1"] for argument in
                                 ("-c", statement)]],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        if done.returncode == 0:
            return process, None
        if "starting up" not in done.stderr or time.monotonic() >= deadline:
            return process, "setting up roles and databases failed: " + done.stderr.strip()[-300:]
        time.sleep(0.02)


def start_redis(service, deadline, log):
    options = ["--port", str(service["port"]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", service["dir"], "--daemonize", "no", "--protected-mode", "no"]
    if service.get("password"):
        options += ["--requirepass", service["password"]]
    process = subprocess.Popen([service["bin"], *options], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    problem = wait_for_port(service["port"], deadline, process)
    if problem:
        return process, problem
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", service["port"]), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            answer = connection.recv(64)
        if answer.startswith((b"+PONG", b"-NOAUTH")):
            return process, None
        time.sleep(POLL_SECONDS)
    return process, "did not answer PING in time"


def start_mysql(service, deadline, log):
    socket_path = service["socket"]
    options = ["--no-defaults", f"--datadir={service['data']}", f"--socket={socket_path}", f"--port={service['port']}",
               "--bind-address=127.0.0.1", "--skip-log-bin", "--skip-name-resolve", "--innodb-buffer-pool-size=32M",
               "--innodb-log-file-size=8M", "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
               f"--pid-file={service['dir']}/mysqld.pid", f"--tmpdir={service['dir']}", "--max-connections=100",
               "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci"]
    process = subprocess.Popen([service["bin"], *options], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    problem = wait_for_port(service["port"], deadline, process)
    if problem:
        return process, problem
    client = [service["client"], "--no-defaults", "-uroot", f"--socket={socket_path}", "--batch"]
    while True:
        done = subprocess.run([*client, "-e", ";\n".join(service.get("setup") or ["SELECT 1"])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        if done.returncode == 0:
            return process, None
        if time.monotonic() >= deadline:
            return process, "setting up users and databases failed: " + done.stderr.strip()[-300:]
        time.sleep(0.02)


def start_rabbitmq(service, deadline, log):
    folder = service["dir"]
    lines = [f"listeners.tcp.default = {service['port']}", "loopback_users = none",
             f"default_user = {service['user']}", f"default_pass = {service['password']}",
             f"default_vhost = {service['vhost']}", "default_permissions.configure = .*",
             "default_permissions.read = .*", "default_permissions.write = .*"]
    with open(os.path.join(folder, "rabbitmq.conf"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(os.path.join(folder, "enabled_plugins"), "w", encoding="utf-8") as handle:
        handle.write("[].\n")
    home = os.path.join(folder, "home")
    os.makedirs(home, exist_ok=True)
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": home, "LANG": "C.UTF-8",
           "RABBITMQ_MNESIA_BASE": os.path.join(folder, "mnesia"), "RABBITMQ_LOG_BASE": folder,
           "RABBITMQ_NODENAME": "rabbit@localhost", "RABBITMQ_CONFIG_FILE": os.path.join(folder, "rabbitmq"),
           "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(folder, "enabled_plugins"),
           "RABBITMQ_PID_FILE": os.path.join(folder, "rabbit.pid"), "RABBITMQ_CONF_ENV_FILE": "/nonexistent",
           "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(folder, "advanced.config"), "RABBITMQ_LOGS": "-",
           "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "ERL_EPMD_ADDRESS": "127.0.0.1"}
    process = subprocess.Popen([service["bin"]], stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
    problem = wait_for_port(service["port"], deadline, process)
    if problem:
        return process, problem
    return process, answers(service["port"], b"AMQP\x00\x00\x09\x01", (b"\x01\x00\x00",), deadline)


def start_memcached(service, deadline, log):
    # At most 200 connections: memcached's default 1024 is more than the sandbox's open-file limit allows.
    process = subprocess.Popen([service["bin"], "-l", "127.0.0.1", "-p", str(service["port"]), "-U", "0", "-m", "64",
                                "-c", "200", "-t", "2"], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    problem = wait_for_port(service["port"], deadline, process)
    return process, problem or answers(service["port"], b"version\r\n", (b"VERSION",), deadline)


def start_nats(service, deadline, log):
    process = subprocess.Popen([service["bin"], "-a", "127.0.0.1", "-p", str(service["port"]), "-js", "-sd",
                                os.path.join(service["dir"], "jetstream")],
                               stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    problem = wait_for_port(service["port"], deadline, process)
    return process, problem or answers(service["port"], b"", (b"INFO",), deadline)


def start_mqtt(service, deadline, log):
    config = os.path.join(service["dir"], "mosquitto.conf")
    with open(config, "w", encoding="utf-8") as handle:
        handle.write(f"listener {service['port']} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen([service["bin"], "-c", config], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    return process, wait_for_port(service["port"], deadline, process)


def start_smtp(service, deadline, log):
    catcher = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mailcatcher.py")
    process = subprocess.Popen([service["python"], "-I", catcher, str(service["port"]),
                                *map(str, service.get("http_ports", []))],
                               stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=service["dir"])
    problem = wait_for_port(service["port"], deadline, process)
    return process, problem or answers(service["port"], b"", (b"220",), deadline)


def start_aws(service, deadline, log):
    process = subprocess.Popen([service["python"], "-I", "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                str(service["port"])], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                               cwd=service["dir"], env={"PATH": "/usr/bin:/bin", "HOME": service["dir"],
                                                        "MOTO_ALLOW_NONEXISTENT_REGION": "true"})
    return process, wait_for_port(service["port"], deadline, process)


def answers(port, greeting, expected, deadline):
    """None once the server answers `greeting` with one of `expected` beginnings, else why not."""
    last = "did not answer in time"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                if greeting:
                    connection.sendall(greeting)
                answer = connection.recv(64)
            if answer.startswith(expected):
                return None
            last = f"answered {answer[:20]!r}"
        except OSError as error:
            last = f"did not answer ({error.strerror or error})"
        time.sleep(POLL_SECONDS)
    return last


# One entry per kind of server; the host's runtime prepares each one's spec entry under the same key.
STARTERS = {"postgresql": start_postgresql, "redis": start_redis, "mysql": start_mysql, "rabbitmq": start_rabbitmq,
            "memcached": start_memcached, "nats": start_nats, "mqtt": start_mqtt, "smtp": start_smtp,
            "aws": start_aws}


def relay(listen_port, target_port):
    """Forward connections to another port, so a test using the published port reaches the server too."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(64)

    def pump(source, sink):
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve():
        while True:
            client, _ = server.accept()
            try:
                upstream = socket.create_connection(("127.0.0.1", target_port))
            except OSError:
                client.close()
                continue
            threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, client), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()


def main():
    spec_path, status_path = sys.argv[1], sys.argv[2]
    command = sys.argv[sys.argv.index("--") + 1:]
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    statuses = []
    processes = []
    for service in spec["services"]:
        started = time.monotonic()
        deadline = started + spec["start_seconds"]
        with open(service["log"], "ab") as log:
            try:
                process, problem = STARTERS[service["kind"]](service, deadline, log)
                processes.append(process)
            except OSError as error:
                problem = f"could not be started ({error.strerror or error})"
        if problem is None:
            try:
                for port, target in service.get("relays", []):
                    relay(port, target)
            except OSError as error:
                problem = f"port {port} could not be opened ({error.strerror})"
        statuses.append({"name": service["kind"], "status": "failed" if problem else "started",
                         "port": service["port"],
                         "ports": [service["port"], *(port for port, _ in service.get("relays", []))],
                         "seconds": round(time.monotonic() - started, 3), "problem": problem})
    with open(status_path, "w", encoding="utf-8") as handle:
        json.dump({"services": statuses}, handle)
    sys.stdout.flush()
    # The results channel (a pipe the host reads) goes to the test command only, never to a server.
    channel = os.environ.get("ASSESSOR_RESULTS_FD", "")
    test = subprocess.Popen(command, pass_fds=[int(channel)] if channel.isdigit() else [])
    for name in ("SIGTERM", "SIGINT"):
        signal.signal(getattr(signal, name), lambda number, frame: test.send_signal(number))
    code = test.wait()
    for process in processes:
        if process.poll() is None:
            process.kill()
    os._exit(code if code >= 0 else 128 - code)


main()
