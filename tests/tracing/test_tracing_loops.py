"""Traces of loops and approvals: a span per loop (how many iterations ran, why it ended),
each iteration's agent span beneath it named after its agent with its iteration number (a
fan-out inside it too, its items beneath that); an agent waiting for a person is an event on
the workflow span, and the run's status reads waiting. From the events of real runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentops
from agentops.testing.server import OpenAITestServer
from agentops.tracing.session import TracingSession
from tests.support.engine import TEST_KEY, TEST_KEY_ENV, EventLog, workflow_on
from tests.support.loops import APPROVE, REJECT, VERDICT, refine_agents, refine_loop
from tests.support.tracing import SpanView, view_of


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAITestServer]:
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    with OpenAITestServer(latency=0.01) as running:
        yield running


def traced_run(
    server: OpenAITestServer, agents: list[dict[str, Any]], **extra: Any
) -> list[SpanView]:
    log = EventLog()
    agentops.run(workflow_on(server, agents, **extra), subscribers=[log], otel=False)
    exporter = InMemorySpanExporter()
    session = TracingSession(exporter, endpoint="memory", content=False)
    tracer = session.run_tracer({})
    for event in log.events:
        tracer(event)
    session.close()
    return [view_of(span) for span in exporter.get_finished_spans()]


def test_a_loop_is_a_span_with_each_iterations_agents_beneath_it(server: OpenAITestServer) -> None:
    server.answer_in_turn("Review this draft", [REJECT, APPROVE])
    spans = traced_run(server, refine_agents(), loops=refine_loop())
    (loop,) = [s for s in spans if s.name == "loop refine"]
    assert loop.attributes["agentops.loop.iterations"] == 2
    assert loop.attributes["agentops.loop.end_reason"] == "until held at iteration 2"
    assert loop.attributes["agentops.loop.max_iterations"] == 3
    assert loop.status != "ERROR"
    beneath = sorted(
        (s.attributes["gen_ai.agent.name"], s.attributes["agentops.loop.iteration"])
        for s in spans
        if s.parent_id == loop.span_id
    )
    assert beneath == [("critic", 1), ("critic", 2), ("draft", 1), ("draft", 2)]
    assert all(
        s.name in ("invoke_agent draft", "invoke_agent critic")
        for s in spans
        if s.parent_id == loop.span_id
    )
    # The members' own results made no spans of their own: their calls are the iterations'.
    agents = [s for s in spans if s.operation == "invoke_agent"]
    assert len(agents) == 5  # four iterations and publish
    publish = next(s for s in agents if s.attributes["gen_ai.agent.name"] == "publish")
    root = next(s for s in spans if s.operation == "invoke_workflow")
    assert publish.parent_id == root.span_id == loop.parent_id


def test_a_fan_out_inside_a_loop_nests_under_its_iteration(server: OpenAITestServer) -> None:
    outline = {
        "type": "object",
        "properties": {"points": {"type": "array", "items": {"type": "string"}}},
        "required": ["points"],
    }
    server.answer_when("Outline", {"points": ["a", "b"]})
    server.answer_when("Check", APPROVE)
    agents = [
        {"name": "outline", "task": "Outline.", "output": {"schema": outline}},
        {"name": "writer", "for_each": "outline.output.points", "task": "Write {{ item }}"},
        {"name": "critic", "depends_on": "writer", "task": "Check", "output": {"schema": VERDICT}},
    ]
    loops = [
        {
            "name": "polish",
            "agents": ["writer", "critic"],
            "until": "critic.output.approved",
            "max_iterations": 2,
        }
    ]
    spans = traced_run(server, agents, loops=loops)
    (loop,) = [s for s in spans if s.name == "loop polish"]
    (fan_out,) = [s for s in spans if "agentops.fan_out.item_count" in s.attributes]
    assert fan_out.parent_id == loop.span_id and fan_out.name == "invoke_agent writer"
    assert fan_out.attributes["agentops.loop.iteration"] == 1
    items = [s for s in spans if s.parent_id == fan_out.span_id]
    assert sorted(s.attributes["agentops.item.index"] for s in items) == [0, 1]
    assert {s.attributes["gen_ai.agent.name"] for s in items} == {"writer"}


def test_a_wait_for_approval_is_an_event_on_the_workflow_span(server: OpenAITestServer) -> None:
    agents = [
        {"name": "draft", "task": "Draft."},
        {"name": "publish", "depends_on": "draft", "approval": "before", "task": "Publish."},
    ]
    spans = traced_run(server, agents)
    root = next(s for s in spans if s.operation == "invoke_workflow")
    assert root.attributes["agentops.workflow_run.status"] == "waiting"
    waits = [e for e in root.events if e[0] == "agentops.agent.waiting_approval"]
    assert [(e[2]["gen_ai.agent.name"], e[2]["agentops.approval.mode"]) for e in waits] == [
        ("publish", "before")
    ]
    assert not any(
        s.attributes.get("gen_ai.agent.name") == "publish" for s in spans if s is not root
    )
