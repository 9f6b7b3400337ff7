"""``promptctl status|promote|abort|pause|resume|retry PROMPT``: rollouts, by hand, GitOps-safe.

Actions never edit a spec: they set the ``promptrollouts.io/request`` annotation on the
right PromptVersion, and the controller acts on it once (``status.handledRequest``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import semver
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.client import KubeError, PromptVersionClient, build_http_client, load_kube_config
from controller.rollout import REQUEST_ANNOTATION, Action

__all__ = [
    "abort_command",
    "choose_target",
    "pause_command",
    "promote_command",
    "resume_command",
    "retry_command",
    "status_command",
]

NamespaceOption = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace (default: the kubeconfig's).")
]
KubeconfigOption = Annotated[
    Path | None, typer.Option("--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG).")
]
PromptArgument = Annotated[str, typer.Argument(help="The logical prompt name.")]

#: Which phases each action applies to.
_TARGET_PHASES = {
    Action.PROMOTE: ("Progressing", "Paused"),
    Action.PROMOTE_FULL: ("Progressing", "Paused"),
    Action.ABORT: ("Progressing", "Paused"),
    Action.PAUSE: ("Progressing",),
    Action.RESUME: ("Paused",),
    Action.RETRY: ("RolledBack", "Aborted"),
}


def _versions_of(items: Sequence[dict[str, Any]], prompt: str) -> list[dict[str, Any]]:
    found = [i for i in items if (i.get("spec") or {}).get("prompt") == prompt]
    return sorted(found, key=lambda i: semver.Version.parse(i["spec"]["version"]), reverse=True)


def choose_target(items: Sequence[dict[str, Any]], prompt: str, action: Action) -> dict[str, Any]:
    """The PromptVersion an action is meant for (pure); typer.BadParameter says why not."""
    versions = _versions_of(items, prompt)
    if not versions:
        raise typer.BadParameter(f"no PromptVersion of prompt {prompt!r}", param_hint="PROMPT")
    phases = _TARGET_PHASES[action]
    target = next((v for v in versions if (v.get("status") or {}).get("phase") in phases), None)
    if target is None:
        current = ", ".join(
            f"{v['spec']['version']}={(v.get('status') or {}).get('phase', 'Pending')}"
            for v in versions
        )
        raise typer.BadParameter(
            f"{action.value} needs a version in {' or '.join(phases)}; {prompt} has {current}",
            param_hint="PROMPT",
        )
    return target


async def _list(kubeconfig: Path | None, namespace: str | None) -> list[dict[str, Any]]:
    config = load_kube_config(kubeconfig)
    async with build_http_client(config) as http:
        items, _ = await PromptVersionClient(http, namespace or config.namespace).list()
    return items


async def _request(
    kubeconfig: Path | None, namespace: str | None, prompt: str, action: Action
) -> str:
    config = load_kube_config(kubeconfig)
    async with build_http_client(config) as http:
        client = PromptVersionClient(http, namespace or config.namespace)
        items, _ = await client.list()
        target = choose_target(items, prompt, action)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        value = f"{action.value}@{stamp}-{uuid.uuid4().hex[:6]}"
        name = str(target["metadata"]["name"])
        await client.annotate(name, {REQUEST_ANNOTATION: value})
    return name


def _act(action: Action, prompt: str, namespace: str | None, kubeconfig: Path | None) -> None:
    try:
        name = asyncio.run(_request(kubeconfig, namespace, prompt, action))
    except KubeError as error:
        Console(stderr=True).print(f"[red]error[/red] {escape(str(error))}")
        raise typer.Exit(code=1) from error
    Console().print(f"{action.value} requested on [bold]{escape(name)}[/bold]")


def status_command(
    prompt: PromptArgument, namespace: NamespaceOption = None, kubeconfig: KubeconfigOption = None
) -> None:
    """Show every version of a prompt: phase, weight, step and the latest analysis."""
    try:
        items = _versions_of(asyncio.run(_list(kubeconfig, namespace)), prompt)
    except KubeError as error:
        Console(stderr=True).print(f"[red]error[/red] {escape(str(error))}")
        raise typer.Exit(code=1) from error
    if not items:
        Console(stderr=True).print(f"[red]error[/red] no PromptVersion of prompt {prompt!r}")
        raise typer.Exit(code=1)
    table = Table("NAME", "VERSION", "PHASE", "WEIGHT", "STEP", "ANALYSIS", "MESSAGE", title=prompt)
    for item in items:
        status = item.get("status") or {}
        analysis = status.get("lastAnalysis") or {}
        step = status.get("stepIndex")
        table.add_row(
            escape(str(item["metadata"]["name"])),
            escape(str(item["spec"]["version"])),
            escape(str(status.get("phase", "Pending"))),
            str(status.get("weight", 0)),
            "" if step is None else str(step),
            escape(str(analysis.get("verdict", ""))),
            escape(str(status.get("message") or "")),
        )
    Console().print(table)


def promote_command(
    prompt: PromptArgument,
    full: Annotated[bool, typer.Option("--full", help="Skip the remaining steps.")] = False,
    namespace: NamespaceOption = None,
    kubeconfig: KubeconfigOption = None,
) -> None:
    """Move the canary to its next step (or, with --full, promote it now)."""
    _act(Action.PROMOTE_FULL if full else Action.PROMOTE, prompt, namespace, kubeconfig)


def abort_command(
    prompt: PromptArgument, namespace: NamespaceOption = None, kubeconfig: KubeconfigOption = None
) -> None:
    """Stop the rollout: the canary goes to 0 %, the stable back to 100 %."""
    _act(Action.ABORT, prompt, namespace, kubeconfig)


def pause_command(
    prompt: PromptArgument, namespace: NamespaceOption = None, kubeconfig: KubeconfigOption = None
) -> None:
    """Hold the canary at its current weight."""
    _act(Action.PAUSE, prompt, namespace, kubeconfig)


def resume_command(
    prompt: PromptArgument, namespace: NamespaceOption = None, kubeconfig: KubeconfigOption = None
) -> None:
    """Continue a paused rollout."""
    _act(Action.RESUME, prompt, namespace, kubeconfig)


def retry_command(
    prompt: PromptArgument, namespace: NamespaceOption = None, kubeconfig: KubeconfigOption = None
) -> None:
    """Roll a rolled-back or aborted version out again from its first step."""
    _act(Action.RETRY, prompt, namespace, kubeconfig)
