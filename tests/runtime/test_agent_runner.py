"""The agent-runner seam: every agent's run (each fan-out item too) goes through the engine's
``AgentRunner``, which gets what the run holds as data, and whatever it leaves in the run's
result and emits through its context is what the engine settles and the history records."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator

import pytest

import agentops
from agentops.assembly import RunAssembly, prepare
from agentops.runtime.agent_run import AgentRun, InProcessAgentRunner
from agentops.runtime.events import AgentStatus, RunStatus
from agentops.testing.server import OpenAITestServer
from tests.support.engine import EventLog, workflow_on

SECTIONS = {
    "type": "object",
    "properties": {"sections": {"type": "array", "items": {"type": "string"}}},
    "required": ["sections"],
}


class RecordingRunner:
    """Runs each agent's run in this process, after checking that what would cross to
    another process pickles; keeps the names it ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    async def run(self, agent_run: AgentRun) -> None:
        self.ran.append(agent_run.name)
        data = (agent_run.route, agent_run.request, agent_run.result, agent_run.max_turns)
        assert pickle.loads(pickle.dumps(data))[1] == agent_run.request
        await InProcessAgentRunner().run(agent_run)


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01) as running:
        yield running


def test_every_agent_run_and_every_item_goes_through_the_runner(
    server: OpenAITestServer,
) -> None:
    server.answer_when("Outline", {"sections": ["a", "b"]})
    flow = workflow_on(
        server,
        [
            {"name": "plan", "task": "Outline it.", "output": {"schema": SECTIONS}},
            {"name": "write", "for_each": "plan.output.sections", "task": "Write {{ item }}."},
            {"name": "edit", "depends_on": "write", "task": "Join {{ write.output }}."},
        ],
    )
    runner = RecordingRunner()
    log = EventLog()

    async def main() -> agentops.WorkflowResult:
        assembly = RunAssembly(prepare(flow), subscribers=[log], agent_runner=runner)
        return await assembly.workflow_run(inputs={}).engine.run()

    result = asyncio.run(main())

    assert result.status is RunStatus.SUCCEEDED
    assert sorted(runner.ran) == ["edit", "plan", "write[0]", "write[1]"]
    assert result.agents["write"].value == [
        result.agents["write"].instances[i].output  # type: ignore[index]
        for i in range(2)
    ]
    assert len(server.requests) == 4


def test_a_runner_that_settles_the_result_itself_is_what_the_engine_reports(
    server: OpenAITestServer,
) -> None:
    class Refusing:
        async def run(self, agent_run: AgentRun) -> None:
            agent_run.result.status = AgentStatus.FAILED
            agent_run.result.error = "refused by the runner"

    flow = workflow_on(server, [{"name": "a"}, {"name": "b", "depends_on": "a"}])

    async def main() -> agentops.WorkflowResult:
        assembly = RunAssembly(prepare(flow), agent_runner=Refusing())
        return await assembly.workflow_run(inputs={}).engine.run()

    result = asyncio.run(main())
    assert result.agents["a"].error == "refused by the runner"
    assert result.agents["b"].status is AgentStatus.SKIPPED
    assert server.requests == []
