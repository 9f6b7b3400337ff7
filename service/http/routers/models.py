"""``GET /v1/models``: the servable prompts as OpenAI models (``prompts/<name>``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from service.catalog.registry import PromptRegistry, ServedVersion
from service.dependencies import CallerDep, RegistryDep
from service.http.auth import Caller, decide_prompt_allowed
from service.http.openai_request import ChatRequestError, parse_model
from service.http.openai_shapes import build_model_list

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"])

_ERROR: dict[str, Any] = {"content": {"application/json": {}}, "description": "OpenAI error"}


def _servable(registry: PromptRegistry, caller: Caller) -> dict[str, Any]:
    """The model list of the prompts with a version taking traffic that the caller may use."""
    return build_model_list(
        (served.prompt, served.resource.spec.owner)
        for served in registry.versions()
        if isinstance(served, ServedVersion)
        and served.weight > 0
        and decide_prompt_allowed(caller.prompts, served.prompt)
    )


@router.get("/models", responses={401: _ERROR, 429: _ERROR})
async def list_models(registry: RegistryDep, caller: CallerDep) -> dict[str, Any]:
    """Every servable prompt the caller's key may use, as `prompts/<name>`."""
    return _servable(registry, caller)


@router.get("/models/{model:path}", responses={401: _ERROR, 404: _ERROR, 429: _ERROR})
async def retrieve_model(model: str, registry: RegistryDep, caller: CallerDep) -> dict[str, Any]:
    """One servable prompt (`prompts/<name>`), as the SDK's `models.retrieve` expects."""
    try:
        prompt, version = parse_model(model)
    except ChatRequestError:
        prompt, version = "", None
    found = [m for m in _servable(registry, caller)["data"] if m["id"] == f"prompts/{prompt}"]
    if version is not None or not found:
        raise HTTPException(404, f"no servable prompt is named {model[:80]!r}; see GET /v1/models")
    entry: dict[str, Any] = found[0]
    return entry
