"""The resilient model, streaming: retries and fallbacks end at the first piece of text.

:meth:`ResilientStreamingModel.open_stream` goes through the same breaker, rate limits,
retry budget, deadline and fallbacks as :meth:`ResilientChatModel.complete`; an attempt
succeeds when the upstream sent its first piece of text. What happens after that is the
stream's: a failure mid-stream is not retried (the client has seen text) and reaches the
reader of :attr:`ChatStream.rest` as an UpstreamError.
"""

from __future__ import annotations

from service.llm.chat import ChatModel, ChatRequest
from service.llm.resilience.caller import ResilientChatModel
from service.llm.streams import ChatStream, StreamingChatModel, build_whole_stream

__all__ = ["ResilientStreamingModel"]


async def _whole(upstream: ChatModel, request: ChatRequest) -> ChatStream:
    return build_whole_stream(await upstream.complete(request))


class ResilientStreamingModel(ResilientChatModel):
    """A ResilientChatModel that also streams (the service's answering model)."""

    async def open_stream(self, request: ChatRequest) -> ChatStream:
        """Stream from the first model that can; an upstream that cannot stream answers
        whole, as one piece."""
        upstream = self._upstream
        if isinstance(upstream, StreamingChatModel):
            stream, index, tally = await self._first_able(request, upstream.open_stream)
        else:
            stream, index, tally = await self._first_able(request, lambda r: _whole(upstream, r))
        stream.retries, stream.fallback_used = tally.retries, index > 0
        return stream
