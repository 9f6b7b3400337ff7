"""``promptctl fake-model``: run the deterministic OpenAI-compatible model server."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from fakemodel.app import create_fake_model_app

__all__ = ["fake_model_command"]


def fake_model_command(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9000,
) -> None:
    """Serve /v1/chat/completions, /v1/embeddings and /v1/models with deterministic answers."""
    uvicorn.run(create_fake_model_app(), host=host, port=port, log_level="info")
