"""The tool loop: offer the version's tools, run the calls the model asks for, feed the
results back, until it answers or ``maxToolRounds`` rounds have run.

::

    model ──tool_calls──> run them (in parallel) ──tool messages──> model ──> ... ──> answer

Every model call goes through the same chat model (the resilience layer, with the
request's one deadline); tool calls get what is left of that deadline. After the last
round the model is asked once more with ``tool_choice: none`` so that it must answer.
The tokens of every round are added up in the returned reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from api.v1alpha1 import Tool
from service.llm.chat import ChatModel, ChatRequest, ChatResponse
from service.llm.resilience.deadline import Deadline
from service.tools.offer import build_assistant_turn, build_tool_definitions, build_tool_message
from service.tools.runner import ToolRunner

__all__ = ["MAX_CALLS_PER_ROUND", "call_with_tools"]

#: Calls run in one round; the model is told that any beyond them were not run.
MAX_CALLS_PER_ROUND = 8


async def call_with_tools(
    chat: ChatModel,
    request: ChatRequest,
    runner: ToolRunner,
    *,
    prompt: str,
    version: str,
    tools: Sequence[Tool],
    max_rounds: int,
) -> ChatResponse:
    """The model's answer after at most `max_rounds` rounds of tool calls."""
    deadline = request.deadline or Deadline.after(request.timeout_seconds)
    by_name = {tool.name: tool for tool in tools}
    offered = replace(request, tools=build_tool_definitions(tools))
    turns: list[dict[str, Any]] = []
    replies: list[ChatResponse] = []
    for round_number in range(max_rounds + 1):
        final = round_number == max_rounds
        asked = replace(
            offered,
            turns=tuple(turns),
            tool_choice="none" if final else None,
            # Each round is a new upstream request: its own Idempotency-Key, or an
            # idempotent upstream would replay the first round's reply.
            idempotency_key=_round_key(request.idempotency_key, round_number),
        )
        reply = await chat.complete(asked)
        replies.append(reply)
        if not reply.tool_calls or final:
            break
        calls = reply.tool_calls
        contents = await asyncio.gather(
            *(
                runner.run(prompt, version, by_name, call, deadline)
                for call in calls[:MAX_CALLS_PER_ROUND]
            )
        )
        skipped = [
            f"TOOL ERROR ({call.name}): more than {MAX_CALLS_PER_ROUND} calls in one round; "
            "this one was not run."
            for call in calls[MAX_CALLS_PER_ROUND:]
        ]
        turns.append(build_assistant_turn(reply.text, calls))
        turns.extend(
            build_tool_message(call.id, content)
            for call, content in zip(calls, [*contents, *skipped], strict=True)
        )
    last = replies[-1]
    return replace(
        last,
        input_tokens=sum(r.input_tokens for r in replies),
        output_tokens=sum(r.output_tokens for r in replies),
        retries=sum(r.retries for r in replies),
        fallback_used=any(r.fallback_used for r in replies),
        tool_calls=(),
    )


def _round_key(key: str | None, round_number: int) -> str | None:
    """The Idempotency-Key of one round: the request's for the first, suffixed after."""
    if key is None or round_number == 0:
        return key
    return f"{key}.tools-{round_number}"
