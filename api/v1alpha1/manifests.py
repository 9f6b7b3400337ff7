"""PromptVersion manifests on disk: load, validate, and point at what is wrong.

Errors name the file, the document index and the field path as written in
YAML (camelCase, ``[n]`` for list items), for example
``prompts/bad.yaml[0]: spec.version: version must be semver, e.g. 1.2.0 ...``
(patterns are named by their rule, :mod:`api.v1alpha1.messages`).

Errors of the ``api`` package::

    ApiError
     ├── ManifestError   a manifest is not a valid PromptVersion (``.problems`` lists each one)
     └── SchemaError     (api.v1alpha1.crd) the models use a construct the CRD generator
                         does not handle
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from api.v1alpha1.messages import describe_error
from api.v1alpha1.types import API_VERSION, KIND, PromptVersion, PromptVersionStatus

__all__ = [
    "MANIFEST_SUFFIXES",
    "ApiError",
    "ManifestError",
    "ManifestProblem",
    "load_manifests",
    "manifest_files",
    "parse_manifest",
    "parse_object",
]

MANIFEST_SUFFIXES = frozenset({".yaml", ".yml"})


class ApiError(Exception):
    """Base of the errors raised by the ``api`` package."""


@dataclass(frozen=True, slots=True)
class ManifestProblem:
    """One thing wrong with a manifest, located for humans and tools."""

    file: str
    document: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.document is None else f"{self.file}[{self.document}]"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ManifestError(ApiError):
    """One or more manifests are not valid PromptVersions."""

    def __init__(self, problems: Sequence[ManifestProblem]) -> None:
        self.problems: list[ManifestProblem] = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def parse_manifest(
    data: Mapping[str, Any], origin: str, *, document: int | None = None
) -> PromptVersion:
    """Validate one decoded manifest; ``origin`` (and ``document``) locate it in errors."""

    def problem(field: str, message: str) -> ManifestError:
        return ManifestError([ManifestProblem(origin, document, field, message)])

    if not isinstance(data, Mapping):
        raise problem("", f"expected a mapping, got {type(data).__name__}")
    kind = data.get("kind")
    if kind is not None and kind != KIND:
        raise problem("kind", f"unknown kind {kind!r}: expected {KIND}")
    api_version = data.get("apiVersion")
    if api_version is not None and api_version != API_VERSION:
        raise problem("apiVersion", f"unknown apiVersion {api_version!r}: expected {API_VERSION}")
    try:
        # by_name=False: YAML must use the camelCase wire names, as the API server does.
        return PromptVersion.model_validate(dict(data), by_alias=True, by_name=False)
    except ValidationError as error:
        found = _problems(error.errors(include_url=False), data)
        raise ManifestError(
            [ManifestProblem(origin, document, field, message) for field, message in found]
        ) from None


_STATUS_FIELDS = frozenset(PromptVersionStatus.model_json_schema(by_alias=True)["properties"])


def parse_object(body: Mapping[str, Any]) -> PromptVersion:
    """A PromptVersion as the API server returns it: the spec strictly, the status leniently.

    The spec is checked as a manifest is (ManifestError names the field). Status fields
    this release does not know (another tool's, a newer controller's) are ignored, and a
    status that does not validate reads as none: the controller will rewrite it.
    """
    metadata = body.get("metadata") or {}
    origin = f"{metadata.get('namespace')}/{metadata.get('name')}"
    resource = parse_manifest(
        {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "metadata": metadata,
            "spec": body.get("spec"),
        },
        origin,
    )
    raw = body.get("status") or {}
    try:
        status = PromptVersionStatus.model_validate(
            {k: v for k, v in raw.items() if k in _STATUS_FIELDS}
        )
    except ValidationError:
        status = None
    return resource.model_copy(update={"status": status})


def load_manifests(path: Path) -> list[PromptVersion]:
    """Every PromptVersion in a YAML file, or in the ``*.yaml``/``*.yml`` files of a directory.

    Directories are read in name order, without recursing. Files may hold several
    documents; empty documents are skipped; any other kind is an error. All problems
    are collected before ``ManifestError`` is raised.
    """
    versions: list[PromptVersion] = []
    problems: list[ManifestProblem] = []
    for file in manifest_files(path):
        try:
            documents = list(yaml.load_all(file.read_text(encoding="utf-8"), _StrictLoader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            problems.append(ManifestProblem(str(file), None, "", _one_line(str(error))))
            continue
        for index, data in enumerate(documents):
            if data is None:
                continue
            try:
                versions.append(parse_manifest(data, str(file), document=index))
            except ManifestError as error:
                problems.extend(error.problems)
    if problems:
        raise ManifestError(problems)
    return versions


def manifest_files(path: Path) -> list[Path]:
    """`path` itself, or the *.yaml/*.yml files directly in it (like `kubectl apply -f DIR`)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES and p.is_file())
    if path.is_file():
        return [path]
    raise ManifestError([ManifestProblem(str(path), None, "", "no such file or directory")])


def _problems(details: Iterable[ErrorDetails], data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) pairs, one per field: a union's per-member errors share one line."""
    grouped: dict[str, list[str]] = {}
    for detail in details:
        grouped.setdefault(_field_path(detail, data), []).append(_message(detail))
    return [(field, "; ".join(messages)) for field, messages in grouped.items()]


def _field_path(detail: ErrorDetails, data: Mapping[str, Any]) -> str:
    """The error location as written in YAML, without pydantic's union-member tags.

    A location step is kept while it indexes into the input; a missing field's name
    is kept too. Whatever follows (``str``, ``int``, ... tags of a union) is dropped.
    """
    loc = detail["loc"]
    text = ""
    node: Any = data
    for position, step in enumerate(loc):
        if isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
            text, node = f"{text}[{step}]", node[step]
        elif isinstance(step, str) and isinstance(node, Mapping) and step in node:
            text, node = f"{text}.{step}" if text else step, node[step]
        elif detail["type"] == "missing" and position == len(loc) - 1 and isinstance(step, str):
            text = f"{text}.{step}" if text else step
        else:
            break
    return text


def _message(detail: ErrorDetails) -> str:
    return describe_error(detail)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys, as the API server's decoder does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        keys: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader reports unhashable keys itself
            if key in keys:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            keys.add(key)
        return super().construct_mapping(node, deep=deep)
