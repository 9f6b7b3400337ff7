"""api.client against the Kubernetes API emulator: how kubectl logs in, and what it then does.

The emulator enforces bearer tokens here (`accepted_tokens`), so a request that went out
with the wrong credentials fails instead of passing silently.
"""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.config import incluster_config
from typer.testing import CliRunner

from api.client import KubeError, PromptVersionClient, open_session
from promptctl.main import app
from tests.support.kube import KubeCluster, run_kube_emulator

pytestmark = pytest.mark.integration

NAME = "policy-qa-1-0-0"


@pytest.fixture(scope="module")
def cluster() -> Iterator[KubeCluster]:
    with run_kube_emulator() as cluster:
        assert cluster.kubectl("apply", "--validate=false", "-f", "prompts/").returncode == 0
        cluster.patch_status("default", NAME, {"phase": "Stable", "weight": 100})
        yield cluster


@pytest.fixture
def tokens(cluster: KubeCluster) -> Iterator[set[str]]:
    """The tokens the emulator accepts during one test (open again afterwards)."""
    accepted: set[str] = set()
    cluster.emulator.accepted_tokens = accepted
    yield accepted
    cluster.emulator.accepted_tokens = None


def _exec_plugin(tmp_path: Path, *, expires_in: timedelta | None) -> tuple[Path, Path, Path]:
    """A credential plugin printing the token in `token` and counting its runs in `runs`."""
    token_file, runs = tmp_path / "token", tmp_path / "runs"
    token_file.write_text("first-token")
    runs.write_text("")
    status: dict[str, Any] = {"token": "TOKEN"}
    if expires_in is not None:
        status["expirationTimestamp"] = (datetime.now(UTC) + expires_in).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": status,
    }
    template = json.dumps(credential).replace('"TOKEN"', '"%s"')
    script = tmp_path / "credential-plugin"
    script.write_text(
        f"#!/bin/sh\necho run >> '{runs}'\nprintf '{template}' \"$(cat '{token_file}')\"\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, token_file, runs


def _exec_kubeconfig(tmp_path: Path, url: str, plugin: Path, namespace: str = "default") -> Path:
    """A kubeconfig whose user logs in through `plugin`, as EKS, GKE and AKS users do."""
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }
    }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emu", "cluster": {"server": url}}],
        "users": [{"name": "cloud-user", "user": user}],
        "contexts": [
            {
                "name": "emu",
                "context": {"cluster": "emu", "user": "cloud-user", "namespace": namespace},
            }
        ],
        "current-context": "emu",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _list(kubeconfig: Path) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        async with await open_session(kubeconfig) as session:
            items, _ = await PromptVersionClient(session, session.namespace).list()
            return items

    return asyncio.run(run())


def test_exec_plugin_logs_in(cluster: KubeCluster, tokens: set[str], tmp_path: Path) -> None:
    plugin, _, runs = _exec_plugin(tmp_path, expires_in=timedelta(hours=1))
    kubeconfig = _exec_kubeconfig(tmp_path, cluster.url, plugin)
    tokens.add("first-token")
    assert {i["metadata"]["name"] for i in _list(kubeconfig)} >= {NAME}
    assert runs.read_text().count("run") == 1


