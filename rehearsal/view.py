"""How a rehearsal shows progress: a live table on a terminal, plain lines elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from rehearsal.timeline import Recorder

__all__ = ["LiveView", "PlainView", "build_table", "render_change", "render_summary"]


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def render_change(entry: Mapping[str, Any]) -> str:
    """``[ 12.5s] 1.1.0 Progressing weight 20 verdict Successful`` (pure)."""
    verdict = f" verdict {entry['verdict']}" if entry.get("verdict") else ""
    message = f" - {entry['message']}" if entry.get("message") else ""
    return (
        f"[{entry['t']:6.1f}s] {entry['version']} {entry.get('phase') or '?'} "
        f"weight {entry.get('weight') if entry.get('weight') is not None else '-'}"
        f"{verdict}{message}"
    )


def _rate_cells(rates: Mapping[str, Any]) -> list[str]:
    p95 = rates.get("p95LatencyMs")
    return [
        str(rates.get("requests", 0)),
        _pct(rates.get("errorRate")),
        _pct(rates.get("unknownRate")),
        _pct(rates.get("refusedRate")),
        "-" if p95 is None else f"{p95:.0f}",
        _pct(rates.get("feedbackNegative")),
    ]


_COLUMNS = ("version", "phase", "weight", "verdict", "req/10s", "errors", "unknown",
            "refused", "p95 ms", "thumbs down")  # fmt: skip


def build_table(t: float, recorder: Recorder, rates: Mapping[str, Mapping[str, Any]]) -> Table:
    """The live view: one row per version (pure)."""
    table = Table(title=f"rehearsal at {t:.0f}s", title_justify="left")
    for column in _COLUMNS:
        table.add_column(column)
    for version in recorder.versions:
        status = recorder.last.get(version, {})
        verdict = (status.get("lastAnalysis") or {}).get("verdict") or "-"
        weight = status.get("weight")
        table.add_row(
            version,
            str(status.get("phase") or "-"),
            "-" if weight is None else str(weight),
            str(verdict),
            *_rate_cells(rates.get(version, {})),
        )
    return table


def render_summary(result: Mapping[str, Any], unmet: list[str]) -> str:
    """The closing summary, plain text (pure)."""
    lines = [f"rehearsal of {result.get('scenario')} ({result.get('elapsedSeconds')} s):"]
    for version, outcome in result["versions"].items():
        decided = outcome.get("decidedAfterSeconds")
        when = f" after {decided:g} s" if decided is not None else ""
        reason = f": {outcome['reason']}" if outcome.get("reason") else ""
        lines.append(
            f"  {version}: {outcome.get('phase') or 'no phase'}{when}, "
            f"max weight {outcome.get('maxWeight')}{reason}"
        )
    traffic = result.get("traffic") or {}
    lines.append(
        f"  traffic: {traffic.get('requests', 0)} requests {traffic.get('byStatus', {})}, "
        f"{traffic.get('dropped', 0)} dropped (service saturated)"
    )
    feedback = result.get("feedback") or {}
    if feedback.get("sent"):
        lines.append(f"  feedback: sent {feedback['sent']}, responses {feedback['responses']}")
    if "notifications" in result:
        received = result["notifications"]
        phases = ", ".join(
            f"{n['event'].get('version')} {n['event'].get('phase')}"
            for n in received
            if n.get("status") == 200 and n.get("verified") and isinstance(n.get("event"), dict)
        )
        verified = sum(1 for n in received if n.get("verified"))
        lines.append(f"  notifications: {len(received)} received, {verified} verified: {phases}")
    lines += [f"  note: {note}" for note in result.get("notes") or []]
    if unmet:
        lines += [f"  EXPECTATION NOT MET: {line}" for line in unmet]
    elif result.get("expect"):
        lines.append("  every expectation met")
    return "\n".join(lines)


class PlainView:
    """A line per change, and the rates every 10 s: for logs, CI and ``--output json``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._next_rates = 10.0

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def update(
        self,
        t: float,
        recorder: Recorder,
        added: list[dict[str, Any]],
        rates: Mapping[str, Mapping[str, Any]],
    ) -> None:
        for entry in added:
            self.say(render_change(entry))
        if t >= self._next_rates:
            self._next_rates += 10.0
            for version in recorder.versions:
                cells = dict(zip(_COLUMNS[4:], _rate_cells(rates.get(version, {})), strict=True))
                detail = ", ".join(f"{k} {v}" for k, v in cells.items())
                self.say(f"[{t:6.1f}s] {version} last 10 s: {detail}")


class LiveView:
    """A table redrawn in place on a terminal (rich), with the changes printed above it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def update(
        self,
        t: float,
        recorder: Recorder,
        added: list[dict[str, Any]],
        rates: Mapping[str, Mapping[str, Any]],
    ) -> None:
        table = build_table(t, recorder, rates)
        if self.live is None:
            self.live = Live(table, console=self.console, refresh_per_second=2, transient=True)
            self.live.start()
        for entry in added:
            self.live.console.print(render_change(entry), markup=False, highlight=False)
        self.live.update(table)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
