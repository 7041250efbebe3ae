"""Server-side SVG charts: drawn from numbers, labels escaped, empty input draws nothing."""

from assessor.charts import coverage_bars, coverage_files_from_report, rank_distribution


def test_coverage_bars_escape_labels_and_sort_weakest_first():
    svg = coverage_bars([("good.py", 95.0), ('<img src=x onerror="alert(1)">.py', 12.5), ("nan.py", float("nan"))])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<img" not in svg and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.py" in svg
    assert svg.index("nan.py") < svg.index("12.5%") < svg.index("95.0%")
    assert "style=" not in svg  # the CSP allows no inline styles


def test_rank_distribution_counts_every_rank():
    svg = rank_distribution({"A": 10, "B": 3, "F": 1, "Z": 99})
    for rank in "ABCDEF":
        assert f">{rank}</text>" in svg
    assert "<title>A: 10</title>" in svg and "Z:" not in svg and "99" not in svg


def test_nothing_to_draw_draws_nothing():
    assert coverage_bars([]) == "" and rank_distribution({}) == "" and rank_distribution({"A": 0}) == ""
    assert coverage_files_from_report(None) == []
    assert coverage_files_from_report({"files": [{"path": "a.py", "line_percent": 50}, "junk", {"path": "b.py"}]}) == [("a.py", 50.0)]
