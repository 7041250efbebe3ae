"""Load and validate rubric files (TOML) into frozen dataclasses."""

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assessor.errors import RubricError
from assessor.engine.measure.artifacts import ArtifactSpec

KINDS = ("tests", "coverage", "strength", "complexity", "artifact", "manual")

# The measured thresholds a level of each kind may set, with the type each must have.
THRESHOLD_KEYS: dict[str, dict[str, type]] = {
    "tests": {"min_tests": int, "all_pass": bool},
    "coverage": {"min_line": float, "min_branch": float},
    "strength": {"min_noticed": float},
    "complexity": {
        "max_average": float,
        "max_worst": float,
        "max_share_c_or_worse": float,
        "min_maintainability": float,
    },
    "artifact": {"min_found": int, "min_complete": int},
    "manual": {},
}
PERCENT_KEYS = frozenset({"min_line", "min_branch", "min_noticed", "max_share_c_or_worse", "min_maintainability"})

# Sandbox limits a rubric may tighten or loosen for its capstones.
LIMIT_KEYS = ("wall_seconds", "cpu_seconds", "memory_mb", "processes", "file_size_mb", "open_files", "output_kb")

# How many changes a `strength` criterion samples (each is one more sandboxed run of the tests that cover it).
DEFAULT_MUTANTS, MIN_MUTANTS, MAX_MUTANTS = 20, 5, 100

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


# Toolchains a level may set its own thresholds for (some figures mean different things per language).
TOOLCHAIN_NAMES = ("python", "node")


@dataclass(frozen=True)
class Level:
    level: int
    points: float
    descriptor: str
    thresholds: dict[str, Any] = field(default_factory=dict)
    # Thresholds that replace `thresholds` for one toolchain: lizard gives JavaScript no maintainability index.
    by_toolchain: dict[str, dict[str, Any]] = field(default_factory=dict)

    def thresholds_for(self, toolchain: str | None) -> dict[str, Any]:
        return self.by_toolchain.get(toolchain or "", self.thresholds)


@dataclass(frozen=True)
class Criterion:
    id: str
    kind: str
    title: str
    weight: float
    levels: tuple[Level, ...]
    description: str = ""
    traces_to: str = ""
    artifacts: tuple[ArtifactSpec, ...] = ()
    mutants: int = 0        # a `strength` criterion: how many changes to sample

    @property
    def automated(self) -> bool:
        return self.kind != "manual"

    @property
    def max_points(self) -> float:
        return self.levels[-1].points

    def level(self, number: int) -> Level:
        for level in self.levels:
            if level.level == number:
                return level
        raise KeyError(number)


@dataclass(frozen=True)
class Skill:
    """A skill or competency the capstone shows, as a framework names it (OB 3.0's Alignment)."""

    name: str
    url: str  # the framework's page for this skill
    framework: str = ""
    code: str = ""


@dataclass(frozen=True)
class Gate:
    id: str
    criterion: str
    min_level: int
    description: str


@dataclass(frozen=True)
class ServiceRules:
    """What a rubric says about the servers a capstone's tests may use."""

    require: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()
    start_seconds: float = 30.0


@dataclass(frozen=True)
class IntegrityRules:
    """What a course counts as a near copy: this share of a submission's code, or of one of its modules, found in
    another learner's submission (or a shipped sample)."""

    similarity_percent: float = 50.0


@dataclass(frozen=True)
class Rubric:
    id: str
    title: str
    version: str
    course: str
    pass_mark: float
    criteria: tuple[Criterion, ...]
    gates: tuple[Gate, ...] = ()
    description: str = ""
    limits: dict[str, int] = field(default_factory=dict)
    sha256: str = ""
    path: str = ""
    services: "ServiceRules" = field(default_factory=lambda: ServiceRules())
    env: dict[str, str] = field(default_factory=dict)
    project_root: str | None = None
    integrity: IntegrityRules = field(default_factory=IntegrityRules)
    skills: tuple[Skill, ...] = ()

    @property
    def mutants(self) -> int:
        """How many changes to sample for test strength: the most any `strength` criterion asks for."""
        return max((criterion.mutants for criterion in self.criteria if criterion.kind == "strength"), default=0)

    @property
    def total_weight(self) -> float:
        return sum(criterion.weight for criterion in self.criteria)

    def criterion(self, criterion_id: str) -> Criterion:
        for criterion in self.criteria:
            if criterion.id == criterion_id:
                return criterion
        raise KeyError(criterion_id)


