"""Install a Node.js capstone's packages: fetched from the lock file on the host with every lifecycle script off,
then the packages' install scripts (native modules, postinstall) run inside the sandbox, under its limits."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from assessor.errors import EnvironmentBuildError, SandboxError
from assessor.engine.filelock import exclusive_lock
from assessor.engine.sandbox import SandboxLimits, open_to_sandbox, reclaim, run_sandboxed
from assessor.engine.toolchains.base import run_tool
from assessor.engine.toolchains.node.locks import LockReadError, foreign_sources
from assessor.engine.toolchains.node.project import PackageJson, is_yarn_berry

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# The service's own Node tools, installed once into a shared folder (read-only in the sandbox).
SERVICE_TOOLS = {"c8": "10.1.3", "pnpm": "9.15.9", "yarn": "1.22.22", "@yarnpkg/cli-dist": "4.5.3",
                 "@stryker-mutator/instrumenter": "10.1.1"}  # its mutation operators, for test strength
DEFAULT_REGISTRY = "https://registry.npmjs.org/"
# npm reads no .npmrc but the project's: these paths never exist, so no user or global configuration applies.
NO_CONFIG = "/nonexistent/assessor-npmrc"
MAX_CACHED_INSTALLS = 16
RECENT_INSTALL_SECONDS = 3600
INSTALL_TIMEOUT_SECONDS = 600
SCRIPT_LIMITS = SandboxLimits(wall_seconds=300, cpu_seconds=280, memory_mb=4096, processes=128, tmp_mb=1024,
                              workdir_mb=4096, file_size_mb=512, address_space_mb=256 * 1024)
# Dependency specs and lock entries that would fetch from somewhere other than a registry.
_FOREIGN_SPEC = re.compile(r"^(git\+|git:|github:|gitlab:|bitbucket:|file:|link:|https?://|[\w.-]+/[\w.-]+(#.*)?$)")
KNOWN_REGISTRIES = ("https://registry.npmjs.org/", "https://registry.yarnpkg.com/")
PASSTHROUGH_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
                   "NPM_CONFIG_REGISTRY", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS")


@dataclass(frozen=True)
class Environment:
    """Installed node_modules for one project, ready to be bound into the sandbox's copy of it."""

    node_modules: Path
    tools: Path
    node: Path
    manager: str
    lock: str | None
    installed: list[str]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"manager": self.manager, "lock": self.lock, "node": node_version(self.node),
                "installed": list(self.installed), "problems": list(self.problems), "notes": list(self.notes),
                "seconds": self.seconds}


def node_binary() -> Path:
    found = shutil.which("node", path=SYSTEM_PATH)
    if not found:
        raise EnvironmentBuildError("Node.js is not installed on this worker (Debian: nodejs)")
    return Path(found)


def node_version(node: Path) -> str:
    try:
        return subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=10,
                              env={"PATH": SYSTEM_PATH}).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def service_tools(shared_dir: Path, *, cache_dir: Path) -> Path:
    """The service's pinned Node tools (c8, pnpm, Yarn, Stryker's instrumenter), installed once with scripts off;
    their folder."""
    folder = shared_dir / "node-tools" / hashlib.sha256(json.dumps(SERVICE_TOOLS, sort_keys=True).encode()).hexdigest()[:12]
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(shared_dir, 0o711)
    os.chmod(folder.parent, 0o711)
    with exclusive_lock(folder.parent / f"{folder.name}.lock"):
        if (folder / ".complete").is_file():
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        (folder / "package.json").write_text(json.dumps({"private": True, "dependencies": SERVICE_TOOLS}))
        _run(["npm", "install", *_npm_options(cache_dir)], cwd=folder, cache_dir=cache_dir,
             deadline=time.monotonic() + INSTALL_TIMEOUT_SECONDS)
        open_to_sandbox(folder)
        (folder / ".complete").write_text("")
    return folder


