"""``GET /v1/prompts``: the loaded PromptVersions and their traffic weights."""

from __future__ import annotations

from fastapi import APIRouter

from service.dependencies import RegistryDep
from service.schemas import PromptsResponse, PromptSummary

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["prompts"])


@router.get("/prompts", response_model=PromptsResponse)
async def list_prompts(registry: RegistryDep) -> PromptsResponse:
    """Every loaded version, with its phase and weight."""
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
        ]
    )