class _Fields:
    """Reads one TOML table, turning every problem into a RubricError naming where it is."""

    def __init__(self, table: Any, where: str, source: str):
        if not isinstance(table, dict):
            raise RubricError(f"{source}: {where}: must be a table")
        self.table = table
        self.where = where
        self.source = source
        self.used: set[str] = set()

    def fail(self, name: str, problem: str) -> RubricError:
        return RubricError(f"{self.source}: {self.where}: field '{name}': {problem}")

    def get(self, name: str, kind: type, *, required: bool = True, default: Any = None) -> Any:
        self.used.add(name)
        if name not in self.table:
            if required:
                raise self.fail(name, "is required")
            return default
        value = self.table[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                raise self.fail(name, "is too large a number") from None
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            raise self.fail(name, f"must be {_TYPE_NAMES[kind]}, not {_describe(value)}")
        if kind is float and not math.isfinite(value):
            raise self.fail(name, "must be a finite number")
        if kind is str and required and not value.strip():
            raise self.fail(name, "must not be empty")
        return value

    def strings(self, name: str, *, required: bool = False) -> tuple[str, ...]:
        values = self.get(name, list, required=required, default=[])
        if not all(isinstance(value, str) and value.strip() for value in values):
            raise self.fail(name, "must be a list of non-empty strings")
        return tuple(values)

    def reject_unknown(self, extra_allowed: frozenset[str] = frozenset()) -> None:
        unknown = sorted(set(self.table) - self.used - extra_allowed)
        if unknown:
            raise self.fail(unknown[0], "is not a known field (check the spelling)")


_TYPE_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false", list: "a list", dict: "a table"}


def _describe(value: Any) -> str:
    for kind, name in _TYPE_NAMES.items():
        if type(value) is kind:
            return name
    return type(value).__name__


def _identifier(fields: _Fields, name: str) -> str:
    value = fields.get(name, str)
    if not ID_PATTERN.fullmatch(value):
        raise fields.fail(name, f"{value!r} must be lower-case letters, digits and dashes")
    return value


def _parse_level(table: Any, kind: str, where: str, source: str) -> Level:
    fields = _Fields(table, where, source)
    number = fields.get("level", int)
    if number < 0:
        raise fields.fail("level", "must be 0 or more")
    points = fields.get("points", float)
    if points < 0:
        raise fields.fail("points", "must be 0 or more")
    descriptor = fields.get("descriptor", str)
    thresholds = _thresholds(fields, kind)
    by_toolchain = {}
    for toolchain in TOOLCHAIN_NAMES:
        table = fields.get(toolchain, dict, required=False)
        if table is not None:
            inner = _Fields(table, f"{where} {toolchain}", source)
            by_toolchain[toolchain] = _thresholds(inner, kind)
            inner.reject_unknown()
    fields.reject_unknown()
    return Level(level=number, points=points, descriptor=descriptor.strip(), thresholds=thresholds,
                 by_toolchain=by_toolchain)


def _thresholds(fields: "_Fields", kind: str) -> dict[str, Any]:
    thresholds: dict[str, Any] = {}
    for key, key_type in THRESHOLD_KEYS[kind].items():
        value = fields.get(key, key_type, required=False)
        if value is None:
            continue
        if key in PERCENT_KEYS and not 0 <= value <= 100:
            raise fields.fail(key, "must be between 0 and 100")
        if key_type in (int, float) and value < 0:
            raise fields.fail(key, "must be 0 or more")
        thresholds[key] = value
    return thresholds


def _parse_artifact(table: Any, where: str, source: str) -> ArtifactSpec:
    fields = _Fields(table, where, source)
    spec = ArtifactSpec(
        id=_identifier(fields, "id"),
        title=fields.get("title", str).strip(),
        patterns=fields.strings("patterns", required=True),
        sections=fields.strings("sections"),
        min_words=fields.get("min_words", int, required=False, default=0),
        fields=fields.strings("fields"),
    )
    if not spec.patterns:
        raise fields.fail("patterns", "needs at least one glob pattern")
    for pattern in spec.patterns:
        if pattern.startswith("/") or ".." in Path(pattern).parts:
            raise fields.fail("patterns", f"{pattern!r} must be relative to the repository and stay inside it")
    if spec.min_words < 0:
        raise fields.fail("min_words", "must be 0 or more")
    fields.reject_unknown()
    return spec


def _parse_criterion(table: Any, index: int, source: str) -> Criterion:
    label = table.get("id") if isinstance(table, dict) else None
    where = f"criterion {label!r}" if isinstance(label, str) else f"criterion #{index + 1}"
    fields = _Fields(table, where, source)
    criterion_id = _identifier(fields, "id")
    kind = fields.get("kind", str)
    if kind not in KINDS:
        raise fields.fail("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    weight = fields.get("weight", float)
    if weight <= 0:
        raise fields.fail("weight", "must be more than 0")
    raw_levels = fields.get("levels", list)
    if len(raw_levels) < 2:
        raise fields.fail("levels", "needs at least two levels")
    levels = tuple(sorted(
        (_parse_level(raw, kind, f"criterion '{criterion_id}' levels[{i}]", source) for i, raw in enumerate(raw_levels)),
        key=lambda level: level.level,
    ))
    _check_levels(fields, kind, levels)
    artifacts: tuple[ArtifactSpec, ...] = ()
    if kind == "artifact":
        raw_artifacts = fields.get("artifacts", list)
        if not raw_artifacts:
            raise fields.fail("artifacts", "an artifact criterion needs at least one artifact")
        artifacts = tuple(
            _parse_artifact(raw, f"criterion '{criterion_id}' artifacts[{i}]", source)
            for i, raw in enumerate(raw_artifacts)
        )
        _check_artifact_counts(fields, levels, len(artifacts))
    mutants = 0
    if kind == "strength":
        mutants = fields.get("mutants", int, required=False, default=DEFAULT_MUTANTS)
        if not MIN_MUTANTS <= mutants <= MAX_MUTANTS:
            raise fields.fail("mutants", f"must be from {MIN_MUTANTS} to {MAX_MUTANTS}")
    criterion = Criterion(
        id=criterion_id,
        kind=kind,
        title=fields.get("title", str).strip(),
        weight=weight,
        levels=levels,
        description=fields.get("description", str, required=False, default="").strip(),
        traces_to=fields.get("traces_to", str, required=False, default="").strip(),
        artifacts=artifacts,
        mutants=mutants,
    )
    fields.reject_unknown()
    return criterion


def _check_levels(fields: _Fields, kind: str, levels: tuple[Level, ...]) -> None:
    numbers = [level.level for level in levels]
    if len(set(numbers)) != len(numbers):
        raise fields.fail("levels", "two levels have the same number")
    for lower, higher in zip(levels, levels[1:]):
        if higher.points < lower.points:
            raise fields.fail("levels", f"level {higher.level} is worth fewer points than level {lower.level}")
    if levels[-1].points <= 0:
        raise fields.fail("levels", "the top level must be worth more than 0 points")
    if kind == "manual":
        return
    if levels[0].thresholds or any(levels[0].by_toolchain.values()):
        raise fields.fail("levels", f"the lowest level ({levels[0].level}) is the floor and must set no thresholds")
    for level in levels[1:]:
        if not level.thresholds or not all(level.by_toolchain.values()):
            raise fields.fail("levels", f"level {level.level} sets no threshold, so it could never be told apart")


def _check_artifact_counts(fields: _Fields, levels: tuple[Level, ...], available: int) -> None:
    for level in levels:
        for key in ("min_found", "min_complete"):
            if level.thresholds.get(key, 0) > available:
                raise fields.fail(
                    "levels", f"level {level.level} asks for {key} = {level.thresholds[key]} but only {available} artifacts are listed"
                )


def _parse_gate(table: Any, index: int, criteria: dict[str, Criterion], source: str) -> Gate:
    fields = _Fields(table, f"gate #{index + 1}", source)
    gate_id = _identifier(fields, "id")
    fields.where = f"gate '{gate_id}'"
    criterion_id = fields.get("criterion", str)
    if criterion_id not in criteria:
        raise fields.fail("criterion", f"{criterion_id!r} is not a criterion of this rubric")
    min_level = fields.get("min_level", int)
    known = [level.level for level in criteria[criterion_id].levels]
    if min_level not in known:
        raise fields.fail("min_level", f"{min_level} is not a level of '{criterion_id}' (levels: {known})")
    gate = Gate(gate_id, criterion_id, min_level, fields.get("description", str).strip())
    fields.reject_unknown()
    return gate


def _parse_limits(table: Any, source: str) -> dict[str, int]:
    fields = _Fields(table, "limits", source)
    limits = {}
    for key in LIMIT_KEYS:
        value = fields.get(key, int, required=False)
        if value is not None:
            if value <= 0:
                raise fields.fail(key, "must be more than 0")
            limits[key] = value
    fields.reject_unknown()
    return limits


SERVICE_NAMES = ("postgresql", "redis", "mysql", "mongodb", "rabbitmq", "kafka", "elasticsearch", "memcached")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def _parse_services(table: Any, source: str) -> ServiceRules:
    fields = _Fields(table, "services", source)
    rules = {}
    for key in ("require", "forbid"):
        names = fields.strings(key)
        for name in names:
            if name not in SERVICE_NAMES:
                raise fields.fail(key, f"{name!r} is not a service name (known: {', '.join(SERVICE_NAMES)})")
        rules[key] = names
    start = fields.get("start_seconds", float, required=False, default=30.0)
    if not 0 < start <= 600:
        raise fields.fail("start_seconds", "must be more than 0 and at most 600")
    if set(rules["require"]) & set(rules["forbid"]):
        raise fields.fail("forbid", "a service cannot be both required and forbidden")
    fields.reject_unknown()
    return ServiceRules(require=rules["require"], forbid=rules["forbid"], start_seconds=start)


def _parse_env(table: Any, source: str) -> dict[str, str]:
    fields = _Fields(table, "env", source)
    env = {}
    for name in list(fields.table):
        if not ENV_NAME.fullmatch(str(name)):
            raise fields.fail(str(name), "is not a valid environment variable name")
        env[name] = fields.get(name, str)
    return env


def _parse_integrity(table: Any, source: str) -> IntegrityRules:
    fields = _Fields(table, "integrity", source)
    percent = fields.get("similarity_percent", float, required=False, default=IntegrityRules.similarity_percent)
    if not 5 <= percent <= 100:
        raise fields.fail("similarity_percent", "must be a percentage from 5 to 100")
    fields.reject_unknown()
    return IntegrityRules(similarity_percent=percent)


MAX_SKILLS = 20


def _parse_skill(table: Any, index: int, source: str) -> Skill:
    fields = _Fields(table, f"skills[{index}]", source)
    name = fields.get("name", str).strip()
    url = fields.get("url", str).strip()
    if not url.startswith("https://") or any(c.isspace() for c in url) or len(url) > 500:
        raise fields.fail("url", f"{url!r} must be an https address (the skill's page in its framework)")
    skill = Skill(name=name[:200], url=url, framework=fields.get("framework", str, required=False, default="").strip(),
                  code=fields.get("code", str, required=False, default="").strip())
    fields.reject_unknown()
    return skill


def _parse_project(table: Any, source: str) -> str | None:
    fields = _Fields(table, "project", source)
    root = fields.get("root", str, required=False)
    if root is not None and (root.startswith("/") or ".." in Path(root).parts or not root.strip()):
        raise fields.fail("root", f"{root!r} must be a folder inside the repository")
    fields.reject_unknown()
    return root


def parse_rubric(data: bytes, *, source: str) -> Rubric:
    """Validate rubric TOML bytes; `source` names the file in error messages."""
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RubricError(f"{source}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise RubricError(f"{source}: not valid TOML: {error}") from None
    fields = _Fields(document, "rubric", source)
    rubric_id = _identifier(fields, "id")
    pass_mark = fields.get("pass_mark", float)
    if not 0 < pass_mark <= 100:
        raise fields.fail("pass_mark", "must be a percentage above 0 and at most 100")
    raw_criteria = fields.get("criteria", list)
    if not raw_criteria:
        raise fields.fail("criteria", "a rubric needs at least one criterion")
    criteria = tuple(_parse_criterion(raw, i, source) for i, raw in enumerate(raw_criteria))
    by_id: dict[str, Criterion] = {}
    for criterion in criteria:
        if criterion.id in by_id:
            raise RubricError(f"{source}: criterion '{criterion.id}': field 'id': used twice")
        by_id[criterion.id] = criterion
    gates = tuple(_parse_gate(raw, i, by_id, source) for i, raw in enumerate(fields.get("gates", list, required=False, default=[])))
    if len({gate.id for gate in gates}) != len(gates):
        raise fields.fail("gates", "two gates have the same id")  # ids are checked one by one below
    rubric = Rubric(
        id=rubric_id,
        title=fields.get("title", str).strip(),
        version=fields.get("version", str).strip(),
        course=fields.get("course", str).strip(),
        pass_mark=pass_mark,
        criteria=criteria,
        gates=gates,
        description=fields.get("description", str, required=False, default="").strip(),
        limits=_parse_limits(fields.get("limits", dict, required=False, default={}), source),
        services=_parse_services(fields.get("services", dict, required=False, default={}), source),
        env=_parse_env(fields.get("env", dict, required=False, default={}), source),
        project_root=_parse_project(fields.get("project", dict, required=False, default={}), source),
        integrity=_parse_integrity(fields.get("integrity", dict, required=False, default={}), source),
        skills=tuple(_parse_skill(raw, i, source) for i, raw in enumerate(fields.get("skills", list, required=False,
                                                                                       default=[]))),
        sha256=hashlib.sha256(data).hexdigest(),
        path=source,
    )
    if len(rubric.skills) > MAX_SKILLS:
        raise fields.fail("skills", f"at most {MAX_SKILLS} skills")
    fields.reject_unknown()
    return rubric


MAX_RUBRIC_BYTES = 1024 * 1024


def load_rubric(path: Path) -> Rubric:
    """Read and validate one rubric file."""
    try:
        if path.stat().st_size > MAX_RUBRIC_BYTES:
            raise RubricError(f"{path}: larger than {MAX_RUBRIC_BYTES // 1024} KB; not a rubric")
        data = path.read_bytes()
    except FileNotFoundError:
        raise RubricError(f"{path}: no such rubric file") from None
    except IsADirectoryError:
        raise RubricError(f"{path}: is a directory, not a rubric file") from None
    except OSError as error:
        raise RubricError(f"{path}: cannot be read ({error.strerror})") from None
    return parse_rubric(data, source=str(path))


def default_rubric_dir() -> Path:
    """The rubrics/ folder shipped beside the package."""
    return Path(__file__).resolve().parents[2] / "rubrics"


def load_rubrics(directory: Path) -> list[Rubric]:
    """Every rubric in `directory`, sorted by id; one bad file fails the whole load with its name."""
    rubrics = [load_rubric(path) for path in sorted(directory.glob("*.toml"))]
    seen: dict[str, str] = {}
    for rubric in rubrics:
        if rubric.id in seen:
            raise RubricError(f"{rubric.path}: rubric id '{rubric.id}' is also used by {seen[rubric.id]}")
        seen[rubric.id] = rubric.path
    return sorted(rubrics, key=lambda rubric: rubric.id)


def find_rubric(rubric_id: str, directory: Path) -> Rubric:
    """The rubric with this id, or a RubricError listing the ids there are."""
    rubrics = load_rubrics(directory)
    for rubric in rubrics:
        if rubric.id == rubric_id:
            return rubric
    known = ", ".join(rubric.id for rubric in rubrics) or "none"
    raise RubricError(f"unknown rubric '{rubric_id}' (available: {known})")
