"""The `assessor` command line: check a capstone, inspect rubrics."""

import os
import shutil
import sys
import textwrap
import threading
import time
from pathlib import Path

import click

from assessor.config import resolve_paths
from assessor.errors import AssessorError
from assessor.engine.intake import SourcePolicy
from assessor.engine.pipeline import PipelineSettings, assess
from assessor.engine.report import Report, report_to_json
from assessor.engine.rubric import Rubric, find_rubric, load_rubric, load_rubrics

EXIT_BAD_INPUT = 2
TAIL_LINES = 15  # enough to show pytest's short summary of what failed
FAILURES_SHOWN = 10


def fail(message: str) -> None:
    """One clear line on stderr and exit status 2: the contract for bad input."""
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


@click.group()
@click.version_option(package_name="capstone-assessor")
def main() -> None:
    """Capstone Assessor: assess backend capstones against a rubric."""


@main.command()
@click.argument("source")
@click.option("--rubric", "rubric_id", required=True, help="Rubric id (see `assessor rubrics list`).")
@click.option("--ref", help="Branch, tag or commit to assess (default: the default branch).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the table.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write the JSON report to this file.")
@click.option("--timeout", type=click.FloatRange(min=1), help="Wall-clock limit in seconds for the test run.")
@click.option("--allow-host", "allowed_hosts", multiple=True, help="Accept only these git hosts (repeatable).")
@click.option("--allow-scheme", "allowed_schemes", multiple=True, type=click.Choice(["https", "http", "ssh", "git"]),
              help="URL schemes to accept besides https (repeatable).")
@click.option("--allow-internal-host", "internal_hosts", multiple=True,
              help="A git host on an internal network address to accept (a self-hosted GitLab; repeatable).")
@click.option("--unsafe-no-sandbox", is_flag=True,
              help="Run the tests without bubblewrap. Only for your own code on your own machine.")
def check(source, rubric_id, ref, as_json, output, timeout, allowed_hosts, allowed_schemes, internal_hosts,
          unsafe_no_sandbox):
    """Assess SOURCE (a git URL or a local repository path) against a rubric."""
    paths = resolve_paths()
    policy = SourcePolicy(
        allowed_schemes=frozenset({"https", *allowed_schemes}),
        allowed_hosts=frozenset(host.lower() for host in allowed_hosts) or None,
        allow_local=True,  # the CLI runs as the person who owns the local files
        internal_hosts=frozenset(host.lower() for host in internal_hosts),
    )
    settings = PipelineSettings(work_root=paths.work_root, cache_dir=paths.cache, source_policy=policy,
                                unsafe_no_sandbox=unsafe_no_sandbox, wall_seconds=timeout)
    started = time.monotonic()
    ticker = StageTimer(started, enabled=sys.stderr.isatty())

    def progress(stage: str, message: str) -> None:
        ticker.clear()
        click.echo(click.style(f"[{time.monotonic() - started:6.1f}s] {stage:<10}", dim=True) + f" {message}", err=True)
        ticker.stage(stage)

    try:
        rubric = find_rubric(rubric_id, paths.rubrics)
        paths.ensure()
        report = assess(source, rubric, settings=settings, ref=ref, progress=progress)
    except AssessorError as error:
        ticker.stop()
        fail(str(error))
    ticker.stop()
    document = report_to_json(report)
    if output:
        output.write_text(document + "\n")
    if as_json:
        click.echo(document)
        return
    colour = wants_colour(sys.stdout.isatty(), os.environ)
    click.echo(render_report(report, width=shutil.get_terminal_size((100, 24)).columns, colour=colour), color=colour)


def wants_colour(is_terminal: bool, environ) -> bool:
    """Colour on a terminal, unless NO_COLOR is set to anything (https://no-color.org)."""
    return is_terminal and not environ.get("NO_COLOR")


