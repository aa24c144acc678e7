"""What runs in a Ray worker process: one agent's run, its events sent back as it goes.

``run_agent`` is the Ray task (a generator: Ray streams each ``Shipment`` it yields to the
driver as it is yielded). A Ray worker process runs one task at a time, and keeps what the
workflow needs between them: the workflow's providers (HTTP clients with their pools, or the
local model's worker processes, loaded once per process and model file), prices, Python
tools (imported from the job's working directory, where the workflow's folder travels) and
compiled output schemas, all built here from the workflow (``Workspace``, fetched from Ray's
object store once per process) and this process's environment (the variables the workflow
reads travel as the job's environment, never as task arguments). They live on one event
loop, in a thread of its own, for the life of the process.

The agent's run is ``runtime.agent_run.AgentRun``, exactly as in one process, with the
ledger's ``CallLimits`` (``ledger.LedgerLimits``) for its reservations and slots. Its events
are batched: the first one starts a ``FLUSH_SECONDS`` clock, and everything emitted until it
runs out travels in one shipment, with the ledger's latest snapshot; the last shipment
carries the settled ``AgentResult`` (with the node's id). A stop comes from the driver
through the ledger (``Ledger.follow``, which this process keeps one long call open on per
ledger, and which also brings the pauses a 429 on any node began): the run is cancelled, its attempt in flight recorded and settled, and the result goes
back as cancelled.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from agentops.cluster.ledger import LedgerLimits, News, Snapshot
from agentops.errors import describe_exception
from agentops.providers.registry import ProviderRegistry
from agentops.runtime.agent_run import AgentRun, RunContext
from agentops.runtime.cache import CallKeys
from agentops.runtime.events import AgentResult, AgentStatus, Event
from agentops.runtime.executor import InProcessExecutor
from agentops.runtime.limits import ProviderPauses
from agentops.runtime.messages import ChatRequest
from agentops.runtime.pricing import PriceBook
from agentops.runtime.provider import Route
from agentops.runtime.secrets import Secrets
from agentops.runtime.structured import OutputContract
from agentops.tools.catalog import ToolCatalog, load_catalog, used_tools
from agentops.workflow.loader import LoadedWorkflow
from agentops.workflow.spec import Workflow

FLUSH_SECONDS = 0.1  # events wait at most this long on the worker: the live view lags by no more
KEPT_WORKSPACES = 4  # workflows kept ready per process (a driver that runs several in one job)


@dataclass(frozen=True)
class Workspace:
    """What every agent run of one run or batch shares, put in Ray's object store once: the
    workflow as the driver checked it (schema files read), and its text."""

    workflow: Workflow
    source: str


@dataclass(frozen=True)
class AgentWork:
    """One agent's run, as data: what ``AgentRun`` is built from on the worker."""

    ledger: str  # which ledger (one per run or batch): this process follows its stops once
    holder: str  # this task attempt, in the ledger
    agent: str  # the workflow's agent (a fan-out item's agent): its tools
    route: Route
    request: ChatRequest
    result: AgentResult  # as far as it got: a run continued after a lost node keeps its attempts
    retries: int
    max_turns: int
    output: tuple[Any, int] | None  # the output schema and its re-asks
    tools: bool
    cap: float | None
    warned: frozenset[str] = frozenset()  # models the run already warned have no price
    keys: CallKeys | None = None  # how requests are keyed: recorded with each attempt (replays)


@dataclass(frozen=True)
class Shipment:
    """What a worker sends back at once: events, the ledger's latest snapshot, and (last) the result."""

    events: tuple[Event, ...]
    snapshot: Snapshot
    result: AgentResult | None = None


