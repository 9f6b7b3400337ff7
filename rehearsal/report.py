"""``--report FILE.html``: the rehearsal as one self-contained page (inline SVG, no scripts,
nothing fetched from anywhere) (pure).

Two charts share the time axis: each version's traffic weight (0-100 %), and the signal
that decided the rehearsal (the rate named by the deciding version's reason, from the
rehearsal's own traffic, last 10 s) per version. Analyses are marked on the weight chart
(a red tick for Failed, grey for the others).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_report"]

_W, _H, _PAD = 760, 220, 44
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
_LABELS = {
    "errorRate": ("error rate", True),
    "unknownRate": ("unknown rate", True),
    "refusedRate": ("refused rate", True),
    "feedbackNegative": ("thumbs-down share", True),
    "p95LatencyMs": ("p95 latency (ms)", False),
}


def _deciding(result: Mapping[str, Any]) -> tuple[str | None, str]:
    """(version, signal) of the first version decided other than by promotion."""
    decided = [
        (v, o)
        for v, o in result["versions"].items()
        if o.get("decidedAfterSeconds") is not None and o.get("signal")
    ]
    decided.sort(key=lambda item: (item[1]["phase"] == "Promoted", item[1]["decidedAfterSeconds"]))
    if decided:
        return decided[0][0], str(decided[0][1]["signal"])
    return None, "errorRate"


def _polyline(points: Sequence[tuple[float, float]], colour: str) -> str:
    if not points:
        return ""
    text = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{text}"/>'


def _chart(
    title: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    t_max: float,
    y_max: float,
    y_label: str,
    marks: Sequence[tuple[float, str]] = (),
) -> str:
    span_x, span_y = _W - 2 * _PAD, _H - 2 * _PAD

    def x(t: float) -> float:
        return _PAD + span_x * (t / t_max if t_max else 0)

    def y(v: float) -> float:
        return _H - _PAD - span_y * (v / y_max if y_max else 0)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{_PAD}" y="18" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#444"/>',
        f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#444"/>',
        f'<text x="{_PAD - 4}" y="{_PAD + 4}" text-anchor="end" font-size="11">{y_max:g}</text>',
        f'<text x="{_PAD - 4}" y="{_H - _PAD}" text-anchor="end" font-size="11">0</text>',
        f'<text x="{_W - _PAD}" y="{_H - _PAD + 16}" text-anchor="end" font-size="11">'
        f"{t_max:.0f} s</text>",
        f'<text x="{_PAD}" y="{_H - 8}" font-size="11">{html.escape(y_label)}</text>',
    ]
    for t, colour in marks:
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{_H - _PAD}" x2="{x(t):.1f}" y2="{_H - _PAD + 6}" '
            f'stroke="{colour}"/>'
        )
    for index, (version, points) in enumerate(series.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        parts.append(_polyline([(x(t), y(v)) for t, v in points], colour))
        parts.append(
            f'<text x="{_W - _PAD + 4}" y="{_PAD + 14 * index}" font-size="11" '
            f'fill="{colour}">{html.escape(version)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def render_report(result: Mapping[str, Any], samples: Sequence[Mapping[str, Any]]) -> str:
    """The HTML page for `result` (the ``--output json`` object) and the chart samples."""
    versions = list(result["versions"])
    t_max = max([float(s["t"]) for s in samples] + [1.0])
    weights = {
        v: [
            (float(s["t"]), float(s["weights"][v]))
            for s in samples
            if s["weights"].get(v) is not None
        ]
        for v in versions
    }
    marks = [
        (float(a["t"]), "#d62728" if a.get("verdict") == "Failed" else "#999")
        for a in result.get("analyses") or []
    ]
    deciding, signal = _deciding(result)
    label, is_ratio = _LABELS.get(signal, (signal, True))
    values = {
        v: [
            (float(s["t"]), float(s["rates"][v][signal]) * (100 if is_ratio else 1))
            for s in samples
            if s.get("rates", {}).get(v, {}).get(signal) is not None
        ]
        for v in versions
    }
    top = max([p[1] for points in values.values() for p in points] + [1.0])
    unit = f"{label} (%)" if is_ratio else label
    rows = "".join(
        f"<tr><td>{html.escape(v)}</td><td>{html.escape(str(o.get('phase')))}</td>"
        f"<td>{o.get('maxWeight')}</td><td>{o.get('decidedAfterSeconds')}</td>"
        f"<td>{html.escape(str(o.get('reason') or ''))}</td></tr>"
        for v, o in result["versions"].items()
    )
    notes = "".join(f"<li>{html.escape(str(n))}</li>" for n in result.get("notes") or [])
    decided_by = f"decided by {html.escape(deciding)}'s {html.escape(label)}" if deciding else label
    weight_chart = _chart(
        "Traffic weight (%) per version",
        weights,
        t_max,
        100,
        "weight %; ticks: analyses (red: Failed)",
        marks,
    )
    signal_chart = _chart(
        f"Signal: {decided_by}", values, t_max, top, unit + ", last 10 s of traffic"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Rehearsal: {html.escape(str(result.get("scenario")))}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:left}}</style>
</head><body>
<h1>Rehearsal of {html.escape(str(result.get("scenario")))}</h1>
<p>Speed {result.get("speed")}x, {result.get("elapsedSeconds")} s of rehearsal.</p>
<table><tr><th>version</th><th>phase</th><th>max weight</th><th>decided after (s)</th>
<th>reason</th></tr>{rows}</table>
{weight_chart}
{signal_chart}
<ul>{notes}</ul>
</body></html>
"""
