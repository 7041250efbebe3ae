"""Server-side SVG charts: drawn from numbers, labels escaped, empty input draws nothing."""

from assessor.web.charts import calibration_chart, coverage_bars, coverage_files_from_report, rank_distribution


def test_coverage_bars_escape_labels_and_sort_weakest_first():
    svg = coverage_bars([("good.py", 95.0), ('<img src=x onerror="alert(1)">.py', 12.5), ("nan.py", float("nan"))])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<img" not in svg and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.py" in svg
    assert svg.index("nan.py") < svg.index("12.5%") < svg.index("95%")
    assert 'width="3.0"' in svg  # the file at 0 % still has a visible bar
    assert "style=" not in svg  # the CSP allows no inline styles


def test_rank_distribution_counts_every_rank():
    svg = rank_distribution({"A": 10, "B": 3, "F": 1, "Z": 99})
    for rank in "ABCDEF":
        assert f">{rank}</text>" in svg
    assert "<title>A: 10</title>" in svg and "Z:" not in svg and ">99<" not in svg


def test_nothing_to_draw_draws_nothing():
    assert coverage_bars([]) == "" and rank_distribution({}) == "" and rank_distribution({"A": 0}) == ""
    assert coverage_files_from_report(None) == []
    assert coverage_files_from_report({"files": [{"path": "a.py", "line_percent": 50}, "junk", {"path": "b.py"}]}) == [("a.py", 50.0)]


def test_the_rubrics_own_thresholds_are_drawn_on_the_coverage_chart():
    svg = coverage_bars([("a.py", 70.0)], thresholds=[(60.0, "level 2"), (85.0, "level 3")])
    assert svg.count('class="threshold"') == 2 and ">L2</text>" in svg and ">L3</text>" in svg
    assert "<title>level 2: at least 60%</title>" in svg and "L3 = level 3 ≥ 85%" in svg


def test_every_chart_label_is_at_least_12_units_on_a_phone_sized_canvas():
    import re

    for svg in (coverage_bars([("a.py", 50.0)], thresholds=[(80.0, "level 3")]), rank_distribution({"A": 1}),
                calibration_chart([("Design", 1.5, 2.0, 3), ("Tests", None, 1.0, 2)])):
        assert int(re.search(r'viewBox="0 0 (\d+)', svg).group(1)) <= 360
        assert min(int(size) for size in re.findall(r'font-size="(\d+)"', svg)) >= 12


def test_calibration_chart_draws_self_and_final_per_criterion():
    svg = calibration_chart([("Design <b>", 1.5, 2.0, 3), ("Nothing", None, None, 2)])
    assert "<title>self: 1.50 of 3</title>" in svg and "<title>final: 2.00 of 3</title>" in svg
    assert "Design &lt;b&gt;" in svg and "Nothing" not in svg
    assert calibration_chart([]) == ""
