"""What a report was run on: shared by every report format."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReportMeta"]


@dataclass(frozen=True)
class ReportMeta:
    """What the report was run on."""

    prompt: str
    evalset: str
    baseline: str
    candidate: str
    target: str
    repeat: int = 1
    pass_quorum: float = 1.0
    #: Where the baseline's results come from: None (run now) or a stored report's path.
    baseline_report: str | None = None
    evalset_digest: str = ""
    #: The spec diff between the two versions (`promptctl diff`), when the manifests were found.
    spec_diff: str | None = None