class StageTimer:
    """On a terminal, the running stage's elapsed time on one line that rewrites itself each second."""

    def __init__(self, started: float, *, enabled: bool) -> None:
        self.started, self.enabled = started, enabled
        self.current: str | None = None
        self.since = started
        self.shown = 0  # length of the line on screen, to blank it (plain spaces: no escape codes, NO_COLOR-proof)
        self.lock = threading.Lock()
        self.done = threading.Event()
        if enabled:
            threading.Thread(target=self._run, daemon=True).start()

    def stage(self, name: str) -> None:
        with self.lock:
            self.current, self.since = name, time.monotonic()

    def clear(self) -> None:
        if self.enabled:
            with self.lock:
                if self.shown:
                    click.echo("\r" + " " * self.shown + "\r", nl=False, err=True)
                    self.shown = 0

    def stop(self) -> None:
        self.done.set()
        self.clear()

    def _run(self) -> None:
        while not self.done.wait(1.0):
            with self.lock:
                if self.current and time.monotonic() - self.since >= 2:
                    text = f"  {self.current}... {time.monotonic() - self.since:.0f} s"
                    click.echo("\r" + text.ljust(self.shown), nl=False, err=True)
                    self.shown = len(text)


def _wrap(text: str, width: int, indent: str) -> list[str]:
    """Evidence and notes wrap (every word matters); only table cells are cut short."""
    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_long_words=True, break_on_hyphens=False) or [indent]


