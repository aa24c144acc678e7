"""How a workflow run is put together: prepared, given what it holds open, and assembled.

Single runs, resumes and every row of a batch are built here, so a new store,
executor or tracer plugs in at one place:

- ``prepare`` loads, routes and checks a workflow (``PreparedRun``): nothing is
  started or spent.
- ``start_tools``, ``enter_tracing`` and ``open_history`` open what a run (or a
  batch) holds: the MCP servers, the tracing session, the history. The first two put
  their closing on the caller's ``contextlib.AsyncExitStack`` as they open, and
  ``open_history`` is a context manager the caller enters, so every way out (success,
  a failed check, Ctrl-C) closes what was opened, in reverse order. ``open_history``
  is where another store plugs in (behind ``HistoryWriter``).
- ``RunAssembly`` holds what the workflow runs of one invocation share (providers,
  prices, tools, call limits, the history, tracing, an executor, the caller's
  subscribers); ``RunAssembly.workflow_run`` wires one run from it: the history's
  recorder, the subscribers, the tracer, ``RunOptions`` and the ``Engine``. Another
  executor, agent runner or tracer is given to it (``executor``, ``agent_runner``,
  ``tracing``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentops.errors import Diagnostic, StoreError, UsageError, WorkflowError
from agentops.providers.registry import ProviderRegistry
from agentops.runtime.cache import CallKeys, ResponseCache
from agentops.runtime.engine import Engine, RunOptions
from agentops.runtime.events import AgentResult, Approval, Decision, RunStatus, Subscriber
from agentops.runtime.executor import Executor
from agentops.runtime.limits import CallLimits
from agentops.runtime.pricing import PriceBook
from agentops.runtime.provider import Provider, Route
from agentops.runtime.secrets import Secrets
from agentops.tracing import SpanRef, open_tracing
from agentops.workflow.inputs import resolve_inputs
from agentops.workflow.loader import (
    LoadedWorkflow,
    load_workflow,
    resolve_schema_files,
    validate_workflow,
)
from agentops.workflow.spec import CacheMode, Workflow

if TYPE_CHECKING:
    from agentops.cluster.ledger import LedgerLimits
    from agentops.runtime.agent_run import AgentRunner, RunTools
    from agentops.runtime.budget import Budget
    from agentops.store.location import DbLocation
    from agentops.store.reader import HistoryReader
    from agentops.store.recorder import RunRecorder
    from agentops.store.writer import HistoryWriter
    from agentops.tools.catalog import ToolCatalog
    from agentops.tools.runtime import ToolRuntime
    from agentops.tracing.session import TracingSession
    from agentops.tracing.targets import ChatTarget

__all__ = [
    "AssembledRun",
    "PreparedRun",
    "ProviderOverride",
    "RunAssembly",
    "WorkflowSource",
    "check_cache_placement",
    "check_capabilities",
    "enter_cluster",
    "enter_tracing",
    "load",
    "open_budget",
    "open_cache",
    "open_history",
    "open_replay",
    "prepare",
    "start_tools",
]

WorkflowSource = str | Path | Workflow | LoadedWorkflow
ProviderOverride = Provider | Mapping[str, Provider] | None


@dataclass
class PreparedRun:
    """A workflow checked and routed, ready to run or to plan."""

    loaded: LoadedWorkflow
    inputs: dict[str, Any]
    registry: ProviderRegistry
    routes: dict[str, Route]
    prices: PriceBook
    tools: ToolCatalog | None = (
        None  # the tools of the agents that will be called; None: none has any
    )
    secrets: Secrets = field(
        default_factory=Secrets
    )  # provider keys and ${VAR} values: masked everywhere

    @property
    def workflow(self) -> Workflow:
        return self.loaded.workflow


def load(source: WorkflowSource) -> LoadedWorkflow:
    """A workflow from a path, YAML text in a LoadedWorkflow, or a Workflow built in Python."""
    if isinstance(source, LoadedWorkflow):
        return source
    if isinstance(source, Workflow):
        source = resolve_schema_files(source)
        validate_workflow(source)
        import yaml

        text = yaml.safe_dump(
            source.model_dump(mode="json", exclude_defaults=True, by_alias=True), sort_keys=False
        )
        return LoadedWorkflow(workflow=source, source=text, path=None)
    return load_workflow(source)


def prepare(
    source: WorkflowSource,
    *,
    inputs: Mapping[str, Any] | None = None,
    provider: ProviderOverride = None,
    env: Mapping[str, str] | None = None,
    reused: Collection[str] = (),
) -> PreparedRun:
    """Load, route and check; ``reused``: agents a resume takes from the earlier run (not called)."""
    loaded = load(source)
    workflow = loaded.workflow
    registry = ProviderRegistry(
        workflow,
        env=env,
        max_connections=workflow.policies.max_concurrency,
        override=provider,
    )
    routes = {agent.name: registry.route(agent) for agent in workflow.agents}
    inputs_resolved = resolve_inputs(workflow, inputs or {})
    with_tools = [a.name for a in workflow.agents if a.tools and a.name not in reused]
    with_schema = [a.name for a in workflow.agents if a.output is not None and a.name not in reused]
    if with_tools or with_schema:
        check_capabilities(loaded, registry, routes, [*with_tools, *with_schema])
    secrets = Secrets()
    secrets.add(registry.api_keys(routes[a.name] for a in workflow.agents if a.name not in reused))
    catalog = None
    if with_tools:
        from agentops.tools.catalog import load_catalog, used_tools

        catalog = load_catalog(
            loaded, registry.env, only=used_tools(loaded, with_tools), secrets=secrets
        )
    return PreparedRun(
        loaded=loaded,
        inputs=inputs_resolved,
        registry=registry,
        routes=routes,
        prices=PriceBook(workflow.prices),
        tools=catalog,
        secrets=secrets,
    )


def check_capabilities(
    loaded: LoadedWorkflow,
    registry: ProviderRegistry,
    routes: Mapping[str, Route],
    agents: Iterable[str],
) -> None:
    """Every agent with tools (or an output schema) is routed to a provider that can call them
    (or follow a JSON schema); WorkflowError otherwise."""
    problems: list[Diagnostic] = []
    workflow = loaded.workflow
    for index, agent in enumerate(workflow.agents):
        if agent.name not in agents:
            continue
        route = routes[agent.name]
        capabilities = registry.capabilities(route)
        missing = capabilities.lacks(tools=bool(agent.tools))
        if agent.output is not None and capabilities.lacks(json_schema=True):
            problems.append(
                loaded.diagnostic(
                    ("agents", index, "output"),
                    (
                        f"agent '{agent.name}' has an output schema, but provider '{route.provider}' ({route.kind}) cannot "
                        "produce JSON-schema output; remove output: or give it a provider that can "
                        "(openai, azure, local, or an OpenAI-compatible server under providers:)"
                    ),
                    at_key=True,
                )
            )
        if missing:
            why = f" ({capabilities.limits})" if capabilities.limits else ""
            problems.append(
                loaded.diagnostic(
                    ("agents", index, "tools"),
                    (
                        f"agent '{agent.name}' has tools, but provider '{route.provider}' ({route.kind}) cannot make "
                        f"{' or '.join(missing)}{why}; remove tools: from this agent or give it a provider that can "
                        "(openai, azure, or an OpenAI-compatible server under providers:)"
                    ),
                    at_key=True,
                )
            )
    if problems:
        raise WorkflowError(problems)


# --- what a run holds open --------------------------------------------------------------------


async def start_tools(
    stack: contextlib.AsyncExitStack, prepared: PreparedRun, agents: Iterable[str]
) -> ToolRuntime | None:
    """The tools of ``agents`` made ready, MCP servers started (None: the run has no tools).
    Their closing is on ``stack`` before they start, so servers that did start are closed
    even when another fails or the start is interrupted."""
    if prepared.tools is None:
        return None
    from agentops.tools.runtime import ToolRuntime

    tools = ToolRuntime(prepared.tools, agents)
    stack.push_async_callback(tools.aclose)
    await tools.start()
    return tools


def enter_tracing(stack: contextlib.AsyncExitStack, otel: bool | None) -> TracingSession | None:
    """A tracing session when tracing is on (``open_tracing``), closed by ``stack``."""
    if otel is False:
        return None
    session = open_tracing(otel)
    if session is not None:  # in a thread: a second Ctrl-C can still exit at once
        stack.push_async_callback(asyncio.to_thread, session.close)
    return session


def enter_cluster(
    stack: contextlib.AsyncExitStack,
    prepared: PreparedRun,
    executor: str | None,
    address: str | None,
    *,
    cap: float | None,
    spent: float = 0.0,
    exclude: Iterable[str | Path | None] = (),
) -> tuple[LedgerLimits, AgentRunner] | None:
    """Ray for the agent runs (``agentops.cluster``) when ``executor`` (else the workflow's
    ``policies.executor``) is ``ray``, left by ``stack`` as it was found: the call limits every
    call of the run or batch shares (the ledger, holding ``cap`` with ``spent`` already
    counted) and the runner that makes each agent's run a Ray task. None: they run in this
    process. ``exclude``: files of the workflow's folder that must not travel with it."""
    choice = executor or prepared.workflow.policies.executor
    if choice not in ("local", "ray"):
        raise UsageError(f"executor must be local or ray, not {choice!r}")
    if choice == "local":
        if address is not None:
            raise UsageError(
                f"--ray-address {address} is given, but the agents run in this process "
                "(executor local); add --executor ray"
            )
        return None
    if any(prepared.registry.overridden(route) for route in prepared.routes.values()):
        raise UsageError(
            "a provider given in Python (provider=) lives in this process and cannot run on "
            "Ray; use the executor local, or name the provider in the workflow"
        )
    from agentops.cluster.session import open_cluster

    cluster = open_cluster(prepared.loaded, prepared.registry, address, exclude=exclude)
    stack.push_async_callback(cluster.aclose)
    return cluster.start(cap=cap, spent=spent)


