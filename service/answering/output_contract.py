"""Checks a model's answer against a version's output contract, and asks for repairs (pure).

::

    reply text ──assess_output──> OutputCheck(value, text)        valid JSON meeting the schema
                                  OutputCheck(problem="...")      ──build_repair_messages──>
                                                                  the follow-up conversation

The answer may be bare JSON or a fenced block (```` ```json ... ``` ````). It is bounded
before it is parsed (:data:`MAX_OUTPUT_CHARS`), and its nesting after
(:data:`MAX_OUTPUT_DEPTH`; a parser's recursion limit is a failure, not a crash). A problem
names where in the document and which schema rule, never the model's values (it reaches
logs and problem bodies), and is redacted besides: object keys come from the model.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from api.v1alpha1.output import measure_depth
from prompting.redaction import redact
from prompting.rendering import Message

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

__all__ = [
    "MAX_OUTPUT_CHARS",
    "MAX_OUTPUT_DEPTH",
    "MAX_REPAIR_ECHO_CHARS",
    "REPAIR_INSTRUCTION",
    "OutputCheck",
    "assess_output",
    "build_repair_messages",
    "describe_violation",
    "extract_json_text",
]

#: Longest answer parsed as JSON (characters); longer is a problem, not a parse.
MAX_OUTPUT_CHARS = 256 * 1024
#: Deepest nesting of objects and arrays accepted in an answer.
MAX_OUTPUT_DEPTH = 64
#: Longest excerpt of the invalid answer echoed back to the model in a repair call.
MAX_REPAIR_ECHO_CHARS = 4000
#: The opening of the repair call's user message.
REPAIR_INSTRUCTION = "Your previous reply did not meet the required JSON output contract"
#: Longest schema value quoted in a problem (an enum list, a pattern).
_MAX_QUOTED = 200

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n(.*?)\r?\n?[ \t]*```", re.DOTALL)


@dataclass(frozen=True)
class OutputCheck:
    """The outcome of checking one answer: the document, or what is wrong with it."""

    #: The parsed document (None when invalid; also a valid JSON ``null``: see `problem`).
    value: Any = None
    #: The document as compact JSON text (empty when invalid).
    text: str = ""
    #: What is wrong, for logs, the problem body and the repair call; None when valid.
    problem: str | None = None

    @property
    def valid(self) -> bool:
        """Whether the answer is JSON meeting the schema."""
        return self.problem is None


def extract_json_text(text: str) -> str:
    """The JSON part of an answer: the whole text, or its first fenced block (pure)."""
    stripped = text.strip()
    if stripped.startswith(("{", "[")) or "```" not in stripped:
        return stripped
    match = _FENCE.search(stripped)
    return match.group(1).strip() if match else stripped


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise ValueError("a number too large for a float is not accepted")
    return number


def _quote(value: object) -> str:
    shown = json.dumps(value, ensure_ascii=False, default=str)
    return shown if len(shown) <= _MAX_QUOTED else shown[: _MAX_QUOTED - 3] + "..."


def _path(error: ValidationError) -> str:
    parts = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return "$" + parts


def describe_violation(error: ValidationError) -> str:
    """Where and which rule, from the schema's side only: never the offending value (pure)."""
    keyword, expected = str(error.validator), error.validator_value
    if keyword == "required":
        rule = error.message  # "'name' is a required property": the name is the schema's
    elif keyword == "type":
        rule = f"must be of type {_quote(expected)}"
    elif keyword == "enum":
        rule = f"must be one of {_quote(expected)}"
    elif keyword == "const":
        rule = f"must equal {_quote(expected)}"
    elif keyword in ("additionalProperties", "unevaluatedProperties"):
        rule = "has properties the schema does not allow"
    elif keyword in ("anyOf", "oneOf", "allOf", "not", "if"):
        rule = f"does not match the schema's {keyword}"
    else:
        rule = f"breaks {keyword} {_quote(expected)}"
    return redact(f"{_path(error)} {rule}")


def assess_output(text: str, schema: Mapping[str, Any]) -> OutputCheck:
    """Whether `text` is (or fences) one JSON document meeting `schema` (pure)."""
    if len(text) > MAX_OUTPUT_CHARS:
        return OutputCheck(problem=f"the answer is longer than {MAX_OUTPUT_CHARS} characters")
    candidate = extract_json_text(text)
    if not candidate:
        return OutputCheck(problem="the answer is empty, not a JSON document")
    try:
        value = json.loads(candidate, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        return OutputCheck(problem=f"the answer nests deeper than {MAX_OUTPUT_DEPTH} levels")
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        return OutputCheck(problem=f"the answer is not valid JSON ({where}: {error.msg})")
    except ValueError:
        return OutputCheck(
            problem="the answer is not valid JSON (NaN, Infinity or a number out of range)"
        )
    depth = measure_depth(value)
    if depth > MAX_OUTPUT_DEPTH:
        return OutputCheck(problem=f"the answer nests {depth} levels, more than {MAX_OUTPUT_DEPTH}")
    # Deferred: jsonschema loads with the first schema, not at start-up.
    from jsonschema import Draft202012Validator  # noqa: PLC0415
    from jsonschema.exceptions import best_match  # noqa: PLC0415

    try:
        violation = best_match(Draft202012Validator(dict(schema)).iter_errors(value))
    except RecursionError:
        return OutputCheck(problem="the answer is too deeply nested to validate")
    if violation is not None:
        return OutputCheck(
            problem=f"the answer breaks the output schema: {describe_violation(violation)}"
        )
    return OutputCheck(value, json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def build_repair_messages(
    messages: Sequence[Message], answer: str, problem: str, schema: Mapping[str, Any]
) -> list[Message]:
    """The conversation of a repair call: the original, the bad answer, and what to fix (pure).

    The bad answer is echoed back cut to :data:`MAX_REPAIR_ECHO_CHARS` (a 10 MB answer is
    not sent again); the schema is restated so that the model needs nothing else.
    """
    echoed = answer[:MAX_REPAIR_ECHO_CHARS]
    if len(answer) > MAX_REPAIR_ECHO_CHARS:
        echoed += "\n[... cut ...]"
    instruction = (
        f"{REPAIR_INSTRUCTION}: {problem}.\n"
        "Reply again with only one JSON document (no prose, no code fence) that validates "
        "against this JSON Schema:\n"
        f"{json.dumps(dict(schema), ensure_ascii=False, sort_keys=True)}"
    )
    return [*messages, Message("assistant", echoed), Message("user", instruction)]
