"""The command line: exit codes, one-line errors, rubric commands."""

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from assessor.cli import main

SHIPPED = sorted(path.stem for path in (Path(__file__).resolve().parent.parent / "rubrics").glob("*.toml"))


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSESSOR_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("ASSESSOR_WORK_ROOT", str(tmp_path / "work"))
    return CliRunner()


def test_rubrics_list_names_every_shipped_rubric(runner):
    result = runner.invoke(main, ["rubrics", "list"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == SHIPPED


def test_rubrics_show_prints_levels_and_gates(runner):
    result = runner.invoke(main, ["rubrics", "show", "scalable-architectures-resilient-core"])
    assert result.exit_code == 0
    assert "pass mark 70% of 100" in result.output
    assert "gate tests-pass" in result.output
    assert "level 0 (0 pts)" in result.output


@pytest.mark.parametrize("command", [
    ["rubrics", "show", "no-such-rubric"],
    ["check", "https://example.org/x.git", "--rubric", "no-such-rubric"],
])
def test_unknown_rubric_is_one_line_and_exit_2(runner, command):
    result = runner.invoke(main, command)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "unknown rubric 'no-such-rubric'" in result.stderr
    assert "scalable-architectures-resilient-core" in result.stderr


def test_validate_shipped_rubrics(runner):
    result = runner.invoke(main, ["rubrics", "validate"])
    assert result.exit_code == 0
    assert result.output.count("ok  ") == len(SHIPPED)


def test_validate_bad_file_names_file_and_field(runner, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\ntitle = "t"\nversion = "1"\ncourse = "c"\npass_mark = 170\ncriteria = []\n')
    result = runner.invoke(main, ["rubrics", "validate", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {bad}: rubric: field 'pass_mark': must be a percentage above 0 and at most 100"


@pytest.mark.parametrize("source", [
    "ext::sh -c touch% /tmp/pwned",
    "--upload-pack=touch /tmp/pwned",
    "https://user:secret@example.org/repo.git",
    "ssh://git@example.org/repo.git",
])
def test_refused_source_is_one_line_exit_2_and_leaves_nothing(runner, tmp_path, source):
    # "--" keeps click from reading an option-shaped source as one of its own options.
    result = runner.invoke(main, ["check", "--rubric", "senior-backend-capstone", "--", source])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "secret" not in result.stderr
    work = tmp_path / "work"
    assert not work.exists() or not any(work.iterdir())


def test_missing_local_repository_is_a_clear_error(runner, tmp_path):
    result = runner.invoke(main, ["check", str(tmp_path / "nowhere"), "--rubric", "senior-backend-capstone"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")


@pytest.fixture
def pending_report():
    from assessor.engine.rubric import parse_rubric

    from tests.web.conftest import build_report
    from tests.web.rubrics import TEST_RUBRIC

    rubric = parse_rubric(TEST_RUBRIC.encode(), source="test-capstone.toml")
    return build_report(rubric, passed=2, line=62.5)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_table_fits_the_terminal_with_ellipses(pending_report, width):
    from assessor.cli import render_report

    table = render_report(pending_report, width=width)
    assert max(len(line) for line in table.splitlines()) <= width
    assert "\x1b[" not in table  # no colour unless asked


def test_a_local_run_says_who_scores_manual_criteria_and_levels_out_of_the_top(pending_report):
    from assessor.cli import render_report

    table = render_report(pending_report, width=200)
    assert "awaiting" not in table and "still to be scored" not in table
    assert "a mentor scores it in a review" in table
    assert "outcome: PENDING (manual criteria are scored by a mentor)" in table
    assert "2/2" in table  # the tests criterion: level 2 of 2
    coloured = render_report(pending_report, width=200, colour=True)
    assert "\x1b[" in coloured and click.unstyle(coloured) == table


@pytest.mark.parametrize(("is_terminal", "environ", "expected"), [
    (True, {}, True),
    (True, {"NO_COLOR": "1"}, False),
    (True, {"NO_COLOR": ""}, True),  # set but empty does not count, as no-color.org says
    (False, {}, False),
])
def test_colour_only_on_a_terminal_and_never_with_no_color(is_terminal, environ, expected):
    from assessor.cli import wants_colour

    assert wants_colour(is_terminal, environ) is expected


def test_a_long_stage_shows_its_running_time_on_a_terminal(capsys):
    import time

    from assessor.cli import StageTimer

    timer = StageTimer(time.monotonic(), enabled=True)
    timer.stage("testing")
    time.sleep(3.2)
    timer.stop()
    err = capsys.readouterr().err
    assert "testing... 2 s" in err or "testing... 3 s" in err
    assert err.endswith("\r" + " " * len("  testing... 3 s") + "\r") or err.endswith("\r" + " " * len("  testing... 2 s") + "\r")
    assert "\x1b" not in err  # blanked with spaces: no escape codes
    quiet = StageTimer(time.monotonic(), enabled=False)  # not a terminal: nothing at all
    quiet.stage("testing")
    quiet.stop()
    assert capsys.readouterr().err == ""