def build_environment(root: Path, work_dir: Path, *, package: PackageJson, lock: str | None, manager: str,
                      cache_dir: Path, shared_dir: Path, extra_packages: dict[str, str] | None = None,
                      unsafe_no_sandbox: bool = False) -> Environment:
    """node_modules for the project in `root`, from its lock file (resolved once, with a note, without one).

    Only the manifest and lock file are copied to the install folder, so no .npmrc, .yarnrc or script of the
    learner's configures the package manager. `extra_packages` are the service's own additions (a coverage
    provider the runner needs). Installs are kept by what went into them and copied for each assessment.
    """
    started = time.monotonic()
    deadline = started + INSTALL_TIMEOUT_SECONDS
    node = node_binary()
    notes: list[str] = []
    problems = _foreign_sources(root, package, lock)
    if problems:
        raise EnvironmentBuildError("; ".join(problems))
    if lock is None:
        notes.append("no lock file (package-lock.json, pnpm-lock.yaml or yarn.lock): the package versions were "
                     "resolved now, not pinned by you; commit your lock file")
    if manager == "bun":
        notes.append("bun.lockb cannot be read here; the packages were resolved by npm from package.json")
        manager, lock = "npm", None
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tools = service_tools(shared_dir, cache_dir=cache_dir)
    key_material = [node_version(node), manager, json.dumps(SERVICE_TOOLS, sort_keys=True),
                    json.dumps(extra_packages or {}, sort_keys=True),
                    *(_digest(root / name) for name in ("package.json", lock) if name)]
    key = hashlib.sha256("\n".join(key_material).encode()).hexdigest()[:24]
    cache = shared_dir / "node-modules"
    cache.mkdir(parents=True, exist_ok=True)
    os.chmod(cache, 0o711)
    with exclusive_lock(cache / f"{key}.lock"):
        cached = cache / key
        if not (cached / ".complete").is_file():
            shutil.rmtree(cached, ignore_errors=True)
            cached.mkdir()
            install_notes = _install(root, cached, package=package, lock=lock, manager=manager, tools=tools,
                                     cache_dir=cache_dir, deadline=deadline, extra=extra_packages or {},
                                     unsafe_no_sandbox=unsafe_no_sandbox, work_dir=work_dir)
            (cached / ".notes.json").write_text(json.dumps(install_notes))
            (cached / ".complete").write_text("")
        os.utime(cached / ".complete")
        notes += json.loads((cached / ".notes.json").read_text())
    _evict(cache, keep=cache / key)
    # The shared install, never written: each test run gets its own bounded copy (see testrun).
    return Environment(node_modules=cache / key / "node_modules", tools=tools, node=node, manager=manager,
                       lock=lock, installed=installed_packages(cache / key / "node_modules"), problems=[],
                       notes=notes, seconds=round(time.monotonic() - started, 3))


def _install(root: Path, folder: Path, *, package: PackageJson, lock: str | None, manager: str, tools: Path,
             cache_dir: Path, deadline: float, extra: dict[str, str], unsafe_no_sandbox: bool,
             work_dir: Path) -> list[str]:
    notes: list[str] = []
    for name in ("package.json", lock):
        if name:
            shutil.copyfile(root / name, folder / name)
    if package.workspaces:
        notes.append("npm workspaces are not installed one by one: only the packages of the project folder's own "
                     "package.json and lock file were installed")
    command = _install_command(manager, lock=lock, tools=tools, folder=folder, cache_dir=cache_dir)
    try:
        _run(command, cwd=folder, cache_dir=cache_dir, deadline=deadline, manager=manager)
    except EnvironmentBuildError as error:
        if lock is None or manager != "npm" or "npm ci" not in str(error) and "in sync" not in str(error):
            raise
        notes.append(f"{lock} does not match package.json, so the versions were resolved again with npm install "
                     f"(run npm install and commit the lock file)")
        _run(["npm", "install", *_npm_options(cache_dir)], cwd=folder, cache_dir=cache_dir, deadline=deadline)
    if extra:
        _run(["npm", "install", "--no-save", *_npm_options(cache_dir),
              *[f"{name}@{version}" for name, version in extra.items()]],
             cwd=folder, cache_dir=cache_dir, deadline=deadline)
    (folder / "node_modules").mkdir(exist_ok=True)  # a project with no dependencies has none
    scripted = packages_with_install_scripts(folder / "node_modules")
    if scripted:
        notes += _run_install_scripts(folder, scripted, manager=manager, tools=tools,
                                      unsafe_no_sandbox=unsafe_no_sandbox, work_dir=work_dir, deadline=deadline)
    open_to_sandbox(folder)
    return notes