def _fit(text: str, width: int) -> str:
    """One line of at most `width` characters, an ellipsis where it was cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


OUTCOME_COLOURS = {"pass": "green", "fail": "red", "pending": "yellow"}
STATUS_COLOURS = {"scored": None, "not_measured": "yellow", "pending": "cyan"}
MENTOR_SCORES_IT = "a manual criterion: a mentor scores it in a review (in the web app)"


def render_report(report: Report, *, width: int = 100, colour: bool = False) -> str:
    """A table a person can scan in a terminal of `width` columns (colour only when asked: a TTY, no NO_COLOR)."""
    def paint(text: str, fg: str | None, bold: bool = False) -> str:
        return click.style(text, fg=fg, bold=bold) if colour and (fg or bold) else text

    width = max(width, 60)
    title_width = max(16, width - 42)
    lines = [
        f"{report.rubric.title} (rubric {report.rubric.id} v{report.rubric.version})",
        f"source {report.source}  commit {report.commit[:12]}",
    ]
    if report.toolchain:
        root = report.toolchain["root"]
        lines.append(f"assessed as {report.toolchain['name']}" + ("" if root == "." else f" in {root}/")
                     + f" (found {', '.join(report.toolchain['detected_from'][:3]) or 'its source files'})")
    for started in (report.services or {}).get("started", []):
        state = f"started in {started['seconds']:.2f} s" if started["status"] == "started" else \
            f"did not start: {started['problem']}"
        lines.append(f"service {started['name']} on port {started['port']}: {state}")
    lines = [_fit(line, width) for line in lines]
    lines += [
        "",
        paint(f"{'criterion':<{title_width}} {'status':<13} {'level':>5} {'points':>11} {'weighted':>9}", None, True),
    ]
    for score in report.criteria:
        level = "-" if score.level is None else (f"{score.level}/{score.top_level}" if score.top_level is not None
                                                 else str(score.level))
        points = "-" if score.points is None else f"{score.points:g}/{score.max_points:g}"
        weighted = "-" if score.weighted is None else f"{score.weighted:.1f}/{score.weight:g}"
        status = paint(f"{score.status.replace('_', ' '):<13}", STATUS_COLOURS.get(score.status))
        lines.append(f"{_fit(score.title, title_width):<{title_width}} {status} {level:>5} {points:>11} {weighted:>9}")
        # A local run has no mentor: say who scores a manual criterion rather than that one is awaited.
        evidence = [MENTOR_SCORES_IT] if score.status == "pending" else score.evidence
        for item in evidence:
            lines += _wrap(item, width, "    ")
    if report.failures:
        lines += ["", "failing tests:"]
        for failure in report.failures[:FAILURES_SHOWN]:
            where = f" ({failure['file']}:{failure['line']})" if failure.get("file") else ""
            line = _fit(f"    {failure['outcome']}: {failure['classname']}::{failure['name']}{where}", width)
            lines.append(line.replace(failure["outcome"], paint(failure["outcome"], "red"), 1))
            if failure.get("message"):
                lines += _wrap(failure["message"][:200], width, "        ")
    if report.notes:
        lines += ["", "notes:"]
        for note in report.notes:
            lines += _wrap(f"- {note}", width, "    ")
    if report.output_tail:
        lines += ["", "last lines of the test output:"]
        lines += [_fit(f"    {line}", width) for line in report.output_tail.rstrip().splitlines()[-TAIL_LINES:]]
    lines.append("")
    for gate in report.gates:
        lines.append(_fit(f"gate {gate.id}: {gate.status} ({gate.description})", width))
    score = report.score
    lines.append(_fit(f"automated score {score.automated:.1f} of {score.max:g}; total so far {score.total:.1f} "
                      f"({score.percent:.1f}%), pass mark {score.pass_mark:g}%", width))
    reasons = [reason for reason in score.reasons if "still to be scored" not in reason]
    if report.outcome == "pending":
        reasons.append("manual criteria are scored by a mentor")
    head = f"outcome: {report.outcome.upper()}"
    wrapped = _wrap(head + (f" ({'; '.join(reasons)})" if reasons else ""), width, "")
    lines.append(paint(head, OUTCOME_COLOURS.get(report.outcome), True) + wrapped[0][len(head):])
    lines += wrapped[1:]
    return "\n".join(lines)


@main.group()
def rubrics() -> None:
    """List, show and validate rubrics."""


def _rubrics_or_fail() -> list[Rubric]:
    try:
        return load_rubrics(resolve_paths().rubrics)
    except AssessorError as error:
        fail(str(error))


@rubrics.command("list")
def rubrics_list() -> None:
    """The rubrics this installation assesses against."""
    for rubric in _rubrics_or_fail():
        click.echo(f"{rubric.id:<42} v{rubric.version:<8} {rubric.title}")


@rubrics.command("show")
@click.argument("rubric_id")
def rubrics_show(rubric_id: str) -> None:
    """Criteria, levels and gates of one rubric."""
    try:
        rubric = find_rubric(rubric_id, resolve_paths().rubrics)
    except AssessorError as error:
        fail(str(error))
    click.echo(f"{rubric.title}\ncourse: {rubric.course}\nversion {rubric.version}, sha256 {rubric.sha256}")
    click.echo(f"pass mark {rubric.pass_mark:g}% of {rubric.total_weight:g}")
    for criterion in rubric.criteria:
        click.echo(f"\n{criterion.id} [{criterion.kind}] weight {criterion.weight:g}: {criterion.title}")
        if criterion.traces_to:
            click.echo(f"  assesses: {criterion.traces_to}")
        for artifact in criterion.artifacts:
            click.echo(f"  document {artifact.title}: {', '.join(artifact.patterns)}")
        for level in criterion.levels:
            thresholds = ", ".join(f"{key}={value}" for key, value in level.thresholds.items())
            click.echo(f"  level {level.level} ({level.points:g} pts) {level.descriptor}"
                       + (f" [{thresholds}]" if thresholds else ""))
            for toolchain, own in level.by_toolchain.items():
                click.echo(f"    for {toolchain}: " + ", ".join(f"{key}={value}" for key, value in own.items()))
    for gate in rubric.gates:
        click.echo(f"\ngate {gate.id}: {gate.criterion} at least level {gate.min_level}: {gate.description}")


@rubrics.command("validate")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
def rubrics_validate(files: tuple[Path, ...]) -> None:
    """Check rubric files (default: every shipped rubric); exit 2 on the first problem."""
    try:
        checked = [load_rubric(path) for path in files] if files else load_rubrics(resolve_paths().rubrics)
    except AssessorError as error:
        fail(str(error))
    for rubric in checked:
        click.echo(f"ok  {rubric.path}  ({rubric.id} v{rubric.version}, {len(rubric.criteria)} criteria)")


from assessor.cli.admin import register as _register_admin_commands
_register_admin_commands(main)

from assessor.cli.certificates import register as _register_certificate_commands
_register_certificate_commands(main)

from assessor.cli.demo import demo as _demo_command  # the demo serves with the admin commands' `serve`
main.add_command(_demo_command)
