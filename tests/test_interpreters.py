"""Which Python a project declares, which this worker has, and the one a run uses: table-driven, on real files."""

from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from assessor.engine.toolchains.python.interpreters import (
    DeclaredPython, Interpreter, choose_interpreter, declared_python, find_interpreters,
)
from tests.conftest import write_tree

WORKFLOW = """
jobs:
  test:
    strategy:
      matrix:
        python-version: ["3.9", "3.10"]
    steps:
      - uses: actions/setup-python@v5
        with:
          python-version: ${{ matrix.python-version }}
"""


@pytest.mark.parametrize("files, pinned, ranges", [
    ({".python-version": "3.9.18\n"}, ("3.9",), []),
    ({".python-version": "pypy3.9-7.3.11\nsystem\n"}, (), []),
    ({"runtime.txt": "python-3.7.12\n"}, ("3.7",), []),
    ({".tool-versions": "nodejs 20.1.0\npython 3.10.4\n"}, ("3.10",), []),
    ({"Pipfile": "[packages]\nflask = '*'\n\n[requires]\npython_version = \"3.7\"\n"}, ("3.7",), []),
    ({".github/workflows/ci.yml": WORKFLOW}, ("3.9", "3.10"), []),
    ({"pyproject.toml": "[project]\nname = 'x'\nrequires-python = '>=3.8,<3.11'\n"}, (),
     [("requires-python in pyproject.toml", ">=3.8,<3.11")]),
    ({"pyproject.toml": "[tool.poetry.dependencies]\npython = '^3.9'\n"}, (),
     [("Poetry's python in pyproject.toml", ">=3.9,<4.0")]),
    ({"setup.cfg": "[options]\npython_requires = >=3.6\n"}, (), [("python_requires in setup.cfg", ">=3.6")]),
    ({"setup.py": "setup(name='x', python_requires='>=3.7')\n"}, (), [("python_requires in setup.py", ">=3.7")]),
    # The first place that pins a version decides; ranges all apply.
    ({".python-version": "3.10\n", "runtime.txt": "python-3.8.1\n",
      "pyproject.toml": "[project]\nrequires-python = '>=3.9'\n"}, ("3.10",),
     [("requires-python in pyproject.toml", ">=3.9")]),
])
def test_every_place_a_project_declares_its_python(tmp_path, files, pinned, ranges):
    write_tree(tmp_path, files)
    declared = declared_python(tmp_path, tmp_path)
    assert declared.pinned == pinned
    assert declared.ranges == [(where, SpecifierSet(text)) for where, text in ranges]


def interpreter(version: str, origin: str = "pyenv") -> Interpreter:
    return Interpreter(version=Version(version), path=Path(f"/opt/{origin}/{version}/bin/python3"), origin=origin)


DEFAULT = Interpreter(version=Version("3.11.2"), path=Path("/usr/bin/python3"), origin="debian")
WORKER = [interpreter("3.13.0"), interpreter("3.12.1"), DEFAULT, interpreter("3.9.18"), interpreter("3.7.16"),
          interpreter("3.6.15")]


def declared(pinned=(), ranges=()):
    return DeclaredPython(pinned=tuple(pinned), pinned_by=".python-version" if pinned else None,
                          ranges=[("requires-python in pyproject.toml", SpecifierSet(text)) for text in ranges])


@pytest.mark.parametrize("wanted, version, reason", [
    (declared(), "3.11.2", "no Python version is declared: the worker's default"),
    (declared(ranges=[">=3.8"]), "3.11.2",
     "Python 3.11.2 (debian), the worker's default that fits requires-python in pyproject.toml: >=3.8"),
    (declared(ranges=[">=3.12"]), "3.13.0",
     "Python 3.13.0 (pyenv), the worker's newest that fits requires-python in pyproject.toml: >=3.12"),
    (declared(ranges=["<3.10"]), "3.9.18", None),
    (declared(pinned=["3.9"]), "3.9.18", "Python 3.9.18 (pyenv), as .python-version: 3.9"),
    (declared(pinned=["3.10", "3.9"]), "3.9.18", None),
    (declared(ranges=[">=3.14"]), None,
     "this project needs Python requires-python in pyproject.toml: >=3.14; this worker has 3.13.0, 3.12.1, 3.11.2, "
     "3.9.18, 3.7.16"),
    (declared(pinned=["3.8"]), None,
     "this project needs Python 3.8 (.python-version: 3.8); this worker has 3.13.0, 3.12.1, 3.11.2, 3.9.18, 3.7.16"),
    (declared(pinned=["3.6"]), None,
     "this project needs Python 3.6 (.python-version: 3.6); the service runs tests on Python 3.7 or newer"),
])
def test_the_interpreter_a_run_uses(wanted, version, reason):
    choice = choose_interpreter(wanted, WORKER, default=Path("/usr/bin/python3"))
    assert (str(choice.interpreter.version) if choice.interpreter else None) == version
    if reason:
        assert choice.reason == reason


def test_interpreters_are_found_where_operators_install_them(tmp_path):
    found = find_interpreters({"PYENV_ROOT": str(tmp_path / "none"), "ASSESSOR_PYTHONS": "/usr/bin/python3"})
    assert any(item.path == Path("/usr/bin/python3.11") and item.origin == "debian" for item in found)
    assert [item.version for item in found] == sorted({item.version for item in found}, reverse=True)


def test_within_a_pinned_minor_the_default_interpreter_wins_over_a_newer_patch_elsewhere():
    default = Interpreter(version=Version("3.11.2"), path=Path("/usr/bin/python3.11"), origin="debian")
    pyenv = Interpreter(version=Version("3.11.7"), path=Path("/opt/pyenv/versions/3.11.7/bin/python3"),
                        origin="pyenv")
    choice = choose_interpreter(declared(pinned=["3.11"]), [pyenv, default], default=Path("/usr/bin/python3.11"))
    assert choice.interpreter == default
