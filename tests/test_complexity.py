"""Complexity measurement on real checkouts with real radon: exact scores, exclusions, broken and hostile files."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assessor.errors import MeasureError
from assessor.engine.measure import complexity
from assessor.engine.measure.complexity import measure_complexity


def branches(name: str, count: int, indent: str = "") -> str:
    """A function with `count` if-statements: cyclomatic complexity count + 1."""
    lines = [f"{indent}def {name}(x):"]
    lines += [f"{indent}    if x == {i}:\n{indent}        return {i}" for i in range(count)]
    lines.append(f"{indent}    return -1\n")
    return "\n".join(lines)


def by_name(result, name):
    return next(function for function in result.worst if function.name == name)


@pytest.mark.parametrize(
    ("source", "name", "line", "expected_complexity", "expected_rank"),
    [
        (branches("three_ifs", 3), "three_ifs", 1, 4, "A"),
        (branches("six_ifs", 6), "six_ifs", 1, 7, "B"),
        (branches("eleven_ifs", 11), "eleven_ifs", 1, 12, "C"),
        (branches("many_ifs", 25), "many_ifs", 1, 26, "D"),
        ("X = 1\n\nclass Cart:\n    def total(self, items):\n        return sum(i for i in items if i)\n",
         "Cart.total", 4, 3, "A"),
        ("def outer(x):\n    def inner(y):\n        return y if y else 0\n    return inner\n", "outer.inner", 2, 2, "A"),
        ("class Outer:\n    class Inner:\n        async def run(self, a, b):\n            return a and b\n",
         "Outer.Inner.run", 3, 2, "A"),
    ],
)
def test_known_function_has_exact_complexity_rank_and_location(make_repo, source, name, line,
                                                                expected_complexity, expected_rank):
    repo = make_repo({"shop/__init__.py": "", "shop/logic.py": source})

    function = by_name(measure_complexity(repo), name)

    assert (function.path, function.line) == ("shop/logic.py", line)
    assert (function.complexity, function.rank) == (expected_complexity, expected_rank)


def test_summary_figures_over_all_blocks(make_repo):
    repo = make_repo({
        "app/a.py": "def simple():\n    return 1\n\n" + branches("medium", 3),
        "app/b.py": branches("tangled", 11),
    })

    result = measure_complexity(repo, worst_count=2)

    assert (result.files_analyzed, result.blocks) == (2, 3)
    assert result.average == round((1 + 4 + 12) / 3, 2) == 5.67
    assert result.share_c_or_worse == 33.33
    assert result.rank_counts == {"A": 2, "B": 0, "C": 1, "D": 0, "E": 0, "F": 0}
    assert [(f.name, f.complexity) for f in result.worst] == [("tangled", 12), ("medium", 4)]
    assert 0 < result.maintainability <= 100
    assert result.problems == ()


def test_to_dict_is_json_ready_with_the_documented_keys(make_repo):
    repo = make_repo({"app/a.py": branches("medium", 3), "app/broken.py": "def f(:\n"})

    data = json.loads(json.dumps(measure_complexity(repo).to_dict()))

    assert set(data) == {"average", "worst", "share_c_or_worse", "maintainability", "rank_counts",
                         "files_analyzed", "blocks", "problems", "average_method", "average_with_classes",
                         "analyser"}
    assert "every function and method" in data["average_method"] and data["analyser"] == "radon"
    assert data["worst"] == [{"name": "medium", "path": "app/a.py", "line": 1, "complexity": 4, "rank": "A"}]
    assert data["problems"][0]["path"] == "app/broken.py"
    assert data["average"] == 4.0 and data["rank_counts"]["A"] == 1


def test_tests_environments_and_migrations_are_not_measured(make_repo):
    tangled = branches("tangled", 30)
    repo = make_repo({
        "app/core.py": branches("real", 2),
        "tests/test_core.py": tangled,
        "app/test_helpers.py": tangled,
        "conftest.py": tangled,
        ".venv/lib/site.py": tangled,
        "venv/lib/site.py": tangled,
        "app/migrations/0001_initial.py": tangled,
        "node_modules/x/build.py": tangled,
    })

    result = measure_complexity(repo)

    assert result.files_analyzed == 1
    assert [(f.path, f.name) for f in result.worst] == [("app/core.py", "real")]


@pytest.mark.parametrize(
    ("content", "reason_fragment"),
    [
        ("def broken(:\n    pass\n", "does not parse (line 1"),
        ('def legacy():\n    print "hello"\n', "Missing parentheses in call to 'print'"),
        ("def mixed():\n\tif True:\n        return 1\n", "inconsistent use of tabs and spaces"),
        (b"def nul():\n    return 1\x00\n", "null bytes"),
        (b"def latin():\n    return '\xe9t\xe9'\n", "cannot be decoded"),
        (b"# -*- coding: klingon -*-\nX = 1\n", "cannot be decoded"),
    ],
    ids=["syntax-error", "python-2", "tab-error", "nul-byte", "not-utf8", "unknown-codec"],
)
def test_unparsable_file_is_reported_by_name_and_the_rest_is_measured(make_repo, content, reason_fragment):
    repo = make_repo({"app/good.py": branches("fine", 1), "app/bad.py": content})

    result = measure_complexity(repo)

    assert [problem.path for problem in result.problems] == ["app/bad.py"]
    assert reason_fragment in result.problems[0].reason
    assert result.files_analyzed == 1
    assert [f.name for f in result.worst] == ["fine"]


def test_code_radon_cannot_count_lines_of_keeps_its_complexity(make_repo):
    # Python accepts a combining accent in a name; radon's line counter (used for MI) rejects it.
    repo = make_repo({"app/accents.py": "caf\u0065\u0301 = 1\n\n" + branches("brew", 2)})

    result = measure_complexity(repo)

    assert by_name(result, "brew").complexity == 3
    assert result.maintainability is None
    assert [(p.path, p.reason) for p in result.problems] == [
        ("app/accents.py", "maintainability index not computed (SyntaxError at line: 1); complexity still counted")
    ]


def test_no_functions_means_no_average_rather_than_a_perfect_one(make_repo):
    repo = make_repo({"settings.py": "DEBUG = False\nNAME = 'shop'\n"})

    result = measure_complexity(repo)

    assert (result.files_analyzed, result.blocks) == (1, 0)
    assert result.average is None and result.share_c_or_worse is None
    assert result.worst == ()


def test_repository_without_python_measures_nothing(make_repo):
    result = measure_complexity(make_repo({"README.md": "# shop\n"}))

    assert (result.files_analyzed, result.blocks, result.average, result.maintainability) == (0, 0, None, None)


def test_file_over_the_size_cap_is_reported_without_parsing(make_repo, monkeypatch):
    monkeypatch.setattr(complexity, "MAX_FILE_BYTES", 2_000)
    repo = make_repo({"app/small.py": branches("small", 1), "app/generated.py": "X = 1\n" * 1_000})

    result = measure_complexity(repo)

    assert [(p.path, p.reason) for p in result.problems] == [
        ("app/generated.py", "is 6,000 bytes, over the 2,000-byte limit")
    ]
    assert result.files_analyzed == 1


def huge_docstring_module(lines: int = 8_000) -> str:
    body = "\n".join(f"padding line {i}" for i in range(lines))
    return f'{branches("hidden", 11)}\n\ndef padded():\n    """\n{body}\n    """\n    return 1\n'


@pytest.mark.parametrize("small_files", [1, 25], ids=["small-repo", "pooled-repo"])
def test_quadratic_docstring_hits_the_time_bound_and_the_run_returns_promptly(make_repo, small_files):
    files = {f"app/mod{i}.py": branches(f"f{i}", 2) for i in range(small_files)}
    files["app/padded.py"] = huge_docstring_module()
    repo = make_repo(files)

    started = time.monotonic()
    result = measure_complexity(repo, file_timeout_seconds=1, workers=2)
    elapsed = time.monotonic() - started

    assert elapsed < 5, "a stuck worker must be killed, not waited for (radon alone takes ~28 s on this file)"
    assert [p.path for p in result.problems] == ["app/padded.py"]
    assert "longer than 1 s" in result.problems[0].reason
    # The fast complexity pass still counts: padding a file cannot hide its complex functions.
    assert by_name(result, "hidden").complexity == 12
    assert result.files_analyzed == small_files + 1
    assert result.maintainability is not None


def test_worker_pool_gives_the_same_answer_as_measuring_in_process(make_repo, monkeypatch):
    files = {f"pkg/mod{i:02}.py": branches(f"f{i}", i % 13) + "\nclass K:\n    def m(self):\n        return 1\n"
             for i in range(24)}
    files["pkg/broken.py"] = "def f(:\n"
    repo = make_repo(files)

    pooled = measure_complexity(repo, workers=2, worst_count=50)
    monkeypatch.setattr(complexity, "INLINE_MAX_FILES", 1_000)
    in_process = measure_complexity(repo, worst_count=50)

    assert pooled.to_dict() == in_process.to_dict()
    assert pooled.files_analyzed == 24 and pooled.blocks == 48


def test_worker_that_dies_mid_file_is_reported_and_the_run_continues(make_repo, monkeypatch):
    # A stand-in worker that says it is ready, then exits as soon as it is given a file.
    dying = "import sys; print('[\"ready\", null]', flush=True); sys.stdin.readline()"
    monkeypatch.setattr(complexity, "_WORKER_COMMAND", (sys.executable, "-I", "-c", dying))
    repo = make_repo({f"app/m{i}.py": branches(f"f{i}", 1) for i in range(21)})

    result = measure_complexity(repo, workers=2)

    assert result.files_analyzed == 0
    assert len(result.problems) == 21
    assert all("stopped unexpectedly" in problem.reason for problem in result.problems)


def test_worker_that_cannot_start_is_a_measure_error(make_repo, monkeypatch):
    monkeypatch.setattr(complexity, "_WORKER_COMMAND", (sys.executable, "-I", "-c", "pass"))
    repo = make_repo({f"app/m{i}.py": "X = 1\n" for i in range(21)})

    with pytest.raises(MeasureError, match="did not start"):
        measure_complexity(repo)


def test_missing_checkout_is_a_measure_error(tmp_path):
    with pytest.raises(MeasureError, match="not a directory"):
        measure_complexity(tmp_path / "nowhere")


def test_average_with_classes_is_the_figure_radon_cc_a_prints(make_repo):
    shop = """\
