"""The engine against the local test server over real HTTP: scheduling, AND/OR, concurrency."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import agentops
from agentops.runtime.events import AgentFinished, AgentStarted, AgentStatus, RunStatus
from agentops.testing.server import OpenAITestServer
from tests.support.engine import EventLog, workflow_on


def latency_by_marker(body: dict[str, Any]) -> float:
    """'[slow]' in the prompt makes a call take 0.8 s, otherwise 0.02 s."""
    text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    return 0.8 if "[slow]" in text else 0.02


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=latency_by_marker) as running:
        yield running


def test_a_slow_agent_never_holds_back_an_unrelated_branch(server: OpenAITestServer) -> None:
    # Chain a: one slow call. Chain b: five fast calls in a row. A level-barrier
    # scheduler would start b2 only after a1 (level 1) finished.
    agents = [{"name": "a1", "task": "[slow] think"}]
    agents += [{"name": "b1"}] + [{"name": f"b{i}", "depends_on": f"b{i - 1}"} for i in range(2, 6)]
    agents += [{"name": "join", "depends_on": ["a1", "b5"]}]
    log = EventLog()
    result = agentops.run(workflow_on(server, agents), subscribers=[log])

    assert result.status is RunStatus.SUCCEEDED
    finished = {e.result.name: e.result.finished_at for e in log.of(AgentFinished)}
    started = {e.name: e.started_at for e in log.of(AgentStarted)}
    assert finished["b5"] < finished["a1"], "the fast chain waited for the slow agent"
    # Each agent starts after what it depends on finished, never before.
    for i in range(2, 6):
        assert started[f"b{i}"] >= finished[f"b{i - 1}"]
    assert started["join"] >= max(finished["a1"], finished["b5"])
    # The server saw the calls in the same order: b5's request ended before a1's.
    by_prompt = {r.body["messages"][-1]["content"].split("\n")[0]: r for r in server.requests}
    assert by_prompt["do b5"].finished_at < by_prompt["[slow] think"].finished_at


def test_max_concurrency_caps_calls_in_flight(server: OpenAITestServer) -> None:
    agents = [{"name": f"w{i}", "task": "[slow] work"} for i in range(7)]
    workflow = workflow_on(server, agents, policies={"max_concurrency": 3})
    result = agentops.run(workflow)
    assert result.status is RunStatus.SUCCEEDED
    spans = [(r.started_at, r.finished_at) for r in server.requests]
    assert len(spans) == 7
    peak = max(sum(1 for s, f in spans if s <= t < f) for t, _ in spans)
    assert peak == 3


def test_upstream_outputs_reach_the_prompt_in_a_labelled_block(server: OpenAITestServer) -> None:
    agents = [
        {"name": "researcher"},
        {"name": "summarizer", "depends_on": "researcher", "task": "Summarise."},
        {"name": "placer", "depends_on": "researcher", "task": "Text: {{ researcher.output }}!"},
    ]
    result = agentops.run(workflow_on(server, agents))
    research = result.agents["researcher"].output
    assert research
    sent = [r.body["messages"][-1]["content"] for r in server.requests]
    summarise = next(text for text in sent if text.startswith("Summarise."))
    placed = next(text for text in sent if text.startswith("Text: "))
    assert "### researcher\n" + research in summarise
    assert placed == f"Text: {research}!"
    assert "Outputs of upstream agents" not in result.agents["placer"].prompt  # type: ignore[operator]


def test_or_dependency_runs_when_one_branch_succeeds_and_skips_when_none(
    server: OpenAITestServer,
) -> None:
    server.inject_for(lambda body: "fails" in str(body["messages"]), status=401)
    agents = [
        {"name": "ok"},
        {"name": "bad", "task": "this fails", "retries": 0},
        {"name": "bad2", "task": "this fails too", "retries": 0},
        {"name": "either", "depends_on": {"any": ["ok", "bad"]}},
        {"name": "neither", "depends_on": "bad || bad2"},
        {"name": "after_neither", "depends_on": "neither"},
        {"name": "unrelated", "depends_on": "ok"},
    ]
    result = agentops.run(workflow_on(server, agents))
    status = {name: agent.status for name, agent in result.agents.items()}
    assert status == {
        "ok": AgentStatus.SUCCEEDED,
        "bad": AgentStatus.FAILED,
        "bad2": AgentStatus.FAILED,
        "either": AgentStatus.SUCCEEDED,
        "neither": AgentStatus.SKIPPED,
        "after_neither": AgentStatus.SKIPPED,
        "unrelated": AgentStatus.SUCCEEDED,
    }
    assert result.agents["neither"].error == "bad failed, bad2 failed"
    assert result.agents["after_neither"].error == "neither skipped"
    # Only the succeeded branch feeds the OR agent.
    assert "### ok" in (result.agents["either"].prompt or "")
    assert "### bad" not in (result.agents["either"].prompt or "")
    assert result.status is RunStatus.FAILED and result.exit_code == 1


def test_a_long_chain_of_skips_does_not_recurse(server: OpenAITestServer) -> None:
    server.inject_for(lambda body: True, status=400)
    agents = [{"name": "root", "retries": 0}] + [
        {"name": f"n{i}", "depends_on": "root" if i == 0 else f"n{i - 1}"} for i in range(1500)
    ]
    result = agentops.run(workflow_on(server, agents))
    assert result.agents["n1499"].status is AgentStatus.SKIPPED
    assert len(server.requests) == 1
