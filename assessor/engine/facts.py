"""Reduce measurement results to the facts rubric thresholds compare, with evidence a mentor can act on."""

from collections.abc import Sequence
from typing import Any

from assessor.engine.measure.artifacts import section_words
from assessor.engine.measure.outcomes import FLAG_VOIDS

Facts = dict[str, Any]
EXPECTED_PATTERNS_SHOWN = 3  # where a missing document belongs: the first few of the rubric's names

# How many of the weakest files or worst functions the evidence names.
EVIDENCE_ITEMS = 5


def test_facts(test_run) -> tuple[Facts, list[str]]:
    """Facts for a `tests` criterion. A run that produced no trustworthy result scores as no tests passed."""
    evidence = _run_evidence(test_run)
    counts = test_run.tests
    if counts is None:
        evidence.insert(0, "no trustworthy test results were produced")
        return {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "total": 0, "all_pass": False}, evidence
    broken = counts.failed + counts.errors
    evidence.insert(0, f"{counts.passed} passed, {counts.failed} failed, {counts.errors} errors, {counts.skipped} skipped")
    if counts.unavailable:
        evidence.insert(1, "; ".join(f"{count} more need{'s' if count == 1 else ''} {server} (not available here)"
                                     for server, count in counts.needs.items()))
    elif counts.total == 0:
        evidence.insert(1, "no tests were collected")
    return {
        "passed": counts.passed,
        "failed": counts.failed,
        "errors": counts.errors,
        "skipped": counts.skipped,
        "total": counts.total,
        "all_pass": counts.passed > 0 and broken == 0,
    }, evidence


def strength_facts(test_run) -> tuple[Facts | None, list[str]]:
    """Facts for a `strength` criterion: the share of sampled changes the tests noticed; None when none could run."""
    evidence = _run_evidence(test_run)
    strength = test_run.strength
    if strength is None or strength.noticed_percent is None:
        return None, evidence
    evidence.insert(0, f"{strength.summary()} ({strength.noticed_percent:.0f}%), each run in a fresh sandbox with "
                       f"only the tests that ran the changed line")
    for result in strength.survivors[:EVIDENCE_ITEMS]:
        evidence.append(f"{result.mutant.file}:{result.mutant.line}: {result.mutant.describe()} went unnoticed")
    return {"noticed_percent": strength.noticed_percent}, evidence


def strength_unmeasured(test_run) -> str:
    """Why no share of noticed changes could be given."""
    strength = test_run.strength
    if strength is None:
        if test_run.coverage is None:
            return "no trustworthy coverage, so no covered line to change"
        return "no test passed, so no change could be noticed"
    return strength.notes[0] if strength.notes else "no sampled change could be run"


def coverage_unmeasured(test_run) -> str | None:
    """Why coverage says nothing about the tests: none of them ran (pytest could not start, or found none), so
    the only lines run were those executed on import. A run whose results were voided is not excused here."""
    if any("tests" in FLAG_VOIDS.get(flag.code, frozenset()) for flag in test_run.flags) or test_run.sandbox.killed_by:
        return None
    if test_run.tests is None or test_run.tests.ran == 0:
        return "no test ran, so coverage (only the lines run on import) was not measured"
    return None


def coverage_facts(test_run) -> tuple[Facts, list[str]]:
    """Facts for a `coverage` criterion; figures the integrity checks threw out count as 0."""
    evidence = _run_evidence(test_run)
    coverage = test_run.coverage
    if coverage is None:
        evidence.insert(0, "no trustworthy coverage data was produced")
        return {"line_percent": 0.0, "branch_percent": 0.0}, evidence
    branch = coverage.branch_percent
    evidence.insert(0, (
        f"line {coverage.line_percent:.1f}%, branch "
        + ("n/a (no branches)" if branch is None else f"{branch:.1f}%")
        + f" over {len(coverage.files)} files"
    ))
    if coverage.excluded_lines:
        count = coverage.excluded_lines
        evidence.insert(1, f"{count} excluded from measurement by coverage pragmas or ignore comments "
                           f"(honoured as the coverage tools do, and counted here)")
    weakest = sorted(coverage.files, key=lambda item: item.line_percent)[:EVIDENCE_ITEMS]
    for item in weakest:
        if item.line_percent < 100:
            missed = len(item.missing_lines)
            evidence.append(f"{item.path}: line {item.line_percent:.1f}%, {missed} line{'' if missed == 1 else 's'} "
                            f"not run")
    # Code without a single branch has nothing to miss, so it meets any branch threshold.
    return {"line_percent": coverage.line_percent, "branch_percent": 100.0 if branch is None else branch}, evidence


