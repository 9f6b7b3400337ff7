"""``promptctl keys create``: a random key printed once, and a keys-file line that loads."""

from __future__ import annotations

from typer.testing import CliRunner

from promptctl.main import app
from service.http.auth import build_keyring

runner = CliRunner(env={"COLUMNS": "240", "NO_COLOR": "1"})


def test_create_prints_a_key_and_the_line_that_authenticates_it() -> None:
    result = runner.invoke(app, ["keys", "create", "--tenant", "shop", "--prompt", "policy-qa"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    key = lines[1]
    entry = lines[-1]
    assert key.startswith("pr_") and len(key) >= 40
    assert key not in entry  # the line holds the hash only
    ring = build_keyring(entry)
    found = ring.authenticate(key)
    assert found is not None and found.tenant == "shop"
    assert found.prompts == frozenset({"policy-qa"})
    assert found.id in lines[0]


def test_every_key_is_new_and_defaults_to_every_prompt() -> None:
    outputs = [runner.invoke(app, ["keys", "create", "--tenant", "shop"]) for _ in range(2)]
    assert all(r.exit_code == 0 for r in outputs)
    keys = {r.output.splitlines()[1] for r in outputs}
    assert len(keys) == 2
    ring = build_keyring("\n".join(r.output.splitlines()[-1] for r in outputs))
    assert all((k := ring.authenticate(key)) and k.prompts == {"*"} for key in keys)


def test_a_bad_tenant_is_refused() -> None:
    result = runner.invoke(app, ["keys", "create", "--tenant", "bad tenant"])
    assert result.exit_code == 2
    assert "--tenant" in result.output