def _npm_options(cache_dir: Path) -> list[str]:
    return ["--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", "--no-update-notifier",
            f"--cache={cache_dir / 'npm'}", "--loglevel=error", f"--userconfig={NO_CONFIG}/user",
            f"--globalconfig={NO_CONFIG}/global"]


def _install_command(manager: str, *, lock: str | None, tools: Path, folder: Path, cache_dir: Path) -> list[str]:
    if manager == "pnpm":
        return ["node", str(tools / "node_modules/pnpm/bin/pnpm.cjs"), "install", "--frozen-lockfile",
                "--ignore-scripts", f"--store-dir={cache_dir / 'pnpm-store'}", "--package-import-method=copy",
                "--config.node-linker=hoisted", "--reporter=silent"]
    if manager == "yarn":
        if is_yarn_berry(folder):
            return ["node", str(tools / "node_modules/@yarnpkg/cli-dist/bin/yarn.js"), "install", "--immutable",
                    "--mode=skip-build"]
        return ["node", str(tools / "node_modules/yarn/bin/yarn.js"), "install", "--frozen-lockfile",
                "--ignore-scripts", "--non-interactive", f"--cache-folder={cache_dir / 'yarn'}", "--silent",
                "--no-progress"]
    return ["npm", "ci" if lock else "install", *_npm_options(cache_dir)]


def _run(argv: list[str], *, cwd: Path, cache_dir: Path, deadline: float, manager: str = "npm") -> str:
    env = {"PATH": SYSTEM_PATH, "HOME": str(cache_dir), "CI": "true", "npm_config_cache": str(cache_dir / "npm"),
           "npm_config_userconfig": f"{NO_CONFIG}/user", "npm_config_globalconfig": f"{NO_CONFIG}/global",
           "npm_config_ignore_scripts": "true", "YARN_ENABLE_SCRIPTS": "false", "YARN_NODE_LINKER": "node-modules",
           "YARN_ENABLE_GLOBAL_CACHE": "false", "YARN_CACHE_FOLDER": str(cache_dir / "yarn-berry"),
           "YARN_ENABLE_TELEMETRY": "0", "YARN_IGNORE_PATH": "1", "COREPACK_ENABLE_STRICT": "0",
           "npm_config_update_notifier": "false"}
    env.update({name: os.environ[name] for name in PASSTHROUGH_ENV if name in os.environ})
    done = run_tool(argv, env=env, cwd=cwd, deadline=deadline, what="installing the packages")
    if done.returncode != 0:
        raise EnvironmentBuildError(explain_failure(argv, done.stdout + "\n" + done.stderr))
    return done.stdout


