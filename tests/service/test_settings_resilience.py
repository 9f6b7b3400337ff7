"""The resilience variables (docs/configuration.md, a contract) set ``Settings.resilience``,
whose defaults come from ``service.llm.resilience.config`` alone."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.llm.resilience.breaker import BreakerConfig
from service.llm.resilience.config import ModelLimit, ResilienceConfig
from service.settings import RESILIENCE_VARIABLES, Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

#: Every documented variable: (name, value set, the value read, where it lands).
CASES: list[tuple[str, str, Any, tuple[str, ...]]] = [
    ("MODEL_MAX_ATTEMPTS", "7", 7, ("max_attempts",)),
    ("MODEL_ATTEMPT_TIMEOUT_SECONDS", "2.5", 2.5, ("attempt_timeout",)),
    ("MODEL_MAX_DEADLINE_SECONDS", "30", 30.0, ("max_deadline",)),
    ("MODEL_BACKOFF_BASE_SECONDS", "0.05", 0.05, ("backoff_base",)),
    ("MODEL_BACKOFF_MAX_SECONDS", "1.5", 1.5, ("backoff_cap",)),
    ("MODEL_RETRY_BUDGET_RATIO", "0.5", 0.5, ("budget_ratio",)),
    ("MODEL_RETRY_BUDGET_RESERVE", "3", 3.0, ("budget_reserve",)),
    ("MODEL_RPM", "600", 600.0, ("rpm",)),
    ("MODEL_TPM", "90000", 90000.0, ("tpm",)),
    (
        "MODEL_LIMITS",
        '{"gpt-4o-mini": {"rpm": 500, "tpm": 200000}}',
        {"gpt-4o-mini": ModelLimit(rpm=500, tpm=200000)},
        ("limits",),
    ),
    ("BREAKER_CONSECUTIVE_FAILURES", "9", 9, ("breaker", "consecutive_failures")),
    ("BREAKER_FAILURE_RATE", "0.75", 0.75, ("breaker", "failure_rate")),
    ("BREAKER_WINDOW_SECONDS", "45", 45.0, ("breaker", "window_seconds")),
    ("BREAKER_MIN_CALLS", "4", 4, ("breaker", "min_calls")),
    ("BREAKER_COOL_DOWN_SECONDS", "2", 2.0, ("breaker", "cool_down_seconds")),
    ("BREAKER_HALF_OPEN_PROBES", "1", 1, ("breaker", "half_open_probes")),
    ("MODEL_MAX_THROTTLED_ATTEMPTS", "20", 20, ("max_throttled_attempts",)),
    ("MODEL_RETRY_AFTER_MAX_SECONDS", "120", 120.0, ("retry_after_max",)),
]


def _at(config: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        config = getattr(config, name)
    return config


def _documented_defaults() -> dict[str, str]:
    """``| `NAME` | `default` | ...`` rows of docs/configuration.md."""
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([^`]*)` \|", DOCS.read_text(encoding="utf-8"), re.M)
    return dict(rows)


def test_the_table_covers_every_resilience_variable() -> None:
    assert sorted(name.lower() for name, *_ in CASES) == sorted(RESILIENCE_VARIABLES)
    assert {name.lower(): path for name, _, _, path in CASES} == RESILIENCE_VARIABLES


@pytest.mark.parametrize(("name", "raw", "expected", "path"), CASES, ids=[c[0] for c in CASES])
def test_each_documented_variable_sets_its_knob(
    monkeypatch: pytest.MonkeyPatch, name: str, raw: str, expected: Any, path: tuple[str, ...]
) -> None:
    monkeypatch.setenv(name, raw)
    settings = Settings()
    assert _at(settings.resilience, path) == expected
    assert _at(ResilienceConfig(), path) != expected  # the variable changed something


@pytest.mark.parametrize(("name", "raw", "expected", "path"), CASES, ids=[c[0] for c in CASES])
def test_a_keyword_argument_by_variable_name_works_too(
    name: str, raw: str, expected: Any, path: tuple[str, ...]
) -> None:
    value = json.loads(raw) if name == "MODEL_LIMITS" else raw
    settings = Settings(**{name.lower(): value})  # type: ignore[arg-type]
    assert _at(settings.resilience, path) == expected


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_the_documented_default_is_the_config_default(name: str) -> None:
    documented = _documented_defaults()[name]
    default = _at(ResilienceConfig(), RESILIENCE_VARIABLES[name.lower()])
    assert json.loads(documented) == (default if name != "MODEL_LIMITS" else {})


def test_lower_case_variables_work_like_the_environment_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("breaker_min_calls", "3")
    assert Settings().resilience.breaker.min_calls == 3


def test_unset_variables_keep_the_config_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, *_ in CASES:
        monkeypatch.delenv(name, raising=False)
    assert Settings().resilience == ResilienceConfig()
    assert Settings().resilience.breaker == BreakerConfig()


def test_keywords_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("BREAKER_MIN_CALLS", "6")
    settings = Settings(model_max_attempts=2)
    assert settings.resilience.max_attempts == 2
    assert settings.resilience.breaker.min_calls == 6


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("MODEL_MAX_ATTEMPTS", "0"),
        ("MODEL_MAX_ATTEMPTS", "11"),
        ("MODEL_MAX_THROTTLED_ATTEMPTS", "51"),
        ("MODEL_RETRY_AFTER_MAX_SECONDS", "0.5"),
        ("BREAKER_FAILURE_RATE", "1.5"),
        ("BREAKER_HALF_OPEN_PROBES", "zero"),
        ("MODEL_LIMITS", '{"m": {"rpm": -1}}'),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, raw: str
) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert name.lower() in str(caught.value)


def test_malformed_json_in_model_limits_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_LIMITS", "{not json")
    with pytest.raises(SettingsError, match='"model_limits"'):
        Settings()


def test_the_lease_must_outlive_the_deadline_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODEL_MAX_DEADLINE_SECONDS", "300")
    with pytest.raises(ValidationError, match="IDEMPOTENCY_LEASE_SECONDS"):
        Settings()
    monkeypatch.setenv("IDEMPOTENCY_LEASE_SECONDS", "301")
    assert Settings().resilience.max_deadline == 300
