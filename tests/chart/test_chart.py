"""The Helm chart, installed by the real Helm v4 engine into the Kubernetes emulator.

Every ci/*-values.yaml scenario is installed; the objects that land are checked against
the Kubernetes OpenAPI schemas (kubernetes-validate, offline) and against what the chart
promises: security contexts, probes, resources, RBAC verbs, secret references, labels, and
nothing rendered for a disabled feature. Upgrades, `helm test`, values-schema rejections and
the copies the chart carries (CRDs, rules, dashboard, examples) are checked too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import helm_sdkpy
import jsonschema
import kubernetes_validate
import pytest
import yaml
from kopf._cogs.structs import references as kopf_references

from tests.chart.conftest import (
    CHART,
    NAMESPACE,
    RELEASE,
    ROOT,
    ClusterFactory,
    Helm,
    Release,
    ci_values,
)
from tests.chart.helm_kube import HelmCluster

CI_FILES = sorted(path.name for path in (CHART / "ci").glob("*-values.yaml"))
CI_IDS = [name.removesuffix("-values.yaml") for name in CI_FILES]
FULLNAME = f"{RELEASE}-prompt-rollouts"
#: Oldest and newest Kubernetes the chart supports (Chart.yaml kubeVersion >= 1.25).
KUBE_VERSIONS = ("1.25", "1.37")
#: Custom resources: not in the Kubernetes OpenAPI; PromptVersions are checked on their CRD.
CUSTOM_GROUPS = ("monitoring.coreos.com/", "kopf.dev/", "promptrollouts.io/")
STANDARD_LABELS = {
    "helm.sh/chart": "prompt-rollouts-0.1.0",
    "app.kubernetes.io/name": "prompt-rollouts",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/version": "0.1.0",
    "app.kubernetes.io/managed-by": "Helm",
    "app.kubernetes.io/part-of": "prompt-rollouts",
}
CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
SECRET_ENV = {"MODEL_API_KEY", "EMBEDDING_API_KEY", "QDRANT_API_KEY"}
#: The least-privilege rules, exactly.
CONTROLLER_RULES = [
    {
        "apiGroups": ["promptrollouts.io"],
        "resources": ["promptversions"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {
        "apiGroups": ["promptrollouts.io"],
        "resources": ["promptversions/status"],
        "verbs": ["patch"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update"]},
]
SERVER_RULES = [
    {
        "apiGroups": ["promptrollouts.io"],
        "resources": ["promptversions"],
        "verbs": ["get", "list", "watch"],
    }
]


def peering_rule(plural: str) -> dict[str, Any]:
    verbs = ["get", "list", "watch", "patch"]
    return {"apiGroups": ["kopf.dev"], "resources": [plural], "verbs": verbs}


# -- helpers ------------------------------------------------------------------------------------


def api_of(obj: dict[str, Any]) -> tuple[str, str]:
    """(api, plural) for HelmCluster.list; plural by the usual lower-case + s rule."""
    kind = obj["kind"]
    plural = {"NetworkPolicy": "networkpolicies", "PodDisruptionBudget": "poddisruptionbudgets"}
    return obj["apiVersion"], plural.get(kind, kind.lower() + "s")


def landed(cluster: HelmCluster, obj: dict[str, Any]) -> dict[str, Any]:
    """The stored version of a rendered object."""
    api, plural = api_of(obj)
    namespace = obj["metadata"].get("namespace")
    items = cluster.list_objects(api, plural, namespace)
    found = [i for i in items if i["metadata"]["name"] == obj["metadata"]["name"]]
    assert found, f"{obj['kind']}/{obj['metadata']['name']} did not land in the cluster"
    return found[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"] if obj["kind"] != "Pod" else obj["spec"]
    return spec


def container(release: Release, name: str) -> dict[str, Any]:
    workload = release.one("Deployment", f"-{name}")
    (only,) = pod_spec(workload)["containers"]
    assert only["name"] == name
    found: dict[str, Any] = only
    return found


def env_of(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in spec.get("env", [])}


def rules_of(release: Release, kind: str, component: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = release.one(kind, component)["rules"]
    return rules


# -- lint -------------------------------------------------------------------------------------


def test_lint_reports_no_warning_or_error(helm: Helm) -> None:
    result = helm.lint()
    # helm-sdkpy returns severities and paths only (no text): 1 info, 2 warning, 3 error.
    assert result["Errors"] is None
    assert [m for m in result["Messages"] if m["Severity"] >= 2] == []


# -- every CI scenario ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validators() -> dict[str, Any]:
    """The PromptVersion CRD's schema, for the custom resources kubernetes-validate skips."""
    crd = yaml.safe_load((CHART / "crds" / "promptversion.yaml").read_text(encoding="utf-8"))
    return {"PromptVersion": crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]}


