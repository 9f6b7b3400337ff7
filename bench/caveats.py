"""What a reader needs to judge a run's numbers: is the load client the limit, how loaded
was the machine, and what was tried for the goals still missed.

- ``build_ceiling``: the req/s the answering server itself allows (its CPU per request,
  one process so one core, and the connections' wait on the upstream latency);
- ``render_client_check``: the direct path against that ceiling, with the client's CPU;
- ``render_tried``: the hand-kept ``bench/tried.md``, or a stated absence.

Everything here is pure but ``fetch_tried``.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.results import REPO, Scenario, ThroughputRow

__all__ = [
    "CLIENT_OK_SHARE",
    "TRIED_FILE",
    "build_ceiling",
    "fetch_tried",
    "render_client_check",
    "render_load",
    "render_tried",
]

#: The hand-kept record of what was tried for the goals (the lead keeps it).
TRIED_FILE = REPO / "bench" / "tried.md"
#: The direct path at this share of its ceiling or more: the client is not the limit.
CLIENT_OK_SHARE = 0.8
_HEADING = re.compile(r"^(#{1,6})(\s.*)$")
_COMMENT = re.compile(r"<!--.*?-->\n?", re.DOTALL)


def build_ceiling(row: ThroughputRow, latency_ms: float) -> float | None:
    """The req/s the server that answered `row` could reach at its concurrency (pure).

    Each of `concurrency` connections waits `latency_ms` plus the server's CPU per request,
    and the server (one process, so at most one core) cannot exceed 1 / CPU per request.
    None when its CPU is not known.
    """
    cpu_ms = row.cpu_ms_per_request
    if cpu_ms is None or cpu_ms <= 0:
        return None
    by_cpu = 1000.0 / cpu_ms
    by_wait = row.concurrency * 1000.0 / (max(latency_ms, 0.0) + cpu_ms)
    return min(by_wait, by_cpu)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def render_client_check(s: Scenario) -> list[str]:
    """The direct path against what the fake model allows, and the client's CPU (pure)."""
    rows = []
    service = {t.concurrency: t for t in s.throughput if t.path == "service"}
    for d in (t for t in s.throughput if t.path == "direct"):
        ceiling = build_ceiling(d, s.latency_ms)
        reached = "n/a" if not ceiling else f"{d.rps / ceiling * 100:.0f} %"
        client = [d.client_cpu_ms_per_request]
        if d.concurrency in service:
            client.append(service[d.concurrency].client_cpu_ms_per_request)
        busy = (
            "n/a"
            if d.cpu_ms_per_request is None or d.client_cpu_ms_per_request is None
            else f"{(d.cpu_ms_per_request + d.client_cpu_ms_per_request) * d.rps / 1000:.2f}"
        )
        rows.append(
            f"| {d.concurrency} | {d.rps:.1f} | {_ms(d.cpu_ms_per_request)} | "
            f"{'n/a' if ceiling is None else f'{ceiling:.0f}'} | {reached} | "
            f"{' / '.join(_ms(c) for c in client)} | {busy} |"
        )
    return [
        "Load client check. *Ceiling*: what the fake model itself allows, the smaller of",
        "connections x 1000 / (latency + its CPU/request) and 1000 / its CPU/request (one",
        f"process, one core). The direct path at {CLIENT_OK_SHARE * 100:.0f} % of it or more: the",
        "client is not the limit; below: the client or the machine's load is. *Client CPU*:",
        "the bench process's own CPU (`time.process_time_ns`) per request. *Cores busy*:",
        "client and fake model CPU per second of the direct rounds (out of nproc).",
        "",
        "| concurrency | direct req/s | fake model CPU/request (ms) | ceiling (req/s) | reached "
        "| client CPU/request, direct / service (ms) | cores busy (direct) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]


def render_load(start: str | None, end: str | None) -> str:
    """The machine's load line of the report's header (pure)."""
    if start is None and end is None:
        return "- Machine load: not known (no /proc/loadavg)."
    return (
        f"- Machine load (`/proc/loadavg`, 1/5/15 min): {start or 'n/a'} at the start, "
        f"{end or 'n/a'} at the end; above the CPU count, every figure is inflated."
    )


def fetch_tried(path: Path = TRIED_FILE) -> str | None:
    """The text of `path`, or None when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def render_tried(text: str | None, source: str = "bench/tried.md") -> list[str]:
    """The report's "What was tried" section from the hand-kept file (pure).

    The file's own title (a first ``#`` heading) and its HTML comments (notes to whoever
    keeps it) are dropped, and its other headings are moved two levels down, under this
    section's ``###``. A missing or empty file is said so in the report, never left out
    silently.
    """
    lines = ["### What was tried", ""]
    if text is None:
        return [*lines, f"`{source}` was not found: this run does not say what was tried.", ""]
    text = _COMMENT.sub("", text)
    if not text.strip():
        return [*lines, f"`{source}` is empty: nothing recorded as tried.", ""]
    lines.append(f"Kept by hand in `{source}` (not measured by this run).")
    lines.append("")
    fenced = False
    body = text.strip("\n").splitlines()
    if body and body[0].startswith("# "):
        body = body[1:]
    while body and not body[0].strip():
        body = body[1:]
    for line in body:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        lines.append(
            "#" * min(6, len(heading.group(1)) + 2) + heading.group(2) if heading else line
        )
    if fenced:
        lines.append("```")
    while len(lines) > 4 and not lines[-1].strip():
        lines.pop()
    return [*lines, ""]
