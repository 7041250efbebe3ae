"""Written artifacts on real checkouts: finding them, sections, length, structured fields, hostile links."""

import json
import os

import pytest

from assessor.errors import MeasureError
from assessor.engine.measure import artifacts
from assessor.engine.measure.artifacts import ArtifactSpec, check_artifacts

RUNBOOK = ArtifactSpec(id="runbook", title="Runbook", patterns=("docs/runbook*.md", "docs/**/runbook*.md"))
SLO_FIELDS = ("SLI|indicator", "objective|target", "window|period", "error budget|error_budget")
SLOS = ArtifactSpec(id="slos", title="SLOs", patterns=("docs/slo*.yaml", "docs/slo*.toml", "docs/slo*.json",
                                                       "docs/slo*.md"), fields=SLO_FIELDS)


def prose(words: int) -> str:
    return " ".join(["word"] * words) + "\n"


def check_one(repo, spec):
    [result] = check_artifacts(repo, [spec])
    return result


def test_missing_artifact(make_repo):
    result = check_one(make_repo({"README.md": "# Shop\n"}), RUNBOOK)

    assert (result.status, result.path, result.words) == ("missing", None, 0)
    assert result.missing_sections == () and result.problems == ()


@pytest.mark.parametrize(
    "path",
    ["docs/runbook.md", "docs/Runbook.md", "docs/RUNBOOK-payments.md", "docs/ops/deep/runbook.md"],
)
def test_patterns_match_case_insensitively_and_double_star_spans_directories(make_repo, path):
    result = check_one(make_repo({path: "# Runbook\n"}), RUNBOOK)

    assert (result.status, result.path) == ("complete", path)


def test_dependency_and_tooling_directories_are_not_searched(make_repo):
    spec = ArtifactSpec(id="runbook", title="Runbook", patterns=("**/runbook.md",))
    repo = make_repo({"node_modules/lib/runbook.md": "# Runbook\n", "env/pyvenv.cfg": "home = /usr\n",
                      "env/lib/runbook.md": "# Runbook\n"})

    assert check_one(repo, spec).status == "missing"


ADR = """\
# ADR 3: Pick the queue

1. Context
==========

Orders arrive in bursts.

## Considered options:

- Redis

### Decision outcome

We use Redis.

```bash
# Consequences
echo "a comment in a code block is not a heading"
```
"""


@pytest.mark.parametrize(
    ("wanted", "missing"),
    [
        (("Context",), ()),  # setext heading with numbering
        (("Alternatives|Options considered",), ()),  # alternative, words in another order, trailing colon
        (("Decision",), ()),  # "Decision outcome" contains the wanted word
        (("ADR",), ()),  # the title is a heading too
        (("Consequences",), ("Consequences",)),  # only inside a code fence
        (("Status", "Context", "Risks|Trade-offs"), ("Status", "Risks|Trade-offs")),
    ],
)
def test_sections_are_found_by_heading_words(make_repo, wanted, missing):
    spec = ArtifactSpec(id="adr", title="ADR", patterns=("docs/adr/*.md",), sections=wanted)

    result = check_one(make_repo({"docs/adr/0003-queue.md": ADR}), spec)

    assert result.missing_sections == missing
    assert result.status == ("incomplete" if missing else "complete")


def test_restructuredtext_titles_count_as_sections(make_repo):
    document = "Runbook\n=======\n\nSymptoms\n--------\n\nHigh latency.\n\nRollback\n~~~~~~~~\n\nRedeploy.\n"
    spec = ArtifactSpec(id="runbook", title="Runbook", patterns=("docs/runbook.rst",),
                        sections=("Alerts|Symptoms", "Rollback", "Escalation"))

    result = check_one(make_repo({"docs/runbook.rst": document}), spec)

    assert result.missing_sections == ("Escalation",)


def test_short_document_is_incomplete_and_code_blocks_do_not_count_as_words(make_repo):
    document = "# Runbook\n\n" + prose(118) + "```\n" + prose(500) + "```\n<!-- " + prose(200) + "-->\n"
    spec = ArtifactSpec(id="runbook", title="Runbook", patterns=("docs/runbook.md",), min_words=300)

    result = check_one(make_repo({"docs/runbook.md": document}), spec)

    assert result.status == "incomplete"
    assert result.words == 119  # "Runbook" plus 118 words of prose
    assert "has 119 words; at least 300 expected" in result.problems


