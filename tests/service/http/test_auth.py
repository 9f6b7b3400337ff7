"""API keys: the keys file's rules, lookup by hash, permissions and hot reload."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from service.http.auth import (
    ApiKey,
    KeyFile,
    KeyFileError,
    build_keyring,
    decide_prompt_allowed,
    hash_key,
)

KEY_A, KEY_B = "pr_alpha-secret", "pr_bravo-secret"


def _entry(key_id: str, key: str, tenant: str = "shop", prompts: str = '["*"]') -> str:
    return f"- {{id: {key_id}, sha256: {hash_key(key)}, tenant: {tenant}, prompts: {prompts}}}\n"


def test_hash_key_is_hex_sha256() -> None:
    # echo -n abc | sha256sum
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_authenticate_finds_the_key_by_hash_only() -> None:
    ring = build_keyring(_entry("a", KEY_A) + _entry("b", KEY_B, "bank", "[policy-qa]"))
    found = ring.authenticate(KEY_B)
    assert found == ApiKey("b", hash_key(KEY_B), "bank", frozenset({"policy-qa"}))
    assert ring.authenticate(KEY_A) is not None and ring.authenticate(KEY_A).id == "a"  # type: ignore[union-attr]
    assert ring.authenticate(hash_key(KEY_A)) is None  # the stored hash is not a key
    assert ring.authenticate(KEY_A + " ") is None
    assert ring.authenticate("") is None


def test_empty_file_is_an_empty_ring() -> None:
    assert len(build_keyring("")) == 0
    assert len(build_keyring("[]")) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{a: 1}", "expected a YAML list"),
        ("- [1, 2]", "entry 1: expected a mapping"),
        ("- {id: a, sha256: x, tenant: t}", "missing field(s) prompts"),
        ("- {id: a, sha256: x, tenant: t, prompts: ['*'], key: pr_x}", "unknown field(s) key"),
        (f"- {{id: a, sha256: {hash_key('k')}, tenant: t, prompts: []}}", "non-empty list"),
        (f"- {{id: a, sha256: {hash_key('k')}, tenant: t, prompts: '*'}}", "non-empty list"),
        ("- {id: a, sha256: pr_plain_key, tenant: t, prompts: ['*']}", "64 lower-case hex"),
        (f"- {{id: a, sha256: {hash_key('k').upper()}, tenant: t, prompts: ['*']}}", "hex"),
        (f"- {{id: 'a b', sha256: {hash_key('k')}, tenant: t, prompts: ['*']}}", "id must be"),
        (f"- {{id: a, sha256: {hash_key('k')}, tenant: 7, prompts: ['*']}}", "tenant must be"),
        (_entry("a", "k1") + _entry("a", "k2"), "duplicate id (a)"),
        (_entry("a", "k1") + _entry("b", "k1"), "duplicate sha256 (b)"),
        ("- {id: a, sha256: [", "not valid YAML"),
    ],
    ids=[
        "not-a-list",
        "entry-not-mapping",
        "missing-field",
        "unknown-field",
        "no-prompts",
        "prompts-not-list",
        "plain-key-not-hash",
        "upper-case-hash",
        "bad-id",
        "tenant-not-string",
        "duplicate-id",
        "duplicate-hash",
        "broken-yaml",
    ],
)
def test_broken_files_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(KeyFileError, match=None) as caught:
        build_keyring(text)
    assert message in str(caught.value)
    assert "pr_plain_key" not in str(caught.value) or message == "64 lower-case hex"


@pytest.mark.parametrize(
    ("allowed", "prompt", "expected"),
    [
        ({"*"}, "anything", True),
        ({"policy-qa"}, "policy-qa", True),
        ({"policy-qa"}, "faq", False),
        ({"policy-qa", "faq"}, "faq", True),
        ({"policy-*"}, "policy-qa", False),  # no globs: "*" alone means all
    ],
    ids=["star", "listed", "not-listed", "one-of-two", "no-glob"],
)
def test_decide_prompt_allowed(allowed: set[str], prompt: str, expected: bool) -> None:
    assert decide_prompt_allowed(frozenset(allowed), prompt) is expected


def _touch_later(path: Path, text: str) -> None:
    """Write `text` and move the mtime on, so a change is seen even within one clock tick."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_key_file_reloads_and_keeps_the_last_good_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(_entry("a", KEY_A))
    keys = KeyFile(path)
    assert keys.refresh() is False  # unchanged
    assert keys.ring.authenticate(KEY_A) is not None

    _touch_later(path, _entry("a", KEY_A) + _entry("b", KEY_B))
    assert keys.refresh() is True
    assert keys.ring.authenticate(KEY_B) is not None

    with caplog.at_level(logging.ERROR, logger="service.http.auth"):
        _touch_later(path, "- {id: a, sha256: nope, tenant: t, prompts: ['*']}")
        assert keys.refresh() is False
    assert keys.ring.authenticate(KEY_B) is not None  # last good set kept
    assert "keeping the last good set" in caplog.text and "sha256 must be" in caplog.text

    path.unlink()
    assert keys.refresh() is False
    assert keys.ring.authenticate(KEY_A) is not None

    path.write_text(_entry("b", KEY_B))  # revoke a
    assert keys.refresh() is True
    assert keys.ring.authenticate(KEY_A) is None


def test_a_broken_file_at_start_up_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    with pytest.raises(KeyFileError, match="cannot read"):
        KeyFile(path)
    path.write_text("{}")
    with pytest.raises(KeyFileError, match="expected a YAML list"):
        KeyFile(path)
