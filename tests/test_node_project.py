"""What a Node.js project is made of, read as data: its runner, its sources and tests, its refused dependencies."""

import json
from pathlib import Path

import pytest

from assessor.manifest import Manifest
from assessor.toolchains import detect
from assessor.toolchains.node.packages import _foreign_sources, explain_failure
from assessor.toolchains.node.project import (
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


def test_package_manager_failures_name_the_package():
    assert explain_failure(["npm", "ci"], "npm error code E404\nnpm error 404 Not Found - GET https://registry."
                           "npmjs.org/nosuch-pkg - Not found\n") == "npm ci: Not found"
    assert "not in sync" in explain_failure(["npm", "ci"], "npm error `npm ci` can only install packages when your "
                                            "package.json and package-lock.json are in sync.")


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