SLO_YAML = """\
service: checkout
slos:
  - name: availability
    sli: ratio of 2xx responses
    objective: 99.9
    window: 28d
    {budget}
"""
SLO_TOML = """\
[[slo]]
name = "latency"
indicator = "p95 below 300 ms"
target = 0.99
period = "30d"
{budget}
"""
SLO_JSON = '{{"slos": [{{"sli": "errors", "objective": 99.5, "window": "7d"{budget}}}]}}'
SLO_TABLE = """\
# SLOs

| SLI | Objective | Window |{budget_header}
|-----|-----------|--------|{budget_rule}
| availability | 99.9% | 28 days |{budget_cell}
"""
SLO_DEFINITIONS = """\
# Checkout SLO

- **SLI**: share of successful requests
- Objective: 99.9%
* __Window:__ rolling 28 days
{budget}
"""


@pytest.mark.parametrize(
    ("path", "with_budget", "without_budget"),
    [
        ("docs/slo.yaml", SLO_YAML.format(budget="errorBudget: 43m"), SLO_YAML.format(budget="")),
        ("docs/slo.toml", SLO_TOML.format(budget='error-budget = "0.01"'), SLO_TOML.format(budget="")),
        ("docs/slo.json", SLO_JSON.format(budget=', "error_budget_minutes": 40'), SLO_JSON.format(budget="")),
        ("docs/slo.md",
         SLO_TABLE.format(budget_header=" Error budget |", budget_rule="---|", budget_cell=" 43 min |"),
         SLO_TABLE.format(budget_header="", budget_rule="", budget_cell="")),
        ("docs/slo.md", SLO_DEFINITIONS.format(budget="## Error budget\n\n43 minutes a month.\n"),
         SLO_DEFINITIONS.format(budget="")),
    ],
    ids=["yaml-nested-list", "toml", "json", "markdown-table", "markdown-definitions"],
)
def test_slo_fields_with_and_without_error_budget(make_repo, path, with_budget, without_budget):
    complete = check_one(make_repo({path: with_budget}), SLOS)
    lacking = check_one(make_repo({path: without_budget}), SLOS)

    assert (complete.status, complete.path, complete.missing_fields) == ("complete", path, ())
    assert (lacking.status, lacking.missing_fields) == ("incomplete", ("error budget|error_budget",))


def test_vertical_markdown_table_and_prose_dashes(make_repo):
    document = ("| Field | Value |\n|---|---|\n| SLI | 2xx ratio |\n| Target | 99.9% |\n| Error budget | |\n\n"
                "Window \u2014 rolling 28 days, which is prose rather than a definition.\n")

    result = check_one(make_repo({"docs/slo.md": document}), SLOS)

    # "Error budget" has an empty value cell, and a dash is not a definition: both still missing.
    assert result.missing_fields == ("window|period", "error budget|error_budget")


def test_yaml_key_without_a_value_does_not_count(make_repo):
    result = check_one(make_repo({"docs/slo.yaml": SLO_YAML.format(budget="error_budget:")}), SLOS)

    assert result.missing_fields == ("error budget|error_budget",)


@pytest.mark.parametrize(
    ("path", "content", "kind"),
    [
        ("docs/slo.yaml", "slos:\n  - sli: x\n   objective: [unclosed\n", "YAML"),
        ("docs/slo.toml", "[slo\nsli = 1\n", "TOML"),
        ("docs/slo.json", '{"sli": ', "JSON"),
    ],
)
def test_unparsable_structured_file_is_a_problem_not_an_exception(make_repo, path, content, kind):
    result = check_one(make_repo({path: content}), SLOS)

    assert (result.status, result.path) == ("incomplete", path)
    assert result.missing_fields == SLO_FIELDS
    [problem] = result.problems
    assert problem.startswith(f"could not be parsed as {kind} (")
    assert problem.endswith("fields counted as missing: " + ", ".join(SLO_FIELDS))


def test_yaml_alias_bomb_is_walked_once(make_repo):
    lines = ["a0: &a0 {sli: x, objective: 1, window: 7d, error_budget: 1}"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)]

    result = check_one(make_repo({"docs/slo.yaml": "\n".join(lines) + "\n"}), SLOS)

    assert result.status == "complete"


def test_symlink_to_a_host_file_is_not_read(make_repo):
    repo = make_repo({"README.md": "# Shop\n"})
    (repo / "docs").mkdir()
    os.symlink("/etc/passwd", repo / "docs" / "runbook.md")

    result = check_one(repo, RUNBOOK)

    assert (result.status, result.path, result.words) == ("missing", None, 0)
    assert result.problems == ("docs/runbook.md is a symbolic link; not read",)
    assert "root" not in json.dumps(result.to_dict())


