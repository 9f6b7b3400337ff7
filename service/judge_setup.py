"""The sampled online judge as the service's lifespan builds it from settings."""

from __future__ import annotations

import random

import httpx

from service.answering.judge import OnlineJudge
from service.llm.chat import AnswerModel
from service.llm.openai_chat import OpenAIChatModel
from service.llm.resilience.caller import ResilientChatModel
from service.settings import Settings
from service.telemetry.metrics import Metrics
from service.telemetry.spans import Tracing

__all__ = ["build_judge"]


def build_judge(
    settings: Settings,
    http: httpx.AsyncClient,
    chat: AnswerModel,
    metrics: Metrics,
    tracing: Tracing | None = None,
) -> OnlineJudge | None:
    """The sampled online judge, calling the model server through a resilience layer of its
    own (one attempt, JUDGE_TIMEOUT_SECONDS, its own breakers: a failing judge never opens
    the answers' breaker, and an open answers' breaker skips the judge too). None without
    MODEL_BASE_URL: the embedded answerer cannot judge."""
    if settings.model_base_url is None:
        return None
    key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    upstream = OpenAIChatModel(http, settings.model_base_url, key, tracing=tracing)
    config = settings.resilience.model_copy(
        update={
            "max_attempts": 1,
            "max_throttled_attempts": 1,
            "max_deadline": settings.judge_timeout_seconds,
        }
    )
    return OnlineJudge(
        ResilientChatModel(upstream, config),
        metrics,
        tracing=tracing,
        queue_size=settings.judge_queue_size,
        concurrency=settings.judge_concurrency,
        timeout_seconds=settings.judge_timeout_seconds,
        rng=random.Random(settings.judge_seed),  # noqa: S311 - sampling, not cryptography
        breakers=[chat] if isinstance(chat, ResilientChatModel) else [],
    )
