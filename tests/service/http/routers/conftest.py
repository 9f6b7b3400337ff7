"""Apps under test, run through their lifespan, and a real fake model server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fakemodel.app import FakeModelState, create_fake_model_app
from service.app import create_app
from service.settings import ModelPrice, Settings
from tests.support.servers import serve_in_thread

ROOT = Path(__file__).resolve().parents[4]


def build_settings(**overrides: Any) -> Settings:
    """Settings for a test app: the repo's prompts and corpora, an in-memory vector store."""
    values: dict[str, Any] = {
        "prompts_dir": ROOT / "prompts",
        "corpora": {"policies": ROOT / "data" / "policies", "faq": ROOT / "data" / "faq"},
        "qdrant_path": ":memory:",
        "qdrant_url": None,
        "model_base_url": None,
        "embedding_base_url": None,
    }
    return Settings(**(values | overrides))


@pytest.fixture(scope="module")
def fake_model() -> Iterator[tuple[str, FakeModelState]]:
    """A fake OpenAI-compatible server over real HTTP, and its recorded state."""
    state = FakeModelState()
    with serve_in_thread(create_fake_model_app(state)) as url:
        yield url, state


@pytest.fixture(scope="module")
def local_client() -> Iterator[TestClient]:
    """The app with its embedded defaults: extractive answerer, local Qdrant."""
    with TestClient(create_app(build_settings())) as client:
        yield client


@pytest.fixture(scope="module")
def model_client(fake_model: tuple[str, FakeModelState]) -> Iterator[TestClient]:
    """The app calling the fake model over HTTP, with a price table."""
    url, _ = fake_model
    settings = build_settings(
        model_base_url=f"{url}/v1",
        model_api_key="sk-test-key",
        model_prices={"gpt-4o-mini": ModelPrice(input_per_mtok=150.0, output_per_mtok=600.0)},
    )
    with TestClient(create_app(settings)) as client:
        yield client
