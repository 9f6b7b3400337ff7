"""What changed between two versions of a prompt: the spec, section by section (pure).

``promptctl diff PROMPT V1 V2`` prints it and the HTML report shows it. Each section
(template, variables, model, retrieval, guardrails, cache, rollout) is dumped as YAML,
with the template's messages as their own text, and compared line by line.

    find_version(folder, prompt, version) -> PromptVersion   (reads files; or SpecError)
    build_spec_diff(old, new)             -> list[SectionDiff]
    render_spec_diff(diffs)               -> str             (unified diff text)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from api.v1alpha1 import PromptVersion
from api.v1alpha1.manifests import ManifestError, load_manifests, manifest_files

__all__ = [
    "SECTIONS",
    "SectionDiff",
    "SpecError",
    "build_spec_diff",
    "find_version",
    "render_spec_diff",
]

SECTIONS = ("template", "variables", "model", "retrieval", "guardrails", "cache", "rollout")


class SpecError(Exception):
    """A version's manifest cannot be found or read."""


@dataclass(frozen=True)
class SectionDiff:
    """The unified diff of one section; `lines` is empty when it did not change."""

    section: str
    lines: list[str]

    @property
    def changed(self) -> bool:
        """Whether the section differs."""
        return bool(self.lines)


def find_version(folder: Path, prompt: str, version: str) -> PromptVersion:
    """The PromptVersion of `prompt` at `version` among the manifests in `folder`."""
    if not folder.is_dir():
        raise SpecError(f"{folder} is not a folder of PromptVersion manifests")
    found: list[str] = []
    for file in manifest_files(folder):
        try:
            resources = load_manifests(file)
        except ManifestError:
            continue  # `promptctl lint` reports broken files; here only the match matters
        for resource in resources:
            if resource.spec.prompt != prompt:
                continue
            if resource.spec.version == version:
                return resource
            found.append(resource.spec.version)
    have = ", ".join(sorted(found)) or "none"
    raise SpecError(f"no manifest of {prompt} {version} in {folder}; versions found: {have}")


def _section_text(resource: PromptVersion, section: str) -> list[str]:
    value: Any = getattr(resource.spec, section)
    if section == "template":
        lines: list[str] = []
        for name, text in value.model_dump(by_alias=True, exclude_none=True).items():
            lines += [f"{name}:", *(f"  {line}" for line in str(text).splitlines())]
        return lines
    if value is None:
        return []
    if isinstance(value, list):
        data: Any = [v.model_dump(by_alias=True, exclude_none=True, mode="json") for v in value]
    else:
        data = value.model_dump(by_alias=True, exclude_none=True, mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).splitlines()


def build_spec_diff(old: PromptVersion, new: PromptVersion) -> list[SectionDiff]:
    """Every section's diff from `old` to `new`."""
    label_old = f"{old.spec.prompt} {old.spec.version}"
    label_new = f"{new.spec.prompt} {new.spec.version}"
    return [
        SectionDiff(
            section,
            list(
                difflib.unified_diff(
                    _section_text(old, section),
                    _section_text(new, section),
                    fromfile=f"{label_old} spec.{section}",
                    tofile=f"{label_new} spec.{section}",
                    lineterm="",
                )
            ),
        )
        for section in SECTIONS
    ]


def render_spec_diff(diffs: list[SectionDiff]) -> str:
    """The changed sections as one unified diff, then a line naming the unchanged ones."""
    lines = [line for diff in diffs for line in diff.lines]
    same = [diff.section for diff in diffs if not diff.changed]
    if same:
        lines.append(f"# unchanged: {', '.join(same)}")
    return "\n".join(lines) + "\n"
