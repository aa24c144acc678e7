"""The executor seam as if across a process: a call is data in (the route and the request) and
data out (text pieces, then the response or the provider's error); the provider is rebuilt from
the route on the executing side. And the budget and call limits behind their protocols.

``WorkerExecutor`` is the double: its worker sees only pickled bytes, builds its own
``ProviderRegistry`` from the workflow's YAML text (as a remote worker would), and never sees
the calling side's providers or its ``on_text`` callback.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import agentops
from agentops.assembly import prepare
from agentops.errors import ProviderError, RateLimitError
from agentops.providers.fake import FakeProvider
from agentops.providers.registry import ProviderRegistry
from agentops.runtime.budget import Budget, InProcessBudget, Reservation
from agentops.runtime.engine import Engine
from agentops.runtime.events import AgentStatus, RunStatus, TokensStreamed, Usage, WorkflowResult
from agentops.runtime.limits import InProcessCallLimits
from agentops.runtime.messages import (
    ChatRequest,
    ChatResponse,
    ResponseFormat,
    ToolCall,
    ToolDefinition,
    assistant,
    system,
    tool_result,
    user,
)
from agentops.runtime.provider import Provider, Route, TextCallback
from agentops.testing.server import Fault, OpenAITestServer, call_tool_until
from agentops.workflow.loader import LoadedWorkflow, load_workflow_text
from tests.support.engine import TEST_KEY, TEST_KEY_ENV, EventLog, workflow_on
from tests.support.tool import tool_workflow, write_python_tools

ENV = {TEST_KEY_ENV: TEST_KEY}


class WorkerExecutor:
    """An ``Executor`` whose worker works from bytes alone; see the module docstring.

    ``fake``: builds the worker's own provider for every route (a FakeProvider run);
    None: the worker's registry builds real providers from the workflow and ``env``.
    """

    def __init__(
        self,
        source: str,
        env: Mapping[str, str],
        fake: Callable[[], Provider] | None = None,
    ) -> None:
        self.source = source
        self.env = dict(env)
        self.fake = fake
        self.registry: ProviderRegistry | None = None  # the worker's, built on its first call
        self.sent: list[bytes] = []  # every call as it crossed
        self.cancelled = 0  # calls the worker was told to abandon

    async def call(self, route: Route, request: ChatRequest, on_text: TextCallback) -> ChatResponse:
        call = pickle.dumps((route, request))
        self.sent.append(call)
        replies: asyncio.Queue[bytes] = asyncio.Queue()
        worker = asyncio.create_task(self._work(call, replies))
        try:
            while True:
                kind, value = pickle.loads(await replies.get())
                if kind == "text":
                    on_text(value)
                elif kind == "response":
                    return value  # type: ignore[no-any-return]
                else:
                    raise value
        finally:
            if not worker.done():  # the caller gave up (a timeout, a stop): so does the worker
                worker.cancel()
                self.cancelled += 1

    async def _work(self, call: bytes, replies: asyncio.Queue[bytes]) -> None:
        route, request = pickle.loads(call)
        provider = self._worker_registry().get(route)
        try:
            response = await provider.complete(
                request, lambda text: replies.put_nowait(pickle.dumps(("text", text)))
            )
        except ProviderError as error:
            replies.put_nowait(pickle.dumps(("error", error)))
        else:
            replies.put_nowait(pickle.dumps(("response", response)))

    def _worker_registry(self) -> ProviderRegistry:
        if self.registry is None:
            workflow = load_workflow_text(self.source, filename="worker.yaml").workflow
            override = self.fake() if self.fake is not None else None
            self.registry = ProviderRegistry(workflow, env=self.env, override=override)
        return self.registry

    async def aclose(self) -> None:
        if self.registry is not None:
            await self.registry.aclose()


def run_through(
    executor: WorkerExecutor, source: LoadedWorkflow | Path, **options: Any
) -> WorkflowResult:
    async def main() -> WorkflowResult:
        try:
            return await agentops.arun(source, executor=executor, **options)
        finally:
            await executor.aclose()

    return asyncio.run(main())


def streamed(log: EventLog, agent: str) -> str:
    return "".join(e.text for e in log.of(TokensStreamed) if e.name == agent)


def fake_flow(agents: list[dict[str, Any]], **extra: Any) -> LoadedWorkflow:
    document = {
        "name": "fake_flow",
        "agents": [{"model": "fake-model", "task": f"do {a['name']}", **a} for a in agents],
        **extra,
    }
    return load_workflow_text(yaml.safe_dump(document, sort_keys=False), filename="fake_flow.yaml")


# --- what crosses is plain data ------------------------------------------------------------------


def test_a_route_a_request_a_response_and_a_provider_error_round_trip_through_pickle() -> None:
    route = Route("azure", "azure", "my-deployment", priced_as="gpt-4o")
    request = ChatRequest(
        model="gpt-4o",
        messages=(
            system("be brief"),
            user("add 2 and 3"),
            assistant("", (ToolCall("call_1", "add", '{"a": 2, "b": 3}'),)),
            tool_result("call_1", "5"),
        ),
        max_tokens=64,
        temperature=0.2,
        timeout=30.0,
        agent="adder",
        tools=(ToolDefinition("add", "Add two numbers.", {"type": "object", "properties": {}}),),
        response_format=ResponseFormat("answer", {"type": "object"}, strict=False),
        stream=False,
    )
    response = ChatResponse(
        "5",
        Usage(12, 1, estimated=True),
        finish_reason="stop",
        tool_calls=(ToolCall("call_2", "add", "{}"),),
        model="gpt-4o-2024-08-06",
        refusal=None,
    )
    for value in (route, request, response, Reservation(0.25)):
        assert pickle.loads(pickle.dumps(value)) == value

    error = pickle.loads(pickle.dumps(RateLimitError("slow down", status=429, retry_after=2.5)))
    assert type(error) is RateLimitError and str(error) == "slow down"
    assert (error.status, error.retry_after, error.retryable) == (429, 2.5, True)


# --- a workflow run end to end through an executor that works from data ------------------------


def test_a_workflow_runs_on_fake_providers_the_worker_rebuilt_from_the_routes() -> None:
    loaded = fake_flow(
        [
            {"name": "research"},
            {"name": "critique"},
            {"name": "summary", "depends_on": ["research", "critique"]},
        ]
    )
    workers: list[FakeProvider] = []

    def worker_fake() -> FakeProvider:
        workers.append(FakeProvider({"research": "three long findings", "*": "fine"}))
        return workers[-1]

    calling_side = FakeProvider()  # routes the agents; never called
    executor = WorkerExecutor(loaded.source, {}, fake=worker_fake)
    log = EventLog()
    result = run_through(executor, loaded, provider=calling_side, subscribers=[log])

    assert result.status is RunStatus.SUCCEEDED
    assert {n: a.output for n, a in result.agents.items()} == {
        "research": "three long findings",
        "critique": "fine",
        "summary": "fine",
    }
    assert calling_side.requests == [] and len(workers) == 1
    assert sorted(r.agent or "" for r in workers[0].requests) == ["critique", "research", "summary"]
    # The summary's prompt, built on the calling side, crossed with the research in it.
    (summary,) = [r for r in workers[0].requests if r.agent == "summary"]
    assert "three long findings" in summary.messages[-1].content
    # Streamed pieces came back as data and reached the calling side's subscribers.
    assert all(r.stream for r in workers[0].requests)
    assert streamed(log, "research") == "three long findings"
    routes = [pickle.loads(sent)[0] for sent in executor.sent]
    assert routes == [Route("fake", "fake", "fake-model")] * 3
    assert executor.cancelled == 0


def test_tool_turns_cross_as_requests_and_their_tools_run_on_the_calling_side(
    tmp_path: Path,
) -> None:
    write_python_tools(tmp_path)
    try:
        with OpenAITestServer(reply=call_tool_until("add", {"a": 2, "b": 3})) as server:
            path = tool_workflow(
                tmp_path,
                server.base_url,
                {"add": {"python": "mytools:add"}},
                [{"name": "a", "tools": ["add"]}],
                key_env=TEST_KEY_ENV,
            )
            executor = WorkerExecutor(path.read_text(encoding="utf-8"), ENV)
            result = run_through(executor, path, env=ENV)
    finally:
        sys.modules.pop("mytools", None)

    agent = result.agents["a"]
    assert agent.status is AgentStatus.SUCCEEDED, agent.error
    assert agent.output == "done after 1 tool results"
    assert [c.tool for c in agent.tool_calls] == ["add"]
    requests = [pickle.loads(sent)[1] for sent in executor.sent]
    assert [t.name for t in requests[0].tools] == ["add"]
    assert [m.role for m in requests[1].messages][-2:] == ["assistant", "tool"]
    assert requests[1].messages[-1].content == "5"


def test_over_http_text_streams_back_errors_cross_and_a_timeout_cancels_the_worker() -> None:
    with OpenAITestServer(chunk_words=1) as server:
        server.inject(
            Fault(kind="status", status=429, retry_after=0.05),
            times=1,
            match=lambda body: "do limited" in str(body["messages"]),
        )
        server.inject(
            Fault(kind="hang", seconds=30),
            times=1,
            match=lambda body: "do slow" in str(body["messages"]),
        )
        loaded = workflow_on(
            server,
            [
                {"name": "plain"},
                {"name": "limited"},
                {"name": "slow", "timeout": 0.5},
                {"name": "last", "depends_on": ["plain", "limited", "slow"]},
            ],
        )
        executor = WorkerExecutor(loaded.source, ENV)
        log = EventLog()
        result = run_through(executor, loaded, env=ENV, subscribers=[log])

    assert result.status is RunStatus.SUCCEEDED, {n: a.error for n, a in result.agents.items()}
    for name, agent in result.agents.items():
        assert agent.output and streamed(log, name).endswith(agent.output)
        assert agent.usage.input_tokens > 0 and not agent.usage.estimated
    limited = result.agents["limited"].attempts
    assert [(a.status, a.error_type, a.http_status) for a in limited] == [
        ("failed", "RateLimitError", 429),
        ("succeeded", None, None),
    ]
    slow = result.agents["slow"].attempts
    assert [(a.status, a.error_type) for a in slow] == [
        ("failed", "ProviderTimeoutError"),
        ("succeeded", None),
    ]
    assert executor.cancelled == 1  # the timed-out call's worker was told to stop
    assert len(executor.sent) == 6 and len(server.requests) == 6


# --- the budget and call limits behind their protocols ---------------------------------------


@dataclass
class LedgerBudget:
    """A ``Budget`` that keeps a ledger of holds, as a store-backed budget would."""

    inner: InProcessBudget
    ledger: list[tuple[str, float]] = field(default_factory=list)

    @property
    def cap(self) -> float | None:
        return self.inner.cap

    @property
    def spent(self) -> float:
        return self.inner.spent

    @property
    def capped(self) -> bool:
        return self.inner.capped

    @property
    def refusal(self) -> str:
        return self.inner.refusal

    async def reserve(self, amount: float) -> Reservation | None:
        reservation = await self.inner.reserve(amount)
        self.ledger.append(("reserve" if reservation else "refused", amount))
        return reservation

    async def settle(self, reservation: Reservation, actual: float) -> None:
        self.ledger.append(("settle", actual))
        await self.inner.settle(reservation, actual)


@dataclass
class CountingLimits:
    """A ``CallLimits`` over the in-process one that counts slots taken and given back."""

    inner: InProcessCallLimits
    budget: Budget
    acquired: list[str] = field(default_factory=list)
    released: int = 0

    @property
    def in_flight(self) -> int:
        return self.inner.in_flight

    async def acquire(self, provider: str) -> None:
        await self.inner.acquire(provider)
        self.acquired.append(provider)

    def try_acquire(self, provider: str) -> bool:
        taken = self.inner.try_acquire(provider)
        if taken:
            self.acquired.append(provider)
        return taken

    def release(self) -> None:
        self.released += 1
        self.inner.release()

    def pause(self, provider: str, seconds: float) -> None:
        self.inner.pause(provider, seconds)


def test_the_engine_keeps_the_cost_cap_through_any_budget_and_call_limits() -> None:
    # Each call reserves its worst case, about $0.12 (1,000 output tokens at $100 a million,
    # and the prompt), and costs far less: under a $0.20 cap b and c fit one at a time, so the
    # second waits for the first's settlement while a slot stands free (each call takes 50 ms,
    # so b is still in flight when c reserves).
    loaded = fake_flow(
        [
            {"name": "a"},
            {"name": "b", "depends_on": "a"},
            {"name": "c", "depends_on": "a"},
        ],
        policies={"max_tokens": 1000},
        prices={"fake-model": {"input": 100.0, "output": 100.0}},  # USD per million tokens
    )
    prepared = prepare(loaded, provider=FakeProvider({"a": "x", "*": "y"}, latency=0.05))
    budget = LedgerBudget(InProcessBudget(0.2))
    limits = CountingLimits(InProcessCallLimits.create(2, None), budget)
    engine = Engine(
        prepared.workflow,
        routes=prepared.routes,
        providers=prepared.registry.get,
        prices=prepared.prices,
        limits=limits,
    )
    result = asyncio.run(engine.run())

    assert result.status is RunStatus.SUCCEEDED, {n: a.error for n, a in result.agents.items()}
    assert result.cost_cap == 0.2
    assert limits.acquired == ["fake"] * 3 and limits.released == 3 and limits.in_flight == 0
    assert [kind for kind, _ in budget.ledger] == ["reserve", "settle"] * 3
    reserved = [amount for kind, amount in budget.ledger if kind == "reserve"]
    settled = [amount for kind, amount in budget.ledger if kind == "settle"]
    assert all(0.1 < amount < 0.2 for amount in reserved) and all(0 < s < 0.01 for s in settled)
    assert budget.spent == pytest.approx(sum(settled))
    assert budget.spent == pytest.approx(sum(a.cost or 0.0 for a in result.agents.values()))
    assert budget.inner.reserved == 0
