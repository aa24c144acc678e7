"""Bounded loops (``loops:``) in the engine, against the test server over HTTP; a resume
reading its iterations back from either store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import agentops
from agentops.runtime.events import (
    AgentFinished,
    AgentStatus,
    IterationStarted,
    LoopFinished,
    RunStatus,
    SkipCause,
)
from agentops.store.stores import history_reader
from agentops.testing.server import Fault, OpenAITestServer
from tests.support.engine import EventLog, workflow_on
from tests.support.loops import APPROVE, REJECT, refine_agents, refine_loop


def prompts(server: OpenAITestServer) -> list[str]:
    return [str(r.body["messages"][-1]["content"]) for r in server.requests]


def drafts(server: OpenAITestServer) -> list[str]:
    return [p for p in prompts(server) if p.startswith("Write a blurb")]


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01) as running:
        yield running


def test_the_loop_runs_until_the_critic_approves_and_downstream_sees_the_last_iteration(
    server: OpenAITestServer,
) -> None:
    server.answer_in_turn("Review this draft", [REJECT, APPROVE])
    log = EventLog()
    result = agentops.run(
        workflow_on(server, refine_agents(), loops=refine_loop()), subscribers=[log]
    )

    assert result.status is RunStatus.SUCCEEDED and result.exit_code == 0
    draft, critic = result.agents["draft"], result.agents["critic"]
    assert [i.name for i in draft.iterations or []] == ["draft#1", "draft#2"]
    assert [i.name for i in critic.iterations or []] == ["critic#1", "critic#2"]
    assert draft.loop_end == critic.loop_end == "until held at iteration 2"
    assert draft.iteration == 2 and draft.loop == "refine"
    # The member's answer is its last iteration's.
    assert draft.output == (draft.iterations or [])[-1].output
    assert critic.value == APPROVE
    # The first iteration reads an empty previous answer, the second the critic's feedback.
    assert drafts(server) == [
        "Write a blurb. Last feedback: []",
        f"Write a blurb. Last feedback: [{REJECT['feedback']}]",
    ]
    publish = next(p for p in prompts(server) if p.startswith("Publish:"))
    assert publish.startswith(f"Publish: {draft.output}\n")
    assert json.dumps(APPROVE) in publish  # the critic's last answer, in the upstream block
    # Each iteration is paid for once: the members' cost is their iterations'.
    assert draft.cost == pytest.approx(sum(i.cost or 0 for i in draft.iterations or []))
    assert result.cost == pytest.approx(
        sum(i.cost or 0 for a in (draft, critic) for i in a.iterations or [])
        + (result.agents["publish"].cost or 0)
    )
    # Events: each iteration announced, its runs settling as instances, then the loop's end,
    # then the members, and only then what depends on them.
    started = log.of(IterationStarted)
    assert [(e.loop, e.iteration, e.max_iterations) for e in started] == [
        ("refine", 1, 3),
        ("refine", 2, 3),
    ]
    (finished,) = log.of(LoopFinished)
    assert (finished.iterations, finished.reason, finished.ok) == (
        2,
        "until held at iteration 2",
        True,
    )
    order = [e.result.name for e in log.of(AgentFinished)]
    assert order == ["draft#1", "critic#1", "draft#2", "critic#2", "draft", "critic", "publish"]
    assert log.events.index(finished) < log.events.index(log.of(AgentFinished)[4])


def test_max_iterations_reached_continues_with_the_last_answers(
    server: OpenAITestServer,
) -> None:
    server.answer_when("Review this draft", REJECT)
    result = agentops.run(workflow_on(server, refine_agents(), loops=refine_loop()))
    assert result.status is RunStatus.SUCCEEDED
    assert len(drafts(server)) == 3
    assert result.agents["critic"].loop_end == "max_iterations 3 reached"
    assert result.agents["critic"].value == REJECT
    assert result.agents["publish"].status is AgentStatus.SUCCEEDED


def test_on_max_iterations_fail_fails_the_members_and_skips_downstream(
    server: OpenAITestServer,
) -> None:
    server.answer_when("Review this draft", REJECT)
    loops = refine_loop(max_iterations=2, on_max_iterations="fail")
    result = agentops.run(workflow_on(server, refine_agents(), loops=loops))
    assert result.status is RunStatus.FAILED and result.exit_code == 1
    for name in ("draft", "critic"):
        member = result.agents[name]
        assert member.status is AgentStatus.FAILED
        assert member.error == "loop refine: max_iterations 2 reached"
        assert len(member.iterations or []) == 2
    publish = result.agents["publish"]
    assert publish.status is AgentStatus.SKIPPED and publish.skip_cause is SkipCause.DEPENDENCY


def test_a_failed_member_ends_and_fails_the_loop(server: OpenAITestServer) -> None:
    server.answer_when("Review this draft", REJECT)
    server.inject(
        Fault(kind="status", status=400), match=lambda b: "Say what it costs" in json.dumps(b)
    )
    result = agentops.run(workflow_on(server, refine_agents(), loops=refine_loop()))
    assert result.status is RunStatus.FAILED
    draft = result.agents["draft"]
    assert draft.loop_end == "draft#2 failed at iteration 2"
    assert [i.status for i in draft.iterations or []] == [
        AgentStatus.SUCCEEDED,
        AgentStatus.FAILED,
    ]
    # Iteration 2 of the critic never ran: its draft failed.
    critic2 = (result.agents["critic"].iterations or [])[-1]
    assert critic2.name == "critic#2" and critic2.skip_cause is SkipCause.DEPENDENCY
    assert len([p for p in prompts(server) if p.startswith("Review")]) == 1


def test_each_iteration_reserves_under_the_cost_cap(server: OpenAITestServer) -> None:
    server.answer_when("Review this draft", REJECT)
    workflow = workflow_on(
        server,
        refine_agents(),
        loops=refine_loop(max_iterations=100),
        policies={"cost_cap": 0.02, "max_tokens": 20},
        prices={"gpt-4o-mini": {"input": 100.0, "output": 100.0}},
    )
    result = agentops.run(workflow)
    assert result.status is RunStatus.FAILED
    assert result.cost <= 0.02
    draft = result.agents["draft"]
    assert 1 < len(draft.iterations or []) < 100
    last = [*(draft.iterations or []), *(result.agents["critic"].iterations or [])]
    assert any(i.skip_cause is SkipCause.COST_CAP for i in last)
    assert "at iteration" in (draft.loop_end or "")


def test_a_resume_continues_the_iteration_in_progress(server: OpenAITestServer, db: str) -> None:
    server.answer_in_turn("Review this draft", [REJECT, APPROVE])
    # The critic's second review fails: iteration 2 is in progress, its draft done.
    server.inject(
        Fault(kind="status", status=400),
        match=lambda b: "Review this draft" in json.dumps(b) and "Say what" in json.dumps(b),
        times=10,
    )
    workflow = workflow_on(server, refine_agents(retries=0), loops=refine_loop())
    first = agentops.run(workflow, db=db)
    assert first.status is RunStatus.FAILED
    assert first.agents["draft"].loop_end == "critic#2 failed at iteration 2"
    server.clear_faults()
    before = len(server.requests)

    second = agentops.resume(first.workflow_run_id, db=db)
    assert second.status is RunStatus.SUCCEEDED
    again = prompts(server)[before:]
    # Neither iteration 1 nor the draft of iteration 2 runs again.
    assert [p.split(":")[0] for p in again] == ["Review this draft", "Publish"]
    draft = second.agents["draft"]
    assert [(i.name, i.reused) for i in draft.iterations or []] == [
        ("draft#1", True),
        ("draft#2", True),
    ]
    assert [(i.name, i.reused) for i in second.agents["critic"].iterations or []] == [
        ("critic#1", True),
        ("critic#2", False),
    ]
    assert draft.loop_end == "until held at iteration 2"
    # The history holds each iteration under its member.
    reader = history_reader(db)
    try:
        detail = reader.workflow_run(second.workflow_run_id or 0)
    finally:
        reader.close()
    rows = {a.name: a for a in detail.agents}
    assert set(rows) == {"draft", "critic", "publish"}
    assert [r.name for r in rows["critic"].iteration_runs or []] == ["critic#1", "critic#2"]
    assert rows["critic"].iterations == 2 and rows["critic"].loop_end == draft.loop_end
    assert rows["critic"].loop == "refine" and rows["critic"].cost == 0.0
    assert [r.reused for r in rows["critic"].iteration_runs or []] == [True, False]


def test_a_fan_out_inside_a_loop_runs_its_items_each_iteration(server: OpenAITestServer) -> None:
    outline = {
        "type": "object",
        "properties": {"points": {"type": "array", "items": {"type": "string"}}},
        "required": ["points"],
    }
    server.answer_when("Outline", {"points": ["a", "b"]})
    server.answer_in_turn("Check", [REJECT, APPROVE])
    agents: list[dict[str, Any]] = [
        {"name": "outline", "task": "Outline.", "output": {"schema": outline}},
        {
            "name": "writer",
            "for_each": "outline.output.points",
            "task": "Write {{ item }} ({{ critic.previous.output.feedback }})",
        },
        {
            "name": "critic",
            "depends_on": "writer",
            "task": "Check {{ writer.output }}",
            "output": {"schema": refine_agents()[1]["output"]["schema"]},
        },
    ]
    loops = [
        {
            "name": "polish",
            "agents": ["writer", "critic"],
            "until": "critic.output.approved",
            "max_iterations": 4,
        }
    ]
    result = agentops.run(workflow_on(server, agents, loops=loops))
    assert result.status is RunStatus.SUCCEEDED
    writer = result.agents["writer"]
    iterations = writer.iterations or []
    assert [i.name for i in iterations] == ["writer#1", "writer#2"]
    assert [[x.name for x in i.instances or []] for i in iterations] == [
        ["writer#1[0]", "writer#1[1]"],
        ["writer#2[0]", "writer#2[1]"],
    ]
    assert writer.output == iterations[-1].output
    written = [p for p in prompts(server) if p.startswith("Write")]
    assert written == [
        "Write a ()",
        "Write b ()",
        f"Write a ({REJECT['feedback']})",
        f"Write b ({REJECT['feedback']})",
    ]
