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


def _shorten(label: str, limit: int) -> str:
    return label if len(label) <= limit else "…" + label[-(limit - 1):]


def coverage_bars(files: Sequence[tuple[str, float]], *, title: str = "Line coverage per file",
                  max_files: int = 40, width: int = 640) -> str:
    """Horizontal bars, one per file, 0–100 %, weakest first. `files`: (path, percent)."""
    rows = sorted(((str(path), max(0.0, min(100.0, _number(pct)))) for path, pct in files), key=lambda r: (r[1], r[0]))
    rows = rows[:max_files]
    if not rows:
        return ""
    label_width, bar_height, gap, top = 220, 18, 6, 28
    plot = width - label_width - 60
    height = top + len(rows) * (bar_height + gap) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold" fill="#222">{escape(title)}</text>',
    ]
    for tick in (0, 50, 80, 100):
        x = label_width + plot * tick / 100
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 20}" stroke="#ccc" stroke-width="1"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" font-size="11" text-anchor="middle" fill="#555">{tick}%</text>')
    for index, (path, pct) in enumerate(rows):
        y = top + index * (bar_height + gap)
        colour = _GOOD if pct >= 80 else _FAIR if pct >= 50 else _POOR
        parts.append(f'<text x="{label_width - 8}" y="{y + 13}" font-size="12" text-anchor="end" fill="#222">'
                     f"<title>{escape(path)}</title>{escape(_shorten(path, 32))}</text>")
        parts.append(f'<rect x="{label_width}" y="{y}" width="{plot * pct / 100:.1f}" height="{bar_height}" fill="{colour}"/>')
        parts.append(f'<text x="{label_width + plot * pct / 100 + 4:.1f}" y="{y + 13}" font-size="12" fill="#222">{pct:.1f}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def rank_distribution(rank_counts: Mapping[str, int], *, title: str = "Complexity rank distribution",
                      width: int = 480, height: int = 220) -> str:
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
    parts.append(f'<text x="{left}" y="{height - 4}" font-size="11" fill="#555">A = simple … F = very complex</text>')
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
