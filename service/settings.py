"""Service configuration: one pydantic-settings class, read from the environment.

Every field maps to an upper-case environment variable of the same name
(``PROMPTS_DIR``, ``QDRANT_URL``, ...), except the nested ``resilience`` group: its
flat variables (``MODEL_MAX_ATTEMPTS``, ``BREAKER_MIN_CALLS``, ...) are named, with their
defaults and bounds, by :class:`service.llm.resilience.config.ResilienceConfig` alone
(:data:`RESILIENCE_VARIABLES`, parsed in :mod:`service.settings_parsing`).
``docs/configuration.md`` documents them all (:func:`list_variables`).
Settings are built by :func:`service.app.create_app`, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from api.v1alpha1.types import COLLECTION_PATTERN
from service.garbage_collection import DEFAULT_GEN0_THRESHOLD
from service.llm.resilience.config import ModelLimit, ResilienceConfig
from service.settings_parsing import (
    DEFAULT_CORPORA,
    RESILIENCE_VARIABLES,
    ModelPrice,
    ResilienceVariables,
    nest_resilience_variables,
    parse_corpora,
)
from service.tools.ssrf import parse_allowlist

__all__ = [
    "DEFAULT_CORPORA",
    "RESILIENCE_VARIABLES",
    "ModelLimit",
    "ModelPrice",
    "Settings",
    "list_variables",
    "parse_corpora",
]


def _split_list(value: object) -> object:
    """A comma-separated string as a list (other values unchanged)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    prompts_dir: Path = Field(
        default=Path("prompts"), description="Folder of PromptVersion manifests to serve."
    )
    prompt_source: Literal["files", "cluster"] = Field(
        default="files",
        description="Serve the manifests in PROMPTS_DIR, or watch PromptVersions in the "
        "cluster and follow the weights the controller writes.",
    )
    routing_file: Path | None = Field(
        default=None,
        description="Files mode: YAML {prompt: {version: weight}} overriding the local "
        "weights, re-read when it changes.",
    )
    kube_namespace: str | None = Field(
        default=None,
        description="Cluster mode: namespace to watch; unset uses the kubeconfig's or the "
        "pod's namespace; `*` watches all namespaces.",
    )
    corpora: Annotated[dict[str, Path], NoDecode, BeforeValidator(parse_corpora)] = Field(
        default_factory=lambda: dict(DEFAULT_CORPORA),
        description="Collections indexed at start-up and their folders: "
        "`policies=data/policies,faq=data/faq` or a JSON object; empty disables.",
    )
    corpus_dir: Annotated[Path | None, NoDecode] = Field(
        default=Path("data/policies"),
        description="Single-corpus setting: when it or CORPUS_COLLECTION is set, this folder "
        "alone is indexed, into CORPUS_COLLECTION, instead of CORPORA; empty disables "
        "start-up indexing.",
    )
    corpus_collection: str = Field(
        default="policies",
        pattern=COLLECTION_PATTERN,
        description="Collection CORPUS_DIR is indexed into.",
    )
    qdrant_url: str | None = Field(
        default=None, description="Qdrant server URL; unset uses the embedded local store."
    )
    qdrant_api_key: SecretStr | None = Field(default=None, description="Qdrant server API key.")
    qdrant_path: str = Field(
        default="var/qdrant",
        description="Folder of the embedded local store (`:memory:` keeps it in memory).",
    )
    model_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL including /v1; unset uses the embedded "
        "extractive answerer.",
    )
    model_api_key: SecretStr | None = Field(default=None, description="Bearer token for the model.")
    model_response_format: Literal["json_schema", "json_object", "none"] = Field(
        default="json_schema",
        description="How a version's output contract is asked of MODEL_BASE_URL: "
        "response_format json_schema, json_object, or none (prompt only).",
    )
    embedding_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL for /embeddings; unset uses the bundled "
        "all-MiniLM-L6-v2 (int8 ONNX).",
    )
    embedding_model: str = Field(
        default="text-embedding-3-small", description="Embedding model name for EMBEDDING_BASE_URL."
    )
    embedding_api_key: SecretStr | None = Field(
        default=None, description="Bearer token for EMBEDDING_BASE_URL (defaults to MODEL_API_KEY)."
    )
    query_embedding_cache: int = Field(
        default=1024,
        ge=0,
        description="Question embeddings kept per process (LRU, keyed by embedding model and "
        "a hash of the text); 0 turns the cache off.",
    )
    web_concurrency: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Worker processes of `python -m service`; above 1 needs QDRANT_URL or "
        "QDRANT_PATH=:memory: (the embedded store in a folder admits one process) and "
        "REDIS_URL (state the workers must share).",
    )
    max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Largest accepted request body (413 above); the default admits a "
        "16,000-character variable even JSON-escaped at 12 bytes a character.",
    )
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description='JSON price table, e.g. {"gpt-4o-mini": {"input_per_mtok": 0.15, '
        '"output_per_mtok": 0.6}}; unlisted models cost 0.',
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level."
    )
    log_content: Literal["off", "redacted", "full"] = Field(
        default="redacted",
        description="Prompt, response and variables in request logs: redacted (default), "
        "off, or full (UNSAFE: raw personal data in logs).",
    )

    # Resilience of model calls (docs/resilience.md): MODEL_MAX_ATTEMPTS, BREAKER_MIN_CALLS, ...
    # Defaults, bounds and variable names live in service.llm.resilience.config only.
    resilience: ResilienceConfig = Field(
        default_factory=ResilienceConfig,
        description="Read from the flat variables MODEL_MAX_ATTEMPTS, BREAKER_* ... "
        "(RESILIENCE_VARIABLES), which win over a RESILIENCE JSON object (undocumented).",
    )

    # Idempotency-Key on POST /v1/answers.
    redis_url: str | None = Field(
        default=None,
        description="Redis URL for state shared by replicas (idempotency keys, tenant "
        "quotas, request ids remembered for feedback); "
        "unset keeps it in process.",
    )
    idempotency_ttl_seconds: int = Field(
        default=86_400, ge=1, description="How long a stored response is replayed for its key."
    )
    idempotency_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long a key stays in flight if its request never finishes (a crash).",
    )

    # The sampled online judge of spec.rollout.analysis.judge (docs/rollouts.md).
    judge_queue_size: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Sampled answers waiting for the judge per worker process; when full, "
        'more are dropped and counted (result="dropped").',
    )
    judge_concurrency: int = Field(
        default=2, ge=1, le=64, description="Judge calls in flight at once per worker process."
    )
    judge_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Deadline of one judge call (one attempt, no retries); a slower judge "
        "is an error, never a delay for answers.",
    )
    judge_seed: int | None = Field(
        default=None,
        description="Seed of the judge's sampling (reproducible rehearsals and tests); "
        "unset: random.",
    )
    # Shadow steps: the canary answers in the background (docs/rollouts.md, Shadow steps).
    shadow_concurrency: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Shadow answers running at once per worker process; more requests are "
        'not shadowed (result="busy").',
    )
    shadow_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Deadline of one shadow answer (at most the version's timeoutSeconds); "
        "the live answer never waits for it.",
    )
    shadow_seed: int | None = Field(
        default=None,
        description="Seed of the choice of shadowed requests (reproducible tests); unset: random.",
    )
    # User feedback on answers (POST /v1/feedback; docs/api.md).
    feedback_ttl: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="Seconds an answer's request id can be rated after it was answered "
        "(60 s to 30 days); kept in process, or in Redis with REDIS_URL.",
    )

    # HTTP boundary: load shedding and connection hygiene (docs/resilience.md). Read by
    # `python -m service` (service/server.py) and the app's middleware.
    max_inflight: int = Field(
        default=100,
        ge=1,
        description="Answering requests in flight per worker; more get an immediate 503 "
        "with Retry-After (health, readiness and metrics are never shed).",
    )
    http_parser: Literal["h11", "httptools"] = Field(
        default="httptools",
        description="uvicorn's HTTP/1.1 parser; the limits below hold identically for both.",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Time to receive a request line and headers; 408 and close after.",
    )
    body_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="Time to receive a whole request body; 408 and close after.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request line plus headers; 431 and close above.",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open connections per worker; a connection beyond gets 503 and is closed.",
    )
    keep_alive_timeout_seconds: int = Field(
        default=5, ge=1, le=300, description="Idle time before a kept-alive connection is closed."
    )
    gc_gen0_threshold: int = Field(
        default=DEFAULT_GEN0_THRESHOLD,
        ge=0,
        description="Python's garbage collector once start-up is over: the start-up heap is "
        "frozen and generation 0 collects after this many new objects (Python's own: 700); "
        "0 leaves the collector as Python set it.",
    )

    # Authentication, tenants and quotas (docs/security.md).
    auth_mode: Literal["none", "api-key"] = Field(
        default="none",
        description="`api-key`: callers send `Authorization: Bearer <key>` checked against "
        "API_KEYS_FILE; `none`: no authentication (local use only).",
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="YAML list of keys `{id, sha256, tenant, prompts}` (hashes only); "
        "re-read when it changes. Required with AUTH_MODE=api-key.",
    )
    api_keys_reload_seconds: float = Field(
        default=2.0, gt=0, le=3600, description="How often API_KEYS_FILE is checked for changes."
    )
    tenant_rpm: int = Field(
        default=0,
        ge=0,
        description="Requests per minute per tenant (shared by replicas through REDIS_URL); "
        "0 is unlimited.",
    )
    tenant_metrics: bool = Field(
        default=False,
        description="Add a `tenant` label to the per-tenant metrics (one series per tenant).",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve /metrics on this port of its own (same address as the API) "
        "instead of on the API port.",
    )
    openapi: bool = Field(default=True, description="Serve /docs and /openapi.json.")
    tool_allowed_hosts: Annotated[list[str], NoDecode, BeforeValidator(_split_list)] = Field(
        default_factory=list,
        description="Hosts prompts' HTTP tools may call: exact names or CIDRs, comma-separated; "
        "empty disables tools. Private addresses only inside a listed CIDR; cloud metadata never.",
    )
    tool_max_response_bytes: int = Field(
        default=65_536, ge=1024, le=10_485_760, description="Most bytes read from a tool response."
    )
    tool_max_result_chars: int = Field(
        default=4000,
        ge=100,
        le=100_000,
        description="Most characters of a tool result the model sees.",
    )
    tool_secrets_dir: Path = Field(
        default=Path("/var/run/secrets/prompt-rollouts/tools"),
        description="Where tool headers' secretKeyRef values are read: <dir>/<secret>/<key>.",
    )
    idempotency_secret: SecretStr | None = Field(
        default=None,
        description="Secret for the Idempotency-Key sent upstream (HMAC of caller scope and "
        "key); generated per process when unset. Replicas must share one.",
    )

    @field_validator(
        "corpus_dir",  # empty: index no folder
        "qdrant_url",
        "model_base_url",
        "embedding_base_url",
        "redis_url",
        "api_keys_file",
        "metrics_port",
        "idempotency_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("tool_allowed_hosts")
    @classmethod
    def _valid_hosts(cls, hosts: list[str]) -> list[str]:
        parse_allowlist(hosts)  # raises ValueError naming the bad entry
        return hosts

    def start_up_corpora(self) -> dict[str, Path]:
        """Collection -> folder indexed at start-up, in order: CORPORA; or, when CORPUS_DIR or
        CORPUS_COLLECTION is set, CORPUS_DIR alone into CORPUS_COLLECTION (an empty
        CORPUS_DIR indexes nothing), as in releases before CORPORA existed."""
        if not self.model_fields_set & {"corpus_dir", "corpus_collection"}:
            return dict(self.corpora)
        if self.corpus_dir is None:
            return {}
        return {self.corpus_collection: self.corpus_dir}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual sources, plus the flat resilience variables after the environment."""
        return (
            init_settings,
            env_settings,
            ResilienceVariables(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    @model_validator(mode="before")
    @classmethod
    def _nest_resilience_variables(cls, data: Any) -> Any:
        """``model_max_attempts=2`` (a keyword, or MODEL_MAX_ATTEMPTS in the environment)
        sets ``resilience.max_attempts``; the flat names win over a given ``resilience``."""
        return nest_resilience_variables(data)

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        if self.idempotency_lease_seconds <= self.resilience.max_deadline:
            raise ValueError(
                "IDEMPOTENCY_LEASE_SECONDS must be longer than MODEL_MAX_DEADLINE_SECONDS, "
                "or a slow request's key could be taken over while it still runs"
            )
        if self.auth_mode == "api-key" and self.api_keys_file is None:
            raise ValueError("AUTH_MODE=api-key needs API_KEYS_FILE (a YAML list of key hashes)")
        return self


def list_variables() -> list[str]:
    """Every environment variable the service reads, upper case, sorted (for docs and tests)."""
    names = {name for name in Settings.model_fields if name != "resilience"}
    return sorted(name.upper() for name in names | RESILIENCE_VARIABLES.keys())
