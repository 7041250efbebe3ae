"""The rubric validator: every problem is one RubricError naming the file, the criterion and the field."""

import hashlib

import pytest

from assessor.errors import RubricError
from assessor.engine.rubric import find_rubric, load_rubric, load_rubrics, parse_rubric

SOURCE = "rubrics/demo.toml"

# A small valid rubric; every invalid case below is this text with one edit, so each case tests one thing.
# Descriptors are unique so that an edit can find the level it means.
BASE = '''\
id = "demo"
title = "Demo capstone"
course = "Demo course"
version = "1.0.0"
pass_mark = 70
description = "A rubric for the validator's tests."

[limits]
wall_seconds = 600

[[criteria]]
id = "suite"
kind = "tests"
title = "Tests pass"
traces_to = "suite goal"
weight = 40

[[criteria.levels]]
level = 0
points = 0
descriptor = "suite floor"

[[criteria.levels]]
level = 1
points = 2
descriptor = "suite green"
min_tests = 5
all_pass = true

[[criteria]]
id = "cov"
kind = "coverage"
title = "Coverage"
weight = 20

[[criteria.levels]]
level = 0
points = 0
descriptor = "cov floor"

[[criteria.levels]]
level = 1
points = 1
descriptor = "cov good"
min_line = 60

[[criteria]]
id = "docs"
kind = "artifact"
title = "Docs"
traces_to = "docs goal"
weight = 20

[[criteria.artifacts]]
id = "runbook"
title = "Runbook"
patterns = ["docs/runbook*.md"]
sections = ["Rollback"]
min_words = 10

[[criteria.levels]]
level = 0
points = 0
descriptor = "docs floor"

[[criteria.levels]]
level = 1
points = 1
descriptor = "docs found"
min_found = 1

[[criteria]]
id = "review"
kind = "manual"
title = "Mentor review"
traces_to = "review goal"
weight = 20

[[criteria.levels]]
level = 0
points = 0
descriptor = "review weak"

[[criteria.levels]]
level = 1
points = 1
descriptor = "review strong"

[[gates]]
id = "green"
criterion = "suite"
min_level = 1
description = "The suite must pass."
'''

COV_GOOD_LEVEL = '''[[criteria.levels]]
level = 1
points = 1
descriptor = "cov good"
min_line = 60
'''


