"""Retries, timeouts and cancellation against the local test server over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import agentops
from agentops.runtime.engine import Engine
from agentops.runtime.events import AgentFinished, AgentStatus, AttemptFailed, RunStatus
from agentops.testing.server import Fault, OpenAITestServer
from tests.support.engine import TEST_KEY, EventLog, workflow_on


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01) as running:
        yield running


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="status", status=500),
        Fault(kind="status", status=503),
        Fault(kind="status", status=408),
        Fault(kind="status", status=409),
        Fault(kind="status", status=429, retry_after=0.05),
        Fault(kind="drop"),
        Fault(kind="malformed"),
        Fault(kind="truncate"),
    ],
    ids=lambda f: f"{f.kind}-{f.status}",
)
def test_transient_errors_are_retried_and_every_attempt_recorded(
    server: OpenAITestServer, fault: Fault
) -> None:
    server.inject(fault, times=2)
    log = EventLog()
    result = agentops.run(
        workflow_on(server, [{"name": "a"}], policies={"retries": 2}), subscribers=[log]
    )
    agent = result.agents["a"]
    assert agent.status is AgentStatus.SUCCEEDED
    assert [a.status for a in agent.attempts] == ["failed", "failed", "succeeded"]
    assert len(server.requests) == 3  # the SDK's own retries are off: every attempt is ours
    assert agent.retries == 2
    assert [e.will_retry for e in log.of(AttemptFailed)] == [True, True]
    if fault.status:
        assert [a.http_status for a in agent.attempts[:2]] == [fault.status, fault.status]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(kind="status", status=401), "AuthenticationError"),
        (Fault(kind="status", status=400), "BadRequestError"),
        (Fault(kind="status", status=404), "ModelNotFoundError"),
        (Fault(kind="status", status=429, quota=True), "QuotaExhaustedError"),
    ],
    ids=["401", "400", "404", "quota"],
)
def test_permanent_errors_fail_at_once(
    server: OpenAITestServer, fault: Fault, expected: str
) -> None:
    server.inject(fault, times=5)
    result = agentops.run(workflow_on(server, [{"name": "a"}], policies={"retries": 4}))
    agent = result.agents["a"]
    assert agent.status is AgentStatus.FAILED
    assert len(agent.attempts) == 1 and len(server.requests) == 1
    assert agent.attempts[0].error_type == expected
    assert TEST_KEY not in (agent.error or "")


def test_retries_exhausted_fail_with_the_last_error(server: OpenAITestServer) -> None:
    server.inject(Fault(kind="status", status=500), times=10)
    result = agentops.run(
        workflow_on(server, [{"name": "a", "retries": 1}], policies={"retries": 5})
    )
    agent = result.agents["a"]
    assert agent.status is AgentStatus.FAILED
    assert len(server.requests) == 2  # the agent's retries override the policy
    assert "ServerError" in (agent.error or "")


def test_retry_after_is_honoured(server: OpenAITestServer) -> None:
    server.inject(Fault(kind="status", status=429, retry_after=0.6), times=1)
    log = EventLog()
    result = agentops.run(workflow_on(server, [{"name": "a"}]), subscribers=[log])
    assert result.agents["a"].status is AgentStatus.SUCCEEDED
    assert log.of(AttemptFailed)[0].retry_in == pytest.approx(0.6)
    first, second = server.requests
    assert second.started_at - first.finished_at >= 0.6


def test_a_hanging_attempt_times_out_and_is_retried(server: OpenAITestServer) -> None:
    server.inject(Fault(kind="hang", seconds=30), times=1)
    result = agentops.run(workflow_on(server, [{"name": "a", "timeout": 0.3}]))
    agent = result.agents["a"]
    assert agent.status is AgentStatus.SUCCEEDED
    assert agent.attempts[0].error_type == "ProviderTimeoutError"
    assert agent.attempts[0].duration < 5


def test_whole_run_timeout_cancels_in_flight_and_keeps_finished(server: OpenAITestServer) -> None:
    server.inject_for(lambda body: "hang" in str(body["messages"]), kind="hang", seconds=30)
    agents = [
        {"name": "quick"},
        {"name": "stuck", "task": "hang here"},
        {"name": "later", "depends_on": "stuck"},
    ]
    result = agentops.run(workflow_on(server, agents, policies={"timeout": 0.5}))
    assert result.status is RunStatus.FAILED
    assert result.agents["quick"].status is AgentStatus.SUCCEEDED
    assert result.agents["stuck"].status is AgentStatus.CANCELLED
    assert result.agents["later"].status is AgentStatus.CANCELLED
    assert "timed out" in (result.agents["stuck"].error or "")


def test_stop_cancels_in_flight_calls_and_records_them(server: OpenAITestServer) -> None:
    server.inject_for(lambda body: "hang" in str(body["messages"]), kind="hang", seconds=30)
    agents = [{"name": "quick"}, {"name": "stuck", "task": "hang here"}]
    engines: list[Engine] = []
    log = EventLog()

    async def scenario() -> agentops.WorkflowResult:
        workflow = workflow_on(server, agents)
        task = asyncio.ensure_future(
            agentops.arun(workflow, control=engines.append, subscribers=[log])
        )
        while len(server.requests) < 2 or not log.of(AgentFinished):
            await asyncio.sleep(0.01)
        engines[0].stop("interrupted by SIGINT")
        return await task

    result = asyncio.run(scenario())
    assert result.status is RunStatus.INTERRUPTED and result.exit_code == 130
    assert result.agents["quick"].status is AgentStatus.SUCCEEDED
    assert result.agents["stuck"].status is AgentStatus.CANCELLED
    assert result.agents["stuck"].error == "interrupted by SIGINT"
