"""What the fake model remembers between requests: the requests it was sent, the faults it
injects (and their countdown), the replies it gives.

Tests and ``promptctl fake-model`` read and change it; :mod:`fakemodel.app` serves it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from fakemodel.faults import Endpoint, FaultAction, Faults, decide_fault
from fakemodel.replies import Replies
from fakemodel.tools import ToolPlay

__all__ = ["FakeModelState", "RecordedRequest"]


@dataclass
class RecordedRequest:
    """A request the fake model received, and what it did with it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    #: The status sent; None when nothing complete was sent (hang, reset, client gone).
    response_status: int | None = None
    client_disconnected: bool = False
    #: The injected fault (`FaultAction.label`), e.g. "status:429" or "latency+hang".
    fault: str | None = None


@dataclass
class _Dice:
    """Faults in force for some requests, the count left of them, and their seeded rolls."""

    faults: Faults
    seed: int | str
    remaining_times: int | None = field(init=False, default=None)
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.remaining_times = self.faults.times
        self.rng = random.Random(self.seed)  # noqa: S311 - reproducible chaos, not crypto

    def roll(self, model: str | None, endpoint: Endpoint) -> FaultAction:
        """Decide one request's fault; quality rolls are drawn only when quality faults are on,
        so the error and jitter rolls of a seed stay the same as without them."""
        roll, jitter_roll = self.rng.random(), self.rng.random()
        quality_roll = self.rng.random() if self.faults.degrades_answers else 1.0
        action = decide_fault(
            self.faults,
            model,
            endpoint,
            roll,
            self.remaining_times,
            jitter_roll=jitter_roll,
            quality_roll=quality_roll,
        )
        self.remaining_times = action.remaining_times
        return action

    def standing(self) -> Faults:
        return self.faults.model_copy(update={"times": self.remaining_times})


@dataclass
class FakeModelState:
    """What the fake model knows: its models, the standing faults and the requests it saw."""

    models: list[str] = field(default_factory=lambda: ["gpt-4o-mini", "gpt-4.1-nano"])
    embedding_dimension: int = 64
    requests: list[RecordedRequest] = field(default_factory=list)
    max_recorded: int = 10_000
    faults: Faults = field(default_factory=Faults)
    #: Seeds the rolls for error_rate, jitter and the quality faults; reseeded whenever
    #: faults are set (per-model faults roll from ``f"{seed}:{model}"``).
    seed: int = 0
    #: How chat answers are composed (`fakemodel.replies`); set with /admin/replies.
    replies: Replies = field(default_factory=Replies)
    #: How it calls offered tools (`fakemodel.tools`); set with /admin/tools.
    tool_play: ToolPlay = field(default_factory=ToolPlay)
    _dice: _Dice = field(init=False, repr=False)
    _model_dice: dict[str, _Dice] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.set_faults(self.faults)

    @property
    def remaining_times(self) -> int | None:
        """Matching requests left before the standing faults heal; None means until cleared."""
        return self._dice.remaining_times

    def record(self, request: Request, body: Any) -> RecordedRequest:
        """Keep a request for /admin/requests (bounded); returns the record to complete."""
        # The scope's path, not `request.url.path`: building the URL was ~3 % of the fake
        # model's CPU per request, and only fixed routes (chat, embeddings) are recorded.
        recorded = RecordedRequest(
            request.method, request.scope["path"], dict(request.headers), body, time.time()
        )
        self.requests.append(recorded)
        del self.requests[: -self.max_recorded]
        return recorded

    def set_faults(self, faults: Faults) -> None:
        """Replace the standing faults and restart the seeded rolls."""
        self.faults = faults
        self._dice = _Dice(faults, self.seed)

    def set_model_faults(self, model: str, faults: Faults) -> None:
        """Faults for `model` alone, replacing the standing faults for its requests."""
        if faults.models is not None:
            raise ValueError("per-model faults apply to their model: leave models unset")
        self._model_dice[model] = _Dice(faults, f"{self.seed}:{model}")

    def clear_model_faults(self, model: str) -> None:
        """Back to the standing faults for `model`."""
        self._model_dice.pop(model, None)

    def heal(self) -> None:
        """Clear every fault, per-model ones included."""
        self._model_dice.clear()
        self.set_faults(Faults())

    def standing_faults(self) -> Faults:
        """The faults in force, with `times` counting what is left."""
        return self._dice.standing()

    def model_faults(self) -> dict[str, Faults]:
        """The per-model faults in force, with `times` counting what is left."""
        return {model: dice.standing() for model, dice in sorted(self._model_dice.items())}

    def decide_fault(self, model: str | None, endpoint: Endpoint) -> FaultAction:
        """Roll for one request, decide its fault, and heal once `times` runs out."""
        dice = self._model_dice.get(model) if model is not None else None
        action = (dice or self._dice).roll(model, endpoint)
        if action.remaining_times == 0:
            if dice is not None and model is not None:
                self.clear_model_faults(model)
            else:
                self.set_faults(Faults())
        return action
