"""``promptctl status|promote|abort|pause|resume|retry PROMPT``: rollouts, by hand, GitOps-safe.

Actions never edit a spec: they set the ``promptrollouts.io/request`` annotation on the
right PromptVersion, and the controller acts on it once (``status.handledRequest``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import semver
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.v1alpha1.requests import REQUEST_ANNOTATION, Action

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


_T = TypeVar("_T")


def _against_cluster(work: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run `work`; a Kubernetes error becomes one red line and exit code 1."""
    # kubernetes_asyncio takes ~1.7 s to import: only the commands that talk to a cluster pay.
    from api.client import KubeError  # noqa: PLC0415

    try:
        return asyncio.run(work())
    except KubeError as error:
        Console(stderr=True).print(f"[red]error[/red] {escape(str(error))}")
        raise typer.Exit(code=1) from error


async def _list(kubeconfig: Path | None, namespace: str | None) -> list[dict[str, Any]]:
    from api.client import PromptVersionClient, open_session  # noqa: PLC0415 - import cost

    async with await open_session(kubeconfig) as session:
        items, _ = await PromptVersionClient(session, namespace or session.namespace).list()
    return items


async def _request(
    kubeconfig: Path | None, namespace: str | None, prompt: str, action: Action
) -> str:
    from api.client import PromptVersionClient, open_session  # noqa: PLC0415 - import cost

    async with await open_session(kubeconfig) as session:
        client = PromptVersionClient(session, namespace or session.namespace)
        items, _ = await client.list()
        target = choose_target(items, prompt, action)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        value = f"{action.value}@{stamp}-{uuid.uuid4().hex[:6]}"
        name = str(target["metadata"]["name"])
        await client.annotate(name, {REQUEST_ANNOTATION: value})
    return name


def _act(action: Action, prompt: str, namespace: str | None, kubeconfig: Path | None) -> None:
    name = _against_cluster(lambda: _request(kubeconfig, namespace, prompt, action))
    Console().print(f"{action.value} requested on [bold]{escape(name)}[/bold]")


def _shadow_cell(status: dict[str, Any]) -> str:
    """``25% (n=130)``: the shadowed share and the latest analysis' shadow samples."""
    percent, samples = status.get("shadowPercent"), status.get("shadowSamples")
    if not percent and samples is None:
        return ""
    cell = f"{percent or 0}%"
    return cell if samples is None else f"{cell} (n={samples})"


def status_command(
    prompt: PromptArgument, namespace: NamespaceOption = None, kubeconfig: KubeconfigOption = None
) -> None:
    """Show every version of a prompt: phase, weight, step, the latest analysis and quality."""
    items = _versions_of(_against_cluster(lambda: _list(kubeconfig, namespace)), prompt)
    if not items:
        Console(stderr=True).print(f"[red]error[/red] no PromptVersion of prompt {prompt!r}")
        raise typer.Exit(code=1)
    table = Table(title=prompt)
    for column in ("NAME", "VERSION", "PHASE", "WEIGHT", "STEP", "KIND", "SHADOW", "ANALYSIS"):
        table.add_column(column, no_wrap=True)  # short cells: the sentences wrap instead
    table.add_column("QUALITY", ratio=1)
    table.add_column("MESSAGE", ratio=1)
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
            escape(str(status.get("stepKind") or "")),
            _shadow_cell(status),
            escape(str(analysis.get("verdict", ""))),
            escape(str(status.get("quality") or "")),
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
