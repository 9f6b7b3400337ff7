"""The emulator rejects what a real API server rejects for our CRD: schema and CEL rules.

Table tests of the pure admission (tests/support/admission.py) against the CRD we ship,
then the same over real HTTP through the emulator and kubectl.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.admission import InvalidObjectError, admit
from tests.support.kube import CRD_PATH, KubeCluster, run_kube_emulator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text(encoding="utf-8"))["spec"]["versions"][
    0
]["schema"]["openAPIV3Schema"]
MANIFEST: dict[str, Any] = yaml.safe_load(
    (ROOT / "prompts" / "policy-qa-1.0.0.yaml").read_text(encoding="utf-8")
)
NAME = MANIFEST["metadata"]["name"]


def _changed(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    body = copy.deepcopy(MANIFEST)
    change(body)
    return body


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        (lambda b: b["spec"].pop("prompt"), "'prompt' is a required property"),
        (lambda b: b["spec"].update(version=7), "spec.version: Invalid value"),
        (lambda b: b["spec"]["template"].update(system=["a", "list"]), "spec.template.system"),
        (lambda b: b["spec"]["variables"][0].update(type="colour"), "spec.variables[0].type"),
    ],
    ids=["missing-required", "wrong-type", "list-for-string", "enum"],
)
def test_schema_errors_are_named(change: Callable[[dict[str, Any]], object], cause: str) -> None:
    with pytest.raises(InvalidObjectError) as caught:
        admit(SCHEMA, _changed(change))
    assert any(cause in c for c in caught.value.causes), caught.value.causes


def test_a_valid_manifest_is_admitted_unchanged() -> None:
    assert admit(SCHEMA, MANIFEST) == MANIFEST


def test_unknown_fields_are_pruned_or_rejected_when_strict() -> None:
    body = _changed(lambda b: b["spec"].update(colour="blue"))
    assert "colour" not in admit(SCHEMA, body)["spec"]
    with pytest.raises(InvalidObjectError, match=r"spec\.colour: unknown field"):
        admit(SCHEMA, body, strict=True)


def test_spec_is_immutable_on_update_but_not_on_create() -> None:
    changed = _changed(lambda b: b["spec"].update(owner="someone-else@example.com"))
    assert admit(SCHEMA, changed)["spec"]["owner"] == "someone-else@example.com"  # create
    with pytest.raises(InvalidObjectError, match="spec is immutable"):
        admit(SCHEMA, changed, MANIFEST)
    status_only = _changed(lambda b: b.update(status={"phase": "Stable", "weight": 100}))
    assert admit(SCHEMA, status_only, MANIFEST)["status"]["weight"] == 100


@pytest.fixture(scope="module")
def cluster() -> Iterator[KubeCluster]:
    with run_kube_emulator() as cluster:
        yield cluster


@pytest.mark.integration
def test_kubectl_apply_of_a_changed_spec_is_refused(cluster: KubeCluster, tmp_path: Path) -> None:
    applied = cluster.kubectl("apply", "--validate=false", "-f", str(ROOT / "prompts"))
    assert applied.returncode == 0, applied.stderr
    edited = tmp_path / "edited.yaml"
    edited.write_text(
        yaml.safe_dump(_changed(lambda b: b["spec"].update(owner="x@example.com"))),
        encoding="utf-8",
    )
    refused = cluster.kubectl("apply", "--validate=false", "-f", str(edited))
    assert refused.returncode != 0
    assert "spec is immutable" in refused.stderr
    assert cluster.get("default", NAME)["spec"]["owner"] == MANIFEST["spec"]["owner"]


@pytest.mark.integration
def test_invalid_objects_get_422_with_the_causes(cluster: KubeCluster) -> None:
    body = _changed(lambda b: b["metadata"].update(name="broken") or b["spec"].pop("template"))
    response = cluster.http.post(cluster.path("default"), json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["reason"] == "Invalid"
    assert "'template' is a required property" in problem["message"]
    assert "broken" in problem["message"]
    assert cluster.http.get(cluster.path("default", "broken")).status_code == 404


@pytest.mark.integration
def test_status_writes_are_checked_against_the_status_schema(cluster: KubeCluster) -> None:
    cluster.http.post(
        cluster.path("default"), json=_changed(lambda b: b["metadata"].update(name="st"))
    )
    bad = cluster.http.patch(
        cluster.path("default", "st") + "/status",
        json={"status": {"weight": "a lot"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert bad.status_code == 422, bad.text
    pruned = cluster.http.patch(
        cluster.path("default", "st") + "/status",
        json={"status": {"weight": 10, "madeUp": True}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert pruned.status_code == 200, pruned.text
    assert pruned.json()["status"] == {"weight": 10}


def _hook(**fields: Any) -> dict[str, Any]:
    return {"name": "gate", "type": "pre-rollout", "url": "https://gate.example.com/", **fields}


@pytest.mark.parametrize(
    ("hooks", "cause"),
    [
        ([_hook(url="ftp://gate.example.com/")], "spec.rollout.webhooks[0].url: Invalid value"),
        ([_hook(url="gate.example.com")], "spec.rollout.webhooks[0].url: Invalid value"),
        ([_hook(type="before")], "spec.rollout.webhooks[0].type: Invalid value: 'before'"),
        ([_hook(timeoutSeconds=0)], "webhooks[0].timeoutSeconds: Invalid value: 0 is less"),
        ([_hook(timeoutSeconds=61)], "webhooks[0].timeoutSeconds: Invalid value: 61 is greater"),
        ([_hook(metadata={"n": 1})], "spec.rollout.webhooks[0].metadata.n: Invalid value"),
        ([_hook(name="Not_A_Label")], "spec.rollout.webhooks[0].name: Invalid value"),
        ([_hook(), _hook(type="rollback")], "spec.rollout.webhooks: Invalid value: webhook names"),
        ([{"name": "gate", "type": "rollback"}], "'url' is a required property"),
    ],
    ids=[
        "ftp-url",
        "no-scheme",
        "unknown-type",
        "timeout-zero",
        "timeout-over-60",
        "metadata-not-string",
        "name-not-a-label",
        "duplicate-names",
        "missing-url",
    ],
)
def test_bad_webhooks_are_rejected_with_the_field(hooks: list[dict[str, Any]], cause: str) -> None:
    body = _changed(lambda b: b["spec"].setdefault("rollout", {}).update(webhooks=hooks))
    with pytest.raises(InvalidObjectError) as caught:
        admit(SCHEMA, body)
    assert any(cause in c for c in caught.value.causes), caught.value.causes


def test_good_webhooks_are_admitted() -> None:
    hooks = [_hook(), _hook(name="ok", type="confirm-promotion", metadata={"team": "qa"})]
    body = _changed(lambda b: b["spec"].setdefault("rollout", {}).update(webhooks=hooks))
    assert admit(SCHEMA, body)["spec"]["rollout"]["webhooks"] == hooks
