"""Fan-outs and routing in the traces: one ``invoke_agent`` span for a fan-out agent with
its item counts, one per item under it (index; the item itself only as small content),
their chat spans under them, and an event on the workflow span for each agent that was
skipped without running (routed away: the decision; its values only as content)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentops
from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStatus,
    Event,
    FanOutStarted,
    RunStatus,
    SkipCause,
    ToolCallFinished,
    ToolCallRecord,
    Usage,
    WorkflowFinished,
)
from agentops.testing.server import OpenAITestServer
from agentops.tracing.session import TracingSession
from tests.support.engine import TEST_KEY, TEST_KEY_ENV, workflow_on
from tests.support.fan_out import (
    REASON,
    ROUTED_FLOW,
    answer_the_flow,
    fan_out_result,
    flow,
    item,
    item_events,
    routed_away,
    run_result,
)
from tests.support.tracing import SpanView, by_operation, check_tree, view_of
from tests.support.ui import started, succeeded_result


def traced(events: list[Event], *, content: bool = False) -> list[SpanView]:
    """``events`` through a run's tracer, as the in-memory exporter receives its spans."""
    exporter = InMemorySpanExporter()
    session = TracingSession(exporter, endpoint="memory", content=content)
    tracer = session.run_tracer({})
    for event in events:
        tracer(event)
    session.close()
    return [view_of(span) for span in exporter.get_finished_spans()]


def fan_out_run(
    instances: list[AgentResult], count: int, *, skipped: Sequence[AgentResult] = ()
) -> list[Event]:
    planner = succeeded_result("planner", output="feature", started_at=999.0, finished_at=1000.4)
    writer = fan_out_result(instances, count)
    events: list[Event] = [
        started(flow(), at=999.0),
        *[e for e in item_events(planner) if not isinstance(e, AgentFinished)],
        AgentFinished(planner),
        *[AgentFinished(result) for result in skipped],
        FanOutStarted("writer", count, 1000.5),
    ]
    for instance in instances:
        events.extend(item_events(instance) if instance.attempts else [AgentFinished(instance)])
    events.append(AgentFinished(writer))
    status = RunStatus.SUCCEEDED if writer.status is AgentStatus.SUCCEEDED else RunStatus.FAILED
    events.append(WorkflowFinished(run_result([planner, writer, *skipped], status)))
    return events


def test_a_fan_out_is_one_agent_span_with_a_span_per_item_under_it() -> None:
    tool_call = ToolCallRecord(1, "call_1", "search", "{}", "succeeded", 1001.2, 0.1, result="x")
    events = fan_out_run([item(0), item(1, AgentStatus.FAILED), item(2)], 3)
    at = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, AgentFinished) and e.result.name == "writer[2]"
    )
    events.insert(at, ToolCallFinished("writer[2]", tool_call))
    spans = traced(events)
    root, agents, chats = check_tree(spans)
    assert set(agents) == {"planner", "writer", "writer[0]", "writer[1]", "writer[2]"}

    writer = agents["writer"]
    assert writer.parent_id == root.span_id
    assert (writer.start, writer.end) == (int(1000.5e9), int(1004.0e9))
    assert writer.attributes["agentops.fan_out.item_count"] == 3
    assert writer.attributes["agentops.fan_out.succeeded"] == 2
    assert writer.attributes["agentops.fan_out.failed"] == 1
    assert writer.attributes["agentops.fan_out.not_run"] == 0
    assert writer.attributes["gen_ai.usage.input_tokens"] == 30
    assert writer.attributes["agentops.cost_usd"] == pytest.approx(0.003)
    assert writer.attributes["gen_ai.request.model"] == "gpt-4o"
    assert writer.status == "ERROR" and writer.attributes["error.type"] == "_OTHER"
    assert writer.status_message == "1 of 3 items failed"
    assert "agentops.item.index" not in writer.attributes

    for index in range(3):
        span = agents[f"writer[{index}]"]
        assert span.name == "invoke_agent writer" and span.parent_id == writer.span_id
        assert span.attributes["gen_ai.agent.name"] == "writer"
        assert span.attributes["agentops.item.index"] == index
        assert "agentops.item" not in span.attributes  # content is off
        assert len(chats[f"writer[{index}]"]) == 1
    assert agents["writer[1]"].status == "ERROR"
    (search,) = by_operation(spans, "execute_tool")
    assert search.parent_id == agents["writer[2]"].span_id
    assert search.attributes["gen_ai.agent.name"] == "writer"


