"""kubectl and kopf against the Kubernetes API emulator (tests/support/kube.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import kopf
import pytest
import yaml

from tests.support.kube import CRD_PATH, KubeCluster, run_kube_emulator, run_operator

pytestmark = pytest.mark.integration

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
NAME = "policy-qa-1-1-0"
PROMOTED = {"type": "Promoted", "status": "True", "reason": "StepsDone", "message": "100%"}


def manifest(name: str) -> dict[str, Any]:
    """A PromptVersion from prompts/, by object name."""
    for path in sorted(PROMPTS_DIR.glob("*.yaml")):
        body: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        if body["metadata"]["name"] == name:
            return body
    raise LookupError(name)


def create(cluster: KubeCluster, name: str, namespace: str = "default") -> dict[str, Any]:
    response = cluster.http.post(cluster.path(namespace), json=manifest(name))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def eventually(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy (each call blocks only briefly)."""
    async with asyncio.timeout(seconds):
        while True:
            if result := check():
                return result
            await asyncio.sleep(0.05)


@pytest.fixture
def cluster() -> Iterator[KubeCluster]:
    with run_kube_emulator() as running:
        yield running
        assert running.crashes == []


@pytest.fixture
def applied(cluster: KubeCluster) -> KubeCluster:
    """Both policy-qa PromptVersions of prompts/, applied with kubectl."""
    files = [arg for path in sorted(PROMPTS_DIR.glob("policy-qa-*.yaml")) for arg in ("-f", path)]
    result = cluster.kubectl("apply", "--validate=false", *map(str, files))
    assert result.returncode == 0, result.stderr
    return cluster


def test_kubectl_apply_creates_both_and_get_prints_the_crd_columns(applied: KubeCluster) -> None:
    listed = applied.kubectl("get", "pver")
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""  # no discovery warnings
    header, *rows = listed.stdout.splitlines()
    crd = yaml.safe_load(CRD_PATH.read_text(encoding="utf-8"))
    printer = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    # Columns of priority > 0 (Quality) show only with -o wide, as kubectl does.
    columns = [c["name"].upper() for c in printer if c.get("priority", 0) == 0]
    assert header.split() == ["NAME", *columns]
    assert [row.split()[:3] for row in rows] == [
        ["policy-qa-1-0-0", "policy-qa", "1.0.0"],
        ["policy-qa-1-1-0", "policy-qa", "1.1.0"],
    ]
    assert {item["metadata"]["name"] for item in applied.list_promptversions()} == {
        "policy-qa-1-0-0",
        NAME,
    }


