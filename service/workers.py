"""How many worker processes ``python -m service`` runs (``WEB_CONCURRENCY``), decided purely.

One worker is the default and the fastest path per request. More workers (up to 64) share
one listening socket, each with its own event loop, app and clients; they run only when
nothing a request relies on would silently differ between them:

- **the vector store**: a Qdrant server (``QDRANT_URL``) is shared; the in-memory embedded
  store (``QDRANT_PATH=:memory:``) is per process: each worker indexes its own copy at
  start-up (start-up CPU and the store's memory times N). A persistent embedded folder is
  refused: Qdrant's local mode admits one process per folder.
- **state that must be shared**, kept in Redis (``REDIS_URL``) or start-up is refused:
  Idempotency-Key records (a retry that lands on another worker must replay, not run
  again), the request ids ``POST /v1/feedback`` rates (a rating sent to another worker
  must find its answer) and ``TENANT_RPM`` quotas (N workers must not admit N times a
  tenant's limit). The key the Idempotency-Key sent upstream is derived with
  (``IDEMPOTENCY_SECRET``) is generated once for all workers when unset
  (:func:`build_worker_settings`).
- **state that is fine per process** (docs/operations.md, "Scaling"): circuit breakers,
  upstream rate limits (``MODEL_RPM``/``MODEL_TPM``), the judge's and the shadow's
  per-minute budgets, ``MAX_INFLIGHT``/``MAX_CONNECTIONS``, the response and query
  embedding caches; the canary choice is a hash of the routing key, the same in every
  worker.
- **metrics**: added up over the workers at each scrape (service/telemetry/multiprocess.py).
"""

from __future__ import annotations

from pydantic import SecretStr

from service.settings import Settings

__all__ = ["MEMORY_STORE", "assess_workers", "build_worker_settings", "decide_workers"]

#: QDRANT_PATH of the in-memory embedded store.
MEMORY_STORE = ":memory:"
_INSTEAD = "or run WEB_CONCURRENCY=1 and scale with replicas"


def assess_workers(settings: Settings) -> list[str]:
    """What stops ``settings.web_concurrency`` workers from running (pure; empty: nothing)."""
    workers = settings.web_concurrency
    if workers == 1:
        return []
    problems: list[str] = []
    if settings.qdrant_url is None and settings.qdrant_path != MEMORY_STORE:
        problems.append(
            f"the embedded Qdrant store in QDRANT_PATH={settings.qdrant_path} admits one "
            "process: set QDRANT_URL to a Qdrant server, or QDRANT_PATH=:memory: (each "
            f"worker indexes its own copy at start-up), {_INSTEAD}"
        )
    if settings.redis_url is None:
        shared = [
            "Idempotency-Key records (a retry served by another worker would run again)",
            "the request ids POST /v1/feedback rates (another worker would answer 404)",
        ]
        if settings.tenant_rpm > 0:
            shared.append(
                f"TENANT_RPM quotas (each worker would admit {settings.tenant_rpm} a minute)"
            )
        problems.append(
            "without REDIS_URL each worker keeps its own " + "; ".join(shared) + ": set "
            f"REDIS_URL to a Redis server the workers share, {_INSTEAD}"
        )
    return [f"WEB_CONCURRENCY={workers}: {problem}" for problem in problems]


def decide_workers(settings: Settings) -> int:
    """The worker processes to run (pure), or a ValueError naming every problem."""
    problems = assess_workers(settings)
    if problems:
        raise ValueError("\n".join(problems))
    return settings.web_concurrency


def build_worker_settings(settings: Settings, workers: int, secret: str) -> Settings:
    """The settings every worker gets (pure): with several workers and no
    IDEMPOTENCY_SECRET, `secret` (one random value for all of them), so a retry served by
    another worker sends the model the same Idempotency-Key."""
    if workers == 1 or settings.idempotency_secret is not None:
        return settings
    return settings.model_copy(update={"idempotency_secret": SecretStr(secret)})
