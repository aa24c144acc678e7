"""The cost cap as a hard ceiling, pricing, and resume — over real HTTP and a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import agentops
from agentops.errors import CostCapError
from agentops.runtime.events import AgentStatus, CostWarning, RunStatus
from agentops.testing.server import Fault, OpenAITestServer
from tests.support.engine import EventLog, workflow_on

# Deliberately expensive, so that a handful of calls reach the cap.
PRICES = {"gpt-4o-mini": {"input": 1000.0, "output": 4000.0}}


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.05, reply_tokens=10_000) as running:
        yield running


def server_side_cost(server: OpenAITestServer) -> float:
    """What the provider would bill: the usage it reported on answered calls, at PRICES."""
    price = PRICES["gpt-4o-mini"]
    return sum(
        (r.usage["prompt_tokens"] * price["input"] + r.usage["completion_tokens"] * price["output"])
        / 1e6
        for r in server.requests
        if r.usage
    )


def test_spend_never_exceeds_the_cap_under_parallel_retries_and_long_outputs(
    server: OpenAITestServer,
) -> None:
    server.fault_rate = 0.3  # transient faults: 429 with Retry-After, 500, drops, truncated streams
    cap = 2.0
    agents = [{"name": f"writer{i}", "task": f"Write essay {i} at length."} for i in range(40)]
    agents.append({"name": "editor", "depends_on": {"any": [a["name"] for a in agents]}})
    workflow = workflow_on(
        server,
        agents,
        policies={"cost_cap": cap, "max_concurrency": 40, "retries": 3, "max_tokens": 120},
        prices=PRICES,
    )
    result = agentops.run(workflow, db=None)

    attempt_costs = [a.cost or 0.0 for agent in result.agents.values() for a in agent.attempts]
    assert sum(attempt_costs) <= cap
    assert result.cost <= cap
    assert server_side_cost(server) <= cap
    statuses = [agent.status for agent in result.agents.values()]
    assert AgentStatus.SUCCEEDED in statuses, "the cap should allow some work"
    skipped = [a for a in result.agents.values() if a.status is AgentStatus.SKIPPED]
    assert skipped and all(
        (a.error or "").startswith("cost cap") for a in skipped if a.name != "editor"
    )
    # Nearly all of the cap was usable: the reservations were released as calls settled.
    assert result.cost > cap / 4


def test_a_model_without_a_price_is_refused_under_a_cap_before_any_call(
    server: OpenAITestServer,
) -> None:
    workflow = workflow_on(
        server, [{"name": "a", "model": "my-private-model"}], policies={"cost_cap": 1.0}
    )
    with pytest.raises(CostCapError, match=r"my-private-model.*prices:"):
        agentops.run(workflow)
    assert server.requests == []


def test_without_a_cap_an_unknown_price_is_recorded_as_unknown_with_a_warning(
    server: OpenAITestServer,
) -> None:
    log = EventLog()
    result = agentops.run(
        workflow_on(server, [{"name": "a", "model": "my-private-model"}]), subscribers=[log]
    )
    assert result.agents["a"].status is AgentStatus.SUCCEEDED
    assert result.agents["a"].cost is None
    assert "my-private-model" in log.of(CostWarning)[0].message


def test_known_models_are_priced_from_genai_prices(server: OpenAITestServer) -> None:
    result = agentops.run(workflow_on(server, [{"name": "a", "model": "gpt-4o", "max_tokens": 50}]))
    agent = result.agents["a"]
    expected = (agent.usage.input_tokens * 2.5 + agent.usage.output_tokens * 10) / 1e6
    assert agent.cost == pytest.approx(expected)


def test_resume_calls_only_what_did_not_succeed(server: OpenAITestServer, tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    agents = [
        {"name": "a"},
        {"name": "b", "task": "flaky step", "retries": 0},
        {"name": "c", "depends_on": ["a", "b"]},
        {"name": "d", "depends_on": "a"},
    ]
    server.inject(Fault(kind="status", status=400), times=1)
    server.fault_match = lambda body: "flaky" in str(body["messages"])
    first = agentops.run(workflow_on(server, agents), db=db)
    assert first.status is RunStatus.FAILED
    assert first.agents["b"].status is AgentStatus.FAILED
    assert first.agents["c"].status is AgentStatus.SKIPPED
    calls_before = len(server.requests)

    second = agentops.resume(first.workflow_run_id, db=db)
    assert second.status is RunStatus.SUCCEEDED
    new_prompts = [r.body["messages"][-1]["content"] for r in server.requests[calls_before:]]
    assert len(new_prompts) == 2
    assert new_prompts[0].startswith("flaky step")
    # c got a's recorded output without a being called again.
    assert first.agents["a"].output and first.agents["a"].output in new_prompts[1]
    assert second.agents["a"].reused and second.agents["d"].reused

    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT id, resumed_from FROM workflow_runs ORDER BY id"
        ).fetchall()
    assert rows == [(first.workflow_run_id, None), (second.workflow_run_id, first.workflow_run_id)]


def test_an_agent_the_cap_refuses_is_skipped_without_ever_starting(
    server: OpenAITestServer,
) -> None:
    from agentops.runtime.events import AgentStarted

    log = EventLog()
    # One worst case (max_tokens x $4000 per million) is $4: it can never fit under $1.
    workflow = workflow_on(
        server, [{"name": "big", "max_tokens": 1000}], policies={"cost_cap": 1.0}, prices=PRICES
    )
    result = agentops.run(workflow, subscribers=[log])
    assert result.agents["big"].status is AgentStatus.SKIPPED
    assert result.agents["big"].error == "cost cap"
    assert log.of(AgentStarted) == []
    assert server.requests == []


def test_resume_keeps_the_cost_cap_given_on_the_command_line(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    db = tmp_path / "history.db"
    workflow = workflow_on(
        server, [{"name": "a", "max_tokens": 100}, {"name": "b", "max_tokens": 100}], prices=PRICES
    )
    # Each worst case is about $0.4 (+ the prompt): a $0.5 cap admits one call, not two.
    first = agentops.run(workflow, db=db, cost_cap=0.5)
    assert sorted(a.status for a in first.agents.values()) == [
        AgentStatus.SKIPPED,
        AgentStatus.SUCCEEDED,
    ]
    calls = len(server.requests)
    second = agentops.resume(first.workflow_run_id, db=db)
    assert second.cost_cap == 0.5
    assert len(server.requests) == calls, (
        "the cap (with the first run's spend) leaves no room for another call"
    )
    assert second.cost + first.cost <= 0.5


def test_a_deployment_named_in_the_environment_is_priced_as_the_model_written() -> None:
    from agentops.runtime.events import Usage
    from agentops.runtime.pricing import PriceBook
    from agentops.runtime.provider import Route
    from agentops.workflow.spec import Price

    route = Route("azure", "azure", "prod-gpt4o-eastus", priced_as="gpt-4o")
    assert PriceBook().cost(route, Usage(1_000_000, 0)) == pytest.approx(2.5)
    book = PriceBook({"my-model": Price(input=1.0, output=2.0)})
    assert (
        book.cost(
            Route("azure", "azure", "deployment-x", priced_as="my-model"), Usage(0, 1_000_000)
        )
        == 2.0
    )
    assert book.cost(Route("azure", "azure", "deployment-x"), Usage(1, 1)) is None


def test_a_resumed_run_still_names_the_workflow_file(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(workflow_on(server, [{"name": "a", "task": "flaky step", "retries": 0}]).source)
    db = tmp_path / "history.db"
    server.inject(Fault(kind="status", status=400), times=1)
    first = agentops.run(flow, db=db)
    second = agentops.resume(first.workflow_run_id, db=db)
    assert second.status is RunStatus.SUCCEEDED
    with sqlite3.connect(db) as connection:
        paths = [
            row[0]
            for row in connection.execute("SELECT source_path FROM workflow_runs ORDER BY id")
        ]
    assert paths == [str(flow), str(flow)]
