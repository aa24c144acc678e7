"""Loops and approvals in the terminal: the live view's row of a loop's member reads its
iteration while the loop runs and how many ran once it ends, its figures every iteration's;
the plain lines announce each iteration and why the loop ended; an agent waiting for a person
reads so. Fed the events of real runs against the test server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import agentops
from agentops.runtime.events import AgentFinished, IterationStarted, LoopFinished
from agentops.testing.server import OpenAITestServer
from agentops.ui.live import LiveReporter
from agentops.ui.plain import PlainLines
from tests.support.engine import TEST_KEY, TEST_KEY_ENV, EventLog, workflow_on
from tests.support.loops import APPROVE, REJECT, refine_agents, refine_loop
from tests.support.ui import FixedClock, feed, render, row, text_console


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAITestServer]:
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    with OpenAITestServer(latency=0.01) as running:
        yield running


def events_of(server: OpenAITestServer, agents: list[dict[str, Any]], **extra: Any) -> list[Any]:
    log = EventLog()
    agentops.run(workflow_on(server, agents, **extra), subscribers=[log], otel=False)
    return log.events


def test_plain_lines_announce_each_iteration_and_why_the_loop_ended(
    server: OpenAITestServer,
) -> None:
    server.answer_in_turn("Review this draft", [REJECT, APPROVE])
    lines = [
        line
        for event in events_of(server, refine_agents(), loops=refine_loop())
        for line in PlainLines()(event)
    ]
    assert "loop refine: iteration 1 of at most 3" in lines
    assert "loop refine: iteration 2 of at most 3" in lines
    assert "loop refine ended after 2 iterations: until held at iteration 2" in lines
    assert any(line.startswith("draft#2 succeeded in ") for line in lines)
    member = next(line for line in lines if line.startswith("draft succeeded"))
    assert member.startswith("draft succeeded after 2 iterations: ")
    assert lines.index("loop refine ended after 2 iterations: until held at iteration 2") < (
        lines.index(member)
    )


def test_the_live_row_of_a_member_reads_its_iteration_then_how_many_ran(
    server: OpenAITestServer,
) -> None:
    server.answer_in_turn("Review this draft", [REJECT, APPROVE])
    events = events_of(server, refine_agents(), loops=refine_loop())
    reporter = LiveReporter(text_console(terminal=True, width=140), clock=FixedClock(2e9))
    second = next(
        i for i, e in enumerate(events) if isinstance(e, IterationStarted) and e.iteration == 2
    )
    feed(reporter, events[: second + 1])
    view = render(reporter, width=140)
    assert "iteration 2/3" in row(view, "draft")
    assert "iteration 2/3" in row(view, "critic")
    first_draft = next(
        e.result for e in events if isinstance(e, AgentFinished) and e.result.name == "draft#1"
    )
    assert f"{first_draft.usage.input_tokens}+{first_draft.usage.output_tokens}" in row(
        view, "draft"
    )
    end = next(i for i, e in enumerate(events) if isinstance(e, LoopFinished))
    feed(reporter, events[end:])
    view = render(reporter, width=140)
    draft = next(
        e.result for e in events if isinstance(e, AgentFinished) and e.result.name == "draft"
    )
    assert row(view, "draft").startswith("draft succeeded after 2 iterations")
    assert f"{draft.usage.input_tokens}+{draft.usage.output_tokens}" in row(view, "draft")


def test_an_agent_waiting_for_approval_reads_so_in_both_views(server: OpenAITestServer) -> None:
    agents = [
        {"name": "draft", "task": "Draft."},
        {"name": "publish", "depends_on": "draft", "approval": "after", "task": "Publish."},
        {"name": "announce", "depends_on": "publish", "task": "Announce."},
    ]
    events = events_of(server, agents)
    lines = [line for event in events for line in PlainLines()(event)]
    assert "publish waits for approval (after: its answer)" in lines
    assert "announce waiting: waits for the approval of publish" in lines
    reporter = LiveReporter(text_console(terminal=True, width=140), clock=FixedClock(2e9))
    feed(reporter, events[:-1])
    view = render(reporter, width=140)
    assert row(view, "publish").startswith("publish waiting for approval")