class _Prepared:
    """A workflow made ready in this process: providers, prices, tools, secrets, contracts."""

    def __init__(self, workspace: Workspace) -> None:
        workflow = workspace.workflow
        # No path: the folder is the working directory, where Ray unpacked the workflow's.
        self.loaded = LoadedWorkflow(workflow, workspace.source, None)
        self.workflow = workflow
        self.registry = ProviderRegistry(
            workflow, max_connections=workflow.policies.max_concurrency
        )
        self.prices = PriceBook(workflow.prices)
        self.secrets = Secrets()
        self._keyed: set[Route] = set()
        self._contracts: dict[str, OutputContract] = {}
        self._catalog: ToolCatalog | None = None

    def secrets_for(self, route: Route) -> Secrets:
        if route not in self._keyed:
            self._keyed.add(route)
            self.secrets.add(self.registry.api_keys([route]))
        return self.secrets

    def catalog(self) -> ToolCatalog:
        """Every tool an agent of the workflow uses, loaded once (Python tools imported here)."""
        if self._catalog is None:
            loaded = self.loaded
            agents = [a.name for a in self.workflow.agents if a.tools]
            self._catalog = load_catalog(
                loaded, self.registry.env, only=used_tools(loaded, agents), secrets=self.secrets
            )
        return self._catalog

    def contract(self, agent: str, output: tuple[Any, int] | None) -> OutputContract | None:
        if output is None:
            return None
        contract = self._contracts.get(agent)
        if contract is None:
            contract = self._contracts[agent] = OutputContract(*output)
        return contract


class _Follower:
    """What a ledger tells this process without being asked (``Ledger.follow``, one long call
    kept open per process, not one per task): the holders its driver stopped, and the pauses a
    429 on any node began, which every agent run of this process waits out before calling."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.pauses = ProviderPauses()
        self.stopped: dict[str, str] = {}  # a stop may come before its task starts here
        self.runs: dict[str, Callable[[str], None]] = {}
        self.gone = False
        # Held: a task the loop alone refers to may be garbage-collected mid-call.
        self._follow = asyncio.ensure_future(self.follow())

    async def follow(self) -> None:
        stops = pauses = 0
        try:
            while True:
                news: News = await self.ledger.follow.remote(stops, pauses)
                stops, pauses = news.stops, news.pauses
                for provider, seconds in news.state.paused:
                    self.pauses.pause(provider, seconds)
                for holder, reason in news.stopped:
                    self.stopped[holder] = reason
                    if holder in self.runs:
                        self.runs[holder](reason)
        except Exception:  # the ledger is gone with its driver: nobody waits for these runs
            self.gone = True
            for stop in list(self.runs.values()):
                stop("the driver is gone")

    def watch(self, holder: str, stop: Callable[[str], None]) -> None:
        self.runs[holder] = stop
        if holder in self.stopped:
            stop(self.stopped[holder])
        elif self.gone:
            stop("the driver is gone")

    def unwatch(self, holder: str) -> None:
        self.runs.pop(holder, None)


_prepared: dict[str, _Prepared] = {}  # by the workspace's object id, oldest first
_followers: dict[str, _Follower] = {}  # by ledger
_loop: asyncio.AbstractEventLoop | None = None


def _worker_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop, running in a daemon thread for the life of the process."""
    global _loop
    if _loop is None:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="agentops-agent-runs", daemon=True).start()
        _loop = loop
    return _loop


def _ready(key: str, workspace: Workspace | None) -> _Prepared:
    prepared = _prepared.get(key)
    if prepared is None:
        assert workspace is not None
        prepared = _prepared[key] = _Prepared(workspace)
        while len(_prepared) > KEPT_WORKSPACES:
            oldest = _prepared.pop(next(iter(_prepared)))
            asyncio.get_running_loop().create_task(oldest.registry.aclose())
    return prepared


