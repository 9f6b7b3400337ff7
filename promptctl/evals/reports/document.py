"""The machine-readable report (`--json`), and reading one back (`--baseline-report`).

    build_document(results, comparison, verdict, meta) -> dict    (pure; json.dumps it)
    parse_baseline(text, version)                      -> list[CaseResult] (or ReportError)

The document's ``format`` is ``promptctl-eval/v1``. ``results`` holds every run of every
case per version, so a stored report can stand in for re-running a version later.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from prompting.evals.comparison import Comparison, VersionSummary
from prompting.evals.gates import Verdict
from prompting.evals.meta import ReportMeta
from prompting.evals.scoring import CaseResult

__all__ = ["FORMAT", "ReportError", "build_document", "parse_baseline"]

FORMAT = "promptctl-eval/v1"


class ReportError(ValueError):
    """A stored report cannot be used as the baseline."""


def _summary(summary: VersionSummary) -> dict[str, Any]:
    data = dataclasses.asdict(summary)
    data["pass_rate"] = summary.pass_rate
    return data


def build_document(
    results: Mapping[str, Sequence[CaseResult]],
    comparison: Comparison,
    verdict: Verdict,
    meta: ReportMeta,
) -> dict[str, Any]:
    """Everything the run found, as JSON-ready data."""
    return {
        "format": FORMAT,
        "prompt": meta.prompt,
        "evalset": meta.evalset,
        "evalset_digest": meta.evalset_digest,
        "target": meta.target,
        "baseline": meta.baseline,
        "candidate": meta.candidate,
        "baseline_report": meta.baseline_report,
        "repeat": meta.repeat,
        "pass_quorum": meta.pass_quorum,
        "verdict": {
            "passed": verdict.passed,
            "exit_code": verdict.exit_code,
            "reasons": verdict.reasons,
        },
        "summary": {
            meta.baseline: _summary(comparison.baseline),
            meta.candidate: _summary(comparison.candidate),
        },
        "deltas": dataclasses.asdict(comparison.deltas),
        "cases": [{"id": c.case_id, "status": c.status.value} for c in comparison.cases],
        "removed": comparison.removed,
        "results": {
            version: [result.model_dump(mode="json") for result in cases]
            for version, cases in results.items()
        },
    }


def parse_baseline(text: str, version: str, prompt: str) -> tuple[list[CaseResult], str]:
    """`version`'s results in a stored report of `prompt`, and the report's eval-set digest."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ReportError(f"not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ReportError(f"not a promptctl eval report (format {FORMAT} expected)")
    if document.get("prompt") != prompt:
        raise ReportError(f"it reports on prompt {document.get('prompt')!r}, not {prompt!r}")
    stored = document.get("results")
    if not isinstance(stored, dict) or version not in stored:
        have = ", ".join(stored) if isinstance(stored, dict) else "none"
        raise ReportError(f"it has no results for version {version}; it has: {have}")
    try:
        results = [CaseResult.model_validate(item) for item in stored[version]]
    except (ValidationError, TypeError) as error:
        raise ReportError(f"its results for {version} are malformed: {error}") from None
    return results, str(document.get("evalset_digest", ""))