def explain_failure(argv: list[str], output: str) -> str:
    """The package manager's reason, on one line, in its own words: the package, the host, the 404, the conflict."""
    lines = [re.sub(r"^(npm (error|ERR!)|error|ERR_PNPM_\w+)\s+", "", line.strip()) or line.strip()
             for line in output.splitlines() if line.strip()]
    tool = "npm ci" if argv[:2] == ["npm", "ci"] else Path(argv[1] if argv[0] == "node" else argv[0]).name
    for pattern in (r"(404 Not Found - GET \S+)(?: - (.+))?", r"(network request to \S+ failed, reason: .+)",
                    r"(request to \S+ failed, reason: .+)", r"(No matching version found for \S+)",
                    r"(ERR_PNPM_\w+.*)", r"(Couldn't find any versions for .+)", r"(ETARGET.*)",
                    r"(getaddrinfo \w+ \S+)", r"(connect E\w+ \S+)"):
        for line in lines:
            match = re.search(pattern, line)
            if match:
                found = " ".join(group for group in match.groups() if group)
                return f"{tool}: {found}"[:500]
    if any("ERESOLVE" in line for line in lines):
        wanted = [line for line in lines if line.startswith(("ERESOLVE", "While resolving:", "Found:",
                                                               "Could not resolve dependency:", "peer "))]
        return (f"{tool}: " + "; ".join(wanted[:5]))[:500]
    if "in sync" in output or "npm ci can only install" in output:
        return f"{tool} failed: package.json and the lock file are not in sync"
    advice = re.compile(r"proxy|network settings|npm help|complete log|network connectivity|^network$", re.I)
    errors = [line for line in lines if re.search(r"\berr(or)?\b|ERR!|\bcode E", line, re.IGNORECASE)
              and not advice.search(line)]
    chosen = errors[-3:] if errors else [line for line in lines if not advice.search(line)][-2:]
    return (f"{tool} failed: " + " ".join(chosen))[:500]


def _foreign_sources(root: Path, package: PackageJson, lock: str | None) -> list[str]:
    """Dependencies that would be fetched from git, a URL, a local path or a host that is not an allowed registry,
    in package.json or in the lock file of any format: refused, by name, before anything is installed."""
    refused = [f"{name} ({spec})" for name, spec in package.all_dependencies.items()
               if _FOREIGN_SPEC.match(spec) and not spec.startswith("npm:")]
    if lock:
        allowed = {urlsplit(registry).hostname for registry in (*KNOWN_REGISTRIES, registry_url())}
        try:
            refused += foreign_sources(root, lock, {host for host in allowed if host})
        except LockReadError as error:
            return [str(error)]
    if refused:
        shown = sorted(set(refused))
        more = f" and {len(shown) - 8} more" if len(shown) > 8 else ""
        return [f"only packages from the registry are installed; refused {', '.join(shown[:8])}{more}"]
    return []


def registry_url() -> str:
    """The registry the operator configured (NPM_CONFIG_REGISTRY), with a trailing slash."""
    return (os.environ.get("NPM_CONFIG_REGISTRY") or DEFAULT_REGISTRY).rstrip("/") + "/"


def packages_with_install_scripts(node_modules: Path) -> list[str]:
    """Installed packages that declare preinstall/install/postinstall scripts (or need node-gyp)."""
    found = []
    for manifest in _package_manifests(node_modules):
        try:
            data = json.loads(manifest.read_text(encoding="utf-8", errors="replace"))
        except (ValueError, OSError):
            continue
        scripts = data.get("scripts") if isinstance(data.get("scripts"), dict) else {}
        if any(name in scripts for name in ("preinstall", "install", "postinstall")) \
                or (manifest.parent / "binding.gyp").is_file():
            found.append(str(data.get("name") or manifest.parent.name))
    return sorted(set(found))


def _package_manifests(node_modules: Path):
    if not node_modules.is_dir():
        return
    for entry in sorted(node_modules.iterdir()):
        if entry.name.startswith("@") and entry.is_dir() and not entry.is_symlink():
            for scoped in sorted(entry.iterdir()):
                if (scoped / "package.json").is_file():
                    yield scoped / "package.json"
        elif entry.is_dir() and not entry.is_symlink() and (entry / "package.json").is_file():
            yield entry / "package.json"
            nested = entry / "node_modules"
            if nested.is_dir():
                yield from _package_manifests(nested)