class Cart:
    def add(self, item, count):
        if count <= 0:
            raise ValueError(count)
        if item in self.items:
            self.items[item] += count
        else:
            self.items[item] = count

    def total(self, prices):
        return sum(prices[item] * count for item, count in self.items.items() if item in prices)


def describe(count):
    if count == 0:
        return "empty"
    if count == 1:
        return "one item"
    return f"{count} items"
"""
    repo = make_repo({"shop/__init__.py": "", "shop/cart.py": shop})
    result = measure_complexity(repo)
    radon = subprocess.run([str(Path(sys.executable).parent / "radon"), "cc", "-a", "shop"], cwd=repo,
                           capture_output=True, text=True, check=True).stdout
    printed = float(re.search(r"Average complexity: [A-F] \(([\d.]+)\)", radon).group(1))
    assert result.average_with_classes == round(printed, 2)
    # Functions and methods only (Cart.add 3, Cart.total 3, describe 3): the class itself is not a fourth block.
    assert [(f.name, f.complexity) for f in sorted(result.worst, key=lambda f: f.line)] == \
        [("Cart.add", 3), ("Cart.total", 3), ("describe", 3)]
    assert result.average == 3.0 and result.average_with_classes == 3.25


def test_complexity_measures_exactly_the_files_coverage_measures(make_repo):
    from assessor.engine.manifest import read_manifest
    from assessor.engine.services import ServicePolicy
    from assessor.engine.toolchains import detect
    from assessor.engine.toolchains.python.coverage_data import measured_files

    repo = make_repo({
        "requirements.txt": "flask\n",
        "app/__init__.py": "",
        "app/core.py": branches("real", 2),
        "gunicorn.conf.py": branches("post_fork", 3),     # server configuration, not the learner's application
        "gunicorn_config.py": branches("on_starting", 3),
        "locustfile.py": branches("load", 3),             # load-test evidence, not application code
        "tools/loose.py": branches("loose", 1),           # not a package: coverage never loads it
    })
    module, detection = detect(repo, manifest=read_manifest(repo))
    plan = module.plan(repo, detection, manifest=read_manifest(repo), policy=ServicePolicy())

    result = module.measure_complexity(plan)

    assert measured_files(repo, repo) == ["app/__init__.py", "app/core.py"]
    assert result.files_analyzed == 2 and [f.name for f in result.worst] == ["real"]