@contextlib.contextmanager
def open_history(
    db: str | Path | DbLocation | None,
) -> Iterator[tuple[HistoryReader, HistoryWriter]]:
    """The history in ``db`` (None: ``$AGENTOPS_DB`` or the default file; a path, ``sqlite:///``
    or ``postgresql://`` URL: see ``store.location``), created and migrated: the reader (what a
    batch or a resume reads back) and the writer every workflow run records through, both
    over the one ``Database`` that ``store.stores`` opens for it."""
    from agentops.store.sqlite_reader import SqliteHistoryReader
    from agentops.store.sqlite_writer import SqliteHistoryWriter
    from agentops.store.stores import open_database

    database = open_database(db)
    try:
        yield SqliteHistoryReader(database), SqliteHistoryWriter(database)
    finally:
        database.close()


def open_budget(
    stack: contextlib.ExitStack | contextlib.AsyncExitStack,
    db: str | Path | DbLocation | None,
    name: str | None,
) -> Budget | None:
    """The named budget ``name`` (None: none) in the history at ``db``, on its own connection
    (closed by ``stack``): what every attempt also reserves on. ``ConfigurationError`` when
    no such budget exists, before anything runs."""
    if name is None:
        return None
    if db is None:
        raise UsageError(f"budget {name!r} lives in a history: give the run one (db=… or --db)")
    from agentops.store.budgets import StoreBudget
    from agentops.store.stores import open_database

    database = open_database(db)
    stack.callback(database.close)
    budget = StoreBudget(database, name)
    stack.callback(budget.close)
    return budget


