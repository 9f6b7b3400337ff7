"""The model's reply to one prepared request: through tools, from the response cache, or fresh.

A version with ``spec.tools`` answers through its tools (live data: never cached); one with
``spec.cache.enabled`` shares replies between identical requests, keyed with the
per-request context boundary masked.
"""

from __future__ import annotations

from dataclasses import replace

from prompting.rendering import Message
from service.answering.cache import ResponseCache, build_cache_key
from service.answering.context import Context
from service.answering.output_repair import assess_cacheable
from service.catalog.registry import ServedVersion
from service.llm.chat import AnswerModel, ChatRequest, ChatResponse, GroundedModel, call_model
from service.tools import ToolRunner, call_with_tools

__all__ = ["fetch_reply"]


async def fetch_reply(
    chat: AnswerModel,
    cache: ResponseCache,
    tools: ToolRunner | None,
    served: ServedVersion,
    request: ChatRequest,
    context: Context,
) -> ChatResponse:
    """The model's reply, from the response cache when the version opted in.

    The cache key sees the messages with the per-request boundary masked, so that
    identical requests still share a key. A grounded model gets the passages' texts.
    """
    sources = [p.text for p in context.passages]
    spec = served.resource.spec
    if spec.tools and tools is not None and not isinstance(chat, GroundedModel):
        return await call_with_tools(  # live tool data: never cached
            chat, request, tools, prompt=served.prompt, version=served.version,
            tools=spec.tools, max_rounds=spec.max_tool_rounds,
        )  # fmt: skip
    policy = spec.cache
    if not policy.enabled:
        return await call_model(chat, request, sources)
    keyed = request
    if context.boundary is not None:
        boundary = context.boundary
        masked = [Message(m.role, m.content.replace(boundary, "-")) for m in request.messages]
        keyed = replace(request, messages=masked)
    key = build_cache_key(served.prompt, served.version, keyed)
    cached = cache.get(key)
    if cached is not None:
        return replace(cached, cache_hit=True, retries=0)
    reply = await call_model(chat, request, sources)
    if assess_cacheable(served.resource.spec.output, reply.text):
        cache.put(key, reply, policy.ttl_seconds)
    return reply
