"""Per-assessment environments: what is read from the learner's files, and a real wheels-only build with uv."""

import os
import time
from pathlib import Path

import pytest

from assessor.engine.toolchains.python.dependencies import check_requirement, read_requirements
from assessor.engine.toolchains.python.environment import build_environment, explain_uv_failure, service_pins
from assessor.errors import EnvironmentBuildError
from tests.conftest import write_tree
from tests.sandbox_fixtures import fresh_dir, uv_cache


def project(files: dict[str, str]) -> Path:
    root = fresh_dir("project")
    write_tree(root, files)
    return root


# ---------------------------------------------------------------- reading declarations

def test_pyproject_dependencies_test_extras_and_dependency_groups():
    root = project({"pyproject.toml": """
        [project]
        name = "Shop_App"
        dependencies = ["flask>=3", "requests ; python_version >= '3.8'"]
        [project.optional-dependencies]
        test = ["pytest-mock", "shop-app[extra]"]
        extra = ["pyyaml"]
        docs = ["sphinx"]
        [dependency-groups]
        dev = ["freezegun", {include-group = "lint"}]
        lint = ["six"]
    """})
    found = read_requirements(root)
    assert found.requirements == ["flask>=3", "requests ; python_version >= '3.8'", "pytest-mock", "pyyaml",
                                  "freezegun", "six"]
    assert "sphinx" not in found.requirements
    assert found.sources == ["pyproject.toml"] and found.problems == []


def test_requirements_files_refuse_options_urls_paths_and_editables():
    root = project({
        "requirements.txt": "iniconfig\n-r requirements-base.txt\n",
        "requirements-base.txt": "packaging>=20  # a comment\n",
        "requirements-dev.txt": """
            # tools
            -e .
            --index-url https://evil.example/simple
            --extra-index-url=https://evil.example/extra
            --trusted-host evil.example
            -f https://evil.example/wheels
            attrs==23.1 \\
                --hash=sha256:abc
            git+https://example.com/x/y.git
            evil @ https://example.com/evil-1.0-py3-none-any.whl
            ./local/pkg
            local-1.0-py3-none-any.whl
            -r ../../etc/passwd
        """,
    })
    found = read_requirements(root)
    assert found.requirements == ["packaging>=20", "attrs==23.1", "iniconfig"]
    problems = "\n".join(found.problems)
    for refused in ("'-e .'", "--index-url", "--extra-index-url", "--trusted-host", "'-f'", "git+https",
                    "evil @ https", "./local/pkg", "local-1.0-py3-none-any.whl", "../../etc/passwd"):
        assert refused in problems, refused
    assert len(found.problems) == 10


def test_invalid_pyproject_is_a_problem_not_a_crash():
    found = read_requirements(project({"pyproject.toml": "[project\nname = "}))
    assert found.requirements == [] and "not valid TOML" in found.problems[0]


def test_check_requirement():
    assert check_requirement("Flask[async]>=3.0,<4 ; python_version >= '3.9'")
    assert check_requirement("pkg @ file:///etc/passwd") is None
    assert check_requirement("https://example.com/pkg.tar.gz") is None
    assert check_requirement("pkg.tar.gz") is None
    assert check_requirement("../pkg") is None


def test_explain_uv_failure_names_the_package():
    stderr = ("error: No solution found\n  cause: Because docopt==0.6.2 has no usable wheels and you require "
              "docopt==0.6.2, we can conclude...\nhint: Wheels are required for `docopt` because building...")
    assert "no installable wheel for docopt" in explain_uv_failure(stderr)
    clash = ("error: No solution found when resolving dependencies\n  cause: Because pytest>=9.2.0 depends on "
             "packaging>=24 and you require packaging==23.2, we can conclude that your requirements and "
             "pytest>=9.2.0 are incompatible.\n         And because you require pytest==9.2.0, we can conclude "
             "that your requirements are unsatisfiable.")
    explained = explain_uv_failure(clash)
    assert "pytest>=9.2.0 depends on packaging>=24 and you require packaging==23.2" in explained
    assert "And because you require pytest==9.2.0" in explained
    assert "nosuch was not found" in explain_uv_failure(
        "  cause: Because nosuch was not found in the package registry and you require nosuch, we can...")


# ---------------------------------------------------------------- real builds

