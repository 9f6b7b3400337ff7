"""``promptrollouts.io/v1alpha1``: the PromptVersion resource."""

from api.v1alpha1.types import *  # noqa: F403
from api.v1alpha1.types import __all__ as __all__
