"""Inline SVG charts for the HTML report (pure; no scripts, no network).

Every mark carries its data as attributes (``data-series``, ``data-category``,
``data-value``), so the report can be checked by parsing it and read by assistive tools;
each chart has a ``<title>`` and a ``data-chart`` name.

    render_grouped_bars(name, title, categories, series, unit) -> str
    render_histogram(name, title, series, bins, unit)           -> str
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["PALETTE", "build_bins", "render_grouped_bars", "render_histogram"]

#: Baseline, candidate (colour-blind safe: blue and orange).
PALETTE = ("#4477aa", "#ee7733", "#228833", "#aa3377")
_WIDTH = 640
_LABEL = 170
_BAR = 14
_GAP = 10


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _legend(series: Sequence[str], y: int) -> list[str]:
    parts = []
    for index, name in enumerate(series):
        x = _LABEL + index * 150
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 18}" y="{y + 11}">{escape(name)}</text>')
    return parts


def render_grouped_bars(
    name: str,
    title: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    unit: str = "",
    maximum: float | None = None,
) -> str:
    """Horizontal bars: one group per category, one bar per series (None: no bar)."""
    values = [v for row in series.values() for v in row if v is not None]
    top = maximum if maximum is not None else max(values, default=0.0)
    scale = (_WIDTH - _LABEL - 70) / top if top > 0 else 0.0
    group = len(series) * _BAR + _GAP
    height = 30 + len(categories) * group + 24
    parts = [
        f'<svg role="img" data-chart="{escape(name)}" '
        f'width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}">',
        f"<title>{escape(title)}</title>",
    ]
    for row, category in enumerate(categories):
        y0 = 24 + row * group
        parts.append(f'<text x="0" y="{y0 + group / 2}" class="label">{escape(category)}</text>')
        for index, (series_name, row_values) in enumerate(series.items()):
            value = row_values[row]
            y = y0 + index * _BAR
            if value is None:
                continue
            width = max(value * scale, 0.0)
            colour = PALETTE[index % len(PALETTE)]
            parts.append(
                f'<rect x="{_LABEL}" y="{y}" width="{width:.1f}" height="{_BAR - 2}" '
                f'fill="{colour}" data-series="{escape(series_name)}" '
                f'data-category="{escape(category)}" data-value="{_fmt(value)}">'
                f"<title>{escape(series_name)} · {escape(category)}: "
                f"{_fmt(value)}{escape(unit)}</title></rect>"
            )
            parts.append(
                f'<text x="{_LABEL + width + 4:.1f}" y="{y + _BAR - 3}" class="value">'
                f"{_fmt(value)}{escape(unit)}</text>"
            )
    parts += _legend(list(series), height - 18)
    parts.append("</svg>")
    return "".join(parts)


def build_bins(values: Sequence[float], count: int) -> list[tuple[float, float]]:
    """`count` equal bins spanning `values` (one bin of width 1 when they are all equal)."""
    if not values:
        return []
    low, high = min(values), max(values)
    if high <= low:
        return [(low, low + 1.0)]
    step = (high - low) / count
    return [(low + i * step, low + (i + 1) * step) for i in range(count)]


def _count(values: Sequence[float], start: float, end: float, last: bool) -> int:
    return sum(1 for v in values if start <= v < end or (last and v == end))


def render_histogram(
    name: str, title: str, series: Mapping[str, Sequence[float]], bins: int = 8, unit: str = ""
) -> str:
    """Vertical bars: how many values of each series fall in each shared bin."""
    edges = build_bins([v for values in series.values() for v in values], bins)
    counts = {
        key: [_count(values, a, b, i == len(edges) - 1) for i, (a, b) in enumerate(edges)]
        for key, values in series.items()
    }
    top = max((c for row in counts.values() for c in row), default=0)
    plot_h, height = 160, 240
    slot = (_WIDTH - 40) / max(len(edges), 1)
    bar = max((slot - 6) / max(len(series), 1), 1.0)
    parts = [
        f'<svg role="img" data-chart="{escape(name)}" '
        f'width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="30" y1="{plot_h + 10}" x2="{_WIDTH}" y2="{plot_h + 10}" stroke="#999"/>',
    ]
    for i, (start, end) in enumerate(edges):
        x0 = 34 + i * slot
        for index, (key, row) in enumerate(counts.items()):
            h = row[i] / top * plot_h if top else 0.0
            colour = PALETTE[index % len(PALETTE)]
            parts.append(
                f'<rect x="{x0 + index * bar:.1f}" y="{plot_h + 10 - h:.1f}" width="{bar - 1:.1f}" '
                f'height="{h:.1f}" fill="{colour}" data-series="{escape(key)}" '
                f'data-bin-start="{_fmt(start)}" data-bin-end="{_fmt(end)}" data-value="{row[i]}">'
                f"<title>{escape(key)}: {row[i]} in {_fmt(start)} to {_fmt(end)}{escape(unit)}"
                "</title></rect>"
            )
        parts.append(
            f'<text x="{x0:.1f}" y="{plot_h + 26}" class="tick">{start:.0f}{escape(unit)}</text>'
        )
    parts += _legend(list(series), height - 18)
    parts.append("</svg>")
    return "".join(parts)