def open_cache(
    reader: HistoryReader,
    writer: HistoryWriter,
    workflow: Workflow,
    mode: CacheMode | None = None,
) -> ResponseCache | None:
    """The response cache of ``workflow``'s runs in the history: ``mode`` (``--cache``), else
    its ``policies.cache``; None when that is off."""
    from agentops.store.cache import HistoryCache

    chosen = mode or workflow.policies.cache
    if chosen == "off":
        return None
    return HistoryCache(
        reader,
        writer,
        workflow=workflow.name,
        mode=chosen,
        ttl=workflow.policies.cache_ttl_seconds,
    )


def check_cache_placement(
    workflow: Workflow, executor: str | None, cache: ResponseCache | None
) -> None:
    """The cache (or a replay) answers calls in this process: not with agents run on Ray, whose
    workers have no history to read. ``UsageError`` before any cluster is started."""
    if cache is not None and (executor or workflow.policies.executor) == "ray":
        raise UsageError(
            "the response cache (and --replay) answers calls in this process, and the agents "
            "would run on Ray; use --executor local with them, or --cache off"
        )


def open_replay(
    reader: HistoryReader, *, workflow_run: int | None = None, batch: int | None = None
) -> tuple[ResponseCache, Executor]:
    """A replay of a recorded workflow run (or of every run of a batch): the answers, and the
    executor that makes sure no call goes out. ``RunNotFoundError`` for an unknown id."""
    from agentops.runtime.cache import NoLiveCalls
    from agentops.store.cache import RecordedAnswers

    if batch is not None:
        reader.batch(batch)  # raises RunNotFoundError
        runs, recording = reader.batch_workflow_runs(batch), f"batch {batch}"
    else:
        assert workflow_run is not None
        reader.workflow_run_record(workflow_run)  # raises RunNotFoundError
        runs, recording = [workflow_run], f"workflow run {workflow_run}"
    answers = RecordedAnswers(reader.recorded_answers(runs), recording=recording)
    return answers, NoLiveCalls(recording)


# --- one workflow run, assembled ----------------------------------------------------------------


@dataclass
class AssembledRun:
    """One workflow run ready to start: its engine, and the recorder writing it to the history."""

    engine: Engine
    recorder: RunRecorder | None = None  # None: not recorded


