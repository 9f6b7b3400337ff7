"""Declarative HTTP tools: offered to the model, called with SSRF defences, fed back as data.

The front door: the answering pipeline and the app's resources import these names.
"""

from service.tools.loop import call_with_tools
from service.tools.runner import ERROR_REASONS, ToolRunner
from service.tools.ssrf import Allowlist, parse_allowlist

__all__ = ["ERROR_REASONS", "Allowlist", "ToolRunner", "call_with_tools", "parse_allowlist"]
