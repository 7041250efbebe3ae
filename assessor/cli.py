"""The `assessor` command line: check a capstone, inspect rubrics."""

import sys
import time
from pathlib import Path

import click

from assessor.config import resolve_paths
from assessor.errors import AssessorError
from assessor.intake import SourcePolicy
from assessor.pipeline import PipelineSettings, assess
from assessor.report import Report, report_to_json
from assessor.rubric import Rubric, find_rubric, load_rubric, load_rubrics

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

    def progress(stage: str, message: str) -> None:
        click.echo(click.style(f"[{time.monotonic() - started:6.1f}s] {stage:<10}", dim=True) + f" {message}", err=True)

    try:
        rubric = find_rubric(rubric_id, paths.rubrics)
        paths.ensure()
        report = assess(source, rubric, settings=settings, ref=ref, progress=progress)
    except AssessorError as error:
        fail(str(error))
    document = report_to_json(report)
    if output:
        output.write_text(document + "\n")
    click.echo(document if as_json else render_report(report))


def render_report(report: Report) -> str:
    """A table a person can scan in a terminal."""
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
    lines += [
        "",
        f"{'criterion':<34} {'status':<13} {'level':>5} {'points':>11} {'weighted':>9}",
    ]
    for score in report.criteria:
        level = "-" if score.level is None else str(score.level)
        points = "-" if score.points is None else f"{score.points:g}/{score.max_points:g}"
        weighted = "-" if score.weighted is None else f"{score.weighted:.1f}/{score.weight:g}"
        lines.append(f"{score.title[:34]:<34} {score.status:<13} {level:>5} {points:>11} {weighted:>9}")
        for item in score.evidence:
            lines.append(f"    {item}")
    if report.failures:
        lines += ["", "failing tests:"]
        for failure in report.failures[:FAILURES_SHOWN]:
            where = f" ({failure['file']}:{failure['line']})" if failure.get("file") else ""
            lines.append(f"    {failure['outcome']}: {failure['classname']}::{failure['name']}{where}")
            if failure.get("message"):
                lines.append(f"        {failure['message'][:200]}")
    if report.notes:
        lines += ["", "notes:"]
        lines += [f"    - {note}" for note in report.notes]
    if report.output_tail:
        lines += ["", "last lines of the test output:"]
        lines += [f"    {line}" for line in report.output_tail.rstrip().splitlines()[-TAIL_LINES:]]
    lines.append("")
    for gate in report.gates:
        lines.append(f"gate {gate.id}: {gate.status} ({gate.description})")
    score = report.score
    lines.append(f"automated score {score.automated:.1f} of {score.max:g}; total so far {score.total:.1f} "
                 f"({score.percent:.1f}%), pass mark {score.pass_mark:g}%")
    lines.append(f"outcome: {report.outcome.upper()}" + (f" ({'; '.join(score.reasons)})" if score.reasons else ""))
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


from assessor.cli_admin import register as _register_admin_commands
_register_admin_commands(main)

from assessor.cli_certificates import register as _register_certificate_commands
_register_certificate_commands(main)
