"""Who is calling (pure): the caller behind an Authorization header, bind addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.http.access import Refusal, decide_bind_host, decide_caller, is_loopback
from service.http.auth import Caller, KeyFile, hash_key

KEY = "pr_test-key-123"


@pytest.fixture
def keys(tmp_path: Path) -> KeyFile:
    path = tmp_path / "keys.yaml"
    path.write_text(f"- {{id: web, sha256: {hash_key(KEY)}, tenant: shop, prompts: [policy-qa]}}\n")
    return KeyFile(path)


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Bearer", "missing"),
        ("Bearer   ", "missing"),
        (f"Basic {KEY}", "missing"),
        (KEY, "missing"),
        ("Bearer pr_wrong", "invalid"),
        (f"Bearer {hash_key(KEY)}", "invalid"),
        (f"Bearer {KEY}", "web"),
        (f"bearer {KEY}", "web"),
        (f"  Bearer  {KEY}  ", "web"),
    ],
    ids=[
        "absent",
        "empty",
        "scheme-only",
        "blank-token",
        "basic",
        "no-scheme",
        "unknown",
        "the-hash",
        "valid",
        "lower-case-scheme",
        "extra-spaces",
    ],
)
def test_api_key_mode(keys: KeyFile, authorization: str | None, expected: str) -> None:
    caller = decide_caller("api-key", keys, authorization, "10.0.0.1")
    if expected in ("missing", "invalid"):
        assert isinstance(caller, Refusal) and caller.reason == expected
        assert KEY not in caller.detail
    else:
        assert caller == Caller("web", "shop", frozenset({"policy-qa"}), "key:web")


def test_none_mode_scopes_by_authorization_hash_then_address() -> None:
    a = decide_caller("none", None, "Bearer one", "10.0.0.1")
    b = decide_caller("none", None, "Bearer two", "10.0.0.1")
    c = decide_caller("none", None, None, "10.0.0.1")
    d = decide_caller("none", None, None, "10.0.0.2")
    assert isinstance(a, Caller) and isinstance(b, Caller)
    assert isinstance(c, Caller) and isinstance(d, Caller)
    assert len({a.scope, b.scope, c.scope, d.scope}) == 4
    assert "one" not in a.scope and a.scope.startswith("auth:")
    assert c.scope == "addr:10.0.0.1"
    assert {x.tenant for x in (a, b, c, d)} == {"anonymous"}
    assert a.key_id is None and a.prompts == frozenset({"*"})


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["uvicorn", "--factory", "service.app:create_app"], {}, "127.0.0.1"),
        (["uvicorn", "--host", "0.0.0.0", "--port", "8000"], {}, "0.0.0.0"),
        (["uvicorn", "--host=::"], {}, "::"),
        (["uvicorn"], {"UVICORN_HOST": "10.1.2.3"}, "10.1.2.3"),
        (["uvicorn", "--host", "::1"], {"UVICORN_HOST": "0.0.0.0"}, "::1"),
        (["uvicorn", "--host"], {}, "127.0.0.1"),
    ],
    ids=["default", "flag", "flag-equals", "env", "flag-beats-env", "dangling-flag"],
)
def test_decide_bind_host(argv: list[str], environ: dict[str, str], expected: str) -> None:
    assert decide_bind_host(argv, environ) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected
