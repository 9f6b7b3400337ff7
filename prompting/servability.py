"""Whether a PromptVersion can be served at all, and why not (pure).

Used by the service when it loads versions and by the controller, which marks the
versions that cannot be served ``Invalid`` with the reason.
"""

from __future__ import annotations

from api.v1alpha1 import RESERVED_VARIABLES, PromptVersion
from prompting.errors import TemplateError
from prompting.rendering import referenced_variables

__all__ = ["check_servable"]


def check_servable(resource: PromptVersion, collections: set[str] | None) -> str | None:
    """Why `resource` cannot be served, or None; `collections=None` skips the collection check."""
    spec = resource.spec
    try:
        used = set().union(*referenced_variables(spec.template).values())
    except TemplateError as error:
        return str(error)
    undeclared = sorted(used - {v.name for v in spec.variables} - RESERVED_VARIABLES)
    if undeclared:
        return f"templates use undeclared variables: {', '.join(undeclared)}"
    if spec.retrieval and collections is not None and spec.retrieval.collection not in collections:
        return f"retrieval.collection {spec.retrieval.collection!r} does not exist"
    return None