def test_promptctl_status_through_an_exec_plugin(
    cluster: KubeCluster, tokens: set[str], tmp_path: Path
) -> None:
    plugin, _, _ = _exec_plugin(tmp_path, expires_in=None)
    kubeconfig = _exec_kubeconfig(tmp_path, cluster.url, plugin)
    tokens.add("first-token")
    result = CliRunner().invoke(app, ["status", "policy-qa", "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 0, result.output
    assert NAME in result.output and "Stable" in result.output


def test_wrong_credentials_are_refused_not_ignored(
    cluster: KubeCluster, tokens: set[str], tmp_path: Path
) -> None:
    plugin, _, _ = _exec_plugin(tmp_path, expires_in=timedelta(hours=1))
    kubeconfig = _exec_kubeconfig(tmp_path, cluster.url, plugin)
    tokens.add("another-token")
    with pytest.raises(KubeError) as caught:
        _list(kubeconfig)
    assert caught.value.status == 401
    result = CliRunner().invoke(app, ["status", "policy-qa", "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 1 and "401" in result.output


def test_expired_exec_token_is_fetched_again(
    cluster: KubeCluster, tokens: set[str], tmp_path: Path
) -> None:
    """A token about to expire (inside the client's 5-minute skew) is renewed per request."""
    plugin, token_file, runs = _exec_plugin(tmp_path, expires_in=timedelta(minutes=1))
    kubeconfig = _exec_kubeconfig(tmp_path, cluster.url, plugin)
    tokens.add("first-token")

    async def run() -> None:
        async with await open_session(kubeconfig) as session:
            client = PromptVersionClient(session, session.namespace)
            await client.list()
            token_file.write_text("second-token")  # the cloud rotated it
            tokens.clear()
            tokens.add("second-token")
            await client.get(NAME)

    asyncio.run(run())
    assert runs.read_text().count("run") >= 2


def test_a_revoked_token_is_renewed_after_a_401(
    cluster: KubeCluster, tokens: set[str], tmp_path: Path
) -> None:
    """The token has not expired by its timestamp, but the server says 401: run the plugin."""
    plugin, token_file, runs = _exec_plugin(tmp_path, expires_in=timedelta(hours=1))
    kubeconfig = _exec_kubeconfig(tmp_path, cluster.url, plugin)
    tokens.add("first-token")

    async def run() -> dict[str, Any]:
        async with await open_session(kubeconfig) as session:
            client = PromptVersionClient(session, session.namespace)
            await client.list()
            token_file.write_text("second-token")
            tokens.clear()
            tokens.add("second-token")
            return await client.annotate(NAME, {"example.com/touched": "yes"})

    annotated = asyncio.run(run())
    assert annotated["metadata"]["annotations"]["example.com/touched"] == "yes"
    assert runs.read_text().count("run") == 2


def test_a_failing_exec_plugin_is_a_clear_error(cluster: KubeCluster, tmp_path: Path) -> None:
    plugin = tmp_path / "broken-plugin"
    plugin.write_text("#!/bin/sh\necho 'no credentials for you' >&2\nexit 3\n")
    plugin.chmod(0o755)
    kubeconfig = _exec_kubeconfig(tmp_path, cluster.url, plugin)
    with pytest.raises(KubeError, match=r"kubeconfig|exec"):
        _list(kubeconfig)


def test_missing_kubeconfig_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(KubeError, match="KUBECONFIG"):
        asyncio.run(open_session())
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeError, match="no kubeconfig found"):
        asyncio.run(open_session())


def test_kubeconfig_list_is_merged_as_kubectl_does(
    cluster: KubeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$KUBECONFIG may list files; a missing one is skipped, the context's namespace is used."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{cluster.kubeconfig}")

    async def run() -> tuple[str, str]:
        async with await open_session() as session:
            return session.namespace, session.server

    assert asyncio.run(run()) == ("default", cluster.url)


def _self_signed_certificate(cert: Path, key: Path) -> None:
    """A real CA certificate (the client loads it when it starts), made with openssl."""
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=kubernetes", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )


def test_in_cluster_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a pod: the API address from the environment, token, CA and namespace from the
    mounted service account; the token is re-read as the kubelet rotates it."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token-1")
    _self_signed_certificate(account / "ca.crt", tmp_path / "ca.key")
    (account / "namespace").write_text("prompts\n")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    # Re-read the token on every request here (the client's default is once a minute).
    monkeypatch.setattr(incluster_config, "TOKEN_REFRESH_PERIOD", timedelta(0))

    async def run() -> tuple[str, str, str | None, str, str]:
        async with await open_session(service_account_dir=account) as session:
            configuration = session.api.configuration
            first = await configuration.get_api_key_with_prefix("BearerToken")
            # The kubelet rotates the projected token; the client reads the file again.
            (account / "token").write_text("pod-token-2")
            second = await configuration.get_api_key_with_prefix("BearerToken")
            return session.server, session.namespace, configuration.ssl_ca_cert, first, second

    server, namespace, ca, first, second = asyncio.run(run())
    assert (server, namespace, ca) == ("https://10.0.0.1:6443", "prompts", str(account / "ca.crt"))
    assert (first, second) == ("Bearer pod-token-1", "Bearer pod-token-2")
