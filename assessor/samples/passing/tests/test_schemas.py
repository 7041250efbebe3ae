"""The schema checker: every rule, and the error paths it reports."""

from inventory_service import schemas
from inventory_service.validation import Field, Schema, to_json_schema, validate

VALID_ITEM = {"sku": "WIDGET-1", "name": "Widget", "quantity": 5}


def fields_with_problems(problems):
    return [problem["field"] for problem in problems]


def test_a_valid_request_has_no_problems():
    assert validate(VALID_ITEM, schemas.CREATE_ITEM) == []


def test_a_missing_required_field_is_reported():
    problems = validate({"sku": "WIDGET-1", "name": "Widget"}, schemas.CREATE_ITEM)
    assert problems == [{"field": "quantity", "problem": "is required"}]


def test_an_optional_field_may_be_left_out():
    assert validate({"sku": "WIDGET-1", "quantity": 1}, schemas.CREATE_RESERVATION) == []


def test_unknown_fields_are_rejected():
    problems = validate({**VALID_ITEM, "colour": "red"}, schemas.CREATE_ITEM)
    assert problems == [{"field": "colour", "problem": "is not a known field"}]


def test_a_body_that_is_not_an_object_is_rejected():
    assert validate([VALID_ITEM], schemas.CREATE_ITEM) == [{"field": "body", "problem": "must be a JSON object"}]


def test_wrong_types_are_reported_by_json_type_name():
    problems = validate({**VALID_ITEM, "quantity": "5"}, schemas.CREATE_ITEM)
    assert problems == [{"field": "quantity", "problem": "must be of type integer"}]


def test_a_boolean_is_not_accepted_as_an_integer():
    assert fields_with_problems(validate({**VALID_ITEM, "quantity": True}, schemas.CREATE_ITEM)) == ["quantity"]


def test_null_is_rejected_unless_the_field_is_nullable():
    assert fields_with_problems(validate({**VALID_ITEM, "name": None}, schemas.CREATE_ITEM)) == ["name"]
    assert validate({"items": [], "next_after": None}, schemas.ITEM_PAGE) == []


def test_numbers_are_checked_against_both_bounds():
    too_small = validate({**VALID_ITEM, "quantity": -1}, schemas.CREATE_ITEM)
    too_large = validate({**VALID_ITEM, "quantity": 1_000_001}, schemas.CREATE_ITEM)
    assert too_small[0]["problem"] == "must be at least 0"
    assert too_large[0]["problem"] == "must be at most 1000000"


def test_strings_are_checked_for_blankness_and_length():
    blank = validate({**VALID_ITEM, "name": "   "}, schemas.CREATE_ITEM)
    long = validate({**VALID_ITEM, "name": "x" * 121}, schemas.CREATE_ITEM)
    assert blank[0]["problem"].startswith("must have at least 1")
    assert long[0]["problem"] == "must have at most 120 characters"


def test_patterns_must_match_the_whole_value():
    problems = validate({**VALID_ITEM, "sku": "widget-1"}, schemas.CREATE_ITEM)
    assert fields_with_problems(problems) == ["sku"]
    assert fields_with_problems(validate({**VALID_ITEM, "sku": "WIDGET-1 "}, schemas.CREATE_ITEM)) == ["sku"]


def test_choices_are_enforced():
    schema = Schema("Pick", {"status": Field(str, choices=("held", "confirmed"))})
    assert validate({"status": "held"}, schema) == []
    assert validate({"status": "lost"}, schema)[0]["problem"] == "must be one of held, confirmed"


def test_nested_objects_and_list_items_report_a_full_path():
    body = {"error": {"code": "x", "message": "m", "details": [{"field": "a", "problem": 3}]}}
    assert fields_with_problems(validate(body, schemas.ERROR)) == ["error.details[0].problem"]


def test_the_json_schema_export_describes_types_bounds_and_required_fields():
    exported = to_json_schema(schemas.CREATE_RESERVATION)
    assert exported["required"] == ["sku", "quantity"]
    assert exported["additionalProperties"] is False
    assert exported["properties"]["quantity"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    page = to_json_schema(schemas.ITEM_PAGE)
    assert page["properties"]["next_after"]["type"] == ["string", "null"]
    assert page["properties"]["items"]["items"]["title"] == "Item"
