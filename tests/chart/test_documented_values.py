"""The values the docs tell people to use render what the docs say they do.

The YAML is read from the chart README itself, so the snippet a newcomer copies is the
one installed here.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.chart.conftest import CHART, Helm


def _readme_values(section: str) -> dict[str, Any]:
    """The first ```yaml block under the README heading `section`."""
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    body = readme.split(f"### {section}\n", 1)[1].split("\n#", 1)[0]
    match = re.search(r"```yaml\n(.*?)```", body, re.DOTALL)
    assert match, f"no yaml block under '### {section}'"
    values: dict[str, Any] = yaml.safe_load(match.group(1))
    return values


def test_the_documented_corpus_volume_reaches_the_server(helm: Helm) -> None:
    release = helm.install(_readme_values("Your own documents"))
    deployment = release.one("Deployment", "-server")
    spec = deployment["spec"]["template"]["spec"]
    (server,) = [c for c in spec["containers"] if c["name"] == "server"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["CORPUS_DIR"] == "/corpus" and env["CORPUS_COLLECTION"] == "handbook"
    mounts = {m["mountPath"]: m for m in server["volumeMounts"]}
    assert mounts["/corpus"]["name"] == "corpus" and mounts["/corpus"]["readOnly"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["corpus"]["configMap"] == {"name": "handbook"}


def test_release_labels_for_kube_prometheus_stack_land_on_both_objects(helm: Helm) -> None:
    # docs/install.md and the chart README: `--set serviceMonitor.labels.release=monitoring
    # --set prometheusRule.labels.release=monitoring` (kube-prometheus-stack's selectors).
    values = {
        "serviceMonitor": {"enabled": True, "labels": {"release": "monitoring"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "monitoring"}},
    }
    release = helm.install(values)
    for kind in ("ServiceMonitor", "PrometheusRule"):
        (obj,) = release.of_kind(kind)
        assert obj["metadata"]["labels"]["release"] == "monitoring", kind


def test_the_service_names_the_docs_use(helm: Helm) -> None:
    # README, docs/install.md and docs/operations.md install the release as prompt-rollouts.
    release = helm.install(name="prompt-rollouts")
    names = {service["metadata"]["name"] for service in release.of_kind("Service")}
    assert names == {"prompt-rollouts-server", "prompt-rollouts-controller"}
    docs = "\n".join(
        (CHART.parents[1] / path).read_text(encoding="utf-8")
        for path in ("docs/install.md", "docs/operations.md", "README.md")
    )
    used = set(re.findall(r"\b(?:svc/)?(prompt-rollouts-[a-z]+)\b(?=[ .:\n`])", docs))
    assert used - {"prompt-rollouts-dashboard"} <= names, used


def test_notes_warn_when_monitoring_objects_have_no_selector_label(helm: Helm) -> None:
    release = helm.install(
        {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}
    )
    for key in ("serviceMonitor", "prometheusRule"):
        assert f"NOTE: {key}.labels is empty" in release.notes
        assert f"--set {key}.labels.release=monitoring" in release.notes
    labelled = helm.upgrade(
        {
            "serviceMonitor": {"enabled": True, "labels": {"release": "monitoring"}},
            "prometheusRule": {"enabled": True, "labels": {"release": "monitoring"}},
        }
    )
    assert "labels is empty" not in labelled.notes
    assert "labels is empty" not in helm.upgrade({}, reset_values=True).notes  # both off
