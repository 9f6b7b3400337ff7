"""JUnit XML: one testsuite per version, one testcase per case (pure).

GitHub and GitLab test reporting read this shape: ``<testsuites>`` with counts, each
``<testsuite>`` named after the prompt and version, each ``<testcase>`` with
``classname`` ``<prompt>.<version>`` and ``name`` the case id. A failed case has a
``<failure>`` with its first reason as the message and every reason in the text; a case
the service could not answer has an ``<error>``. Pass fractions of repeated runs are
``<property>`` elements.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from prompting.evals.meta import ReportMeta
from prompting.evals.scoring import CaseResult

__all__ = ["render_junit"]

# Characters XML 1.0 cannot carry, even escaped: an answer may hold any of them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _safe(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _seconds(result: CaseResult) -> str:
    latency = sum(run.latency_ms or 0.0 for run in result.runs)
    return f"{latency / 1000:.3f}"


def _testcase(result: CaseResult, classname: str) -> ET.Element:
    case = ET.Element(
        "testcase", {"classname": classname, "name": result.case_id, "time": _seconds(result)}
    )
    properties = ET.SubElement(case, "properties")
    for name, value in (
        ("weight", f"{result.weight:g}"),
        ("runs", str(len(result.runs))),
        ("passed_runs", str(result.passed_runs)),
        ("required_runs", str(result.required)),
        ("outcome", result.outcome),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": _safe(value)})
    if result.passed:
        return case
    reasons = result.failures or ["failed"]
    runs = f" ({result.passed_runs}/{len(result.runs)} runs passed)" if len(result.runs) > 1 else ""
    if result.error is not None:
        error = ET.SubElement(case, "error", {"message": _safe(result.error), "type": "request"})
        error.text = _safe("\n".join(reasons))
    else:
        message = _safe(reasons[0] + runs)
        failure = ET.SubElement(case, "failure", {"message": message, "type": "check"})
        failure.text = _safe(
            "\n".join([f"Question: {result.question}", *reasons, "", result.answer])
        )
    return case


def render_junit(results: Mapping[str, Sequence[CaseResult]], meta: ReportMeta) -> str:
    """The JUnit XML document for every version's results (baseline first)."""
    root = ET.Element("testsuites", {"name": f"promptctl eval {meta.prompt}"})
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for version, cases in results.items():
        role = {meta.baseline: "baseline", meta.candidate: "candidate"}.get(version, "")
        errors = sum(1 for c in cases if c.error is not None)
        failures = sum(1 for c in cases if not c.passed and c.error is None)
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": f"{meta.prompt} {version}" + (f" ({role})" if role else ""),
                "tests": str(len(cases)),
                "failures": str(failures),
                "errors": str(errors),
                "skipped": "0",
                "time": f"{sum(float(_seconds(c)) for c in cases):.3f}",
            },
        )
        classname = f"{meta.prompt}.{version}"
        for result in cases:
            suite.append(_testcase(result, classname))
        totals["tests"] += len(cases)
        totals["failures"] += failures
        totals["errors"] += errors
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
