"""``promptrollouts.io/v1alpha1``: the PromptVersion resource."""

from api.v1alpha1.output import OutputContract, assess_output_schema
from api.v1alpha1.types import *  # noqa: F403
from api.v1alpha1.types import __all__ as _types_all

__all__ = [*_types_all, "OutputContract", "assess_output_schema"]  # noqa: PLE0604
