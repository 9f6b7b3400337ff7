"""How the environment becomes :class:`service.settings.Settings`' values (pure parsing):
CORPORA's forms, MODEL_PRICES' entries, and the flat resilience variables (``MODEL_MAX_ATTEMPTS``,
``BREAKER_MIN_CALLS``, ...) that fill the nested ``Settings.resilience``, named with their
defaults and bounds by :class:`service.llm.resilience.config.ResilienceConfig` alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import EnvSettingsSource, SettingsError

from api.v1alpha1.types import COLLECTION_PATTERN
from service.llm.resilience.config import ResilienceConfig, build_variable_paths

__all__ = [
    "DEFAULT_CORPORA",
    "RESILIENCE_VARIABLES",
    "ModelPrice",
    "ResilienceVariables",
    "nest_resilience_variables",
    "parse_corpora",
]

#: Each resilience variable (lower case) → its field path in ``Settings.resilience``.
RESILIENCE_VARIABLES: dict[str, tuple[str, ...]] = build_variable_paths(ResilienceConfig)
#: Resilience variables whose values are JSON objects.
_JSON_VARIABLES = frozenset({"model_limits"})

#: What `make run` indexes: the example shop's policies and its FAQ.
DEFAULT_CORPORA: dict[str, Path] = {"policies": Path("data/policies"), "faq": Path("data/faq")}


def parse_corpora(value: object) -> dict[str, Path]:
    """CORPORA as a mapping: `name=folder,name=folder`, a JSON object, or a dict (pure).

    Raises ValueError naming the broken entry: a bad collection name, an empty folder,
    a collection given twice.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"CORPORA is not a valid JSON object: {error}") from error
        else:
            pairs: dict[str, object] = {}
            for entry in filter(None, (part.strip() for part in text.split(","))):
                name, sep, folder = entry.partition("=")
                if not sep:
                    raise ValueError(f"CORPORA entry {entry!r} is not collection=folder")
                if name.strip() in pairs:
                    raise ValueError(f"CORPORA names collection {name.strip()!r} twice")
                pairs[name.strip()] = folder.strip()
            value = pairs
    if not isinstance(value, dict):
        raise ValueError("CORPORA must map collection names to folders")
    corpora: dict[str, Path] = {}
    for name, folder in value.items():
        if not isinstance(name, str) or re.fullmatch(COLLECTION_PATTERN, name) is None:
            raise ValueError(
                f"CORPORA collection {name!r} must be 1-255 letters, digits, '_' or '-'"
            )
        if not isinstance(folder, str | Path) or not str(folder).strip():
            raise ValueError(f"CORPORA collection {name!r} needs a folder")
        corpora[name] = Path(folder)
    return corpora


class ModelPrice(BaseModel):
    """USD price of one model per million tokens."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


def nest_resilience_variables(data: Any) -> Any:
    """Settings' input with flat resilience names (``model_max_attempts=2``, from a keyword
    or MODEL_MAX_ATTEMPTS) moved into ``resilience``; the flat names win over a given
    ``resilience`` (pure)."""
    if not isinstance(data, dict) or not RESILIENCE_VARIABLES.keys() & data.keys():
        return data
    data = dict(data)
    given = data.get("resilience")
    nested = given.model_dump() if isinstance(given, ResilienceConfig) else dict(given or {})
    for variable, path in RESILIENCE_VARIABLES.items():
        if variable in data:
            node = nested
            for name in path[:-1]:
                node[name] = node = dict(node.get(name) or {})
            node.pop(path[-1], None)
            node[variable] = data.pop(variable)  # by alias: errors name the variable
    data["resilience"] = nested
    return data


class ResilienceVariables(EnvSettingsSource):
    """Reads the flat variables of ``Settings.resilience`` (``MODEL_MAX_ATTEMPTS``, ...) from
    the environment, as the environment source does for top-level fields (JSON for maps)."""

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for variable in RESILIENCE_VARIABLES:
            value = self.env_vars.get(variable if not self.case_sensitive else variable.upper())
            if value is None:
                continue
            try:
                found[variable] = json.loads(value) if variable in _JSON_VARIABLES else value
            except ValueError as error:
                source = type(self).__name__
                raise SettingsError(
                    f'error parsing value for field "{variable}" from source "{source}"'
                ) from error
        return found
