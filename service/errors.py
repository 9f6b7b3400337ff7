"""The service's error hierarchy, mapped to HTTP problems in one place (``service.problems``).

::

    ServiceError
    ├── PromptNotFoundError     404: no PromptVersion serves this prompt (or version)
    ├── VariableError           422: a request variable is missing, unknown or breaks a rule
    ├── TemplateError           500: a template failed to render (versions that fail to
    │                                compile are marked Invalid at load and never served)
    ├── CorpusError             (CLI, start-up) a corpus folder or document cannot be read
    ├── RetrievalError          503: the vector store failed
    │   ├── VectorStoreError    503: the vector store could not be opened
    │   └── CollectionMismatchError  the collection holds vectors of another size
    ├── EmbeddingError          503: the embedding model failed
    └── ModelError              503: the model upstream failed or answered badly
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CollectionMismatchError",
    "CorpusError",
    "EmbeddingError",
    "ModelError",
    "PromptNotFoundError",
    "RetrievalError",
    "ServiceError",
    "TemplateError",
    "VariableError",
    "VariableProblem",
    "VectorStoreError",
]


class ServiceError(Exception):
    """Base of every error the service turns into an HTTP problem."""


class PromptNotFoundError(ServiceError):
    """No loaded PromptVersion matches the request."""


@dataclass(frozen=True)
class VariableProblem:
    """One broken rule: which variable, which rule, and a sentence for humans."""

    variable: str
    rule: str
    message: str


class VariableError(ServiceError):
    """Request variables that do not satisfy the PromptVersion's declarations."""

    def __init__(self, problems: list[VariableProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.variable}: {p.message}" for p in problems))


class TemplateError(ServiceError):
    """A template could not be compiled or rendered."""


class RetrievalError(ServiceError):
    """Context could not be retrieved."""


class VectorStoreError(RetrievalError):
    """The vector store could not be opened or reached."""


class CollectionMismatchError(RetrievalError):
    """The collection exists with vectors the embedder cannot produce."""


class CorpusError(ServiceError):
    """A corpus folder or document cannot be read."""


class EmbeddingError(ServiceError):
    """Texts could not be embedded."""


class ModelError(ServiceError):
    """The model upstream failed or gave an unusable answer."""
