"""Server-side SVG charts from plain numbers: no JavaScript, no inline styles (the CSP forbids them), and
every label escaped."""

from collections.abc import Mapping, Sequence
from html import escape

RANKS = ("A", "B", "C", "D", "E", "F")
# Colour by coverage band / complexity rank: good, fair, poor.
_GOOD, _FAIR, _POOR = "#2e7d32", "#b26a00", "#c62828"
_RANK_COLOURS = {"A": _GOOD, "B": "#558b2f", "C": _FAIR, "D": "#d84315", "E": _POOR, "F": "#8e0000"}


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number else 0.0  # NaN -> 0


def _percent(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _shorten(label: str, limit: int) -> str:
    return label if len(label) <= limit else "…" + label[-(limit - 1):]


def line_thresholds(rubric) -> list[tuple[float, str]]:
    """The rubric's own line-coverage thresholds, (percent, "level N"), to draw on the coverage chart."""
    found = {}
    for criterion in getattr(rubric, "criteria", ()):
        if criterion.kind != "coverage":
            continue
        for level in criterion.levels:
            if "min_line" in level.thresholds:
                found.setdefault(float(level.thresholds["min_line"]), f"level {level.level}")
    return sorted(found.items())


# Charts are drawn about as wide as a phone shows them, so 12-unit text stays at least 11 px on a 390 px screen.
def coverage_bars(files: Sequence[tuple[str, float]], *, title: str = "Line coverage per file",
                  max_files: int = 40, width: int = 360, thresholds: Sequence[tuple[float, str]] = ()) -> str:
    """Horizontal bars, one per file, 0–100 %, weakest first. `files`: (path, percent); `thresholds` the rubric's
    (percent, label) lines."""
    rows = sorted(((str(path), max(0.0, min(100.0, _number(pct)))) for path, pct in files), key=lambda r: (r[1], r[0]))
    rows = rows[:max_files]
    if not rows:
        return ""
    label_width, bar_height, gap, top = 118, 18, 6, 50 if thresholds else 30
    plot = width - label_width - 46
    height = top + len(rows) * (bar_height + gap) + 26
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold" fill="#222">{escape(title)}</text>',
    ]
    for tick in (0, 50, 100):
        x = label_width + plot * tick / 100
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 22}" stroke="#ccc" stroke-width="1"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" font-size="12" text-anchor="middle" fill="#555">{tick}%</text>')
    for index, (percent, label) in enumerate(thresholds):
        x = label_width + plot * max(0.0, min(100.0, _number(percent))) / 100
        parts.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 22}" stroke="#1a56a8" '
                     f'stroke-width="1.5" stroke-dasharray="4 3" class="threshold">'
                     f'<title>{escape(label)}: at least {_number(percent):g}%</title></line>')
        # Short labels on alternate rows: thresholds 10 points apart would otherwise overlap.
        parts.append(f'<text x="{x:.1f}" y="{top - 9 - 13 * (index % 2)}" font-size="12" text-anchor="middle" '
                     f'fill="#1a56a8">{escape(label.replace("level ", "L"))}</text>')
    if thresholds:
        legend = ", ".join(f"{label.replace('level ', 'L')} = {label} ≥ {_number(percent):g}%"
                           for percent, label in thresholds)
        parts.append(f'<text x="{width}" y="16" font-size="12" text-anchor="end" fill="#1a56a8">'
                     f"<title>{escape(legend)}</title>dashed: rubric levels</text>")
    for index, (path, pct) in enumerate(rows):
        y = top + index * (bar_height + gap)
        colour = _GOOD if pct >= 80 else _FAIR if pct >= 50 else _POOR
        parts.append(f'<text x="{label_width - 6}" y="{y + 13}" font-size="12" text-anchor="end" fill="#222">'
                     f"<title>{escape(path)}</title>{escape(_shorten(path, 17))}</text>")
        # A file at 0 % still gets a visible mark, so it reads as "nothing covered", not as a missing bar.
        parts.append(f'<rect x="{label_width}" y="{y}" width="{max(plot * pct / 100, 3):.1f}" height="{bar_height}" '
                     f'fill="{colour}"/>')
        parts.append(f'<text x="{label_width + max(plot * pct / 100, 3) + 4:.1f}" y="{y + 13}" font-size="12" '
                     f'fill="#222">{_percent(pct)}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def rank_distribution(rank_counts: Mapping[str, int], *, title: str = "Complexity rank distribution",
                      width: int = 360, height: int = 210) -> str:
    """Vertical bars: how many functions/blocks the analyser (radon, lizard) ranked A (simple) to F (very complex)."""
    counts = {rank: max(0, int(_number(rank_counts.get(rank, 0)))) for rank in RANKS}
    if not any(counts.values()):
        return ""
    top, bottom, left = 30, 40, 40
    plot_height = height - top - bottom
    column = (width - left - 10) / len(RANKS)
    highest = max(counts.values())
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold" fill="#222">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_height}" x2="{width - 10}" y2="{top + plot_height}" stroke="#888"/>',
    ]
    for index, rank in enumerate(RANKS):
        count = counts[rank]
        bar = plot_height * count / highest
        x = left + index * column + column * 0.15
        y = top + plot_height - bar
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{column * 0.7:.1f}" height="{bar:.1f}" '
                     f'fill="{_RANK_COLOURS[rank]}"><title>{rank}: {count}</title></rect>')
        parts.append(f'<text x="{x + column * 0.35:.1f}" y="{y - 4:.1f}" font-size="12" text-anchor="middle" '
                     f'fill="#222">{count}</text>')
        parts.append(f'<text x="{x + column * 0.35:.1f}" y="{top + plot_height + 18}" font-size="13" '
                     f'text-anchor="middle" fill="#222">{rank}</text>')
    parts.append(f'<text x="{left}" y="{height - 4}" font-size="12" fill="#555">A = simple … F = very complex</text>')
    parts.append("</svg>")
    return "".join(parts)