@pytest.mark.slow
def test_build_installs_wheels_with_service_pins_into_a_copy_the_sandbox_can_read():
    root = project({
        "pyproject.toml": """
            [project]
            name = "capstone"
            dependencies = ["iniconfig"]
            [project.optional-dependencies]
            test = ["pytest==7.4.0"]
            [tool.uv]
            index-url = "http://127.0.0.1:9/simple"
        """,
        "uv.toml": 'index-url = "http://127.0.0.1:9/simple"\n',
        "setup.py": "open('/tmp/SETUP-PY-RAN', 'w').write('ran')\n",
    })
    environment = build_environment(root, fresh_dir("work"), cache_dir=uv_cache())
    venv = environment.venv
    assert environment.python == venv / "bin" / "python"
    assert os.path.realpath(environment.python) == os.path.realpath("/usr/bin/python3")
    installed = set(environment.installed)
    assert "pytest==7.4.0" in installed                      # a pin the runner supports is honoured
    assert service_pins()[0] in installed                     # coverage, same version as the host parses
    assert any(name.startswith("iniconfig==") for name in installed)
    assert not Path("/tmp/SETUP-PY-RAN").exists()
    assert not any(name.startswith("capstone") for name in installed)
    site_packages = next(venv.glob("lib/python3*/site-packages"))
    module = site_packages / "iniconfig" / "__init__.py"
    assert module.stat().st_nlink == 1                        # copied, not hard-linked to the shared cache
    assert module.stat().st_mode & 0o004 and not module.stat().st_mode & 0o002
    assert oct(uv_cache().stat().st_mode & 0o777) == "0o700"


@pytest.mark.slow
def test_the_same_versions_reuse_one_read_only_venv_and_other_versions_get_their_own(tmp_path):
    shared = fresh_dir("shared")
    first = build_environment(project({"requirements.txt": "iniconfig\n"}), fresh_dir("work"), cache_dir=uv_cache(),
                              shared_dir=shared)
    started = time.monotonic()
    second = build_environment(project({"requirements.txt": "iniconfig>=1\n"}), fresh_dir("work"),
                               cache_dir=uv_cache(), shared_dir=shared)
    reused_seconds = time.monotonic() - started
    other = build_environment(project({"requirements.txt": "iniconfig==2.0.0\n"}), fresh_dir("work"),
                              cache_dir=uv_cache(), shared_dir=shared)
    assert second.venv == first.venv and other.venv != first.venv   # keyed by the versions, not the text
    assert "iniconfig==2.0.0" in other.installed and "iniconfig==2.0.0" not in first.installed
    assert reused_seconds < 5
    for dirpath, dirnames, filenames in os.walk(first.venv):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            assert os.path.islink(path) or not os.stat(path).st_mode & 0o022, path   # nobody else may write


@pytest.mark.slow
def test_unknown_package_is_a_clear_error():
    root = project({"requirements.txt": "assessor-surely-no-such-package-4242\n"})
    with pytest.raises(EnvironmentBuildError, match="assessor-surely-no-such-package-4242"):
        build_environment(root, fresh_dir("work"), cache_dir=uv_cache())


@pytest.mark.slow
def test_refused_lines_are_reported_and_the_rest_installs():
    root = project({"requirements.txt": "iniconfig\n--index-url http://127.0.0.1:9/simple\n-e .\n"})
    environment = build_environment(root, fresh_dir("work"), cache_dir=uv_cache())
    assert any(name.startswith("iniconfig==") for name in environment.installed)
    assert len(environment.problems) == 2 and "--index-url" in environment.problems[0]


@pytest.mark.slow
def test_only_the_package_without_a_wheel_of_the_commit_date_moves_to_a_newer_version(tmp_path):
    # In June 2019 MarkupSafe 1.1.1 had wheels for Pythons up to 3.8 only; Flask 1.0 and Jinja2 2.10 had
    # pure-Python wheels. Only MarkupSafe may move on; the rest stays as it was on that day.
    root = project({"requirements.txt": "flask>=1.0,<2\n"})
    environment = build_environment(root, tmp_path / "work", cache_dir=uv_cache(), as_of="2019-06-01T00:00:00Z")

    versions = dict(line.split("==") for line in environment.installed)
    assert versions["flask"].startswith("1.0.") and versions["jinja2"].startswith("2.10.")
    assert int(versions["markupsafe"].split(".")[0]) >= 2
    assert any(note.startswith("markupsafe had no wheel installable here among the versions of your commit's date "
                               "(2019-06-01): the newest version that fits your declarations was used")
               for note in environment.notes)
    assert not any("resolved with the newest versions" in note for note in environment.notes)


@pytest.mark.slow
def test_exact_pins_are_not_told_to_commit_a_lock_file(tmp_path):
    root = project({"requirements.txt": "iniconfig==2.0.0\n"})
    environment = build_environment(root, tmp_path / "work", cache_dir=uv_cache(), as_of="2024-01-15T00:00:00Z")

    assert "iniconfig==2.0.0" in environment.installed
    assert ("you pin every package you name; the packages they depend on were resolved as they were on the "
            "commit's date (2024-01-15)") in environment.notes
    assert not any(note.startswith("no lock file") for note in environment.notes)