def run_agent(workspace: list[Any], work: AgentWork, ledger: Any) -> Iterator[Shipment]:
    """The Ray task: run ``work`` on this process's loop, yielding its shipments as they come.

    ``workspace`` is ``[ObjectRef]`` (in a list, so Ray does not fetch it for every task):
    fetched only by the first task of this process that needs it."""
    import ray

    reference = workspace[0]
    key = reference.hex()
    fetched = None if key in _prepared else ray.get(reference)
    node = ray.get_runtime_context().get_node_id()
    out: queue.SimpleQueue[Shipment] = queue.SimpleQueue()
    asyncio.run_coroutine_threadsafe(_run(key, fetched, work, ledger, node, out), _worker_loop())
    while True:
        shipment = out.get()
        yield shipment
        if shipment.result is not None:
            return


class _Outbox:
    """Events of one agent run, sent in batches (see the module docstring)."""

    def __init__(self, out: queue.SimpleQueue[Shipment], limits: LedgerLimits) -> None:
        self.out = out
        self.limits = limits
        self.events: list[Event] = []
        self._timer: asyncio.TimerHandle | None = None

    def emit(self, event: Event) -> None:
        self.events.append(event)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        self._timer = None
        if self.events:
            events, self.events = tuple(self.events), []
            self.out.put(Shipment(events, self.limits.latest))

    def close(self, result: AgentResult) -> None:
        if self._timer is not None:
            self._timer.cancel()
        events, self.events = tuple(self.events), []
        self.out.put(Shipment(events, self.limits.latest, result))


async def _run(
    key: str,
    fetched: Workspace | None,
    work: AgentWork,
    ledger: Any,
    node: str,
    out: queue.SimpleQueue[Shipment],
) -> None:
    """Run ``work`` to a settled result and put it, last, on ``out``; this never raises."""
    follower = _followers.get(work.ledger)
    if follower is None:
        follower = _followers[work.ledger] = _Follower(ledger)
    limits = LedgerLimits(ledger, work.holder, work.cap, follower.pauses)
    outbox = _Outbox(out, limits)
    result = work.result
    result.node = node
    stopped: list[str] = []  # why the driver stopped this run, once it has
    stop: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_stop(why: str) -> None:
        if not stop.done():
            stop.set_result(why or "cancelled")

    follower.watch(work.holder, on_stop)
    tools = None
    scrub: Callable[[str], str] = str
    try:
        prepared = _ready(key, fetched)
        scrub = prepared.secrets_for(work.route).scrub
        context = RunContext(
            limits=limits,
            prices=prepared.prices,
            executor=InProcessExecutor(prepared.registry.get),
            emit=outbox.emit,
            backoff=prepared.workflow.policies.backoff,
            stop_reason=lambda: stopped[0] if stopped else None,
            scrub=scrub,
            warned_models=set(work.warned),
            keys=work.keys,
        )
        toolbox = None
        if work.tools:
            from agentops.tools.runtime import ToolRuntime

            tools = ToolRuntime(prepared.catalog(), [work.agent])
            await tools.start()
            toolbox = tools.for_agent(work.agent, outbox.emit, result.tool_calls)
        agent_run = AgentRun(
            context,
            work.route,
            work.request,
            result,
            retries=work.retries,
            max_turns=work.max_turns,
            tools=toolbox,
            output=prepared.contract(work.agent, work.output),
        )
        running = asyncio.ensure_future(agent_run.run())
        either: list[asyncio.Future[Any]] = [running, stop]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            stopped.append(stop.result())
            running.cancel()
            try:
                await running
            except asyncio.CancelledError:
                result.status = AgentStatus.CANCELLED
                result.error = stopped[0]
        else:
            running.result()
    # The boundary of one agent, as in the engine: whatever its run raises fails it.
    except BaseException as failure:
        result.status = AgentStatus.FAILED
        result.error = scrub(describe_exception(failure))
    finally:
        follower.unwatch(work.holder)
        if tools is not None:
            try:
                for event in await tools.aclose():
                    outbox.emit(event)
            except Exception:  # a server that will not close leaves its stderr unsent
                pass
        outbox.close(result)


__all__ = ["FLUSH_SECONDS", "AgentWork", "Shipment", "Workspace", "run_agent"]
