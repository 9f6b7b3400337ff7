"""Service configuration: one pydantic-settings class, read from the environment.

Every field maps to an upper-case environment variable of the same name
(``PROMPTS_DIR``, ``QDRANT_URL``, ...). ``docs/configuration.md`` documents them.
Settings are built by :func:`service.app.create_app`, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["ModelPrice", "Settings"]


class ModelPrice(BaseModel):
    """USD price of one model per million tokens."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    prompts_dir: Path = Field(
        default=Path("prompts"), description="Folder of PromptVersion manifests to serve."
    )
    corpus_dir: Annotated[Path | None, NoDecode] = Field(
        default=Path("data/policies"),
        description="Folder indexed into CORPUS_COLLECTION at start-up; empty disables.",
    )
    corpus_collection: str = Field(
        default="policies", description="Collection the start-up corpus goes into."
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
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest accepted request body (413 above)."
    )
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description='JSON price table, e.g. {"gpt-4o-mini": {"input_per_mtok": 0.15, '
        '"output_per_mtok": 0.6}}; unlisted models cost 0.',
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level."
    )

    @field_validator("corpus_dir", mode="before")
    @classmethod
    def _empty_disables(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("qdrant_url", "model_base_url", "embedding_base_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value
