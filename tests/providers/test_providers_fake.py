"""FakeProvider: scripted replies and failures for testing workflows without a network."""

from __future__ import annotations

import asyncio

import pytest
import yaml

import agentops
from agentops import FakeProvider
from agentops.errors import AuthenticationError, BadRequestError, ServerError
from agentops.runtime.events import AgentStatus, RunStatus
from agentops.runtime.provider import ChatRequest
from agentops.workflow.loader import load_workflow_text
from tests.support.provider import complete, request


def run(provider: FakeProvider, chat: ChatRequest):  # type: ignore[no-untyped-def]
    return asyncio.run(complete(provider, chat))


def test_a_string_reply_streams_word_by_word_with_estimated_usage() -> None:
    fake = FakeProvider("three short words")
    outcome = run(fake, request(text="x" * 40, max_tokens=16))
    assert outcome.text == "three short words"
    assert outcome.pieces == ["three ", "short ", "words"]
    assert outcome.usage.estimated
    assert (outcome.usage.input_tokens, outcome.usage.output_tokens) == (10, 5)
    assert fake.requests == [request(text="x" * 40, max_tokens=16)]


def test_estimated_output_never_exceeds_max_tokens() -> None:
    outcome = run(FakeProvider("word " * 100), request(max_tokens=3))
    assert outcome.usage.output_tokens == 3


def test_a_function_reply_sees_the_request_and_may_be_async() -> None:
    assert (
        run(FakeProvider(lambda r: r.messages[-1].content.upper()), request(text="shout")).text
        == "SHOUT"
    )

    async def slow(chat: ChatRequest) -> str:
        await asyncio.sleep(0)
        return f"async {chat.model}"

    assert run(FakeProvider(slow), request("m1")).text == "async m1"


def test_a_mapping_reply_is_chosen_by_agent_then_model_then_star() -> None:
    fake = FakeProvider({"writer": "by agent", "gpt-4o": "by model", "*": "fallback"})
    assert run(fake, request("gpt-4o", agent="writer")).text == "by agent"
    assert run(fake, request("gpt-4o", agent="other")).text == "by model"
    assert run(fake, request("gpt-4o-mini")).text == "fallback"


def test_a_mapping_without_a_match_fails_clearly() -> None:
    outcome = run(FakeProvider({"writer": "x"}), request("gpt-4o", agent="critic"))
    assert isinstance(outcome.error, BadRequestError)
    assert "'critic'" in str(outcome.error) and "'gpt-4o'" in str(outcome.error)


def test_scripted_errors_are_raised_in_order_then_calls_succeed() -> None:
    fake = FakeProvider(
        "fine", errors=[ServerError("boom", status=500), None, AuthenticationError("no")]
    )
    outcomes = [run(fake, request()) for _ in range(4)]
    assert isinstance(outcomes[0].error, ServerError)
    assert outcomes[1].text == "fine"
    assert isinstance(outcomes[2].error, AuthenticationError)
    assert outcomes[3].text == "fine"
    assert len(fake.requests) == 4


def test_scripted_errors_by_agent_leave_other_agents_alone() -> None:
    fake = FakeProvider("fine", errors={"flaky": [ServerError("boom")]})
    assert run(fake, request(agent="steady")).text == "fine"
    assert isinstance(run(fake, request(agent="flaky")).error, ServerError)
    assert run(fake, request(agent="flaky")).text == "fine"
    assert [r.agent for r in fake.requests_for("flaky")] == ["flaky", "flaky"]


def test_latency_may_depend_on_the_request() -> None:
    seen: list[str] = []

    def latency(chat: ChatRequest) -> float:
        seen.append(chat.model)
        return 0.01

    assert run(FakeProvider("ok", latency=latency), request("slow-model")).text == "ok"
    assert seen == ["slow-model"]


FLOW = {
    "name": "fake_flow",
    "policies": {"backoff": {"base": 0.0, "max": 0.0}},
    "agents": [
        {"name": "researcher", "model": "gpt-4o", "task": "Research."},
        {
            "name": "summarizer",
            "model": "gpt-4o-mini",
            "depends_on": "researcher",
            "task": "Summarise.",
        },
    ],
}


def test_a_whole_workflow_runs_on_the_fake_with_a_retry() -> None:
    fake = FakeProvider(
        {
            "researcher": "findings: A, B and C",
            "gpt-4o-mini": lambda r: f"summary of {len(r.messages)} messages",
        },
        errors={"researcher": [ServerError("temporarily down", status=503)]},
    )
    loaded = load_workflow_text(yaml.safe_dump(FLOW), filename="fake_flow.yaml")
    result = agentops.run(loaded, provider=fake)
    assert result.status is RunStatus.SUCCEEDED
    researcher, summarizer = result.agents["researcher"], result.agents["summarizer"]
    assert researcher.status is AgentStatus.SUCCEEDED and len(researcher.attempts) == 2
    assert researcher.output == "findings: A, B and C"
    assert summarizer.output is not None and summarizer.output.startswith("summary of")
    assert researcher.provider == "fake" and researcher.cost == 0.0
    # The summarizer's prompt carried the researcher's output.
    assert [r.agent for r in fake.requests_for("researcher")] == ["researcher", "researcher"]
    (summary_request,) = fake.requests_for("summarizer")
    assert any("findings: A, B and C" in m.content for m in summary_request.messages)


@pytest.mark.parametrize("reply", ["", "   "])
def test_empty_replies_are_allowed(reply: str) -> None:
    outcome = run(FakeProvider(reply), request())
    assert outcome.text == reply
    assert outcome.usage.output_tokens == (0 if not reply else 1)
