"""``promptctl fake-model``: its flags become the initial state; nothing is served here."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from fakemodel.app import FakeModelState, InjectedReset, InjectedResetLogFilter
from fakemodel.faults import Faults
from promptctl.main import app

#: Wide terminal so Rich never wraps a flag name the tests look for.
runner = CliRunner(env={"COLUMNS": "240", "NO_COLOR": "1"})

FAULT_FLAGS = [
    "--latency-ms",
    "--jitter-ms",
    "--error-rate",
    "--error-status",
    "--retry-after",
    "--retry-after-format",
    "--hang",
    "--reset",
    "--malformed",
    "--fault-model",
    "--seed",
    "--model",
    "--unknown-rate",
    "--uncited-rate",
    "--refuse-rate",
    "--invalid-json-rate",
    "--off-schema-rate",
    "--judge-score",
]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[uvicorn.Config]:
    """Replace `uvicorn.Server.run` so the command never binds; collect its configs."""
    configs: list[uvicorn.Config] = []

    def run(self: uvicorn.Server, *_: Any) -> None:
        configs.append(self.config)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    return configs


def _state(config: uvicorn.Config) -> FakeModelState:
    fake_app = config.app
    assert isinstance(fake_app, FastAPI)
    state = fake_app.state.fake
    assert isinstance(state, FakeModelState)
    return state


def test_help_lists_the_fault_flags_and_an_example() -> None:
    result = runner.invoke(app, ["fake-model", "--help"])

    assert result.exit_code == 0, result.output
    missing = [flag for flag in FAULT_FLAGS if flag not in result.output]
    assert missing == []
    assert "promptctl fake-model --error-status 429 --retry-after 2" in result.output


@pytest.mark.parametrize(
    ("args", "models", "seed", "faults"),
    [
        pytest.param("", ["gpt-4o-mini", "gpt-4.1-nano"], 0, Faults(), id="defaults"),
        pytest.param(
            "--error-status 429 --retry-after 2 --retry-after-format http-date",
            ["gpt-4o-mini", "gpt-4.1-nano"],
            0,
            Faults(status=429, retry_after=2, retry_after_format="http-date"),
            id="rate-limit",
        ),
        pytest.param(
            "--latency-ms 800 --jitter-ms 400 --error-status 503 --error-rate 0.1 --seed 42",
            ["gpt-4o-mini", "gpt-4.1-nano"],
            42,
            Faults(latency_ms=800, jitter_ms=400, status=503, error_rate=0.1),
            id="slow-and-flaky",
        ),
        pytest.param(
            "--model a --model b --hang --fault-model b",
            ["a", "b"],
            0,
            Faults(hang=True, models=["b"]),
            id="models-and-hang",
        ),
        pytest.param("--reset", ["gpt-4o-mini", "gpt-4.1-nano"], 0, Faults(reset=True), id="reset"),
        pytest.param(
            "--unknown-rate 0.3 --uncited-rate 0.1 --refuse-rate 0.05 --judge-score 0",
            ["gpt-4o-mini", "gpt-4.1-nano"],
            0,
            Faults(unknown_rate=0.3, uncited_rate=0.1, refuse_rate=0.05, judge_score=0.0),
            id="quality-judge-0-kept",
        ),
        pytest.param(
            "--error-status 503 --error-rate 0",
            ["gpt-4o-mini", "gpt-4.1-nano"],
            0,
            Faults(status=503, error_rate=0.0),
            id="error-rate-0-kept",
        ),
        pytest.param(
            "--malformed",
            ["gpt-4o-mini", "gpt-4.1-nano"],
            0,
            Faults(malformed=True),
            id="malformed",
        ),
    ],
)
def test_flags_become_the_initial_state(
    served: list[uvicorn.Config], args: str, models: list[str], seed: int, faults: Faults
) -> None:
    result = runner.invoke(app, ["fake-model", "--port", "0", *args.split()])

    assert result.exit_code == 0, result.output
    [config] = served
    state = _state(config)
    assert (state.models, state.seed, state.faults) == (models, seed, faults)
    assert config.timeout_graceful_shutdown is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param("--error-status 700", "--error-status", id="status-out-of-range"),
        pytest.param("--error-status 503 --hang", "at most one of", id="two-failures"),
        pytest.param("--retry-after 2", "set status to use retry_after", id="no-status"),
        pytest.param("--error-rate 0.5", "error_rate applies to", id="rate-alone"),
        pytest.param("--error-status 503 --error-rate 1.5", "--error-rate", id="rate-above-1"),
        pytest.param(
            "--unknown-rate 0.6 --refuse-rate 0.6", "must be at most 1", id="quality-sum>1"
        ),
    ],
)
def test_invalid_flags_exit_2_before_serving(
    served: list[uvicorn.Config], args: str, message: str
) -> None:
    result = runner.invoke(app, ["fake-model", *args.split()])

    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert served == []


@pytest.mark.parametrize(
    ("error", "kept"),
    [
        pytest.param(InjectedReset("injected connection reset"), False, id="injected-reset"),
        pytest.param(RuntimeError("a real bug"), True, id="real-error"),
        pytest.param(None, True, id="no-exception"),
    ],
)
def test_reset_log_filter_hides_only_injected_resets(
    error: BaseException | None, kept: bool
) -> None:
    exc_info = (type(error), error, None) if error is not None else None
    record = logging.LogRecord(
        "uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application", (), exc_info
    )

    assert InjectedResetLogFilter().filter(record) is kept