@pytest.mark.parametrize("ci_file", CI_FILES, ids=CI_IDS)
def test_scenario_installs_valid_objects(
    helm: Helm, cluster: HelmCluster, ci_file: str, validators: dict[str, Any]
) -> None:
    release = helm.install(ci_values(ci_file))
    assert release.raw["info"]["status"] == "deployed"
    assert release.objects, "nothing rendered"
    for obj in release.objects:
        ident = f"{obj['kind']}/{obj['metadata']['name']}"
        landed(cluster, obj)
        # Standard labels on every object; names fit a DNS label or subdomain.
        labels = obj["metadata"].get("labels", {})
        assert STANDARD_LABELS.items() <= labels.items(), ident
        assert len(obj["metadata"]["name"]) <= 63, ident
        if obj["apiVersion"].startswith(CUSTOM_GROUPS):
            if obj["kind"] in validators:
                jsonschema.validate(obj, validators[obj["kind"]])
            continue  # ServiceMonitor, PrometheusRule, kopf peerings: no schema offline
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                message = f"{ident} is invalid on Kubernetes {version}: {error.message}"
                pytest.fail(message, pytrace=False)


@pytest.mark.parametrize("ci_file", CI_FILES, ids=CI_IDS)
def test_scenario_pods_are_locked_down(helm: Helm, ci_file: str) -> None:
    probes_all = {"livenessProbe", "readinessProbe"}
    release = helm.install(ci_values(ci_file))
    workloads = release.of_kind("Deployment") + release.of_kind("StatefulSet")
    for workload in workloads:
        spec = pod_spec(workload)
        ident = workload["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, ident
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, ident
        for box in spec["containers"]:
            security = box["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, ident
            assert security["allowPrivilegeEscalation"] is False, ident
            assert security["capabilities"] == {"drop": ["ALL"]}, ident
            assert box["resources"]["requests"] and box["resources"]["limits"]["memory"], ident
            probes = {"livenessProbe", "readinessProbe"} & box.keys()
            expected = {"livenessProbe"} if ident.endswith("-controller") else probes_all
            assert probes == expected, ident
            # API keys only ever come from Secrets.
            for name, entry in env_of(box).items():
                if name in SECRET_ENV or (name == "REDIS_URL" and "valueFrom" in entry):
                    assert "value" not in entry, f"{ident}: {name} has a literal value"
                    assert set(entry["valueFrom"]) == {"secretKeyRef"}, ident
    # The chart's own Secrets hold hashes and a random secret, never a caller's API key.
    names = {o["metadata"]["name"] for o in release.of_kind("Secret")}
    assert names == {f"{FULLNAME}-api-keys", f"{FULLNAME}-idempotency"}


# -- defaults -----------------------------------------------------------------------------------


def test_defaults_server(helm: Helm) -> None:
    release = helm.install()
    deployment = release.one("Deployment", "-server")
    assert deployment["spec"]["replicas"] == 2
    spec = pod_spec(deployment)
    server = container(release, "server")
    assert server["image"] == "prompt-rollouts:0.1.0"
    assert server["args"] == [
        "python", "-m", "service", "--host", "0.0.0.0", "--port", "8000",
    ]  # fmt: skip
    assert server["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]
    assert server["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert server["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert server["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert server["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "1536Mi"},
    }
    assert server["securityContext"] == CONTAINER_SECURITY
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    assert mounts == {
        "/tmp": "tmp",
        "/var/lib/prompt-rollouts": "data",
        "/etc/prompt-rollouts/api-keys": "api-keys",
    }
    keys_mount = next(m for m in server["volumeMounts"] if m["name"] == "api-keys")
    assert keys_mount["readOnly"] is True and "subPath" not in keys_mount  # updates propagate
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes["tmp"] and "emptyDir" in volumes["data"]
    assert volumes["api-keys"]["secret"]["secretName"] == f"{FULLNAME}-api-keys"
    env = {name: entry.get("value") for name, entry in env_of(server).items()}
    assert env == {
        "AUTH_MODE": "api-key",
        "API_KEYS_FILE": "/etc/prompt-rollouts/api-keys/api-keys.yaml",
        "TENANT_RPM": "0",
        "TENANT_METRICS": "false",
        "METRICS_PORT": "9090",
        "OPENAPI": "false",
        "TOOL_ALLOWED_HOSTS": "",  # tools disabled
        "TOOL_MAX_RESPONSE_BYTES": "65536",
        "TOOL_MAX_RESULT_CHARS": "4000",
        "IDEMPOTENCY_SECRET": None,
        "PROMPT_SOURCE": "cluster",
        "KUBE_NAMESPACE": NAMESPACE,
        "LOG_LEVEL": "INFO",
        "LOG_CONTENT": "redacted",
        "QDRANT_PATH": "/var/lib/prompt-rollouts/qdrant",
        "WEB_CONCURRENCY": "1",  # the embedded store admits one process (test_workers.py)
    }
    assert env_of(server)["IDEMPOTENCY_SECRET"]["valueFrom"] == {
        "secretKeyRef": {"name": f"{FULLNAME}-idempotency", "key": "idempotency-secret"}
    }
    # Spread over nodes, selecting this component's pods only.
    (spread,) = spec["topologySpreadConstraints"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert spread["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "server"
    assert spec["serviceAccountName"] == f"{FULLNAME}-server"
    service = release.one("Service", "-server")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["ports"][1] == {
        "name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP",
    }  # fmt: skip


def test_defaults_controller_is_standalone_and_namespaced(helm: Helm) -> None:
    release = helm.install()
    deployment = release.one("Deployment", "-controller")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    controller = container(release, "controller")
    assert controller["args"] == [
        "kopf", "run", f"--namespace={NAMESPACE}", "--standalone",
        "--liveness=http://0.0.0.0:8080/healthz", "-m", "controller.operator",
    ]  # fmt: skip
    assert controller["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert controller["securityContext"] == CONTAINER_SECURITY
    env = {name: entry["value"] for name, entry in env_of(controller).items()}
    assert env["PROMETHEUS_URL"] == "http://prometheus-operated.monitoring.svc:9090"
    assert env["CONTROLLER_METRICS_PORT"] == "8081"
    # The eval gates ask this release's server Service; no API key unless a Secret is named.
    assert env["SERVICE_URL"] == f"http://{FULLNAME}-server.{NAMESPACE}.svc:8000"
    assert "SERVICE_API_KEY" not in env_of(controller)
    ports = {p["name"]: p["containerPort"] for p in controller["ports"]}
    assert ports == {"health": 8080, "metrics": 8081}


def test_webhook_signing_key_comes_from_a_secret(helm: Helm) -> None:
    assert "WEBHOOK_SECRET" not in env_of(container(helm.install(name="unsigned"), "controller"))
    values = {"controller": {"webhooks": {"existingSecret": "rollout-webhooks"}}}
    controller = container(helm.install(values), "controller")
    assert env_of(controller)["WEBHOOK_SECRET"] == {
        "name": "WEBHOOK_SECRET",
        "valueFrom": {"secretKeyRef": {"name": "rollout-webhooks", "key": "webhook-secret"}},
    }


def test_tool_hosts_and_secrets_reach_the_server(helm: Helm) -> None:
    values = {
        "tools": {
            "allowedHosts": ["orders.larkspur.example", "10.20.0.0/16"],
            "maxResponseBytes": 65536,
            "maxResultChars": 4000,
            "secrets": ["orders-api"],
        }
    }
    release = helm.install(values, name="tools")
    server = container(release, "server")
    assert env_of(server)["TOOL_ALLOWED_HOSTS"]["value"] == "orders.larkspur.example,10.20.0.0/16"
    mount = next(m for m in server["volumeMounts"] if m["name"] == "tool-secret-orders-api")
    assert mount == {
        "name": "tool-secret-orders-api",
        "mountPath": "/var/run/secrets/prompt-rollouts/tools/orders-api",
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in pod_spec(release.one("Deployment", "-server"))["volumes"]}
    assert volumes["tool-secret-orders-api"]["secret"]["secretName"] == "orders-api"


def test_defaults_rbac_is_namespaced_least_privilege(helm: Helm) -> None:
    release = helm.install()
    assert rules_of(release, "Role", "-controller") == CONTROLLER_RULES
    assert rules_of(release, "Role", "-server") == SERVER_RULES
    assert release.of_kind("ClusterRole") == [] and release.of_kind("ClusterRoleBinding") == []
    for component in ("controller", "server"):
        binding = release.one("RoleBinding", f"-{component}")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": f"{FULLNAME}-{component}",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"{FULLNAME}-{component}", "namespace": NAMESPACE}
        ]
        account = release.one("ServiceAccount", f"-{component}")
        assert account["automountServiceAccountToken"] is False  # the pods opt in


def test_defaults_render_no_optional_feature(helm: Helm) -> None:
    release = helm.install()
    assert release.kinds() == {
        "Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "Secret",
    }  # fmt: skip
    names = sorted(o["metadata"]["name"] for o in release.objects)
    assert not [n for n in names if n.endswith(("-redis", "-qdrant", "-dashboard"))]


def test_crds_are_installed_from_the_chart(helm: Helm, cluster: HelmCluster) -> None:
    helm.install()
    crds = cluster.list_objects("apiextensions.k8s.io/v1", "customresourcedefinitions")
    names = {crd["metadata"]["name"] for crd in crds}
    assert {
        "promptversions.promptrollouts.io",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    } <= names


EXAMPLES = "charts/prompt-rollouts/files/examples"


def test_notes_print_ready_to_paste_commands(helm: Helm) -> None:
    notes = helm.install().notes
    commands = [line.strip() for line in notes.splitlines() if line.startswith("  ")]
    expected = [
        f"kubectl apply -n {NAMESPACE} -f {EXAMPLES}/policy-qa-1.0.0.yaml",
        f"kubectl get pver -n {NAMESPACE} -w",
        f"kubectl rollout status -n {NAMESPACE} deployment/{FULLNAME}-server",
        f"kubectl port-forward -n {NAMESPACE} svc/{FULLNAME}-server 8000:8000 &",
        f"helm test {RELEASE} -n {NAMESPACE}",
        "kubectl apply --server-side -f charts/prompt-rollouts/crds/",
    ]
    for command in expected:
        assert command in commands, f"NOTES lack: {command}"
    # Every file NOTES point at exists (paths relative to the repository root).
    for path in re.findall(r"-f (charts/\S+)", notes):
        assert (ROOT / path).exists(), path
    assert "curl -s localhost:8000/v1/answers" in notes


def test_long_names_are_cut_to_63_characters(helm: Helm) -> None:
    release = helm.install({"fullnameOverride": "x" * 63})
    for obj in release.objects:
        name = obj["metadata"]["name"]
        assert len(name) <= 63, name
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name


def test_files_mode_and_own_accounts(helm: Helm) -> None:
    values = {
        "server": {"promptSource": "files", "serviceAccount": {"create": False, "name": "mine"}},
        "image": {"repository": "registry.example/prompt-rollouts", "digest": "sha256:" + "a" * 64},
    }
    release = helm.install(values)
    spec = pod_spec(release.one("Deployment", "-server"))
    assert spec["serviceAccountName"] == "mine"
    assert spec["automountServiceAccountToken"] is False  # no API access needed
    env = env_of(container(release, "server"))
    assert env["PROMPT_SOURCE"]["value"] == "files" and "KUBE_NAMESPACE" not in env
    assert [o["metadata"]["name"] for o in release.of_kind("Role")] == [f"{FULLNAME}-controller"]
    assert [o["metadata"]["name"] for o in release.of_kind("ServiceAccount")] == [
        f"{FULLNAME}-controller"
    ]
    image = container(release, "controller")["image"]
    assert image == "registry.example/prompt-rollouts@sha256:" + "a" * 64


# -- the other scenarios --------------------------------------------------------------------------


def test_ha_scenario(helm: Helm, cluster: HelmCluster) -> None:
    release = helm.install(ci_values("ha-values.yaml"))
    controller_deployment = release.one("Deployment", "-controller")
    assert controller_deployment["spec"]["replicas"] == 2
    assert controller_deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    args = container(release, "controller")["args"]
    assert "--all-namespaces" in args and f"--peering={FULLNAME}" in args
    assert "--standalone" not in args
    peering = release.one("ClusterKopfPeering")
    assert peering["metadata"]["name"] == FULLNAME and "namespace" not in peering["metadata"]
    landed(cluster, peering)
    # Cluster-wide RBAC, same verbs, plus peering.
    assert release.of_kind("Role") == [] and release.of_kind("RoleBinding") == []
    expected = [*CONTROLLER_RULES, peering_rule("clusterkopfpeerings")]
    assert rules_of(release, "ClusterRole", "-controller") == expected
    assert rules_of(release, "ClusterRole", "-server") == SERVER_RULES
    assert release.one("ClusterRoleBinding", "-server")["roleRef"]["kind"] == "ClusterRole"
    # Autoscaled server: the Deployment leaves replicas to the HPA.
    assert "replicas" not in release.one("Deployment", "-server")["spec"]
    hpa = release.one("HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]}
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 60},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }
    assert release.one("PodDisruptionBudget", "-server")["spec"]["minAvailable"] == 2
    assert release.one("PodDisruptionBudget", "-controller")["spec"]["minAvailable"] == 1
    env = env_of(container(release, "server"))
    assert env["KUBE_NAMESPACE"]["value"] == "*"
    assert env["MODEL_BASE_URL"]["value"] == "https://api.openai.com/v1"
    assert env["MODEL_API_KEY"] == {
        "name": "MODEL_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "openai", "key": "api-key"}},
    }
    assert json.loads(env["MODEL_PRICES"]["value"]) == {
        "gpt-4o-mini-2024-07-18": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}
    }


def test_bundled_scenario(helm: Helm, cluster: HelmCluster) -> None:
    release = helm.install(ci_values("bundled-values.yaml"))
    env = env_of(container(release, "server"))
    assert env["REDIS_URL"]["value"] == f"redis://{FULLNAME}-redis:6379/0"
    assert env["QDRANT_URL"]["value"] == f"http://{FULLNAME}-qdrant:6333"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.monitoring:4318"
    # Redis: in memory, non-root, behind its Service.
    redis = container(release, "redis")
    assert redis["image"] == "redis:7.4.2-alpine"
    assert "--save" in redis["args"] and redis["securityContext"]["readOnlyRootFilesystem"]
    assert release.one("Service", "-redis")["spec"]["ports"][0]["port"] == 6379
    # Qdrant: a StatefulSet with a claim for its storage; pinned image.
    qdrant = release.one("StatefulSet", "-qdrant")
    (claim,) = qdrant["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "storage"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    (box,) = pod_spec(qdrant)["containers"]
    assert re.fullmatch(r"qdrant/qdrant:v\d+\.\d+\.\d+-unprivileged", box["image"])
    assert {"/qdrant/storage", "/tmp"} <= {m["mountPath"] for m in box["volumeMounts"]}
    landed(cluster, qdrant)
    # NetworkPolicies: clients only (the test pod is one), metrics from the monitoring
    # namespace only, stores from the server only.
    monitoring = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    server_policy = release.one("NetworkPolicy", "-server")
    rule, metrics_rule = server_policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    controller_pods = {
        "app.kubernetes.io/name": "prompt-rollouts",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": "controller",
    }
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {f"{FULLNAME}-client": "true"}}},
        {"podSelector": {"matchLabels": controller_pods}},  # its eval gates ask the server
        *monitoring,
    ]
    assert metrics_rule == {"ports": [{"port": "metrics", "protocol": "TCP"}], "from": monitoring}
    (controller_rule,) = release.one("NetworkPolicy", "-controller")["spec"]["ingress"]
    assert controller_rule == metrics_rule
    server_pods = {
        "app.kubernetes.io/name": "prompt-rollouts",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": "server",
    }
    for store, ports in (("redis", [6379]), ("qdrant", [6333, 6334])):
        (store_rule,) = release.one("NetworkPolicy", f"-{store}")["spec"]["ingress"]
        assert store_rule["from"] == [{"podSelector": {"matchLabels": server_pods}}]
        assert [p["port"] for p in store_rule["ports"]] == ports
    # Prometheus Operator objects.
    monitor = release.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    rule_object = release.one("PrometheusRule")
    shipped = [
        yaml.safe_load((ROOT / "observability" / "prometheus" / name).read_text(encoding="utf-8"))
        for name in ("recording-rules.yaml", "alerts.yaml")
    ]
    groups = rule_object["spec"]["groups"]
    assert [g["name"] for g in groups] == [g["name"] for s in shipped for g in s["groups"]]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    assert alerts and all(
        r["annotations"]["runbook_url"].startswith(
            "https://git.example.com/prompt-rollouts/blob/main/docs/operations.md#"
        )
        for r in alerts
    )
    # Prometheus templates pass through Helm untouched.
    assert "{{ $labels.prompt }}" in alerts[0]["annotations"]["summary"]
    dashboard = release.one("ConfigMap", "-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped_dashboard = (ROOT / "observability" / "grafana" / "prompt-rollouts.json").read_text()
    assert json.loads(dashboard["data"]["prompt-rollouts.json"]) == json.loads(shipped_dashboard)
    # The example PromptVersion, in the release namespace.
    example = release.one("PromptVersion")
    assert example["metadata"]["namespace"] == NAMESPACE
    assert example["spec"]["prompt"] == "policy-qa" and example["spec"]["version"] == "1.0.0"
    landed(cluster, example)


# -- upgrades and uninstall ------------------------------------------------------------------------


def test_upgrade_applies_changed_values(helm: Helm, cluster: HelmCluster) -> None:
    helm.install()
    upgraded = helm.upgrade(
        {"server": {"replicas": 3, "logContent": "off"}, "controller": {"replicas": 2}}
    )
    assert upgraded.version == 2
    server = landed(cluster, upgraded.one("Deployment", "-server"))
    assert server["spec"]["replicas"] == 3
    (box,) = pod_spec(server)["containers"]
    assert env_of(box)["LOG_CONTENT"]["value"] == "off"
    controller = landed(cluster, upgraded.one("Deployment", "-controller"))
    (box,) = pod_spec(controller)["containers"]
    assert f"--peering={FULLNAME}" in box["args"] and "--standalone" not in box["args"]
    assert controller["spec"]["strategy"]["type"] == "RollingUpdate"
    peering = landed(cluster, upgraded.one("KopfPeering"))
    assert peering["metadata"]["namespace"] == NAMESPACE
    role = landed(cluster, upgraded.one("Role", "-controller"))
    assert role["rules"] == [*CONTROLLER_RULES, peering_rule("kopfpeerings")]

    # Back to the defaults: the peering object goes, the Role loses the peering rule.
    downgraded = helm.upgrade({}, reset_values=True)
    assert downgraded.version == 3
    assert downgraded.of_kind("KopfPeering") == []
    assert cluster.list_objects("kopf.dev/v1", "kopfpeerings", NAMESPACE) == []
    role = landed(cluster, downgraded.one("Role", "-controller"))
    assert role["rules"] == CONTROLLER_RULES


def test_uninstall_removes_everything_but_the_crds(helm: Helm, cluster: HelmCluster) -> None:
    release = helm.install(ci_values("bundled-values.yaml"))
    helm.uninstall()
    for obj in release.objects:
        api, plural = api_of(obj)
        names = [i["metadata"]["name"] for i in cluster.list_objects(api, plural)]
        assert obj["metadata"]["name"] not in names, f"{obj['kind']} left behind"
    crds = cluster.list_objects("apiextensions.k8s.io/v1", "customresourcedefinitions")
    assert "promptversions.promptrollouts.io" in {c["metadata"]["name"] for c in crds}


# -- values schema --------------------------------------------------------------------------------

#: (values, the message Helm prints): every rejection names the key and the rule.
REJECTED = [
    pytest.param(
        {"server": {"logContent": "verbose"}},
        "at '/server/logContent': value must be one of 'off', 'redacted', 'full'",
        id="logContent-enum",
    ),
    pytest.param(
        {"server": {"promptSource": "git"}},
        "at '/server/promptSource': value must be one of 'cluster', 'files'",
        id="promptSource-enum",
    ),
    pytest.param(
        {"server": {"replicas": "two"}},
        "at '/server/replicas': got string, want integer",
        id="replicas-type",
    ),
    pytest.param(
        {"rbac": {"clusterWide": "yes"}},
        "at '/rbac/clusterWide': got string, want boolean",
        id="clusterWide-type",
    ),
    pytest.param(
        {"controller": {"prometheusUrl": ""}},
        "at '/controller/prometheusUrl': minLength: got 0, want 1",
        id="prometheusUrl-required",
    ),
    pytest.param(
        {"controller": {"prometheusUrl": "prometheus:9090"}},
        "at '/controller/prometheusUrl': 'prometheus:9090' does not match pattern",
        id="prometheusUrl-scheme",
    ),
    pytest.param(
        {"model": {"existingSecretKey": None}},
        "at '/model': missing property 'existingSecretKey'",
        id="secretKey-required",
    ),
    pytest.param(
        {"image": {"tag": ""}},
        "at '/image/tag': minLength: got 0, want 1",
        id="tag-empty",
    ),
    pytest.param(
        {"image": {"repository": ""}},
        "at '/image/repository': minLength: got 0, want 1",
        id="repository-empty",
    ),
    pytest.param(
        {"server": {"containerPort": 80}},
        "at '/server/containerPort': minimum: got 80, want 1,024",
        id="privileged-port",
    ),
    pytest.param(
        {"server": {"service": {"port": 70000}}},
        "at '/server/service/port': maximum: got 70,000, want 65,535",
        id="service-port-range",
    ),
    pytest.param(
        {"model": {"apiKey": "sk-live-123"}},
        "at '/model': additional properties 'apiKey' not allowed",
        id="literal-api-key",
    ),
    pytest.param(
        {"server": {"extraEnv": [{"name": "MODEL_API_KEY", "value": "sk-live-123"}]}},
        "at '/server/extraEnv/0': missing property 'valueFrom'",
        id="api-key-in-extraEnv",
    ),
    pytest.param(
        {"redis": {"url": "redis://:hunter2@redis:6379/0"}},
        "at '/redis/url': 'redis://:hunter2@redis:6379/0' does not match pattern",
        id="redis-password-in-url",
    ),
    pytest.param(
        {"qdrant": {"url": "http://qdrant:6333", "bundled": {"enabled": True}}},
        "at '/qdrant/url': value must be ''",
        id="qdrant-url-and-bundled",
    ),
    pytest.param(
        {"controller": {"podDisruptionBudget": {"enabled": True}}},
        "at '/controller/replicas': minimum: got 1, want 2",
        id="controller-pdb-needs-peering",
    ),
    pytest.param(
        {"controller": {"replicas": 0}},
        "at '/controller/replicas': minimum: got 0, want 1",
        id="controller-replicas-min",
    ),
    pytest.param(
        {"auth": {"mode": "basic"}},
        "at '/auth/mode': value must be one of 'none', 'api-key'",
        id="auth-mode",
    ),
    pytest.param(
        {"auth": {"keys": [{"id": "a", "sha256": "pr_raw-key", "tenant": "t", "prompts": ["*"]}]}},
        "at '/auth/keys/0/sha256'",
        id="auth-key-not-a-hash",
    ),
    pytest.param(
        {"networkPolicy": {"metricsFrom": []}},
        "at '/networkPolicy/metricsFrom'",
        id="metrics-from-everyone",
    ),
    pytest.param(
        {"controller": {"webhooks": {"secret": "literal-key"}}},
        "additional properties 'secret' not allowed",
        id="webhook-key-as-a-literal",
    ),
    pytest.param(
        {"serverr": {}},
        "additional properties 'serverr' not allowed",
        id="unknown-key",
    ),
]


@pytest.mark.parametrize(("values", "message"), REJECTED)
def test_schema_rejects(helm: Helm, values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_sdkpy.InstallError) as caught:
        helm.install(values)
    assert "values don't meet the specifications of the schema" in str(caught.value)
    assert message in str(caught.value)


# -- helm test ----------------------------------------------------------------------------------


class _Stub(BaseHTTPRequestHandler):
    """The server's /readyz and /v1/answers, healthy or not."""

    ready = True
    #: The API key the stub requires; None answers anyone (auth off on the server).
    key: str | None = None
    seen: ClassVar[list[dict[str, Any]]] = []

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.ready:
            self._reply(200, {"status": "ok", "detail": None})
        else:
            self._reply(503, {"status": "unavailable", "detail": "no servable PromptVersion"})

    def do_POST(self) -> None:
        question = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.key is not None and self.headers.get("Authorization") != f"Bearer {self.key}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="prompt-rollouts"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.seen.append(question)
        answer = {"prompt": question["prompt"], "version": "1.0.0", "outcome": "answered"}
        self._reply(200, {**answer, "answer": "Digital items are refundable within 14 days [1]."})

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def stub_server() -> Iterator[tuple[str, type[_Stub]]]:
    handler = type("Stub", (_Stub,), {"ready": True, "seen": [], "key": STUB_KEY})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()
    server.server_close()


#: The raw key in the Secret named by tests.apiKeySecret (the runner resolves the ref).
STUB_KEY = "pr_stub-test-key"


def _env_value(entry: dict[str, Any]) -> str:
    if "value" in entry:
        return str(entry["value"])
    ref = entry["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("test-api-key", "api-key"), ref
    return STUB_KEY


def run_test_pod(base_url: str, outputs: list[str]) -> Any:
    """A pod runner: the test pod's command, here, with BASE_URL pointed at the stub."""

    async def run(pod: dict[str, Any]) -> str:
        (box,) = pod["spec"]["containers"]
        env = {e["name"]: _env_value(e) for e in box["env"]} | {"BASE_URL": base_url}
        assert box["command"][0] == "python"  # the image's interpreter; here, ours
        process = await asyncio.create_subprocess_exec(
            sys.executable, *box["command"][1:],
            env={**env, "PATH": os.environ.get("PATH", "")},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
        outputs.append(output.decode())
        return "Succeeded" if process.returncode == 0 else "Failed"

    return run


def test_helm_test_checks_readiness_and_one_answer(
    make_cluster: ClusterFactory, stub_server: tuple[str, type[_Stub]]
) -> None:
    url, stub = stub_server
    outputs: list[str] = []
    helm = Helm(make_cluster(pod_runner=run_test_pod(url, outputs)))
    helm.install({"examples": {"enabled": True}, "tests": {"apiKeySecret": "test-api-key"}})
    result = helm.test()
    (hook,) = result["hooks"]
    assert hook["events"] == ["test"] and hook["last_run"]["phase"] == "Succeeded"
    question = "Can I get a refund for a digital item?"
    assert stub.seen == [{"prompt": "policy-qa", "question": question}]  # the keyed one
    assert "readyz: 200" in outputs[0] and "answer: policy-qa 1.0.0 answered" in outputs[0]
    assert "no key: 401, as expected" in outputs[0]
    manifest = yaml.safe_load(hook["manifest"])
    assert manifest["spec"]["containers"][0]["image"] == "prompt-rollouts:0.1.0"
    assert manifest["metadata"]["labels"][f"{FULLNAME}-client"] == "true"  # NetworkPolicy


def test_helm_test_fails_when_the_server_answers_without_a_key(
    make_cluster: ClusterFactory, stub_server: tuple[str, type[_Stub]]
) -> None:
    url, stub = stub_server
    stub.key = None  # a server left with AUTH_MODE=none
    outputs: list[str] = []
    helm = Helm(make_cluster(pod_runner=run_test_pod(url, outputs)))
    helm.install({"tests": {"apiKeySecret": "test-api-key"}})
    with pytest.raises(helm_sdkpy.ChartError, match="failed"):
        helm.test()
    assert "a request without an API key was answered" in outputs[0]


def test_api_keys_secret_holds_hashes_and_an_existing_secret_replaces_it(helm: Helm) -> None:
    entry = {"id": "shop-web", "sha256": "a" * 64, "tenant": "shop", "prompts": ["policy-qa"]}
    release = helm.install({"auth": {"keys": [entry], "tenantRpm": 600}})
    secret = release.one("Secret", "-api-keys")
    assert yaml.safe_load(secret["stringData"]["api-keys.yaml"]) == [entry]
    assert env_of(container(release, "server"))["TENANT_RPM"]["value"] == "600"
    empty = helm.upgrade({}, reset_values=True)
    assert yaml.safe_load(empty.one("Secret", "-api-keys")["stringData"]["api-keys.yaml"]) == []
    mine = helm.upgrade(
        {"auth": {"existingSecret": "my-keys", "existingSecretKey": "keys.yaml"}},
        reset_values=True,
    )
    assert [o["metadata"]["name"] for o in mine.of_kind("Secret")] == [f"{FULLNAME}-idempotency"]
    server = container(mine, "server")
    assert env_of(server)["API_KEYS_FILE"]["value"] == "/etc/prompt-rollouts/api-keys/keys.yaml"
    volume = next(
        v for v in pod_spec(mine.one("Deployment", "-server"))["volumes"] if v["name"] == "api-keys"
    )
    assert volume["secret"]["secretName"] == "my-keys"


def test_auth_none_mounts_no_keys_and_warns(helm: Helm) -> None:
    release = helm.install({"auth": {"mode": "none"}, "server": {"openapi": True}})
    server = container(release, "server")
    env = env_of(server)
    assert env["AUTH_MODE"]["value"] == "none" and "API_KEYS_FILE" not in env
    assert env["OPENAPI"]["value"] == "true"
    assert "api-keys" not in {m["name"] for m in server["volumeMounts"]}
    assert release.of_kind("Secret") and not [
        o for o in release.of_kind("Secret") if o["metadata"]["name"].endswith("-api-keys")
    ]
    assert 'WARNING: auth.mode is "none"' in release.notes


def test_idempotency_secret_is_random_and_kept_across_upgrades(
    helm: Helm, cluster: HelmCluster
) -> None:
    first = landed(cluster, helm.install().one("Secret", "-idempotency"))
    value = first["data"]["idempotency-secret"]
    assert len(value) >= 64  # base64 of 48 random characters
    helm.upgrade({"server": {"replicas": 3}})
    again = [
        s
        for s in cluster.list_objects("v1", "secrets", NAMESPACE)
        if s["metadata"]["name"] == f"{FULLNAME}-idempotency"
    ]
    assert [s["data"]["idempotency-secret"] for s in again] == [value]
    mine = helm.upgrade({"idempotency": {"existingSecret": "idem", "existingSecretKey": "k"}})
    assert not [o for o in mine.of_kind("Secret") if o["metadata"]["name"].endswith("-idempotency")]
    ref = env_of(container(mine, "server"))["IDEMPOTENCY_SECRET"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "idem", "key": "k"}


def test_helm_test_fails_when_the_server_is_not_ready(
    make_cluster: ClusterFactory, stub_server: tuple[str, type[_Stub]]
) -> None:
    url, stub = stub_server
    stub.ready = False
    outputs: list[str] = []
    helm = Helm(make_cluster(pod_runner=run_test_pod(url, outputs)))
    helm.install()
    with pytest.raises(helm_sdkpy.ChartError, match="failed"):
        helm.test()
    assert "HTTP Error 503" in outputs[0]
    assert stub.seen == []


# -- copies the chart carries ------------------------------------------------------------------

COPIES = [
    ("crds/promptversion.yaml", "crds/promptversion.yaml"),
    ("crds/kopf-peering.yaml", "crds/kopf-peering.yaml"),
    ("files/prometheus/recording-rules.yaml", "observability/prometheus/recording-rules.yaml"),
    ("files/prometheus/alerts.yaml", "observability/prometheus/alerts.yaml"),
    ("files/grafana/prompt-rollouts.json", "observability/grafana/prompt-rollouts.json"),
    *(
        (f"files/examples/{path.name}", f"prompts/{path.name}")
        for path in sorted((ROOT / "prompts").glob("*.yaml"))
    ),
]


@pytest.mark.parametrize(("copy", "source"), COPIES, ids=[c for c, _ in COPIES])
def test_chart_copies_match_their_source(copy: str, source: str) -> None:
    chart_copy, original = CHART / copy, ROOT / source
    assert chart_copy.read_bytes() == original.read_bytes(), (
        f"charts/prompt-rollouts/{copy} differs from {source}: run `make crds`"
    )


def test_chart_carries_no_stale_copy() -> None:
    copied = {c for c, _ in COPIES}
    present = {
        str(path.relative_to(CHART))
        for folder in ("crds", "files")
        for path in (CHART / folder).rglob("*")
        if path.is_file()
    }
    assert present == copied


def test_peering_crds_match_what_kopf_watches() -> None:
    docs = list(yaml.safe_load_all((CHART / "crds" / "kopf-peering.yaml").read_text()))
    served = {
        (f"{d['spec']['group']}/{v['name']}", d["spec"]["names"]["plural"], d["spec"]["scope"])
        for d in docs
        for v in d["spec"]["versions"]
    }
    cluster_wide = kopf_references.CLUSTER_PEERINGS_K
    namespaced = kopf_references.NAMESPACED_PEERINGS_K
    assert served == {
        (f"{cluster_wide.group}/{cluster_wide.version}", cluster_wide.any_name, "Cluster"),
        (f"{namespaced.group}/{namespaced.version}", namespaced.any_name, "Namespaced"),
    }


# -- documentation --------------------------------------------------------------------------------


def _leaf_paths(values: Any, prefix: str = "") -> set[str]:
    if isinstance(values, dict) and values:
        return {p for k, v in values.items() for p in _leaf_paths(v, f"{prefix}{k}.")}
    return {prefix.rstrip(".")}


def test_readme_values_table_names_real_keys() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([\w.]+)` \|", readme, flags=re.MULTILINE))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))

    def in_schema(path: str) -> bool:
        node = schema
        for part in path.split("."):
            node = node.get("properties", {}).get(part)
            if node is None:
                return False
        return True

    leaves = _leaf_paths(values)
    assert documented, "README.md has no values table"
    unknown = sorted(p for p in documented if not in_schema(p))
    assert unknown == [], f"README documents keys the chart does not have: {unknown}"
    top = {p.split(".")[0] for p in leaves}
    assert top <= {p.split(".")[0] for p in documented}, "a top-level key is undocumented"
