"""A small schema checker for JSON bodies, and its export to JSON Schema for the published contract."""

import re
from dataclasses import dataclass
from typing import Any

_TYPE_NAMES = {str: "string", int: "integer", bool: "boolean", list: "array", dict: "object"}
_JSON_KEYWORDS = {
    "minimum": "minimum",
    "maximum": "maximum",
    "min_length": "minLength",
    "max_length": "maxLength",
    "pattern": "pattern",
}


@dataclass(frozen=True)
class Field:
    """
    One property of a JSON object and the rules its value must follow.

    `type` is the Python type json.loads produces (str, int, bool, list, dict). The bounds apply to integers,
    the lengths and pattern to strings; `schema` describes a nested object and `items` the objects in a list.
    A field is required unless it says otherwise, and null only where `nullable` allows it.
    """

    type: type
    required: bool = True
    nullable: bool = False
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    schema: "Schema | None" = None
    items: "Schema | None" = None


@dataclass(frozen=True)
class Schema:
    """
    A JSON object with a fixed set of properties.

    Unknown properties are rejected rather than ignored: a client that misspells an optional field learns
    about it at once instead of silently getting the default.
    """

    name: str
    fields: dict[str, Field]


def validate(value: Any, schema: Schema, where: str = "") -> list[dict]:
    """
    Every problem with `value`, as a list of {"field", "problem"}; empty when it conforms.

    Checking does not stop at the first problem, so one 422 response tells the client everything to fix.
    `where` is the path of `value` inside the document, used to name nested fields ("error.details[0]").
    """
    if not isinstance(value, dict):
        return [_problem(where or "body", "must be a JSON object")]
    problems = [_problem(_join(where, name), "is not a known field") for name in value if name not in schema.fields]
    for name, spec in schema.fields.items():
        problems += _check_field(value, name, spec, _join(where, name))
    return problems


def to_json_schema(schema: Schema) -> dict:
    """
    The schema as a JSON Schema (draft 2020-12 keywords) document, for publishing the contract.

    The export is deterministic, so the contract test can compare it with the published file byte for byte.
    """
    return {
        "title": schema.name,
        "type": "object",
        "additionalProperties": False,
        "required": [name for name, spec in schema.fields.items() if spec.required],
        "properties": {name: _field_json(spec) for name, spec in schema.fields.items()},
    }


def _field_json(spec: Field) -> dict:
    type_name = _TYPE_NAMES[spec.type]
    described: dict[str, Any] = {"type": [type_name, "null"] if spec.nullable else type_name}
    for attribute, keyword in _JSON_KEYWORDS.items():
        if getattr(spec, attribute) is not None:
            described[keyword] = getattr(spec, attribute)
    if spec.choices:
        described["enum"] = list(spec.choices)
    if spec.schema is not None:
        described.update(to_json_schema(spec.schema))
    if spec.items is not None:
        described["items"] = to_json_schema(spec.items)
    return described


def _check_field(container: dict, name: str, spec: Field, path: str) -> list[dict]:
    # Presence, then null, then type: a value of the wrong type gets one clear problem, not a cascade.
    if name not in container:
        return [_problem(path, "is required")] if spec.required else []
    value = container[name]
    if value is None:
        return [] if spec.nullable else [_problem(path, "must not be null")]
    if not _has_type(value, spec.type):
        return [_problem(path, f"must be of type {_TYPE_NAMES[spec.type]}")]
    problems: list[dict] = []
    # Each check ignores the rules it does not own, so they can simply all run.
    for check in (_check_range, _check_length, _check_pattern, _check_choices, _check_nested):
        problems += check(value, spec, path)
    return problems


def _has_type(value: Any, expected: type) -> bool:
    # JSON booleans arrive as Python bools, which are also ints: never accept one for the other.
    if isinstance(value, bool):
        return expected is bool
    return isinstance(value, expected)


def _check_range(value: Any, spec: Field, path: str) -> list[dict]:
    if spec.minimum is not None and value < spec.minimum:
        return [_problem(path, f"must be at least {spec.minimum}")]
    if spec.maximum is not None and value > spec.maximum:
        return [_problem(path, f"must be at most {spec.maximum}")]
    return []


def _check_length(value: Any, spec: Field, path: str) -> list[dict]:
    if spec.min_length is not None and len(value.strip()) < spec.min_length:
        return [_problem(path, f"must have at least {spec.min_length} non-blank characters")]
    if spec.max_length is not None and len(value) > spec.max_length:
        return [_problem(path, f"must have at most {spec.max_length} characters")]
    return []


def _check_pattern(value: Any, spec: Field, path: str) -> list[dict]:
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        return [_problem(path, f"must match {spec.pattern}")]
    return []


def _check_choices(value: Any, spec: Field, path: str) -> list[dict]:
    if spec.choices and value not in spec.choices:
        return [_problem(path, f"must be one of {', '.join(spec.choices)}")]
    return []


def _check_nested(value: Any, spec: Field, path: str) -> list[dict]:
    if spec.schema is not None:
        return validate(value, spec.schema, path)
    problems: list[dict] = []
    if spec.items is not None:
        for index, item in enumerate(value):
            problems += validate(item, spec.items, f"{path}[{index}]")
    return problems


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _problem(field: str, problem: str) -> dict:
    return {"field": field, "problem": problem}
