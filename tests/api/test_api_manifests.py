"""PromptVersion manifests: the committed prompts, invalid ones, and loading from disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jinja2 import Environment, meta

from api.v1alpha1.crd import build_openapi_schema
from api.v1alpha1.manifests import (
    ApiError,
    ManifestError,
    ManifestProblem,
    load_manifests,
    parse_manifest,
    parse_object,
)
from api.v1alpha1.types import RESERVED_VARIABLES, Phase

REPO = Path(__file__).resolve().parents[2]
PROMPTS = REPO / "prompts"
PROMPT_FILES = sorted(PROMPTS.glob("*.yaml"))
BASE_FILE = PROMPTS / "policy-qa-1.1.0.yaml"

Manifest = dict[str, Any]


def _strip_extensions(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _strip_extensions(v) for k, v in node.items() if not k.startswith("x-kubernetes-")
        }
    if isinstance(node, list):
        return [_strip_extensions(item) for item in node]
    return node


def _close_objects(node: Any) -> Any:
    """Reject unknown fields as kubectl's strict validation does: every object node that
    lists ``properties`` gets ``additionalProperties: false``."""
    if not isinstance(node, dict):
        return [_close_objects(item) for item in node] if isinstance(node, list) else node
    closed = {key: _close_objects(value) for key, value in node.items()}
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        closed["additionalProperties"] = False
    return closed


VALIDATOR = jsonschema.Draft7Validator(_strip_extensions(_close_objects(build_openapi_schema())))


def _schema_error_paths(manifest: Manifest) -> set[str]:
    """Field paths (camelCase, ``[n]``) of the errors the CRD schema finds."""
    paths: set[str] = set()
    for error in VALIDATOR.iter_errors(manifest):
        base = ""
        for step in error.absolute_path:
            base = f"{base}[{step}]" if isinstance(step, int) else f"{base}.{step}".lstrip(".")
        names: list[str] = []
        if error.validator == "required":
            names = [n for n in error.validator_value if n not in error.instance]
        elif error.validator == "additionalProperties":
            names = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        paths.update(f"{base}.{name}".lstrip(".") for name in names)
        if not names:
            paths.add(base)
    return paths


def _base() -> Manifest:
    data = yaml.safe_load(BASE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _spec(manifest: Manifest) -> Manifest:
    spec = manifest["spec"]
    assert isinstance(spec, dict)
    return spec


# --- the committed prompts ----------------------------------------------------------------


def test_there_are_prompts() -> None:
    assert [p.name for p in PROMPT_FILES] == [
        "faq-bot-1.0.0.yaml",
        "faq-bot-1.1.0.yaml",
        "order-status-1.0.0.yaml",
        "policy-qa-1.0.0.yaml",
        "policy-qa-1.1.0.yaml",
        "ticket-summarizer-1.0.0.yaml",
    ]


@pytest.mark.parametrize("path", PROMPT_FILES, ids=[p.name for p in PROMPT_FILES])
def test_prompt_is_valid_for_the_crd_and_the_models(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert _schema_error_paths(data) == set()
    [version] = load_manifests(path)
    assert version.metadata.name == f"{version.spec.prompt}-{version.spec.version}".replace(
        ".", "-"
    )
    assert version.metadata.namespace is None


@pytest.mark.parametrize("path", PROMPT_FILES, ids=[p.name for p in PROMPT_FILES])
def test_templates_use_exactly_the_declared_variables(path: Path) -> None:
    [version] = load_manifests(path)
    env = Environment(autoescape=False)
    used: set[str] = set()
    for text in (version.spec.template.system, version.spec.template.user):
        used |= meta.find_undeclared_variables(env.parse(text))
    declared = {v.name for v in version.spec.variables}
    assert used - RESERVED_VARIABLES == declared
    assert "question" in used
    # `context` is the CONTEXT block: used exactly when the version retrieves.
    assert ("context" in used) == (version.spec.retrieval is not None)


def test_prompts_directory_loads_in_name_order_without_duplicates() -> None:
    versions = load_manifests(PROMPTS)
    assert [(v.spec.prompt, v.spec.version) for v in versions] == [
        ("faq-bot", "1.0.0"),
        ("faq-bot", "1.1.0"),
        ("order-status", "1.0.0"),
        ("policy-qa", "1.0.0"),
        ("policy-qa", "1.1.0"),
        ("ticket-summarizer", "1.0.0"),
    ]
    assert len({(v.spec.prompt, v.spec.version) for v in versions}) == len(versions)


# --- invalid manifests --------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[Manifest], None]:
    """A mutation setting ``spec.a.b`` (list indexes as integers in the dotted path)."""

    def mutate(manifest: Manifest) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = manifest
        for step in parents:
            node = node[step]
        node[last] = value

    return mutate


def _delete(path: str) -> Callable[[Manifest], None]:
    def mutate(manifest: Manifest) -> None:
        *parents, last = path.split(".")
        node: Any = manifest
        for step in parents:
            node = node[step]
        del node[last]

    return mutate


def _weights(*weights: int) -> Callable[[Manifest], None]:
    return _set("spec.rollout.steps", [{"weight": w, "pause": "5m"} for w in weights])


INVALID = [
    # (id, mutation, field path, the CRD schema catches it too)
    ("bad-semver", _set("spec.version", "1.1"), "spec.version", True),
    ("v-prefixed-semver", _set("spec.version", "v1.1.0"), "spec.version", True),
    ("missing-template", _delete("spec.template"), "spec.template", True),
    ("missing-user-template", _delete("spec.template.user"), "spec.template.user", True),
    ("unknown-spec-field", _set("spec.temprature", 0.3), "spec.temprature", True),
    (
        "unknown-variable-field",
        _set("spec.variables.0.defualt", "x"),
        "spec.variables[0].defualt",
        True,
    ),
    ("snake-case-field", _set("spec.model.max_tokens", 10), "spec.model.max_tokens", True),
    ("prompt-not-dns-label", _set("spec.prompt", "Policy_QA"), "spec.prompt", True),
    (
        "bad-duration",
        _set("spec.rollout.analysis.interval", "30 sec"),
        "spec.rollout.analysis.interval",
        True,
    ),
    ("bad-pause", _set("spec.rollout.steps.0.pause", "soon"), "spec.rollout.steps[0].pause", True),
    ("temperature-too-high", _set("spec.model.temperature", 2.5), "spec.model.temperature", True),
    ("weight-over-100", _weights(10, 101), "spec.rollout.steps[1].weight", True),
    ("decreasing-weights", _weights(50, 10), "spec.rollout.steps", False),
    ("repeated-weight", _weights(10, 10), "spec.rollout.steps", False),
    ("default-wrong-type", _set("spec.variables.1.default", "long"), "spec.variables[1]", False),
    ("default-out-of-range", _set("spec.variables.1.default", 1000), "spec.variables[1]", False),
    (
        "reserved-variable",
        _set("spec.variables.0.name", "question"),
        "spec.variables[0].name",
        False,
    ),
    ("duplicate-variables", _set("spec.variables.1.name", "tone"), "spec.variables", False),
]


@pytest.mark.parametrize(
    ("mutate", "field", "schema_catches"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_manifest_is_rejected_at_the_field(
    mutate: Callable[[Manifest], None], field: str, schema_catches: bool, tmp_path: Path
) -> None:
    manifest = _base()
    mutate(manifest)

    with pytest.raises(ManifestError) as parsed:
        parse_manifest(manifest, "bad.yaml", document=0)
    assert field in [problem.field for problem in parsed.value.problems]
    assert f"bad.yaml[0]: {field}: " in str(parsed.value)

    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    with pytest.raises(ManifestError) as loaded:
        load_manifests(file)
    assert f"{file}[0]: {field}: " in str(loaded.value)

    schema_paths = _schema_error_paths(manifest)
    if schema_catches:
        assert field in schema_paths
    else:
        assert schema_paths == set(), "the schema cannot catch this: the models must"


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (_set("spec.variables.1.default", "long"), "default 'long' is not of type integer"),
        (_set("spec.variables.1.default", 1000), "default 1000 is greater than maximum 400"),
        (_set("spec.variables.0.name", "question"), "'question' is reserved"),
        (_set("spec.variables.1.name", "tone"), "variable 'tone' is declared twice"),
        (_weights(50, 10), "step weights must strictly increase, got [50, 10]"),
    ],
    ids=["default-type", "default-range", "reserved", "duplicate", "weights"],
)
def test_model_errors_read_well(mutate: Callable[[Manifest], None], fragment: str) -> None:
    manifest = _base()
    mutate(manifest)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest, "x.yaml")
    assert fragment in str(caught.value)
    assert "Value error" not in str(caught.value)


def test_union_member_errors_become_one_problem_at_the_field() -> None:
    manifest = _base()
    _set("spec.variables.1.default", {"a": 1})(manifest)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest, "x.yaml")
    [problem] = caught.value.problems
    assert problem.field == "spec.variables[1].default"
    assert "valid boolean; Input should be a valid integer" in problem.message


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"kind": "Deployment"}, "kind", "unknown kind 'Deployment': expected PromptVersion"),
        ({"apiVersion": "promptrollouts.io/v1"}, "apiVersion", "unknown apiVersion"),
        ({"kind": None}, "kind", "Input should be 'PromptVersion'"),
    ],
    ids=["other-kind", "other-version", "null-kind"],
)
def test_unknown_kinds_are_rejected(change: Manifest, field: str, fragment: str) -> None:
    manifest = _base() | change
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest, "x.yaml", document=2)
    [problem] = caught.value.problems
    assert (problem.file, problem.document, problem.field) == ("x.yaml", 2, field)
    assert fragment in problem.message


def test_missing_top_level_fields_are_named() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest({"metadata": {"name": "x"}}, "x.yaml")
    assert {p.field for p in caught.value.problems} == {"apiVersion", "kind", "spec"}


def test_manifest_error_is_an_api_error_and_carries_problems() -> None:
    problems = [
        ManifestProblem("a.yaml", 0, "spec.version", "bad"),
        ManifestProblem("b.yaml", None, "", "gone"),
    ]
    error = ManifestError(problems)
    assert isinstance(error, ApiError)
    assert error.problems == problems
    assert str(error) == "a.yaml[0]: spec.version: bad\nb.yaml: gone"


# --- files, documents, duplicates ---------------------------------------------------------


def _document(version: str, name: str | None = None) -> Manifest:
    manifest = _base()
    _spec(manifest)["version"] = version
    manifest["metadata"]["name"] = name or f"policy-qa-{version.replace('.', '-')}"
    return manifest


def _write(path: Path, *documents: Manifest | None) -> Path:
    path.write_text(
        "".join(f"---\n{yaml.safe_dump(doc, sort_keys=False) if doc else ''}" for doc in documents),
        encoding="utf-8",
    )
    return path


def test_multi_document_file_skips_empty_documents(tmp_path: Path) -> None:
    file = _write(tmp_path / "many.yaml", _document("2.0.0"), None, _document("2.1.0-rc.1"))
    assert [v.spec.version for v in load_manifests(file)] == ["2.0.0", "2.1.0-rc.1"]


def test_problems_name_the_document_index(tmp_path: Path) -> None:
    bad = _document("2.0.0") | {"kind": "ConfigMap"}
    file = _write(tmp_path / "many.yaml", _document("1.9.0"), None, bad)
    with pytest.raises(ManifestError) as caught:
        load_manifests(file)
    [problem] = caught.value.problems
    assert (problem.file, problem.document, problem.field) == (str(file), 2, "kind")


def test_directory_collects_problems_from_every_file(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", _document("1.0.0") | {"kind": "Secret"})
    _write(tmp_path / "b.yml", _document("nope"))
    _write(tmp_path / "c.yaml", _document("1.2.0"))
    (tmp_path / "notes.txt").write_text("not a manifest", encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_manifests(tmp_path)
    assert [(Path(p.file).name, p.field) for p in caught.value.problems] == [
        ("a.yaml", "kind"),
        ("b.yml", "spec.version"),
    ]


def test_directory_reads_yaml_and_yml_in_name_order(tmp_path: Path) -> None:
    _write(tmp_path / "b.yml", _document("1.1.0"))
    _write(tmp_path / "a.yaml", _document("1.0.0"))
    assert [v.spec.version for v in load_manifests(tmp_path)] == ["1.0.0", "1.1.0"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("spec: [unclosed\n", "expected ',' or ']'"),
        ("kind: PromptVersion\nkind: PromptVersion\n", "found duplicate key 'kind'"),
    ],
    ids=["syntax-error", "duplicate-key"],
)
def test_yaml_errors_are_manifest_errors(tmp_path: Path, text: str, fragment: str) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_manifests(file)
    [problem] = caught.value.problems
    assert (problem.file, problem.document) == (str(file), None)
    assert fragment in problem.message


def test_missing_path_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file or directory"):
        load_manifests(tmp_path / "absent.yaml")


def test_non_mapping_document_is_rejected(tmp_path: Path) -> None:
    file = tmp_path / "list.yaml"
    file.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"list\.yaml\[0\]: expected a mapping, got list"):
        load_manifests(file)


def test_parse_object_reads_spec_strictly_and_status_leniently() -> None:
    body = yaml.safe_load(BASE_FILE.read_text())
    body["metadata"] |= {"namespace": "default", "uid": "u-1", "resourceVersion": "7"}
    body["status"] = {"phase": "Progressing", "weight": 10, "kopf": {"progress": {}}}
    resource = parse_object(body)
    assert resource.status is not None
    assert (resource.status.phase, resource.status.weight) == (Phase.PROGRESSING, 10)

    body["status"] = {"weight": "not a number"}
    assert parse_object(body).status is None  # the controller rewrites it

    body["spec"]["rollout"]["steps"] = [{"weight": 50}, {"weight": 10}]
    with pytest.raises(ManifestError, match=r"default/policy-qa-1-1-0.*spec\.rollout\.steps"):
        parse_object(body)