def edit(text: str, old: str, new: str) -> str:
    """`text` with the one occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def variant(old: str, new: str) -> str:
    return edit(BASE, old, new)


# A rubric with only the required top-level fields, for criteria lists the BASE edits cannot express.
HEADER = 'id = "demo"\ntitle = "t"\ncourse = "c"\nversion = "1"\npass_mark = 70\n'


def parse(text: str | bytes):
    return parse_rubric(text.encode() if isinstance(text, str) else text, source=SOURCE)


def test_base_is_valid():
    rubric = parse(BASE)
    assert rubric.id == "demo"
    assert [criterion.id for criterion in rubric.criteria] == ["suite", "cov", "docs", "review"]
    assert rubric.total_weight == 100
    assert rubric.limits == {"wall_seconds": 600}
    assert rubric.path == SOURCE


# Each case: (name, text, fragments the message must contain besides the file name).
INVALID = [
    ("bad toml", 'id = "demo"\ntitle = \n', ["not valid TOML"]),
    ("not utf-8", b'id = "d\xffmo"\n', ["not UTF-8"]),
    ("missing id", variant('id = "demo"\n', ""), ["rubric:", "field 'id'", "is required"]),
    ("bad id characters", variant('id = "demo"', 'id = "Demo_Rubric"'), ["rubric:", "field 'id'", "'Demo_Rubric'"]),
    ("id with spaces", variant('id = "demo"', 'id = "my rubric"'), ["rubric:", "field 'id'"]),
    ("id with trailing newline", variant('id = "demo"', 'id = "demo\\n"'), ["rubric:", "field 'id'"]),
    ("id of the wrong type", variant('id = "demo"', "id = 7"), ["rubric:", "field 'id'", "must be text"]),
    ("empty title", variant('title = "Demo capstone"', 'title = "  "'), ["rubric:", "field 'title'", "must not be empty"]),
    ("missing version", variant('version = "1.0.0"\n', ""), ["rubric:", "field 'version'", "is required"]),
    ("pass mark 0", variant("pass_mark = 70", "pass_mark = 0"), ["rubric:", "field 'pass_mark'", "percentage"]),
    ("pass mark above 100", variant("pass_mark = 70", "pass_mark = 101"), ["rubric:", "field 'pass_mark'"]),
    ("pass mark text", variant("pass_mark = 70", 'pass_mark = "70%"'), ["rubric:", "field 'pass_mark'", "must be a number, not text"]),
    ("unknown top-level field", variant('version = "1.0.0"', 'version = "1.0.0"\ntitel = "typo"'),
     ["rubric:", "field 'titel'", "not a known field"]),
    ("bad criterion id", variant('id = "suite"', 'id = "Suite!"'), ["criterion 'Suite!'", "field 'id'"]),
    ("unknown kind", variant('kind = "tests"', 'kind = "unit-tests"'), ["criterion 'suite'", "field 'kind'", "'unit-tests'"]),
    ("missing kind", variant('kind = "tests"\n', ""), ["criterion 'suite'", "field 'kind'", "is required"]),
    ("weight 0", variant("weight = 40", "weight = 0"), ["criterion 'suite'", "field 'weight'", "more than 0"]),
    ("negative weight", variant("weight = 40", "weight = -5"), ["criterion 'suite'", "field 'weight'", "more than 0"]),
    ("weight true", variant("weight = 40", "weight = true"), ["criterion 'suite'", "field 'weight'", "must be a number"]),
    ("weight infinite", variant("weight = 40", "weight = inf"), ["criterion 'suite'", "field 'weight'", "finite"]),
    ("one level only", variant(COV_GOOD_LEVEL, ""), ["criterion 'cov'", "field 'levels'", "at least two levels"]),
    ("no levels", edit(variant(COV_GOOD_LEVEL, ""), '[[criteria.levels]]\nlevel = 0\npoints = 0\ndescriptor = "cov floor"\n', ""),
     ["criterion 'cov'", "field 'levels'", "is required"]),
    ("two levels with one number", variant('level = 1\npoints = 1\ndescriptor = "cov good"', 'level = 0\npoints = 1\ndescriptor = "cov good"'),
     ["criterion 'cov'", "field 'levels'", "same number"]),
    ("level not a table", edit(variant(COV_GOOD_LEVEL, ""), '[[criteria.levels]]\nlevel = 0\npoints = 0\ndescriptor = "cov floor"\n',
                               "levels = [1, 2]\n"), ["criterion 'cov' levels[0]", "must be a table"]),
    ("points falling with level", variant('points = 0\ndescriptor = "suite floor"', 'points = 3\ndescriptor = "suite floor"'),
     ["criterion 'suite'", "field 'levels'", "level 1 is worth fewer points than level 0"]),
    ("top level worth nothing", variant('points = 1\ndescriptor = "review strong"', 'points = 0\ndescriptor = "review strong"'),
     ["criterion 'review'", "field 'levels'", "more than 0 points"]),
    ("negative points", variant('points = 0\ndescriptor = "suite floor"', 'points = -1\ndescriptor = "suite floor"'),
     ["criterion 'suite' levels[0]", "field 'points'", "0 or more"]),
    ("negative level number", variant('level = 0\npoints = 0\ndescriptor = "suite floor"', 'level = -1\npoints = 0\ndescriptor = "suite floor"'),
     ["criterion 'suite' levels[0]", "field 'level'", "0 or more"]),
    ("missing descriptor", variant('descriptor = "cov good"\n', ""), ["criterion 'cov' levels[1]", "field 'descriptor'", "is required"]),
    ("floor level with a threshold", variant('descriptor = "suite floor"', 'descriptor = "suite floor"\nmin_tests = 1'),
     ["criterion 'suite'", "field 'levels'", "floor", "no thresholds"]),
    ("higher level without a threshold", variant('descriptor = "cov good"\nmin_line = 60', 'descriptor = "cov good"'),
     ["criterion 'cov'", "field 'levels'", "level 1 sets no threshold"]),
    ("min_line 150", variant("min_line = 60", "min_line = 150"), ["criterion 'cov' levels[1]", "field 'min_line'", "between 0 and 100"]),
    ("min_line negative", variant("min_line = 60", "min_line = -1"), ["criterion 'cov' levels[1]", "field 'min_line'", "between 0 and 100"]),
    ("negative min_tests", variant("min_tests = 5", "min_tests = -5"), ["criterion 'suite' levels[1]", "field 'min_tests'", "0 or more"]),
    ("all_pass as text", variant("all_pass = true", 'all_pass = "yes"'),
     ["criterion 'suite' levels[1]", "field 'all_pass'", "must be true or false, not text"]),
    ("min_tests fractional", variant("min_tests = 5", "min_tests = 5.5"),
     ["criterion 'suite' levels[1]", "field 'min_tests'", "must be a whole number, not a number"]),
    ("min_tests boolean", variant("min_tests = 5", "min_tests = true"),
     ["criterion 'suite' levels[1]", "field 'min_tests'", "must be a whole number"]),
    ("min_line as text", variant("min_line = 60", 'min_line = "60"'), ["criterion 'cov' levels[1]", "field 'min_line'", "must be a number, not text"]),
    ("unknown criterion field (typo)", variant('traces_to = "suite goal"', 'traces_too = "suite goal"'),
     ["criterion 'suite'", "field 'traces_too'", "not a known field"]),
    ("unknown threshold (typo)", variant("min_tests = 5", "min_test = 5"),
     ["criterion 'suite' levels[1]", "field 'min_test'", "not a known field"]),
    ("threshold of another kind", variant("min_line = 60", "min_tests = 60"),
     ["criterion 'cov' levels[1]", "field 'min_tests'", "not a known field"]),
    ("threshold on a manual level", variant('descriptor = "review strong"', 'descriptor = "review strong"\nmin_tests = 1'),
     ["criterion 'review' levels[1]", "field 'min_tests'", "not a known field"]),
    ("artifacts on a non-artifact criterion", variant('title = "Coverage"', 'title = "Coverage"\nartifacts = []'),
     ["criterion 'cov'", "field 'artifacts'", "not a known field"]),
    ("gate naming an unknown criterion", variant('criterion = "suite"', 'criterion = "suites"'),
     ["gate 'green'", "field 'criterion'", "'suites'"]),
    ("gate min_level not a level", variant("min_level = 1", "min_level = 5"),
     ["gate 'green'", "field 'min_level'", "5 is not a level of 'suite'"]),
    ("gate without description", variant('description = "The suite must pass."\n', ""),
     ["gate 'green'", "field 'description'", "is required"]),
    ("gate with a bad id", variant('id = "green"', 'id = "Green Gate"'), ["gate #1", "field 'id'"]),
    ("duplicate gate id", BASE + '\n[[gates]]\nid = "green"\ncriterion = "cov"\nmin_level = 1\ndescription = "again"\n',
     ["field 'gates'", "same id"]),
    ("duplicate criterion id", variant('id = "cov"', 'id = "suite"'), ["criterion 'suite'", "field 'id'", "used twice"]),
    ("criteria not a list", HEADER + 'criteria = "all"\n', ["rubric:", "field 'criteria'", "must be a list"]),
    ("no criteria", HEADER + "criteria = []\n", ["rubric:", "field 'criteria'", "at least one criterion"]),
    ("criterion not a table", HEADER + "criteria = [1]\n", ["criterion #1", "must be a table"]),
    ("artifact criterion without artifacts", variant(
        '[[criteria.artifacts]]\nid = "runbook"\ntitle = "Runbook"\npatterns = ["docs/runbook*.md"]\nsections = ["Rollback"]\nmin_words = 10\n', ""),
     ["criterion 'docs'", "field 'artifacts'", "is required"]),
    ("artifact without patterns", variant('patterns = ["docs/runbook*.md"]\n', ""),
     ["criterion 'docs' artifacts[0]", "field 'patterns'", "is required"]),
    ("artifact with empty patterns", variant('patterns = ["docs/runbook*.md"]', "patterns = []"),
     ["criterion 'docs' artifacts[0]", "field 'patterns'", "at least one glob pattern"]),
    ("artifact pattern with ..", variant('patterns = ["docs/runbook*.md"]', 'patterns = ["docs/../../etc/*.md"]'),
     ["criterion 'docs' artifacts[0]", "field 'patterns'", "'docs/../../etc/*.md'", "stay inside"]),
    ("artifact pattern absolute", variant('patterns = ["docs/runbook*.md"]', 'patterns = ["/etc/passwd"]'),
     ["criterion 'docs' artifacts[0]", "field 'patterns'", "'/etc/passwd'"]),
    ("artifact pattern empty string", variant('patterns = ["docs/runbook*.md"]', 'patterns = [""]'),
     ["criterion 'docs' artifacts[0]", "field 'patterns'", "non-empty strings"]),
    ("artifact sections not a list", variant('sections = ["Rollback"]', 'sections = "Rollback"'),
     ["criterion 'docs' artifacts[0]", "field 'sections'", "must be a list, not text"]),
    ("artifact negative min_words", variant("min_words = 10", "min_words = -1"),
     ["criterion 'docs' artifacts[0]", "field 'min_words'", "0 or more"]),
    ("artifact unknown field", variant("min_words = 10", "min_word = 10"),
     ["criterion 'docs' artifacts[0]", "field 'min_word'", "not a known field"]),
    ("artifact bad id", variant('id = "runbook"', 'id = "Run Book"'), ["criterion 'docs' artifacts[0]", "field 'id'"]),
    ("min_complete greater than the artifacts", variant("min_found = 1", "min_complete = 2"),
     ["criterion 'docs'", "field 'levels'", "min_complete = 2", "only 1 artifacts"]),
    ("min_found greater than the artifacts", variant("min_found = 1", "min_found = 3"),
     ["criterion 'docs'", "field 'levels'", "min_found = 3"]),
    ("limit zero", variant("wall_seconds = 600", "wall_seconds = 0"), ["limits", "field 'wall_seconds'", "more than 0"]),
    ("limit negative", variant("wall_seconds = 600", "wall_seconds = -1"), ["limits", "field 'wall_seconds'", "more than 0"]),
    ("limit as text", variant("wall_seconds = 600", 'wall_seconds = "600"'), ["limits", "field 'wall_seconds'", "whole number"]),
    ("limit fractional", variant("wall_seconds = 600", "wall_seconds = 1.5"), ["limits", "field 'wall_seconds'", "whole number"]),
    ("limit boolean", variant("wall_seconds = 600", "wall_seconds = true"), ["limits", "field 'wall_seconds'", "whole number"]),
    ("unknown limit", variant("wall_seconds = 600", "wall_secs = 600"), ["limits", "field 'wall_secs'", "not a known field"]),
    ("limits not a table", edit(variant("[limits]\nwall_seconds = 600\n", ""), "pass_mark = 70\n", "pass_mark = 70\nlimits = 600\n"),
     ["rubric:", "field 'limits'", "must be a table"]),
    ("unknown service", variant("[limits]\n", '[services]\nrequire = ["oracle"]\n\n[limits]\n'),
     ["services", "field 'require'", "'oracle' is not a service name"]),
    ("service both required and forbidden",
     variant("[limits]\n", '[services]\nrequire = ["redis"]\nforbid = ["redis"]\n\n[limits]\n'),
     ["services", "field 'forbid'", "both required and forbidden"]),
    ("service start time", variant("[limits]\n", "[services]\nstart_seconds = 0\n\n[limits]\n"),
     ["services", "field 'start_seconds'", "more than 0"]),
    ("env name", variant("[limits]\n", '[env]\n"NOT VALID" = "x"\n\n[limits]\n'),
     ["env", "field 'NOT VALID'", "not a valid environment variable name"]),
    ("env value", variant("[limits]\n", "[env]\nDEBUG = 1\n\n[limits]\n"), ["env", "field 'DEBUG'", "must be text"]),
    ("project root outside", variant("[limits]\n", '[project]\nroot = "../up"\n\n[limits]\n'),
     ["project", "field 'root'", "inside the repository"]),
    ("similarity too low", variant("[limits]\n", "[integrity]\nsimilarity_percent = 2\n\n[limits]\n"),
     ["integrity", "field 'similarity_percent'", "from 5 to 100"]),
    ("similarity not a number", variant("[limits]\n", '[integrity]\nsimilarity_percent = "half"\n\n[limits]\n'),
     ["integrity", "field 'similarity_percent'", "must be a number"]),
    ("integrity unknown key", variant("[limits]\n", "[integrity]\nthreshold = 50\n\n[limits]\n"),
     ["integrity", "field 'threshold'", "not a known field"]),
    ("skill url not https", BASE + '\n[[skills]]\nname = "Caching"\nurl = "http://skills.example/caching"\n',
     ["skills[0]", "field 'url'", "must be an https address"]),
    ("skill without a name", BASE + '\n[[skills]]\nurl = "https://skills.example/caching"\n',
     ["skills[0]", "field 'name'", "is required"]),
    ("skill unknown field", BASE + '\n[[skills]]\nname = "Caching"\nurl = "https://skills.example/c"\nlevel = 3\n',
     ["skills[0]", "field 'level'", "not a known field"]),
]


def test_skills_are_read_as_alignments():
    rubric = parse_rubric((BASE + '\n[[skills]]\nname = "Caching"\nurl = "https://skills.example/caching"\n'
                           'framework = "Backend Skills"\ncode = "BE-7"\n').encode(), source="t.toml")
    assert [(s.name, s.url, s.framework, s.code) for s in rubric.skills] == [
        ("Caching", "https://skills.example/caching", "Backend Skills", "BE-7")]
    assert parse_rubric(BASE.encode(), source="t.toml").skills == ()



@pytest.mark.parametrize("text, fragments", [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_rubric_is_a_named_error(text, fragments):
    with pytest.raises(RubricError) as raised:
        parse(text)
    message = str(raised.value)
    assert message.startswith(f"{SOURCE}: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# The README promises one line per problem, even when a raw value echoed back contains a newline.
@pytest.mark.parametrize("text", [pytest.param(case[1], id=case[0]) for case in INVALID])
def test_invalid_rubric_message_is_one_line(text):
    with pytest.raises(RubricError) as raised:
        parse(text)
    assert "\n" not in str(raised.value)


def test_huge_integer_for_a_number_field_is_a_rubric_error():
    with pytest.raises(RubricError, match="field 'weight'"):
        parse(variant("weight = 40", "weight = 1" + "0" * 400))


# ---------------------------------------------------------------- valid rubrics


def test_sha256_is_the_hash_of_the_bytes():
    data = BASE.encode()
    assert parse_rubric(data, source=SOURCE).sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("edited", [
    BASE + "\n",                                             # one byte more, same meaning
    BASE.replace('title = "Demo capstone"', 'title = "Demo capstonE"'),
    "# a comment\n" + BASE,
], ids=["trailing newline", "one letter", "comment"])
def test_sha256_changes_when_a_byte_changes(edited):
    assert parse(edited).sha256 != parse(BASE).sha256


def test_levels_come_back_sorted_and_max_points_is_the_top():
    text = variant(COV_GOOD_LEVEL, COV_GOOD_LEVEL.replace("level = 1", "level = 2").replace("points = 1", "points = 5")
                   .replace("cov good", "cov best").replace("min_line = 60", "min_line = 90")
                   + COV_GOOD_LEVEL)
    criterion = parse(text).criterion("cov")
    assert [level.level for level in criterion.levels] == [0, 1, 2]
    assert [level.descriptor for level in criterion.levels] == ["cov floor", "cov good", "cov best"]
    assert criterion.max_points == 5
    assert criterion.level(2).thresholds == {"min_line": 90.0}
    with pytest.raises(KeyError):
        criterion.level(3)


def test_parsed_values():
    rubric = parse(BASE)
    suite = rubric.criterion("suite")
    assert suite.level(1).thresholds == {"min_tests": 5, "all_pass": True}
    assert suite.max_points == 2 and suite.automated
    assert rubric.criterion("review").automated is False
    coverage = rubric.criterion("cov").level(1).thresholds["min_line"]
    assert coverage == 60 and isinstance(coverage, float)  # a whole number is accepted where a number is wanted
    docs = rubric.criterion("docs")
    assert docs.traces_to == "docs goal"
    (runbook,) = docs.artifacts
    assert (runbook.id, runbook.patterns, runbook.sections, runbook.min_words) == ("runbook", ("docs/runbook*.md",), ("Rollback",), 10)
    assert rubric.criterion("cov").traces_to == ""  # optional
    (gate,) = rubric.gates
    assert (gate.id, gate.criterion, gate.min_level) == ("green", "suite", 1)
    with pytest.raises(KeyError):
        rubric.criterion("nope")


def test_optional_parts_may_be_left_out():
    text = edit(variant("[limits]\nwall_seconds = 600\n", ""), 'description = "A rubric for the validator\'s tests."\n', "")
    text = text.split("[[gates]]")[0]
    rubric = parse(text)
    assert rubric.limits == {} and rubric.gates == () and rubric.description == ""


# ---------------------------------------------------------------- files and directories


def test_load_rubric_reads_a_file(tmp_path):
    path = tmp_path / "demo.toml"
    path.write_bytes(BASE.encode())
    rubric = load_rubric(path)
    assert rubric.sha256 == hashlib.sha256(BASE.encode()).hexdigest()
    assert rubric.path == str(path)


@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: tmp / "missing.toml", "no such rubric file"),
    (lambda tmp: tmp, "is a directory"),
], ids=["missing", "directory"])
def test_load_rubric_names_unreadable_files(tmp_path, make, fragment):
    path = make(tmp_path)
    with pytest.raises(RubricError, match=fragment) as raised:
        load_rubric(path)
    assert str(path) in str(raised.value)


def test_load_rubric_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(variant("weight = 40", "weight = 0"))
    with pytest.raises(RubricError, match=r"broken\.toml: criterion 'suite': field 'weight'"):
        load_rubric(path)


def test_load_rubrics_sorts_by_id_and_rejects_duplicate_ids(tmp_path):
    (tmp_path / "b.toml").write_text(BASE)
    (tmp_path / "a.toml").write_text(variant('id = "demo"', 'id = "zeta"'))
    assert [rubric.id for rubric in load_rubrics(tmp_path)] == ["demo", "zeta"]
    assert find_rubric("zeta", tmp_path).id == "zeta"
    with pytest.raises(RubricError, match="available: demo, zeta"):
        find_rubric("nope", tmp_path)
    (tmp_path / "c.toml").write_text(BASE)
    with pytest.raises(RubricError, match="rubric id 'demo' is also used by") as raised:
        load_rubrics(tmp_path)
    assert "b.toml" in str(raised.value) and "c.toml" in str(raised.value)


def test_services_env_and_project_root():
    rubric = parse(variant("[limits]\n", '[services]\nrequire = ["postgresql"]\nforbid = ["mongodb"]\nstart_seconds = 12\n\n'
                                         '[env]\nAPP_ENV = "test"\n\n[project]\nroot = "service"\n\n[limits]\n'))
    assert (rubric.services.require, rubric.services.forbid, rubric.services.start_seconds) == \
        (("postgresql",), ("mongodb",), 12.0)
    assert rubric.env == {"APP_ENV": "test"} and rubric.project_root == "service"


def test_the_similarity_threshold_is_a_course_setting():
    assert parse(BASE).integrity.similarity_percent == 50
    rubric = parse(variant("[limits]\n", "[integrity]\nsimilarity_percent = 35\n\n[limits]\n"))
    assert rubric.integrity.similarity_percent == 35.0


STRENGTH = '''
[[criteria]]
id = "strength"
kind = "strength"
title = "Tests notice changes"
weight = 10
{mutants}
[[criteria.levels]]
level = 0
points = 0
descriptor = "few changes noticed"
[[criteria.levels]]
level = 1
points = 10
descriptor = "most changes noticed"
min_noticed = {share}
'''


@pytest.mark.parametrize("mutants, share, expected", [
    ("", "70", 20),                     # the default sample
    ("mutants = 40", "70.5", 40),
])
def test_a_strength_criterion_sets_its_sample_and_a_share_of_noticed_changes(mutants, share, expected):
    rubric = parse(BASE + STRENGTH.format(mutants=mutants, share=share))
    criterion = rubric.criterion("strength")
    assert (criterion.kind, criterion.mutants, rubric.mutants) == ("strength", expected, expected)
    assert criterion.levels[1].thresholds == {"min_noticed": float(share)}
    assert parse(BASE).mutants == 0  # no strength criterion: no sampling


@pytest.mark.parametrize("mutants, share, fragment", [
    ("mutants = 2", "70", "must be from 5 to 100"),
    ("mutants = 101", "70", "must be from 5 to 100"),
    ('mutants = "20"', "70", "must be a whole number"),
    ("", "170", "field 'min_noticed'"),
    ("", '"most"', "field 'min_noticed'"),
])
def test_a_bad_strength_criterion_is_a_named_error(mutants, share, fragment):
    with pytest.raises(RubricError) as raised:
        parse(BASE + STRENGTH.format(mutants=mutants, share=share))
    assert "criterion 'strength'" in str(raised.value) and fragment in str(raised.value)
