"""Holds a model's answer to the version's output contract: check, repair, or give up.

::

    reply ──assess_output──> valid ─────────────────────────────> EnforcedOutput(check valid)
                             invalid ──repair call (same deadline)──> check again (≤ repair times)
                                     └─ no time left, repair call failed, repairs used up
                                                               ──> EnforcedOutput(check invalid)

Each repair call carries the conversation, the bad answer and the validation problem
(:func:`service.answering.output_contract.build_repair_messages`), runs under the request's
one :class:`Deadline` (the caller's ``complete`` enforces it) and gets its own upstream
Idempotency-Key, so an upstream that replays by key cannot hand back the bad answer.
Tokens of every call add up in the returned reply.

The embedded extractive answerer (no ``MODEL_BASE_URL``) only quotes text, so it cannot
write JSON: its reply is never repaired (a repair would quote prose again), and the error
says what to do instead (:data:`EMBEDDED_CANNOT_WRITE_JSON`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from api.v1alpha1 import OutputContract
from service.answering.output_contract import OutputCheck, assess_output, build_repair_messages
from service.errors import InvalidOutputError, ServiceError
from service.llm.chat import ChatRequest, ChatResponse, ResponseFormat
from service.llm.extractive import EXTRACTIVE_MODEL_ID
from service.llm.resilience.deadline import Deadline

__all__ = [
    "EMBEDDED_CANNOT_WRITE_JSON",
    "EnforcedOutput",
    "assess_cacheable",
    "build_response_format",
    "fetch_valid_output",
]

#: The problem detail of an output contract met by the embedded answerer: what to do.
EMBEDDED_CANNOT_WRITE_JSON = (
    "the embedded extractive answerer (used because MODEL_BASE_URL is not set) cannot "
    "produce JSON, so this version's output contract is never met: set MODEL_BASE_URL to "
    "an OpenAI-compatible model server (`promptctl fake-model` runs a local one, "
    "docs/fake-model.md)"
)


@dataclass(frozen=True)
class EnforcedOutput:
    """The last reply (tokens of every call summed), its check, and the repairs it took."""

    reply: ChatResponse
    check: OutputCheck
    repairs: int
    #: Why repairs stopped early (no time left, the repair call failed), if they did.
    stopped: str | None = None

    def error(self) -> InvalidOutputError:
        """The error of an answer that never met the contract."""
        if self.reply.model == EXTRACTIVE_MODEL_ID:
            return InvalidOutputError(f"{EMBEDDED_CANNOT_WRITE_JSON} ({self.check.problem})")
        detail = (
            f"the model's answer broke the output contract after {self.repairs} repair "
            f"attempt(s): {self.check.problem}"
        )
        if self.stopped:
            detail += f" ({self.stopped})"
        return InvalidOutputError(detail)

    def require(self) -> Any:
        """The valid document; raises :class:`InvalidOutputError` when there is none."""
        if not self.check.valid:
            raise self.error()
        return self.check.value


def build_response_format(prompt: str, contract: OutputContract | None) -> ResponseFormat | None:
    """What the model is asked for: the contract's schema, named after the prompt (pure)."""
    if contract is None:
        return None
    return ResponseFormat(name=prompt, schema=contract.schema_, strict=contract.strict)


def assess_cacheable(contract: OutputContract | None, text: str) -> bool:
    """Whether a reply may go into the response cache: never one that breaks the contract
    (it would cost a repair call on every hit) (pure)."""
    return contract is None or assess_output(text, contract.schema_).valid


def _add_usage(total: ChatResponse, extra: ChatResponse) -> ChatResponse:
    return replace(
        extra,
        input_tokens=total.input_tokens + extra.input_tokens,
        output_tokens=total.output_tokens + extra.output_tokens,
        retries=total.retries + extra.retries,
        fallback_used=total.fallback_used or extra.fallback_used,
        cache_hit=False,
    )


async def fetch_valid_output(
    contract: OutputContract,
    request: ChatRequest,
    reply: ChatResponse,
    complete: Callable[[ChatRequest], Awaitable[ChatResponse]],
    deadline: Deadline,
) -> EnforcedOutput:
    """Check `reply`; while it breaks the contract, ask again up to ``contract.repair`` times.

    `complete` makes one model call within `deadline` (raising a ServiceError when it
    cannot); a repair is only started while time is left. The embedded answerer's reply is
    never repaired: it cannot write JSON.
    """
    schema = contract.schema_
    check = assess_output(reply.text, schema)
    total = reply
    repairs = 0
    embedded = reply.model == EXTRACTIVE_MODEL_ID
    while not check.valid and not embedded and repairs < contract.repair:
        if deadline.remaining() <= 0:
            return EnforcedOutput(total, check, repairs, "no time left for a repair")
        repairs += 1
        key = request.idempotency_key
        follow_up = replace(
            request,
            messages=build_repair_messages(
                request.messages, total.text, check.problem or "", schema
            ),
            idempotency_key=f"{key}-repair-{repairs}" if key else None,
        )
        try:
            answer = await complete(follow_up)
        except ServiceError as error:
            return EnforcedOutput(
                total, check, repairs, f"the repair call failed: {type(error).__name__}"
            )
        total = _add_usage(total, answer)
        check = assess_output(answer.text, schema)
    if check.valid:
        total = replace(total, text=check.text)
    return EnforcedOutput(total, check, repairs)