def coverage_files_from_report(coverage: Mapping | None) -> list[tuple[str, float]]:
    """(path, line %) pairs out of a report's `coverage.files[]`, tolerant of missing keys."""
    if not coverage:
        return []
    rows = []
    for item in coverage.get("files") or []:
        if not isinstance(item, Mapping):
            continue
        path = item.get("path") or item.get("file") or item.get("name")
        pct = item.get("line_percent", item.get("percent"))
        if path is not None and pct is not None:
            rows.append((str(path), _number(pct)))
    return rows


def calibration_chart(rows: Sequence[tuple[str, float | None, float | None, int]], *,
                      title: str = "Mean self-assessed and final level per criterion", width: int = 360) -> str:
    """Two bars per criterion: the mean self-assessed level and the mean final level, on the criterion's own scale.
    `rows`: (criterion title, mean self level or None, mean final level or None, top level)."""
    rows = [row for row in rows if row[1] is not None or row[2] is not None]
    if not rows:
        return ""
    label_height, bar_height, top, left = 16, 12, 46, 4
    block = label_height + 2 * bar_height + 12
    plot = width - left - 40
    height = top + len(rows) * block + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold" fill="#222">{escape(title)}</text>',
        '<rect x="0" y="24" width="12" height="12" fill="#7b1fa2"/><text x="16" y="34" font-size="12" fill="#222">self</text>',
        '<rect x="60" y="24" width="12" height="12" fill="#1a56a8"/><text x="76" y="34" font-size="12" fill="#222">final</text>',
    ]
    for index, (label, own, final, top_level) in enumerate(rows):
        y = top + index * block
        scale = plot / max(top_level, 1)
        parts.append(f'<text x="{left}" y="{y + 12}" font-size="12" fill="#222">{escape(_shorten(label, 44))}</text>')
        for offset, (value, colour, name) in enumerate(((own, "#7b1fa2", "self"), (final, "#1a56a8", "final"))):
            bar_y = y + label_height + offset * (bar_height + 2)
            if value is None:
                parts.append(f'<text x="{left}" y="{bar_y + 10}" font-size="12" fill="#555">{name}: none</text>')
                continue
            length = max(_number(value) * scale, 3)
            parts.append(f'<rect x="{left}" y="{bar_y}" width="{length:.1f}" height="{bar_height}" fill="{colour}">'
                         f"<title>{name}: {value:.2f} of {top_level}</title></rect>")
            parts.append(f'<text x="{left + length + 4:.1f}" y="{bar_y + 10}" font-size="12" fill="#222">'
                         f"{value:.1f}</text>")
    parts.append("</svg>")
    return "".join(parts)
