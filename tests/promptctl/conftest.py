"""promptctl tests read rich output: give it a wide terminal so messages never wrap mid-phrase."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich reads COLUMNS; 400 keeps every error on one line whatever the tmp path."""
    monkeypatch.setenv("COLUMNS", "400")
