"""``promptrollouts.io/v1alpha1``: the PromptVersion resource."""

from api.v1alpha1.evalgate import *  # noqa: F403
from api.v1alpha1.evalgate import __all__ as _evalgate_all
from api.v1alpha1.output import *  # noqa: F403
from api.v1alpha1.output import __all__ as _output_all
from api.v1alpha1.tools import *  # noqa: F403
from api.v1alpha1.tools import __all__ as _tools_all
from api.v1alpha1.types import *  # noqa: F403
from api.v1alpha1.types import __all__ as _types_all

__all__ = [*_types_all, *_evalgate_all, *_output_all, *_tools_all]  # noqa: PLE0604
