"""``promptrollouts.io/v1alpha1``: the PromptVersion resource."""

from api.v1alpha1.output import (
    MAX_OUTPUT_SCHEMA_BYTES,
    MAX_OUTPUT_SCHEMA_DEPTH,
    OutputContract,
    assess_output_schema,
)
from api.v1alpha1.types import *  # noqa: F403
from api.v1alpha1.types import __all__ as _types_all

__all__ = [  # noqa: PLE0604 - the types module's names, then ours
    *_types_all,
    "MAX_OUTPUT_SCHEMA_BYTES",
    "MAX_OUTPUT_SCHEMA_DEPTH",
    "OutputContract",
    "assess_output_schema",
]