def _run_install_scripts(folder: Path, scripted: list[str], *, manager: str, tools: Path, unsafe_no_sandbox: bool,
                         work_dir: Path, deadline: float) -> list[str]:
    """`npm rebuild` inside the sandbox: the packages' own install scripts, with no network and no secrets."""
    os.chmod(folder, 0o777)  # the sandbox uid writes the built files
    limits = replace(SCRIPT_LIMITS, wall_seconds=max(10.0, min(SCRIPT_LIMITS.wall_seconds,
                                                                deadline - time.monotonic())))
    env = {"HOME": "/tmp", "npm_config_cache": "/tmp/npm-cache", "npm_config_nodedir": "/usr",
           "npm_config_userconfig": f"{NO_CONFIG}/user", "npm_config_globalconfig": f"{NO_CONFIG}/global",
           "npm_config_offline": "true",
           "npm_config_update_notifier": "false", "CI": "true"}
    try:
        result = run_sandboxed(["npm", "rebuild", "--foreground-scripts", "--no-audit", "--no-fund"], workdir=folder,
                               venv=None, limits=limits, env=env, readonly_binds=(tools,),
                               unsafe_no_sandbox=unsafe_no_sandbox)
    except SandboxError as error:
        return [f"the packages' install scripts ({', '.join(scripted[:5])}) could not be run: {error}"]
    finally:
        reclaim(folder)
        os.chmod(folder, 0o755)
    if result.exit_code != 0 or result.killed_by:
        reason = f"stopped by the {result.killed_by.replace('_', ' ')} limit" if result.killed_by else \
            " ".join(line.strip() for line in result.output.strip().splitlines()[-2:])[:300]
        return [f"the install scripts of {', '.join(scripted[:5])} failed in the sandbox ({reason}); tests that "
                f"need them may fail"]
    return [f"install scripts of {', '.join(scripted[:5])}{' and more' if len(scripted) > 5 else ''} ran in the "
            f"sandbox"]


def installed_packages(node_modules: Path) -> list[str]:
    """"name@version" of the top-level installed packages, read from their package.json (no code runs)."""
    found = []
    for manifest in _package_manifests(node_modules):
        if manifest.parent.parent.name != "node_modules" and not manifest.parent.parent.name.startswith("@"):
            continue
        if "node_modules" in manifest.parent.relative_to(node_modules).parts:
            continue
        try:
            data = json.loads(manifest.read_text(encoding="utf-8", errors="replace"))
        except (ValueError, OSError):
            continue
        if isinstance(data.get("name"), str) and isinstance(data.get("version"), str):
            found.append(f"{data['name']}@{data['version']}")
    return sorted(found)


def engines_note(node: Path, tools: Path, wanted: str | None) -> str | None:
    """A note when package.json's engines.node excludes the worker's Node (checked with npm's own semver)."""
    if not wanted:
        return None
    script = ("const semver = require(process.argv[1]); const version = process.version;"
              "process.stdout.write(semver.satisfies(version, process.argv[2]) ? 'yes' : 'no:' + version)")
    try:
        done = subprocess.run([str(node), "-e", script, str(tools / "node_modules/semver"), wanted],
                              capture_output=True, text=True, timeout=20, env={"PATH": SYSTEM_PATH}, cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.stdout.startswith("no:"):
        return (f"package.json asks for Node {wanted} (engines.node); this worker runs {done.stdout[3:]}, so "
                f"results may differ from yours")
    return None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "-"


def _evict(cache: Path, *, keep: Path) -> None:
    complete = sorted(cache.glob("*/.complete"), key=lambda path: path.stat().st_mtime)
    for marker in complete[:max(len(complete) - MAX_CACHED_INSTALLS, 0)]:
        folder = marker.parent
        if folder == keep or time.time() - marker.stat().st_mtime < RECENT_INSTALL_SECONDS:
            continue
        with exclusive_lock(cache / f"{folder.name}.lock"):
            shutil.rmtree(folder, ignore_errors=True)
