"""What a rehearsal saw, and what it concludes (pure: no I/O, time is passed in).

`Recorder.observe` is called about twice a second with the PromptVersions' statuses and
the traffic's rates per version. It keeps a timeline of changes (phase, weight, verdict),
every distinct analysis the controller wrote (``status.lastAnalysis``), and samples for
the chart. `build_result` makes the ``--output json`` object; `assess_expectations` lists
the unmet ``expect`` entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ENDED_PHASES",
    "SIGNALS",
    "Recorder",
    "assess_expectations",
    "build_result",
    "decide_signal",
]

#: Phases a version does not leave by itself: the rehearsal of that version is over.
ENDED_PHASES = frozenset({"Promoted", "RolledBack", "Aborted", "Superseded", "Invalid"})
_FAILED = frozenset({"RolledBack", "Aborted"})
#: Signals the report can chart (keys of the traffic's rates), by the words that name them.
SIGNALS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unknownRate", ("unknown",)),
    ("refusedRate", ("refus",)),
    ("feedbackNegative", ("feedback",)),
    ("p95LatencyMs", ("p95", "latency")),
    ("errorRate", ("error",)),
)


def decide_signal(reason: str) -> str:
    """The rate that a verdict's reason names first (``errorRate`` when it names none)."""
    text = reason.casefold()
    found = [
        (text.find(word), signal) for signal, words in SIGNALS for word in words if word in text
    ]
    return min(found)[1] if found else "errorRate"


def _reason(status: Mapping[str, Any]) -> str:
    analysis = status.get("lastAnalysis") or {}
    reasons = [str(r) for r in analysis.get("reasons") or []]
    message = str(status.get("message") or "")
    return message or "; ".join(reasons)


@dataclass
class Recorder:
    """Changes, analyses and samples of one rehearsal; `t` is seconds since it started."""

    versions: Sequence[str]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    analyses: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    max_weight: dict[str, int] = field(default_factory=dict)
    decided_at: dict[str, float] = field(default_factory=dict)
    last: dict[str, dict[str, Any]] = field(default_factory=dict)
    _seen: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _analysis_keys: set[tuple[str, str]] = field(default_factory=set)

    def observe(
        self,
        t: float,
        statuses: Mapping[str, Mapping[str, Any]],
        rates: Mapping[str, Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """Record one look at the rollout; returns the timeline entries it added."""
        added: list[dict[str, Any]] = []
        t = round(t, 1)
        for version in self.versions:
            status = statuses.get(version)
            if not status:  # not applied yet, or the controller has not seen it yet
                continue
            self.last[version] = dict(status)
            phase, weight = status.get("phase"), status.get("weight")
            analysis = status.get("lastAnalysis") or {}
            verdict = analysis.get("verdict")
            if isinstance(weight, int):
                self.max_weight[version] = max(self.max_weight.get(version, 0), weight)
            if phase in ENDED_PHASES and version not in self.decided_at:
                self.decided_at[version] = t
            key = (phase, weight, verdict, status.get("message"), status.get("stepKind"))
            if self._seen.get(version) != key:
                self._seen[version] = key
                entry = {
                    "t": t,
                    "version": version,
                    "phase": phase,
                    "weight": weight,
                    "stepKind": status.get("stepKind"),
                    "verdict": verdict,
                    "message": status.get("message"),
                }
                self.timeline.append(entry)
                added.append(entry)
            stamp = (version, str(analysis.get("time")) + str(verdict))
            if analysis and stamp not in self._analysis_keys:
                self._analysis_keys.add(stamp)
                self.analyses.append(
                    {
                        "t": t,
                        "version": version,
                        "time": analysis.get("time"),
                        "mode": analysis.get("mode", "live"),
                        "verdict": verdict,
                        "reasons": list(analysis.get("reasons") or []),
                        "values": analysis.get("values") or {},
                    }
                )
        self.samples.append(
            {
                "t": t,
                "weights": {v: (statuses.get(v) or {}).get("weight") for v in self.versions},
                "rates": {v: dict(r) for v, r in rates.items()},
            }
        )
        return added


def build_result(
    recorder: Recorder, *, notes: Sequence[str] = (), extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The rehearsal's outcome: ``{"versions", "analyses", "timeline", ...}`` (JSON-ready)."""
    versions: dict[str, dict[str, Any]] = {}
    for version in recorder.versions:
        status = recorder.last.get(version, {})
        reason = _reason(status)
        versions[version] = {
            "phase": status.get("phase"),
            # The highest LIVE weight: a shadow step's weight is 0.
            "maxWeight": recorder.max_weight.get(version, 0),
            "shadowSamples": status.get("shadowSamples"),
            "decidedAfterSeconds": recorder.decided_at.get(version),
            "reason": reason,
            "signal": decide_signal(reason) if status.get("phase") in _FAILED else None,
        }
    result: dict[str, Any] = {
        "versions": versions,
        "analyses": recorder.analyses,
        "timeline": recorder.timeline,
    }
    if notes:
        result["notes"] = list(notes)
    return result | dict(extra or {})


def assess_expectations(
    expect: Mapping[str, str | Mapping[str, Any]], versions: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """One line per unmet expectation, e.g. ``1.1.0: expected RolledBack, got Promoted``.

    An expectation is a phase, or ``{"phase": ..., "maxWeight": N}`` (the highest live
    weight the version may have had).
    """
    unmet = []
    for version, wanted in expect.items():
        outcome = versions.get(version) or {}
        phase = wanted.get("phase") if isinstance(wanted, Mapping) else wanted
        got = outcome.get("phase")
        if got != phase:
            unmet.append(f"{version}: expected {phase}, got {got or 'no phase'}")
        limit = wanted.get("maxWeight") if isinstance(wanted, Mapping) else None
        weight = outcome.get("maxWeight")
        if limit is not None and (weight is None or weight > limit):
            unmet.append(f"{version}: expected maxWeight at most {limit}, got {weight}")
    return unmet
