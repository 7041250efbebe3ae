"""Course-module results files: each row checked, problems reported by line, nothing imported from a bad file."""

from datetime import date

import pytest

from assessor.errors import ModuleImportError
from assessor.domain.modules import COLUMNS, check_records, parse_csv

COURSES = {"backend-capstone", "scalable-architectures"}
TODAY = date(2026, 12, 1)
HEADER = ",".join(COLUMNS)
GOOD = "ada@example.org,backend-capstone,m1-http,HTTP services,92,100,2026-09-14"


def csv_of(*lines: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def test_a_good_file_gives_one_row_per_line():
    rows = parse_csv(csv_of(GOOD, "Grace@Example.org , scalable-architectures,m2,Queues,7.5,10,2026-11-30"),
                     courses=COURSES, today=TODAY)
    assert [(r.email, r.course, r.module, r.score, r.max_score, r.completed_on) for r in rows] == [
        ("ada@example.org", "backend-capstone", "m1-http", 92, 100, date(2026, 9, 14)),
        ("grace@example.org", "scalable-architectures", "m2", 7.5, 10, date(2026, 11, 30)),
    ]


def test_columns_in_any_order_and_a_spreadsheet_bom_are_fine():
    header = "title,email,course,module,score,max_score,completed_on"
    data = "\ufeff".encode() + csv_of("HTTP,ada@example.org,backend-capstone,m1,1,2,2026-01-01", header=header)
    assert parse_csv(data, courses=COURSES, today=TODAY)[0].title == "HTTP"


@pytest.mark.parametrize("line, message", [
    ("not-an-email,backend-capstone,m1,T,1,2,2026-01-01", "not an e-mail address"),
    ("ada@example.org,no-such-course,m1,T,1,2,2026-01-01", "no course 'no-such-course'"),
    ("ada@example.org,backend-capstone,m 1,T,1,2,2026-01-01", "module ids"),
    ("ada@example.org,backend-capstone,m1,T,ten,20,2026-01-01", "score 'ten' is not a number"),
    ("ada@example.org,backend-capstone,m1,T,30,20,2026-01-01", "at most max_score"),
    ("ada@example.org,backend-capstone,m1,T,-1,20,2026-01-01", "0 or more"),
    ("ada@example.org,backend-capstone,m1,T,1,0,2026-01-01", "above 0"),
    ("ada@example.org,backend-capstone,m1,T,nan,20,2026-01-01", "0 or more"),
    ("ada@example.org,backend-capstone,m1,T,1,2,30/11/2026", "not a date like 2026-11-30"),
    ("ada@example.org,backend-capstone,m1,T,1,2,2027-06-01", "in the future"),
    ("ada@example.org,backend-capstone,m1,,1,2,2026-01-01", "empty title"),
    ("ada@example.org,backend-capstone,m1," + "T" * 101 + ",1,2,2026-01-01", "under 100 characters"),
    ("ada@example.org,backend-capstone,m1,T,1,2,2026-01-01,extra", "more cells than the header"),
])
def test_each_bad_row_is_named_by_its_line(line, message):
    with pytest.raises(ModuleImportError) as caught:
        parse_csv(csv_of(GOOD, line), courses=COURSES, today=TODAY)
    [(number, text)] = caught.value.problems
    assert number == 3 and message in text, text
    assert str(caught.value).startswith("nothing was imported: line 3:")


def test_every_problem_is_listed_not_only_the_first():
    with pytest.raises(ModuleImportError) as caught:
        parse_csv(csv_of("x,backend-capstone,m1,T,1,2,2026-01-01", GOOD, GOOD.replace("92", "999")),
                  courses=COURSES, today=TODAY)
    assert [line for line, _ in caught.value.problems] == [2, 4]
    with pytest.raises(ModuleImportError, match="same learner, course and module as line 2"):
        parse_csv(csv_of(GOOD, GOOD.replace("92", "93")), courses=COURSES, today=TODAY)


@pytest.mark.parametrize("data, message", [
    (b"email,course,module\nada@example.org,backend-capstone,m1\n", "missing completed_on, max_score, score, title"),
    (csv_of(GOOD, header=HEADER + ",grade"), "unknown grade"),
    ("é".encode("latin-1") + csv_of(GOOD), "not UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not"),
    (csv_of(), "no rows"),
    (b"", "the header must be"),
])
def test_files_that_are_not_module_results_are_refused_whole(data, message):
    with pytest.raises(ModuleImportError, match=message):
        parse_csv(data, courses=COURSES, today=TODAY)


def test_json_records_are_checked_the_same_way():
    good = dict(zip(COLUMNS, GOOD.split(",")))
    assert check_records([(1, good)], courses=COURSES, today=TODAY)[0].module == "m1-http"
    with pytest.raises(ModuleImportError) as caught:
        check_records([(1, good), (2, {**good, "module": "m2", "score": None})], courses=COURSES, today=TODAY)
    assert caught.value.problems == [(2, "empty score")]


def test_a_line_with_several_problems_names_each_of_them():
    with pytest.raises(ModuleImportError) as caught:
        parse_csv(csv_of("not-an-address,nope,m 1,T,lots,10,yesterday"), courses=COURSES, today=TODAY)
    [(line, message)] = caught.value.problems
    assert line == 2
    for part in ("'not-an-address' is not an e-mail address", "no course 'nope'", "module ids are",
                 "score 'lots' is not a number", "completed_on 'yesterday' is not a date"):
        assert part in message, part
