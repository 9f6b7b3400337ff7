"""``promptctl keys create``: a new random API key, shown once, and its keys-file entry."""

from __future__ import annotations

import json
import re
import secrets
from typing import Annotated

import typer

from service.http import build_keyring, hash_key

__all__ = ["KEY_PREFIX", "build_key_entry", "keys_app"]

#: Every generated key starts with this, so secret scanners can recognise a leaked one.
KEY_PREFIX = "pr_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

keys_app = typer.Typer(
    help="Manage API keys for AUTH_MODE=api-key (docs/security.md).", no_args_is_help=True
)


def build_key_entry(key_id: str, key: str, tenant: str, prompts: list[str]) -> str:
    """The one-line YAML list item for API_KEYS_FILE; holds the key's hash only (pure)."""
    entry = (
        f"- {{id: {key_id}, sha256: {hash_key(key)}, tenant: {tenant}, "
        f"prompts: {json.dumps(prompts)}}}"
    )
    build_keyring(entry)  # the line must load exactly as the service will read it
    return entry


@keys_app.command("create")
def create_command(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant the key belongs to.")],
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", help="A prompt the key may use (repeat it); all when omitted."),
    ] = None,
) -> None:
    """Print a new random API key (once: only its hash is kept) and the line to add."""
    if not _NAME.match(tenant):
        raise typer.BadParameter(
            "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
            param_hint="--tenant",
        )
    prompts = sorted(set(prompt)) if prompt else ["*"]
    if any(not p.strip() for p in prompts):
        raise typer.BadParameter("a prompt name must not be empty", param_hint="--prompt")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = f"{tenant}-{secrets.token_hex(3)}"
    entry = build_key_entry(key_id, key, tenant, prompts)
    typer.echo(f"# API key {key_id} for tenant {tenant}; shown once, store it now:")
    typer.echo(key)
    typer.echo("# Add this line to API_KEYS_FILE (it holds the key's SHA-256 only):")
    typer.echo(entry)