def _run_evidence(test_run) -> list[str]:
    lines = []
    sandbox = test_run.sandbox
    if sandbox.killed_by:
        lines.append(f"the run was stopped by the {sandbox.killed_by.replace('_', ' ')} limit")
    if sandbox.backend == "none":
        lines.append("ran WITHOUT the sandbox (--unsafe-no-sandbox)")
    lines.extend(f"integrity: {flag.message}" for flag in test_run.flags)
    return lines


def complexity_facts(complexity) -> tuple[Facts | None, list[str]]:
    """Facts for a `complexity` criterion, or None when there is no code to measure."""
    evidence = [f"{problem.path}: {problem.reason}" for problem in complexity.problems]
    if complexity.average is None:
        return None, evidence
    worst = complexity.worst[0].complexity if complexity.worst else 0
    summary = (
        f"average complexity {complexity.average:.2f} over {complexity.blocks} blocks in {complexity.files_analyzed} files; "
        f"{complexity.share_c_or_worse:.1f}% ranked C or worse"
    )
    if complexity.maintainability is not None:
        summary += f"; maintainability index {complexity.maintainability:.1f}"
    elif getattr(complexity, "analyser", "radon") == "lizard":
        summary += "; no maintainability index (lizard computes none for JavaScript and TypeScript)"
    evidence.insert(0, summary)
    for function in complexity.worst[:EVIDENCE_ITEMS]:
        if function.rank not in ("A", "B"):
            evidence.append(f"{function.path}:{function.line} {function.name}: complexity {function.complexity} (rank {function.rank})")
    return {
        "average": complexity.average,
        "worst": worst,
        "share_c_or_worse": complexity.share_c_or_worse,
        # No analysable file means no index: treat it as unmet rather than perfect.
        "maintainability": complexity.maintainability,
    }, evidence


def artifact_facts(results: Sequence) -> tuple[Facts, list[str]]:
    """Facts for an `artifact` criterion: how many documents were found, and how many are complete."""
    evidence = []
    for result in results:
        sections = "; ".join(section_words(section) for section in result.missing_sections)
        fields = ", ".join(result.missing_fields)
        if result.status == "missing":
            shown = [f"`{pattern}`" for pattern in result.expected[:EXPECTED_PATTERNS_SHOWN]]
            more = len(result.expected) - len(shown)
            where = (" or ".join(shown) or "the path the rubric names") + (
                f" (or {more} other name{'s' if more != 1 else ''} the rubric accepts)" if more > 0 else "")
            wanted = "".join([f", with the sections {sections}" if sections else "",
                              f", with the fields {fields}" if fields else ""])
            evidence.append(f"{result.title}: missing; add it as {where}{wanted}")
        elif result.status == "complete":
            evidence.append(f"{result.title}: complete ({result.path})")
        else:
            gaps = [f"add the sections {sections}"] if sections else []
            if fields:
                gaps.append(f"add the fields {fields}")
            # Without a missing section or field, what is wrong (too short, empty) is in its problems below.
            evidence.append(f"{result.title}: incomplete ({result.path})" + (": " + "; ".join(gaps) if gaps else ""))
        evidence.extend(f"{result.title}: {problem}" for problem in result.problems)
    return {
        "found": sum(1 for result in results if result.status != "missing"),
        "complete": sum(1 for result in results if result.status == "complete"),
    }, evidence
