"""Fan-out (``for_each``) and routing (``when``) in the engine, against the test server over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentops
from agentops.runtime.agent_run import AgentRun
from agentops.runtime.agent_setup import AgentPlan
from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStarted,
    AgentStatus,
    Decision,
    FanOutStarted,
    RunStatus,
    SkipCause,
)
from agentops.testing.server import Fault, OpenAITestServer
from agentops.workflow.expressions import ItemScope
from tests.support.engine import EventLog, workflow_on
from tests.support.fan_out import ROUTING, SECTIONS


def planner_and_writer(**writer: Any) -> list[dict[str, Any]]:
    return [
        {"name": "planner", "task": "Outline a report.", "output": {"schema": SECTIONS}},
        {
            "name": "writer",
            "for_each": "planner.output.sections",
            "task": "Write the section '{{ item.title }}' ({{ item_number }} of {{ item_count }}).",
            **writer,
        },
        {"name": "editor", "depends_on": "writer", "task": "Join: {{ writer.output }}"},
    ]


def sections(*titles: str) -> dict[str, Any]:
    return {"sections": [{"title": title} for title in titles]}


def prompts(server: OpenAITestServer) -> list[str]:
    return [str(r.body["messages"][-1]["content"]) for r in server.requests]


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01) as running:
        yield running


def test_each_item_is_an_agent_run_and_the_output_is_their_list_in_order(
    server: OpenAITestServer,
) -> None:
    server.answer_when("Outline a report", sections("Alpha", "Beta", "Gamma"))
    log = EventLog()
    result = agentops.run(workflow_on(server, planner_and_writer()), subscribers=[log])

    assert result.status is RunStatus.SUCCEEDED
    writer = result.agents["writer"]
    assert writer.item_count == 3
    assert [i.name for i in writer.instances or []] == ["writer[0]", "writer[1]", "writer[2]"]
    assert [i.item for i in writer.instances or []] == [
        {"title": t} for t in ("Alpha", "Beta", "Gamma")
    ]
    sent = prompts(server)
    for number, title in enumerate(("Alpha", "Beta", "Gamma"), start=1):
        assert any(f"Write the section '{title}' ({number} of 3)." in p for p in sent)
    # The item is what an instance is fed: the planner's whole answer is not appended to it.
    assert not any("Write the section" in p and "Outputs of upstream" in p for p in sent)
    # The agent's output: the instances' outputs, in item order, as a JSON list.
    outputs = json.loads(writer.output or "")
    assert outputs == [i.output for i in writer.instances or []]
    assert all(
        f"Write the section '{t}'" in o
        for t, o in zip(("Alpha", "Beta", "Gamma"), outputs, strict=True)
    )
    editor_prompt = next(p for p in sent if p.startswith("Join:"))
    assert editor_prompt == f"Join: {writer.output}"
    # Costs and tokens of the agent are its instances'.
    assert writer.usage.output_tokens == sum(i.usage.output_tokens for i in writer.instances or [])
    # Events: the fan-out is announced, each instance runs and finishes before the agent.
    assert [e.item_count for e in log.of(FanOutStarted)] == [3]
    started = [e.name for e in log.of(AgentStarted)]
    assert {"writer[0]", "writer[1]", "writer[2]"} <= set(started) and "writer" not in started
    finished = [e.result.name for e in log.of(AgentFinished)]
    assert finished.index("writer") > max(finished.index(f"writer[{i}]") for i in range(3))


def test_a_large_result_has_a_short_repr(server: OpenAITestServer) -> None:
    """asyncio.run(agentops.arun(...)) formats the repr of the task holding the result on exit."""
    server.answer_when("Outline a report", sections(*(f"s{i}" for i in range(200))))
    result = agentops.run(workflow_on(server, planner_and_writer(max_items=200)))

    text = repr(result)
    assert len(text) < 300, text
    assert "status=succeeded" in text and "writer: succeeded" in text and "cost=$" in text


def test_an_empty_list_succeeds_with_an_empty_output(server: OpenAITestServer) -> None:
    server.answer_when("Outline a report", sections())
    result = agentops.run(workflow_on(server, planner_and_writer()))
    assert result.status is RunStatus.SUCCEEDED
    assert result.agents["writer"].output == "[]"
    assert result.agents["writer"].instances == []
    assert result.agents["editor"].status is AgentStatus.SUCCEEDED


def test_more_items_than_max_items_fail_the_agent_naming_both_numbers(
    server: OpenAITestServer,
) -> None:
    server.answer_when("Outline a report", sections(*"abcde"))
    result = agentops.run(workflow_on(server, planner_and_writer(max_items=3)))
    writer = result.agents["writer"]
    assert writer.status is AgentStatus.FAILED
    assert "has 5 items, more than max_items 3" in (writer.error or "")
    assert len(server.requests) == 1  # no instance was called
    assert result.agents["editor"].status is AgentStatus.SKIPPED
    assert result.agents["editor"].skip_cause is SkipCause.DEPENDENCY
    assert result.status is RunStatus.FAILED


def test_a_failed_item_fails_the_agent_after_the_others_settle(server: OpenAITestServer) -> None:
    server.answer_when("Outline a report", sections("Alpha", "Broken", "Gamma"))
    server.inject_for(lambda body: "'Broken'" in json.dumps(body), kind="status", status=400)
    result = agentops.run(workflow_on(server, planner_and_writer()))
    writer = result.agents["writer"]
    statuses = [i.status for i in writer.instances or []]
    assert statuses == [AgentStatus.SUCCEEDED, AgentStatus.FAILED, AgentStatus.SUCCEEDED]
    assert writer.status is AgentStatus.FAILED
    assert (writer.error or "").startswith("1 of 3 items failed; first: writer[1]:")
    assert result.agents["editor"].status is AgentStatus.SKIPPED
    assert result.status is RunStatus.FAILED


def test_an_item_whose_run_cannot_be_built_fails_alone(
    server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Items' runs are built ahead, several at once: a failure to build one is still that
    # item's, recorded where any run's failure is.
    server.answer_when("Outline a report", sections("Alpha", "Broken", "Gamma"))
    build = AgentPlan.agent_run

    def failing(plan: AgentPlan, result: AgentResult, item: ItemScope | None = None) -> AgentRun:
        if item is not None and item.value == {"title": "Broken"}:
            raise RuntimeError("no prompt for this item")
        return build(plan, result, item)

    monkeypatch.setattr(AgentPlan, "agent_run", failing)
    result = agentops.run(workflow_on(server, planner_and_writer(on_item_error="continue")))
    writer = result.agents["writer"]
    instances = writer.instances or []
    assert [i.status for i in instances] == [
        AgentStatus.SUCCEEDED,
        AgentStatus.FAILED,
        AgentStatus.SUCCEEDED,
    ]
    assert "no prompt for this item" in (instances[1].error or "")
    assert not instances[1].attempts
    assert sum(1 for p in prompts(server) if p.startswith("Write")) == 2


def test_on_item_error_continue_puts_null_in_the_list_and_the_run_still_fails(
    server: OpenAITestServer,
) -> None:
    server.answer_when("Outline a report", sections("Alpha", "Broken"))
    server.inject_for(lambda body: "'Broken'" in json.dumps(body), kind="status", status=400)
    result = agentops.run(workflow_on(server, planner_and_writer(on_item_error="continue")))
    writer = result.agents["writer"]
    assert writer.status is AgentStatus.SUCCEEDED
    listed = json.loads(writer.output or "")
    assert listed[1] is None and "Alpha" in listed[0]
    assert result.agents["editor"].status is AgentStatus.SUCCEEDED
    assert result.status is RunStatus.FAILED and result.exit_code == 1


def test_items_wait_for_slots_and_never_exceed_max_concurrency(server: OpenAITestServer) -> None:
    server.latency = 0.1
    server.answer_when("Outline a report", sections(*[f"s{i}" for i in range(9)]))
    workflow = workflow_on(server, planner_and_writer(), policies={"max_concurrency": 3})
    result = agentops.run(workflow)
    assert result.status is RunStatus.SUCCEEDED
    spans = [
        (r.started_at, r.finished_at)
        for r in server.requests
        if str(r.body["messages"][-1]["content"]).startswith("Write")
    ]
    assert len(spans) == 9
    assert max(sum(1 for s, f in spans if s <= t < f) for t, _ in spans) == 3


def test_the_cost_cap_stops_starting_items_and_fails_the_agent(server: OpenAITestServer) -> None:
    server.answer_when("Outline a report", sections(*[f"s{i}" for i in range(20)]))
    workflow = workflow_on(
        server,
        planner_and_writer(),
        policies={"cost_cap": 0.5, "max_concurrency": 1, "max_tokens": 50},
        prices={"gpt-4o-mini": {"input": 1000.0, "output": 1000.0}},
    )
    result = agentops.run(workflow)
    writer = result.agents["writer"]
    assert writer.status is AgentStatus.FAILED
    assert (writer.error or "").startswith("cost cap: ")
    ran = writer.instances or []
    assert 0 < len(ran) < 20
    assert ran[-1].skip_cause is SkipCause.COST_CAP
    assert f"{20 - len(ran)} of 20 items not run" in (writer.error or "")
    assert result.cost <= 0.5


def test_routing_skips_the_branch_not_taken_and_the_run_succeeds(server: OpenAITestServer) -> None:
    server.answer_when("Classify the ticket", {"label": "feature"})
    result = agentops.run(workflow_on(server, ROUTING))
    agents = result.agents
    fix = agents["fix_bug"]
    assert fix.status is AgentStatus.SKIPPED and fix.skip_cause is SkipCause.ROUTED
    assert (
        fix.error == "when triage.output.label == 'bug' was false (triage.output.label: 'feature')"
    )
    assert fix.decision == Decision(
        "triage.output.label == 'bug'", False, {"triage.output.label": "feature"}
    )
    # Downstream of a branch routed away is routed away too, not a failure.
    assert agents["test_fix"].skip_cause is SkipCause.ROUTED
    assert agents["plan_feature"].status is AgentStatus.SUCCEEDED
    assert agents["plan_feature"].decision is not None and agents["plan_feature"].decision.held
    assert agents["reply"].status is AgentStatus.SUCCEEDED
    assert result.status is RunStatus.SUCCEEDED and result.exit_code == 0
    assert not any("Fix it" in p or "Test the fix" in p for p in prompts(server))


def test_a_skip_behind_a_failure_is_a_dependency_skip(server: OpenAITestServer) -> None:
    server.answer_when("Classify the ticket", {"label": "bug"})
    server.inject_for(lambda body: "Fix it." in json.dumps(body), kind="status", status=400)
    result = agentops.run(workflow_on(server, ROUTING))
    assert result.agents["fix_bug"].status is AgentStatus.FAILED
    assert result.agents["test_fix"].skip_cause is SkipCause.DEPENDENCY
    assert result.agents["plan_feature"].skip_cause is SkipCause.ROUTED
    assert result.agents["reply"].skip_cause is SkipCause.DEPENDENCY
    assert result.status is RunStatus.FAILED


def test_a_resume_reuses_finished_items_and_recorded_decisions(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    db = tmp_path / "history.db"
    server.answer_when("Outline a report", sections("Alpha", "Broken", "Gamma"))
    server.answer_when("Classify the ticket", {"label": "feature"})
    server.inject(Fault(kind="status", status=400), match=lambda b: "'Broken'" in json.dumps(b))
    notify = {"name": "notify", "when": "inputs.channel == 'email'", "task": "Send mail."}
    agents = [*planner_and_writer(), *ROUTING, notify]
    workflow = workflow_on(server, agents, inputs={"channel": "none"})
    first = agentops.run(workflow, db=db)
    assert first.agents["notify"].skip_cause is SkipCause.ROUTED
    assert first.status is RunStatus.FAILED
    assert first.agents["writer"].status is AgentStatus.FAILED
    before = len(server.requests)

    # With this input notify's condition would now hold: the recorded decision must win.
    second = agentops.resume(first.workflow_run_id, db=db, inputs={"channel": "email"})
    assert second.status is RunStatus.SUCCEEDED
    again = prompts(server)[before:]
    assert [p for p in again if p.startswith("Write")] == ["Write the section 'Broken' (2 of 3)."]
    assert not any(
        p.startswith(("Outline", "Classify", "Fix it", "Plan it", "Send mail")) for p in again
    )
    assert second.agents["notify"].skip_cause is SkipCause.ROUTED
    writer = second.agents["writer"]
    assert [i.reused for i in writer.instances or []] == [True, False, True]
    assert json.loads(writer.output or "")[0] == json.loads(first.agents["writer"].output or "")[0]
    assert second.agents["fix_bug"].skip_cause is SkipCause.ROUTED
    # The editor ran on the whole list, the resumed item included.
    assert any(p.startswith("Join:") and "Broken" in p for p in again)