def test_a_small_item_is_content_and_a_large_one_is_never_on_its_span() -> None:
    small, large = item(0), item(1, item={"title": "x" * 2000})
    spans = traced(fan_out_run([small, large], 2), content=True)
    _, agents, _ = check_tree(spans)
    assert json.loads(agents["writer[0]"].attributes["agentops.item"]) == {"title": "t0"}
    assert "agentops.item" not in agents["writer[1]"].attributes
    assert agents["writer"].status == "UNSET"


def test_items_never_run_are_counted_and_the_cost_cap_named() -> None:
    capped = item(
        2,
        AgentStatus.SKIPPED,
        attempts=[],
        output=None,
        error="cost cap reached",
        skip_cause=SkipCause.COST_CAP,
        usage=Usage(),
        cost=0.0,
    )
    spans = traced(fan_out_run([item(0), item(1), capped], 5))
    root, agents, _ = check_tree(spans)
    writer = agents["writer"]
    assert writer.attributes["agentops.fan_out.skipped"] == 1
    assert writer.attributes["agentops.fan_out.not_run"] == 2
    assert writer.attributes["error.type"] == "cost_cap"
    assert "writer[2]" not in agents  # it never called: an event, like any skip
    (event,) = [e for e in root.events if e[0] == "agentops.agent.skipped"]
    assert event[2]["gen_ai.agent.name"] == "writer"
    assert event[2]["agentops.item.index"] == 2
    assert event[2]["agentops.skip.cause"] == "cost_cap"


def test_an_agent_routed_away_is_an_event_with_its_decision_and_no_failure() -> None:
    dependency = AgentResult(
        "editor",
        AgentStatus.SKIPPED,
        "gpt-4o",
        "openai",
        error="writer failed",
        skip_cause=SkipCause.DEPENDENCY,
        finished_at=1004.0,
    )
    events = fan_out_run([item(0)], 1, skipped=[routed_away()])
    quiet = traced(events)
    root, agents, _ = check_tree(quiet)
    assert "fix_bug" not in agents  # it never ran: no span, as for any skip
    assert root.status == "UNSET" and root.attributes["agentops.workflow_run.status"] == "succeeded"
    ((name, at, attributes),) = root.events
    assert name == "agentops.agent.skipped" and at == int(1000.6e9)
    assert attributes == {
        "gen_ai.agent.name": "fix_bug",
        "agentops.skip.cause": "routed",
        "agentops.decision.expression": "planner.output.kind == 'bug'",
        "agentops.decision.held": False,
    }  # what it read is model output: content, off here
    assert "feature" not in repr([s.attributes for s in quiet] + [s.events for s in quiet])

    loud = traced(
        fan_out_run([item(0, AgentStatus.FAILED)], 1, skipped=[routed_away(), dependency]),
        content=True,
    )
    root, _, _ = check_tree(loud)
    events_by_agent = {e[2]["gen_ai.agent.name"]: e[2] for e in root.events}
    routed = events_by_agent["fix_bug"]
    assert json.loads(routed["agentops.decision.values"]) == {"planner.output.kind": "feature"}
    assert routed["agentops.skip.reason"] == REASON
    assert events_by_agent["editor"] == {
        "gen_ai.agent.name": "editor",
        "agentops.skip.cause": "dependency",
        "agentops.skip.reason": "writer failed",
    }
    # The run failed for the fan-out; the routed agent is not one of those that did not succeed.
    assert root.status == "ERROR" and root.status_message == "2 of 4 agents did not succeed"


