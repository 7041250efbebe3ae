"""What a Node.js project is made of, read as data: its runner, its sources and tests, its refused dependencies."""

import json
from pathlib import Path

import pytest

from assessor.engine.manifest import Manifest
from assessor.engine.toolchains import detect
from assessor.engine.toolchains.node.packages import _foreign_sources, explain_failure
from assessor.engine.toolchains.node.project import (
    find_test_command, find_test_files, has_runtime_code, read_package_json, source_files,
)
from tests.conftest import write_tree


def project(tmp_path: Path, package: dict, files: dict | None = None) -> Path:
    write_tree(tmp_path, {"package.json": json.dumps(package), **(files or {})})
    return tmp_path


@pytest.mark.parametrize("package, files, runner, paths", [
    ({"scripts": {"test": "jest --runInBand tests/unit"}}, {"tests/unit/a.test.js": ""}, "jest", ("tests/unit",)),
    ({"scripts": {"test": "vitest run"}}, {}, "vitest", ()),
    ({"scripts": {"test": "cross-env NODE_ENV=test mocha --exit 'test/**/*.spec.js'"}}, {}, "mocha", ()),
    ({"scripts": {"test": "npm run test:unit", "test:unit": "c8 node --test"}}, {}, "node-test", ()),
    ({"scripts": {"test": "react-scripts test"}}, {}, "jest", ()),
    ({"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}, "devDependencies": {"vitest": "^2"}}, {},
     "vitest", ()),
    ({"devDependencies": {"jest": "^29"}}, {}, "jest", ()),
    ({}, {"jest.config.ts": "export default {}"}, "jest", ()),
    ({}, {".mocharc.yml": "spec: test"}, "mocha", ()),
    ({}, {"test/app.test.js": ""}, "node-test", ()),
])
def test_the_runner_comes_from_the_test_script_then_the_project(tmp_path, package, files, runner, paths):
    root = project(tmp_path, package, files)
    found = find_test_command(root, read_package_json(root))
    assert (found.runner, found.paths) == (runner, paths)


def test_typescript_loaders_and_no_tests_at_all(tmp_path):
    root = project(tmp_path, {"scripts": {"test": "node --import tsx --test test/*.test.ts"},
                              "devDependencies": {"tsx": "^4"}})
    assert find_test_command(root, read_package_json(root)).typescript == "tsx"
    empty = project(tmp_path / "empty", {"name": "x"}, {"src/a.js": ""})
    assert find_test_command(empty, read_package_json(empty)) is None


def test_sources_leave_out_tests_configs_declarations_and_dependencies(tmp_path):
    root = project(tmp_path, {}, {
        "src/app.ts": "", "src/app.test.ts": "", "src/types.d.ts": "", "src/__tests__/x.ts": "",
        "lib/util.mjs": "", "jest.config.js": "", "jest.preset.js": "", ".eslintrc.js": "", "index.js": "",
        "test/helpers.js": "", "dist/app.js": "", "node_modules/a/index.js": "", "scripts/seed.js": "",
    })
    assert [path.relative_to(root).as_posix() for path in source_files(root)] == \
        ["index.js", "lib/util.mjs", "src/app.ts"]
    assert {path.relative_to(root).as_posix() for path in find_test_files(root)} == \
        {"src/app.test.ts", "src/__tests__/x.ts"}


@pytest.mark.parametrize("text, runtime", [
    ("export interface User {\n  id: number;\n  name: string;\n}\n", False),
    ("import type { A } from './a';\nexport type B = A & { b: string };\n", False),
    ("export const answer = 42;\n", True),
    ("export interface A { a: number }\nexport function f(): A { return { a: 1 }; }\n", True),
])
def test_type_only_typescript_has_nothing_to_cover(tmp_path, text, runtime):
    path = tmp_path / "model.ts"
    path.write_text(text)
    assert has_runtime_code(path) is runtime


def test_dependencies_from_git_urls_or_paths_are_refused(tmp_path):
    root = project(tmp_path, {"dependencies": {"express": "^4", "private": "github:acme/private",
                                               "local": "file:../lib", "tarball": "https://evil.example/x.tgz"}})
    problems = _foreign_sources(root, read_package_json(root), None)
    assert "private (github:acme/private)" in problems[0] and "local (file:../lib)" in problems[0]
    assert "express" not in problems[0]


@pytest.mark.parametrize("output, reason", [
    ("npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/nosuch-pkg - Not found\n",
     "npm ci: 404 Not Found - GET https://registry.npmjs.org/nosuch-pkg Not found"),
    ("npm error code ENOTFOUND\nnpm error syscall getaddrinfo\nnpm error network request to "
     "https://npm.corp.example/x/-/x-1.0.0.tgz failed, reason: getaddrinfo ENOTFOUND npm.corp.example\n"
     "npm error network This is a problem related to network connectivity.\n"
     "npm error network If you are behind a proxy, please make sure that the\n"
     "npm error network 'proxy' config is set properly.  See: 'npm help config'\n",
     "npm ci: network request to https://npm.corp.example/x/-/x-1.0.0.tgz failed, reason: getaddrinfo ENOTFOUND "
     "npm.corp.example"),
    ("npm error code ERESOLVE\nnpm error ERESOLVE unable to resolve dependency tree\nnpm error\n"
     "npm error While resolving: shop@1.0.0\nnpm error Found: react@18.2.0\n"
     "npm error Could not resolve dependency:\nnpm error peer react@\"^17\" from old-widget@1.0.0\n",
     "npm ci: ERESOLVE unable to resolve dependency tree; While resolving: shop@1.0.0; Found: react@18.2.0; "
     "Could not resolve dependency:; peer react@\"^17\" from old-widget@1.0.0"),
    ("npm error `npm ci` can only install packages when your package.json and package-lock.json are in sync.",
     "npm ci failed: package.json and the lock file are not in sync"),
])
def test_package_manager_failures_keep_their_own_reason(output, reason):
    assert explain_failure(["npm", "ci"], output) == reason


NPM_V1 = {"lockfileVersion": 1, "dependencies": {
    "express": {"version": "4.18.2", "resolved": "https://registry.npmjs.org/express/-/express-4.18.2.tgz",
                "dependencies": {"debug": {"version": "2.6.9",
                                           "resolved": "https://npm.corp.example/debug/-/debug-2.6.9.tgz"}}},
    "widget": {"version": "github:acme/widget#0123abc"},
}}
NPM_V3 = {"lockfileVersion": 3, "packages": {
    "": {"name": "shop"},
    "node_modules/express": {"resolved": "https://registry.npmjs.org/express/-/express-4.18.2.tgz"},
    "node_modules/left-pad": {"resolved": "http://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz"},
    "node_modules/lib": {"resolved": "packages/lib", "link": True},
    "node_modules/tool": {"resolved": "git+ssh://git@github.com/acme/tool.git#0123abc"},
}}
YARN_CLASSIC = """# yarn lockfile v1


express@^4.18.2:
  version "4.18.2"
  resolved "https://registry.yarnpkg.com/express/-/express-4.18.2.tgz#abc"
  integrity sha512-x

"@acme/ui@^1.0.0", "@acme/ui@^1.1.0":
  version "1.1.0"
  resolved "https://npm.corp.example/@acme/ui/-/ui-1.1.0.tgz#def"
"""
YARN_BERRY = """__metadata:
  version: 8

"express@npm:^4.18.2":
  version: 4.18.2
  resolution: "express@npm:4.18.2"

"shop@workspace:.":
  resolution: "shop@workspace:."

"@acme/ui@https://npm.corp.example/ui-1.1.0.tgz":
  resolution: "@acme/ui@https://npm.corp.example/ui-1.1.0.tgz"
"""
PNPM = """lockfileVersion: '9.0'
packages:
  express@4.18.2:
    resolution: {integrity: sha512-x}
  tool@https://codeload.github.com/acme/tool/tar.gz/0123abc:
    resolution: {tarball: https://codeload.github.com/acme/tool/tar.gz/0123abc}
  widget@git+https://github.com/acme/widget.git#0123abc:
    resolution: {commit: 0123abc, repo: https://github.com/acme/widget.git, type: git}
"""


@pytest.mark.parametrize("lock, text, refused", [
    ("package-lock.json", json.dumps(NPM_V1),
     ["debug (from npm.corp.example, not an allowed registry)", "widget (git: github:acme/widget#0123abc)"]),
    ("package-lock.json", json.dumps(NPM_V3),
     ["left-pad (over plain http: registry.npmjs.org)", "tool (git: git+ssh://git@github.com/acme/tool.git#0123abc)"]),
    ("yarn.lock", YARN_CLASSIC, ["@acme/ui (from npm.corp.example, not an allowed registry)"]),
    ("yarn.lock", YARN_BERRY, ["@acme/ui (from npm.corp.example, not an allowed registry)"]),
    ("pnpm-lock.yaml", PNPM, ["tool (from codeload.github.com, not an allowed registry)",
                              "widget (git: "
                              "git+https://github.com/acme/widget.git)"]),
])
def test_lock_files_of_every_format_refuse_foreign_sources_by_name(tmp_path, lock, text, refused):
    root = project(tmp_path, {"dependencies": {"express": "^4.18.2"}}, {lock: text})
    problems = _foreign_sources(root, read_package_json(root), lock)
    assert problems == [f"only packages from the registry are installed; refused {', '.join(refused)}"]


def test_a_lock_file_that_cannot_be_read_is_refused_by_name(tmp_path):
    root = project(tmp_path, {"dependencies": {}}, {"pnpm-lock.yaml": "packages: [unclosed\n"})
    assert _foreign_sources(root, read_package_json(root), "pnpm-lock.yaml") == ["pnpm-lock.yaml is not valid YAML"]


def test_the_operators_registry_is_allowed(tmp_path, monkeypatch):
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", "https://npm.corp.example")
    root = project(tmp_path, {"dependencies": {}}, {"yarn.lock": YARN_CLASSIC})
    assert _foreign_sources(root, read_package_json(root), "yarn.lock") == []


def test_node_and_python_in_one_repository_the_one_with_tests_wins(tmp_path):
    write_tree(tmp_path, {"package.json": '{"devDependencies": {"prettier": "^3"}}',
                          "backend/requirements.txt": "flask\n", "backend/tests/test_app.py": ""})
    module, detection = detect(tmp_path, manifest=Manifest())
    assert (module.NAME, detection.root) == ("python", "backend")
    assert any("also found Node.js" in note for note in detection.notes)
    module, detection = detect(tmp_path, manifest=Manifest(toolchain="node"))
    assert module.NAME == "node"


def test_an_unreadable_package_json_is_a_note(tmp_path):
    (tmp_path / "package.json").write_text("{not json")
    assert "not valid JSON" in read_package_json(tmp_path).problems[0]
