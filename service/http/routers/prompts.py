"""``GET /v1/prompts``: the loaded PromptVersions and their traffic weights."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.answering.schemas import PromptsResponse, PromptSummary
from service.dependencies import CallerDep, RegistryDep
from service.http.auth import decide_prompt_allowed

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["prompts"])

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


@router.get("/prompts", response_model=PromptsResponse, responses={401: _PROBLEM, 429: _PROBLEM})
async def list_prompts(registry: RegistryDep, caller: CallerDep) -> PromptsResponse:
    """Every loaded version the caller's key may use, with its phase and weight."""
    return PromptsResponse(
        items=[
            PromptSummary(
                name=served.resource.metadata.name,
                prompt=served.prompt,
                version=served.version,
                phase=served.phase,
                weight=served.weight,
                model=served.resource.spec.model.name,
                collection=(
                    served.resource.spec.retrieval.collection
                    if served.resource.spec.retrieval
                    else None
                ),
                owner=served.resource.spec.owner,
                message=served.message,
            )
            for served in registry.versions()
            if decide_prompt_allowed(caller.prompts, served.prompt)
        ]
    )