def test_symlinked_directory_is_not_walked(make_repo):
    repo = make_repo({"README.md": "# Shop\n"})
    os.symlink("/", repo / "docs")
    spec = ArtifactSpec(id="passwd", title="Host file", patterns=("docs/etc/passwd", "**/passwd", "**/hostname"))

    result = check_one(repo, spec)

    assert result.status == "missing"
    assert result.problems == ("docs/ is a symbolic link to a directory; not followed",)


def test_real_file_is_used_when_a_symlink_also_matches(make_repo):
    repo = make_repo({"docs/runbook.md": "# Runbook\n"})
    os.symlink("/etc/passwd", repo / "docs" / "runbook-old.md")

    result = check_one(repo, RUNBOOK)

    assert (result.status, result.path, result.problems) == ("complete", "docs/runbook.md", ())


def test_several_matches_choose_the_one_meeting_most_checks(make_repo):
    spec = ArtifactSpec(id="adr", title="ADR", patterns=("docs/adr/*.md",),
                        sections=("Context", "Decision", "Consequences"))
    repo = make_repo({
        "docs/adr/01.md": "# Context\n",
        "docs/adr/0002-use-a-queue.md": "# Context\n## Decision\n## Consequences\n",
        "docs/adr/0003-use-postgres.md": "# Context\n## Decision\n",
    })

    result = check_one(repo, spec)

    assert (result.status, result.path) == ("complete", "docs/adr/0002-use-a-queue.md")
    assert result.problems == (
        "3 files matched; chose docs/adr/0002-use-a-queue.md, which meets the most checks "
        "(also matched: docs/adr/01.md, docs/adr/0003-use-postgres.md)",
    )


def test_equally_good_matches_choose_the_shortest_path(make_repo):
    repo = make_repo({"docs/ops/runbook.md": "# Runbook\n", "docs/runbook.md": "# Runbook\n"})

    assert check_one(repo, RUNBOOK).path == "docs/runbook.md"


@pytest.mark.parametrize(
    ("content", "problem"),
    [("  \n\n", "docs/runbook.md is empty"), (prose(400), "docs/runbook.md is over 1 KB; only the start was checked")],
)
def test_empty_or_oversized_documents_say_so(make_repo, monkeypatch, content, problem):
    monkeypatch.setattr(artifacts, "MAX_READ_BYTES", 1024)

    result = check_one(make_repo({"docs/runbook.md": content}), RUNBOOK)

    assert problem in result.problems
    assert result.words <= 1024 // len("word ") + 1


def test_results_come_back_in_spec_order_as_json_ready_dicts(make_repo):
    repo = make_repo({"docs/runbook.md": "# Runbook\n"})

    results = [result.to_dict() for result in check_artifacts(repo, [SLOS, RUNBOOK])]

    assert json.loads(json.dumps(results)) == results
    assert [(r["id"], r["status"]) for r in results] == [("slos", "missing"), ("runbook", "complete")]
    assert set(results[0]) == {"id", "title", "status", "path", "missing_sections", "missing_fields", "words",
                               "problems", "expected"}
    assert results[0]["expected"] == list(SLOS.patterns)  # where a missing document belongs


def test_a_missing_document_says_where_it_belongs_and_what_it_needs_in_words(make_repo):
    from assessor.engine.facts import artifact_facts

    spec = ArtifactSpec(id="adr", title="Decision memo", patterns=("docs/adr/*.md", "ADR.md"),
                        sections=("Context", "Alternatives|Options considered|Options"), fields=("Status",))
    repo = make_repo({"README.md": "# Service\n"})
    facts, evidence = artifact_facts(check_artifacts(repo, [spec]))
    assert facts == {"found": 0, "complete": 0}
    assert evidence[0] == ("Decision memo: missing; add it as `docs/adr/*.md` or `ADR.md`, with the sections Context; "
                           "Alternatives (or Options considered, Options), with the fields Status")
    assert "|" not in evidence[0]
    repo = make_repo({"ADR.md": "# Memo\n\n## Context\n\nWhy.\n"})
    _, evidence = artifact_facts(check_artifacts(repo, [spec]))
    assert evidence[0] == ("Decision memo: incomplete (ADR.md): add the sections Alternatives (or Options considered, "
                           "Options); add the fields Status")


def test_missing_checkout_is_a_measure_error(tmp_path):
    with pytest.raises(MeasureError, match="not a directory"):
        check_artifacts(tmp_path / "nowhere", [RUNBOOK])
