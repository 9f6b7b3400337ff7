"""The fake model's reply modes: pure rules, the CLI flags, and /admin/replies over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from typer.testing import CliRunner

from fakemodel.answers import NOT_COVERED
from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.replies import Replies, ReplyMode, build_reply, find_input
from promptctl.main import app as cli
from tests.support.servers import serve_in_thread

POLICY_PROMPT = """INSTRUCTIONS:
- Cite the passages you rely on by their [n] markers.

CONTEXT:
[1] (shipping.md) Standard delivery takes 3 to 5 business days. It is free over $50.

QUESTION:
How long does delivery take?"""

TICKET_PROMPT = """INSTRUCTIONS:
- Summarize the ticket below in at most 3 short bullet points.
- Finish with one line that starts with "Next action:".

TICKET:
My parcel LK-48213 has been in transit for nine days. Please find it or send a new one.
Thanks, Daniel"""

TICKET = (
    "My parcel LK-48213 has been in transit for nine days. Please find it or send a new one.\n"
    "Thanks, Daniel"
)


def _messages(user: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You help."}, {"role": "user", "content": user}]


# --- pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(TICKET_PROMPT, TICKET, id="last-heading"),
        pytest.param("Just a sentence.", "Just a sentence.", id="no-heading"),
        pytest.param("TEXT:\nfirst\nQUESTION:\nsecond", "second", id="the-last-of-two"),
        pytest.param("QUESTION:\n", "QUESTION:", id="empty-block-keeps-message"),
        pytest.param("Note: not a heading\nbody", "Note: not a heading\nbody", id="mixed-case"),
    ],
)
def test_find_input(message: str, expected: str) -> None:
    assert find_input(message) == expected


@pytest.mark.parametrize(
    ("replies", "user", "max_tokens", "expected"),
    [
        pytest.param(
            Replies(),
            POLICY_PROMPT,
            256,
            "Standard delivery takes 3 to 5 business days. [1]",
            id="auto-context",
        ),
        pytest.param(
            Replies(), "CONTEXT:\n\nQUESTION:\nWhy?", 256, NOT_COVERED, id="auto-empty-context"
        ),
        pytest.param(Replies(), TICKET_PROMPT, 256, TICKET, id="auto-without-context-echoes"),
        pytest.param(
            Replies(), TICKET_PROMPT, 4, "My parcel LK-48213 has", id="echo-cut-to-max-tokens"
        ),
        pytest.param(
            Replies(mode=ReplyMode.CONTEXT), TICKET_PROMPT, 256, NOT_COVERED, id="context-forced"
        ),
        pytest.param(
            Replies(mode=ReplyMode.ECHO),
            POLICY_PROMPT,
            256,
            "How long does delivery take?",
            id="echo-forced-on-a-context-prompt",
        ),
        pytest.param(
            Replies(
                mode=ReplyMode.TEMPLATE,
                template="- {first_sentence}\nNext action: agent replies ({model}) {{ok}}",
            ),
            TICKET_PROMPT,
            256,
            "- My parcel LK-48213 has been in transit for nine days.\n"
            "Next action: agent replies (gpt-4o-mini) {ok}",
            id="template",
        ),
        pytest.param(
            Replies(mode=ReplyMode.TEMPLATE, template="Summary: {input}"),
            TICKET_PROMPT,
            3,
            "Summary: My parcel",
            id="template-cut-to-max-tokens",
        ),
        pytest.param(Replies(), "", 256, "", id="empty-message"),
    ],
)
def test_build_reply(replies: Replies, user: str, max_tokens: int, expected: str) -> None:
    assert build_reply(replies, _messages(user), "gpt-4o-mini", max_tokens) == expected


def test_a_prompt_without_context_never_gets_the_policy_answer() -> None:
    for mode in (ReplyMode.AUTO, ReplyMode.ECHO):
        answer = build_reply(Replies(mode=mode), _messages(TICKET_PROMPT), "m", 256)
        assert answer != NOT_COVERED
        assert "in transit for nine days" in answer


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"mode": "template"}, "needs a template", id="template-missing"),
        pytest.param({"mode": "echo", "template": "x"}, "needs mode template", id="stray-template"),
        pytest.param(
            {"mode": "template", "template": "{secret}"},
            "unknown placeholder {secret}",
            id="unknown-placeholder",
        ),
        pytest.param(
            {"mode": "template", "template": "{input.__class__}"},
            "unknown placeholder",
            id="attribute-access",
        ),
        pytest.param({"mode": "poem"}, "Input should be", id="unknown-mode"),
    ],
)
def test_invalid_replies_name_the_problem(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Replies.model_validate(body)


# --- CLI -------------------------------------------------------------------------------------

runner = CliRunner(env={"COLUMNS": "240", "NO_COLOR": "1"})


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[uvicorn.Config]:
    """Replace `uvicorn.Server.run` so the command never binds; collect its configs."""
    configs: list[uvicorn.Config] = []

    def run(self: uvicorn.Server, *_: Any) -> None:
        configs.append(self.config)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    return configs


def test_cli_reply_flags_set_the_initial_mode(served: list[uvicorn.Config]) -> None:
    result = runner.invoke(
        cli, ["fake-model", "--reply", "template", "--reply-template", "Summary: {input}"]
    )

    assert result.exit_code == 0, result.output
    fake_app = served[0].app
    assert isinstance(fake_app, FastAPI)
    state = fake_app.state.fake
    assert isinstance(state, FakeModelState)
    assert state.replies == Replies(mode=ReplyMode.TEMPLATE, template="Summary: {input}")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--reply", "template"], id="template-without-text"),
        pytest.param(["--reply-template", "x"], id="text-without-template"),
        pytest.param(["--reply", "template", "--reply-template", "{nope}"], id="placeholder"),
    ],
)
def test_cli_bad_reply_flags_exit_2_before_binding(
    served: list[uvicorn.Config], args: list[str]
) -> None:
    result = runner.invoke(cli, ["fake-model", *args])

    assert result.exit_code == 2
    assert "--reply" in result.output
    assert served == []


# --- HTTP ------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[tuple[httpx.Client, FakeModelState]]:
    state = FakeModelState()
    with (
        serve_in_thread(create_fake_model_app(state)) as base_url,
        httpx.Client(base_url=base_url, timeout=10) as http,
    ):
        yield http, state


def _chat(http: httpx.Client, user: str) -> str:
    response = http.post(
        "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": _messages(user)}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


@pytest.mark.integration
def test_admin_replies_switch_the_mode_live(fake: tuple[httpx.Client, FakeModelState]) -> None:
    http, state = fake
    assert http.get("/admin/replies").json() == {"mode": "auto", "template": None}
    assert _chat(http, TICKET_PROMPT) == TICKET

    body = {"mode": "template", "template": "{first_sentence}\nNext action: call the carrier."}
    assert http.post("/admin/replies", json=body).json() == body
    assert _chat(http, TICKET_PROMPT) == (
        "My parcel LK-48213 has been in transit for nine days.\nNext action: call the carrier."
    )
    assert state.replies.mode is ReplyMode.TEMPLATE

    refused = http.post("/admin/replies", json={"mode": "template", "template": "{x}"})
    assert refused.status_code == 422
    assert "unknown placeholder {x}" in refused.text
    assert http.get("/admin/replies").json() == body  # unchanged by the refused body

    assert http.delete("/admin/replies").status_code == 204
    assert http.get("/admin/replies").json() == {"mode": "auto", "template": None}
    assert _chat(http, POLICY_PROMPT) == "Standard delivery takes 3 to 5 business days. [1]"
