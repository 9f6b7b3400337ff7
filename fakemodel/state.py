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
class FakeModelState:
    """What the fake model knows: its models, the standing faults and the requests it saw."""

    models: list[str] = field(default_factory=lambda: ["gpt-4o-mini", "gpt-4.1-nano"])
    embedding_dimension: int = 64
    requests: list[RecordedRequest] = field(default_factory=list)
    max_recorded: int = 10_000
    faults: Faults = field(default_factory=Faults)
    #: Seeds the rolls for error_rate and jitter; reseeded whenever faults are set.
    seed: int = 0
    #: How chat answers are composed (`fakemodel.replies`); set with /admin/replies.
    replies: Replies = field(default_factory=Replies)
    #: Matching requests left before the faults heal; None means until cleared.
    remaining_times: int | None = field(init=False, default=None)
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.set_faults(self.faults)

    def record(self, request: Request, body: Any) -> RecordedRequest:
        """Keep a request for /admin/requests (bounded); returns the record to complete."""
        recorded = RecordedRequest(
            request.method, request.url.path, dict(request.headers), body, time.time()
        )
        self.requests.append(recorded)
        del self.requests[: -self.max_recorded]
        return recorded

    def set_faults(self, faults: Faults) -> None:
        """Replace the standing faults and restart the seeded rolls."""
        self.faults = faults
        self.remaining_times = faults.times
        self.rng = random.Random(self.seed)  # noqa: S311 - reproducible chaos, not crypto

    def heal(self) -> None:
        """Clear every fault."""
        self.set_faults(Faults())

    def standing_faults(self) -> Faults:
        """The faults in force, with `times` counting what is left."""
        return self.faults.model_copy(update={"times": self.remaining_times})

    def decide_fault(self, model: str | None, endpoint: Endpoint) -> FaultAction:
        """Roll for one request, decide its fault, and heal once `times` runs out."""
        roll, jitter_roll = self.rng.random(), self.rng.random()
        action = decide_fault(
            self.faults, model, endpoint, roll, self.remaining_times, jitter_roll=jitter_roll
        )
        self.remaining_times = action.remaining_times
        if self.remaining_times == 0:
            self.heal()
        return action