@dataclass(frozen=True)
class RunAssembly:
    """What the workflow runs of one invocation share (a run or a resume has one run, a batch
    one per row); ``workflow_run`` assembles each. The caller opened the tools, the history
    and tracing, and closes them."""

    prepared: PreparedRun
    cost_cap: float | None = None  # None: the workflow's policy
    subscribers: Sequence[Subscriber] = ()  # the caller's (a terminal view)
    history: HistoryWriter | None = None  # None: runs are not recorded
    tracing: TracingSession | None = None  # None: runs are not traced
    links: Sequence[SpanRef] = ()  # spans every run's workflow span links to (a batch's)
    executor: Executor | None = None  # None: provider calls run in this process
    tools: RunTools | None = None
    close_tools: bool = True  # False: the tools outlive each run (a batch's rows share them)
    limits: CallLimits | None = None  # shared by every run (a batch); None: each run its own
    shared_budget: Budget | None = None  # a named budget (without ``limits``; see open_budget)
    batch_id: int | None = None
    # A history that fails mid-run must stop what it feeds; None: the run stops itself.
    history_failed: Callable[[StoreError], None] | None = None
    # Answers calls before they are made: the response cache, or a replayed recording.
    cache: ResponseCache | None = None
    agent_runner: AgentRunner | None = None  # None: every agent's run runs in this process

    @cached_property
    def _keys(self) -> CallKeys:
        """How each provider's endpoint is named in a request's key (``runtime.cache``)."""
        prepared = self.prepared
        return CallKeys(
            {
                route.provider: prepared.registry.call_identity(route)
                for route in prepared.routes.values()
            }
        )

    @cached_property
    def _trace_targets(self) -> dict[str, ChatTarget]:
        from agentops.tracing.targets import chat_targets

        prepared = self.prepared
        return chat_targets(prepared.routes.values(), prepared.registry.http_endpoint)

    def check_prices(self) -> None:
        """Under a cost cap every model needs a price (``CostCapError``). A run checks this as
        it starts; a batch asks first, before it is recorded."""
        self._engine(RunOptions(cost_cap=self.cost_cap)).check_prices()

    def workflow_run(
        self,
        *,
        inputs: Mapping[str, Any],
        reused: Mapping[str, AgentResult] | None = None,
        decisions: Mapping[str, Decision] | None = None,
        resumed_from: int | None = None,
        rerun_from: str | None = None,
        spent_before: float = 0.0,
        batch_row: int | None = None,
        links: Sequence[SpanRef] = (),
        approvals: Mapping[str, Approval] | None = None,
    ) -> AssembledRun:
        """One workflow run: its recorder (first, so the history has every event), the
        caller's subscribers, its tracer (its workflow span links to ``links``, then to the
        assembly's), its options, its engine."""
        prepared = self.prepared
        subscribers: list[Subscriber] = list(self.subscribers)
        recorder = None
        if self.history is not None:
            from agentops.store import RunRecorder

            recorder = RunRecorder(self.history, stop=self.history_failed)
            subscribers.insert(0, recorder)
        tracer = None
        if self.tracing is not None:
            tracer = self.tracing.run_tracer(self._trace_targets, links=[*links, *self.links])
            subscribers.append(tracer)
        options = RunOptions(
            inputs=inputs,
            source=prepared.loaded.source,
            source_path=prepared.loaded.path,
            reused=reused or {},
            decisions=decisions or {},
            approvals=approvals or {},
            resumed_from=resumed_from,
            rerun_from=rerun_from,
            spent_before=spent_before,
            cost_cap=self.cost_cap,
            batch_id=self.batch_id,
            batch_row=batch_row,
            trace_id=tracer.ids.trace_id if tracer is not None else None,
            trace_span_id=tracer.ids.span_id if tracer is not None else None,
            secrets=prepared.secrets,
            start_workflow_run=recorder.start_workflow_run if recorder is not None else None,
            shared_budget=self.shared_budget,
            # Keys are recorded with each attempt (a replay matches on them): a run that is not
            # recorded and has no cache computes none, and its attempts hold none.
            keys=self._keys if self.history is not None or self.cache is not None else None,
            cache=self.cache,
        )
        engine = self._engine(options, subscribers)
        if recorder is not None and self.history_failed is None:
            # A history that fails mid-run stops the run: nothing more is spent unrecorded.
            recorder.stop = lambda _: engine.stop(
                "the history could not be written", RunStatus.FAILED
            )
        return AssembledRun(engine, recorder)

    def _engine(self, options: RunOptions, subscribers: Iterable[Subscriber] = ()) -> Engine:
        prepared = self.prepared
        return Engine(
            prepared.workflow,
            routes=prepared.routes,
            providers=prepared.registry.get,
            prices=prepared.prices,
            options=options,
            subscribers=subscribers,
            executor=self.executor,
            tools=self.tools,
            limits=self.limits,
            close_tools=self.close_tools,
            agent_runner=self.agent_runner,
        )
