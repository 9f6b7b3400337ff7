"""Errors of the prompt domain: a request's variables or a template that cannot be used.

::

    PromptingError
    ├── VariableError   request variables break the version's declarations (one
    │                   VariableProblem per broken rule)
    └── TemplateError   a template could not be compiled or rendered

The service maps them to HTTP problems (422 ``invalid-variables``, 500
``template-failed``) next to its own errors (``service.errors``); the CLI prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PromptingError", "TemplateError", "VariableError", "VariableProblem"]


class PromptingError(Exception):
    """Base of the prompt domain's errors."""


@dataclass(frozen=True)
class VariableProblem:
    """One broken rule: which variable, which rule, and a sentence for humans."""

    variable: str
    rule: str
    message: str


class VariableError(PromptingError):
    """Request variables that do not satisfy the PromptVersion's declarations."""

    def __init__(self, problems: list[VariableProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.variable}: {p.message}" for p in problems))


class TemplateError(PromptingError):
    """A template could not be compiled or rendered."""