def test_kubectl_get_json_round_trips_the_spec(applied: KubeCluster) -> None:
    result = applied.kubectl("get", "pver", NAME, "-o", "json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    # kmock applies no schema defaults: a real API server would add them to the spec.
    assert body["spec"] == manifest(NAME)["spec"]
    assert body["metadata"]["uid"] and body["metadata"]["generation"] == 1


def test_kubectl_annotate_changes_metadata_only(applied: KubeCluster) -> None:
    before = applied.get("default", NAME)
    result = applied.kubectl(
        "annotate", "pver", NAME, "promptrollouts.io/request=promote", "--overwrite"
    )
    assert result.returncode == 0, result.stderr
    after = applied.get("default", NAME)
    assert after["metadata"]["annotations"]["promptrollouts.io/request"] == "promote"
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert after["metadata"]["generation"] == 1  # metadata changes leave generation alone


def test_status_subresource_keeps_spec_and_status_apart(cluster: KubeCluster) -> None:
    spec = manifest(NAME)["spec"]
    create(cluster, NAME)
    patched = cluster.patch_status("default", NAME, {"phase": "Progressing", "weight": 10})
    assert patched["status"] == {"phase": "Progressing", "weight": 10}
    assert patched["spec"] == spec
    assert patched["metadata"]["generation"] == 1

    # /status ignores everything but .status: the spec change in it is dropped, not refused.
    via_status = cluster.patch(
        "default",
        NAME,
        {"spec": {"owner": "x"}, "status": {"phase": "Stable"}},
        subresource="status",
    )
    assert via_status["spec"] == spec
    assert via_status["status"] == {"phase": "Stable", "weight": 10}

    # The object itself ignores .status: a metadata write lands, the status in it does not.
    body = cluster.patch(
        "default",
        NAME,
        {"metadata": {"labels": {"team": "qa"}}, "status": {"weight": 99}},
    )
    assert body["metadata"]["labels"]["team"] == "qa"
    assert body["status"] == {"phase": "Stable", "weight": 10}
    assert body["metadata"]["generation"] == 1  # metadata changes leave generation alone

    # The spec is immutable (CEL self == oldSelf): a spec change is refused whole, status included.
    headers = {"Content-Type": "application/merge-patch+json"}
    refused = cluster.http.patch(
        cluster.path("default", NAME),
        json={"spec": {"owner": "qa@example.com"}, "status": {"weight": 99}},
        headers=headers,
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["reason"] == "Invalid"
    assert "spec is immutable" in refused.json()["message"]
    stored = cluster.get("default", NAME)
    assert stored["spec"] == spec
    assert stored["status"] == {"phase": "Stable", "weight": 10}
    assert stored["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"]


def test_failed_json_patch_test_is_422_and_noop_patches_keep_the_revision(
    cluster: KubeCluster,
) -> None:
    version = create(cluster, NAME)["metadata"]["resourceVersion"]
    failing = [{"op": "test", "path": "/metadata/finalizers", "value": ["x"]}]
    headers = {"Content-Type": "application/json-patch+json"}
    response = cluster.http.patch(cluster.path("default", NAME), json=failing, headers=headers)
    assert response.status_code == 422
    unchanged = cluster.patch("default", NAME, {"spec": {"prompt": "policy-qa"}})
    assert unchanged["metadata"]["resourceVersion"] == version


def test_kubectl_wait_returns_once_the_condition_is_patched(cluster: KubeCluster) -> None:
    create(cluster, NAME)
    create(cluster, "policy-qa-1-0-0")
    # The other object has the condition already: a wait on NAME must not see it.
    cluster.patch_status("default", "policy-qa-1-0-0", {"conditions": [PROMOTED]})
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(
            cluster.kubectl, "wait", "--for=condition=Promoted", f"pver/{NAME}", "--timeout=10s"
        )
        time.sleep(0.5)
        assert not waiting.done()
        cluster.patch_status("default", NAME, {"phase": "Promoted", "conditions": [PROMOTED]})
        started = time.monotonic()
        result = waiting.result(timeout=15)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 3
    assert "condition met" in result.stdout


def test_namespaces_are_served_and_undeclared_resources_are_404(cluster: KubeCluster) -> None:
    assert cluster.get(None, "default", resource="v1/namespaces")["kind"] == "Namespace"
    # Imperative `kubectl create namespace` sends protobuf, which kmock cannot read (415).
    manifest = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: canary\n"
    result = cluster.kubectl("apply", "--validate=false", "-f", "-", input=manifest)
    assert result.returncode == 0, result.stderr
    names = {ns["metadata"]["name"] for ns in cluster.list_objects("v1/namespaces")}
    assert names == {"default", "canary"}
    with pytest.raises(httpx.HTTPStatusError):
        cluster.get(None, "nowhere", resource="v1/namespaces")
    typo = cluster.http.post(
        cluster.path("default", resource="promptrollouts.io/v1alpha1/pvs"), json={}
    )
    assert typo.status_code == 404


def operator_registry() -> tuple[kopf.OperatorRegistry, dict[str, int]]:
    """A throwaway kopf registry: a create handler, a fast timer, an Event."""
    registry = kopf.OperatorRegistry()
    counts = {"create": 0, "timer": 0}

    @kopf.on.create(
        "promptrollouts.io", "v1alpha1", "promptversions", id="created", registry=registry
    )
    def created(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        counts["create"] += 1
        kopf.info(body, reason="Seen", message=f"version {body['spec']['version']}")
        patch.status["phase"] = "Pending"

    @kopf.timer(
        "promptrollouts.io",
        "v1alpha1",
        "promptversions",
        id="tick",
        interval=0.2,
        registry=registry,
    )
    def tick(**_: Any) -> None:
        counts["timer"] += 1

    return registry, counts


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # Keep kopf's bookkeeping in annotations: a real API server prunes unknown status fields.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kopf.test")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="kopf.test")
    return settings


@pytest.mark.asyncio
async def test_kopf_handlers_patch_status_post_events_and_tick(cluster: KubeCluster) -> None:
    registry, counts = operator_registry()
    async with run_operator(cluster, registry, operator_settings()):
        create(cluster, NAME)

        def phase() -> Any:
            return cluster.get("default", NAME).get("status", {}).get("phase")

        assert await eventually(phase) == "Pending"
        body = cluster.get("default", NAME)
        assert body["spec"] == manifest(NAME)["spec"]

        events = await eventually(lambda: cluster.list_objects("v1/events", "default"))
        assert events[0]["reason"] == "Seen"
        assert events[0]["message"] == "version 1.1.0"
        assert events[0]["involvedObject"]["name"] == NAME

        await eventually(lambda: counts["timer"] >= 3, seconds=5)

        # kopf put a finalizer on it (for the timer); kubectl waits until kopf releases it.
        assert cluster.get("default", NAME)["metadata"]["finalizers"]
        deleted = await asyncio.to_thread(cluster.kubectl, "delete", "pver", NAME, "--timeout=10s")
        assert deleted.returncode == 0, deleted.stderr
        assert cluster.list_promptversions() == []
    assert counts["create"] == 1
