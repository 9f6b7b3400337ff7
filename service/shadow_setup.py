"""The shadow runner as the service's lifespan builds it from settings."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack

from service.answering.pipeline import AnswerService
from service.answering.shadow import ShadowRunner
from service.retrieval.embeddings import Embedder
from service.settings import Settings

__all__ = ["open_shadow"]


def open_shadow(
    settings: Settings, answers: AnswerService, embedder: Embedder, stack: AsyncExitStack
) -> ShadowRunner:
    """Shadow answers for `answers` (its chat, catalog and retriever); cancelled at shutdown,
    before the clients they use are closed."""
    runner = ShadowRunner(
        answers,
        answers.metrics,
        embedder=embedder,
        concurrency=settings.shadow_concurrency,
        timeout_seconds=settings.shadow_timeout_seconds,
        rng=random.Random(settings.shadow_seed),  # noqa: S311 - sampling, not cryptography
    )
    answers.shadow = runner.submit
    stack.push_async_callback(runner.stop)
    return runner
