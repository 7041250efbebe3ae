"""The rubric files shipped in rubrics/: each loads, and each follows the house conventions."""

from pathlib import Path

import pytest

from assessor.engine.rubric import Rubric, load_rubric, load_rubrics

ROOT = Path(__file__).resolve().parent.parent
RUBRIC_DIR = ROOT / "rubrics"

# The capstone rubrics that must ship, with the course each belongs to (the catalogue's course name exactly).
EXPECTED = {
    "scalable-architectures-resilient-core": "Backend Engineering: Scalable Architectures",
    "scalable-architectures-safety-controls": "Backend Engineering: Scalable Architectures",
    "scalable-architectures-defense-handover": "Backend Engineering: Scalable Architectures",
    "background-jobs-capstone": "Background Jobs & Workers",
    "senior-backend-capstone": "Senior Backend Engineering",
}

RUBRIC_FILES = sorted(RUBRIC_DIR.glob("*.toml"))


def rubric_files():
    return pytest.mark.parametrize("path", RUBRIC_FILES, ids=[path.stem for path in RUBRIC_FILES])


@pytest.fixture(scope="module")
def loaded() -> dict[Path, Rubric]:
    return {path: load_rubric(path) for path in RUBRIC_FILES}


def test_every_expected_rubric_ships():
    assert {path.stem for path in RUBRIC_FILES} >= set(EXPECTED)


def test_ids_are_unique_across_the_directory():
    rubrics = load_rubrics(RUBRIC_DIR)
    ids = [rubric.id for rubric in rubrics]
    assert len(ids) == len(set(ids))
    assert set(EXPECTED) <= set(ids)


@rubric_files()
def test_loads_and_is_named_after_its_id(path):
    rubric = load_rubric(path)
    assert rubric.id == path.stem
    assert rubric.sha256 and rubric.version == "1.1.0"
    assert 0 < rubric.pass_mark <= 100
    assert rubric.title and rubric.description


@rubric_files()
def test_course_is_the_catalogue_name(path, loaded):
    rubric = loaded[path]
    if rubric.id in EXPECTED:
        assert rubric.course == EXPECTED[rubric.id]


@rubric_files()
def test_weights_sum_to_100(path, loaded):
    assert loaded[path].total_weight == pytest.approx(100)


@rubric_files()
def test_every_criterion_traces_to_the_catalogue(path, loaded):
    for criterion in loaded[path].criteria:
        if criterion.kind in ("artifact", "manual"):
            assert criterion.traces_to.strip(), f"{criterion.id} has no traces_to"
        assert criterion.title.strip()


@rubric_files()
def test_exactly_one_tests_coverage_and_complexity_criterion(path, loaded):
    kinds = [criterion.kind for criterion in loaded[path].criteria]
    for kind in ("tests", "coverage", "complexity"):
        assert kinds.count(kind) == 1, f"{kind}: {kinds.count(kind)}"
    assert "artifact" in kinds and "manual" in kinds


@rubric_files()
def test_a_gate_requires_the_suite_to_pass(path, loaded):
    rubric = loaded[path]
    tests = next(criterion for criterion in rubric.criteria if criterion.kind == "tests")
    gates = [gate for gate in rubric.gates if gate.criterion == tests.id]
    assert gates, "no gate on the tests criterion"
    for gate in gates:
        gated = tests.level(gate.min_level)
        assert gated.thresholds.get("all_pass") is True, "the gate's level does not require all tests to pass"
        # every level at or above the gate must also require a green suite, or a red suite could pass the gate
        for level in tests.levels:
            if level.level >= gate.min_level:
                assert level.thresholds.get("all_pass") is True, f"level {level.level}"


@rubric_files()
def test_artifact_levels_can_all_be_reached(path, loaded):
    for criterion in loaded[path].criteria:
        if criterion.kind != "artifact":
            continue
        count = len(criterion.artifacts)
        assert criterion.levels[-1].thresholds.get("min_complete") == count, criterion.id
        for level in criterion.levels:
            for key in ("min_found", "min_complete"):
                assert level.thresholds.get(key, 0) <= count
        artifact_ids = [artifact.id for artifact in criterion.artifacts]
        assert len(artifact_ids) == len(set(artifact_ids)), criterion.id
        for artifact in criterion.artifacts:
            assert artifact.patterns and artifact.title
            if artifact.sections:  # prose documents: long enough to say something, short enough to be fair
                assert 150 <= artifact.min_words <= 400, artifact.id
            for pattern in artifact.patterns:
                assert not pattern.startswith("/") and ".." not in pattern.split("/"), pattern


@rubric_files()
def test_levels_rise_and_manual_levels_are_described(path, loaded):
    for criterion in loaded[path].criteria:
        numbers = [level.level for level in criterion.levels]
        assert numbers == list(range(len(numbers))), criterion.id
        assert criterion.levels[0].points == 0, criterion.id
        points = [level.points for level in criterion.levels]
        assert points == sorted(points) and len(set(points)) == len(points), criterion.id
        descriptors = [level.descriptor for level in criterion.levels]
        assert all(descriptors) and len(set(descriptors)) == len(descriptors), criterion.id
        if criterion.kind == "manual":
            assert 3 <= len(criterion.levels) <= 4, criterion.id


@rubric_files()
def test_other_gates_target_a_real_threshold(path, loaded):
    rubric = loaded[path]
    for gate in rubric.gates:
        criterion = rubric.criterion(gate.criterion)
        assert gate.min_level > criterion.levels[0].level, f"gate {gate.id} is met by the floor"
        assert gate.description.strip()


@rubric_files()
def test_limits_are_sane(path, loaded):
    limits = loaded[path].limits
    assert limits.get("wall_seconds", 600) <= 1800
    assert limits.get("memory_mb", 1024) <= 8192


@rubric_files()
def test_complexity_reads_sensibly_for_javascript(path, loaded):
    """lizard gives no maintainability index: every complexity level has Node.js thresholds without it."""
    for criterion in loaded[path].criteria:
        if criterion.kind != "complexity":
            continue
        for level in criterion.levels[1:]:
            node = level.thresholds_for("node")
            assert node and "min_maintainability" not in node
            assert {key: value for key, value in level.thresholds.items() if key != "min_maintainability"} == node


@rubric_files()
def test_scalable_architectures_rubrics_accept_node_and_python(path, loaded):
    rubric = loaded[path]
    if rubric.id.startswith("scalable-architectures"):
        assert "Node.js" in rubric.description and "Python are both accepted" in rubric.description