def test_spans_dropped_for_a_full_export_queue_are_counted_in_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()

    class Stalled(InMemorySpanExporter):
        """A collector that takes its time: the first export waits until released."""

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            release.wait(10)
            return super().export(spans)

    exporter = Stalled()
    session = TracingSession(exporter, endpoint="http://collector:4318/v1/traces", queue_size=8)
    tracer = session.run_tracer({})
    with caplog.at_level(logging.WARNING, logger="agentops.tracing"):
        for event in fan_out_run([item(i) for i in range(40)], 40):
            tracer(event)
        release.set()
        session.close()
    exported = len(exporter.get_finished_spans())
    made = 1 + 1 + 1 + 40 + 41  # workflow, planner, writer, items, chats
    assert exported < made
    (line,) = [r.getMessage() for r in caplog.records if r.name == "agentops.tracing"]
    assert line == (
        f"warning: {made - exported} span(s) were dropped: they were made faster than "
        "http://collector:4318/v1/traces took them and the export queue was full; "
        "raise OTEL_BSP_MAX_QUEUE_SIZE (now 8)"
    )


# --- a real run, against the test server -------------------------------------------------------


@pytest.fixture
def answering_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAITestServer]:
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    with OpenAITestServer(latency=0.01) as server:
        answer_the_flow(server)
        yield server


@pytest.mark.parametrize("content", [False, True])
def test_a_real_run_traces_its_fan_out_and_its_routing(
    answering_server: OpenAITestServer, content: bool
) -> None:
    exporter = InMemorySpanExporter()
    session = TracingSession(exporter, endpoint="memory", content=content)
    try:
        result = agentops.run(workflow_on(answering_server, ROUTED_FLOW), tracing=session)
    finally:
        session.close()
    assert result.status is RunStatus.SUCCEEDED  # a branch routed away is no failure
    spans = [view_of(span) for span in exporter.get_finished_spans()]
    root, agents, chats = check_tree(spans)
    assert set(agents) == {
        "planner",
        "writer",
        *(f"writer[{i}]" for i in range(4)),
        "triage",
        "plan_feature",
    }
    writer = result.agents["writer"]
    span = agents["writer"]
    assert span.attributes["agentops.fan_out.item_count"] == 4
    assert span.attributes["agentops.fan_out.succeeded"] == 4
    assert span.attributes["gen_ai.usage.output_tokens"] == writer.usage.output_tokens
    assert span.start == int(writer.started_at * 1e9)  # type: ignore[operator]
    assert span.end == int(writer.finished_at * 1e9)  # type: ignore[operator]
    for instance in writer.instances or []:
        item_span = agents[instance.name]
        assert item_span.attributes["agentops.item.index"] == instance.item_index
        assert item_span.attributes["gen_ai.usage.input_tokens"] == instance.usage.input_tokens
        assert len(chats[instance.name]) == len(instance.attempts) == 1
        if content:
            assert json.loads(item_span.attributes["agentops.item"]) == instance.item
        else:
            assert "agentops.item" not in item_span.attributes
    held = agents["plan_feature"].attributes
    assert held["agentops.decision.expression"] == "triage.output.label == 'feature'"
    assert held["agentops.decision.held"] is True
    ((name, _, routed),) = root.events
    assert name == "agentops.agent.skipped" and routed["gen_ai.agent.name"] == "fix_bug"
    assert routed["agentops.skip.cause"] == "routed" and routed["agentops.decision.held"] is False
    if content:
        assert json.loads(routed["agentops.decision.values"]) == {"triage.output.label": "feature"}
        assert routed["agentops.skip.reason"] == result.agents["fix_bug"].error
    else:
        assert "agentops.decision.values" not in routed and "agentops.skip.reason" not in routed
        assert "agentops.decision.values" not in held
