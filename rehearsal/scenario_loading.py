"""Reading a scenario file and every file it names, with errors naming file and field.

`load_scenario` validates the scenario (`rehearsal.scenario.Scenario`), reads its
PromptVersion manifests and its questions, checks that they agree (one prompt, distinct
versions, known model and version names, an existing corpus folder) and returns a
`LoadedScenario`; anything wrong raises `ScenarioError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from api.v1alpha1.types import PromptVersion
from rehearsal.scenario import LoadedScenario, Scenario, ScenarioError

__all__ = ["load_scenario"]


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<top>"


def _read_yaml_documents(path: Path, what: str) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"{what}: cannot read {path}: {error.strerror or error}") from None
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        raise ScenarioError(f"{path}: not valid YAML: {error}") from None


def _resolve(base: Path, relative: str) -> Path:
    path = Path(relative).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def _read_manifest(path: Path, field: str) -> list[dict[str, Any]]:
    documents = _read_yaml_documents(path, field)
    if not documents:
        raise ScenarioError(f"{path} ({field}): holds no PromptVersion")
    for document in documents:
        try:
            PromptVersion.model_validate(document)
        except ValidationError as error:
            first = error.errors()[0]
            raise ScenarioError(
                f"{path} ({field}): not a valid PromptVersion: {_where(first['loc'])}: "
                f"{first['msg']}"
            ) from None
    return [dict(d) for d in documents]


def _read_questions(base: Path, questions: str | list[str]) -> list[str]:
    if isinstance(questions, list):
        return [q.strip() for q in questions]
    path = _resolve(base, questions)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ScenarioError(
            f"traffic.questions: cannot read {path}: {error.strerror or error}"
        ) from None
    found = [line.strip() for line in lines if line.strip()]
    if not found:
        raise ScenarioError(f"traffic.questions: {path} holds no question")
    return found


def load_scenario(path: Path) -> LoadedScenario:
    """Read and check a scenario and every file it names; ScenarioError says what is wrong."""
    documents = _read_yaml_documents(path, "scenario")
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise ScenarioError(f"{path}: a scenario is one YAML mapping (see docs/rehearse.md)")
    try:
        scenario = Scenario.model_validate(documents[0])
    except ValidationError as error:
        problems = "; ".join(
            f"{_where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in error.errors()
        )
        raise ScenarioError(f"{path}: {problems}") from None
    base = path.parent
    manifests: list[dict[str, Any]] = []
    for index, name in enumerate(scenario.manifests):
        manifests += _read_manifest(_resolve(base, name), f"manifests[{index}]")
    specs = [m["spec"] for m in manifests]
    prompts = sorted({s["prompt"] for s in specs})
    if len(prompts) != 1:
        raise ScenarioError(
            f"{path}: manifests: every version must be of one prompt (got {prompts})"
        )
    versions = [str(s["version"]) for s in specs]
    if len(set(versions)) != len(versions):
        raise ScenarioError(f"{path}: manifests: a version appears twice ({versions})")
    models = list(
        dict.fromkeys(
            name
            for s in specs
            for name in [s["model"]["name"], *(s["model"].get("fallbacks") or [])]
        )
    )
    for field, keys, known, noun in (
        ("models", scenario.models, models, "model used by the manifests"),
        ("feedback", scenario.feedback, versions, "version in the manifests"),
        ("expect", scenario.expect, versions, "version in the manifests"),
    ):
        for key in keys:
            if key not in known:
                raise ScenarioError(f"{path}: {field}.{key}: not a {noun} (those are {known})")
    corpus_dir = None
    if scenario.corpus is not None:
        corpus_dir = _resolve(base, scenario.corpus.dir)
        if not corpus_dir.is_dir():
            raise ScenarioError(f"{path}: corpus.dir: {corpus_dir} is not a folder")
    return LoadedScenario(
        path=path,
        scenario=scenario,
        manifests=manifests,
        questions=_read_questions(base, scenario.traffic.questions),
        prompt=prompts[0],
        versions=versions,
        models=models,
        corpus_dir=corpus_dir,
    )
