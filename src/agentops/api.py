"""The Python API: ``run`` / ``arun`` a workflow, ``resume`` / ``aresume`` a recorded run.

The CLI's ``run`` and ``resume`` are thin layers over these. Everything that can
be checked before spending money is checked here, before the first event:
the workflow, the inputs, where every agent's calls go, whether those
providers can call tools for the agents that have them, the tools themselves
(Python tools imported, ``${VAR}`` set, MCP servers started and listed),
prices under a cap, and that the history can take the run's writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentops.errors import Diagnostic, StoreError, WorkflowError
from agentops.providers.registry import ProviderRegistry
from agentops.runtime.budget import check_cap
from agentops.runtime.engine import Engine, RunOptions
from agentops.runtime.events import AgentResult, RunStatus, Subscriber, WorkflowResult
from agentops.runtime.executor import Executor
from agentops.runtime.pricing import PriceBook
from agentops.runtime.provider import Provider, Route
from agentops.runtime.secrets import Secrets
from agentops.tracing import SpanRef, open_tracing
from agentops.workflow.inputs import resolve_inputs
from agentops.workflow.loader import (
    LoadedWorkflow,
    load_workflow,
    load_workflow_text,
    resolve_schema_files,
    validate_workflow,
)
from agentops.workflow.spec import Workflow

if TYPE_CHECKING:
    from agentops.tools.catalog import ToolCatalog
    from agentops.tracing.session import TracingSession

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


async def arun(
    source: WorkflowSource,
    *,
    inputs: Mapping[str, Any] | None = None,
    db: str | Path | None = None,
    subscribers: Iterable[Subscriber] = (),
    provider: ProviderOverride = None,
    env: Mapping[str, str] | None = None,
    cost_cap: float | None = None,
    executor: Executor | None = None,
    control: Callable[[Engine], None] | None = None,
    otel: bool | None = None,
    tracing: TracingSession | None = None,
    trace_links: Sequence[SpanRef] = (),
    _resume: _ResumeContext | None = None,
) -> WorkflowResult:
    """Run a workflow and return per-agent status, output, tokens, cost and attempts.

    ``db``: record the run in this SQLite file (None: do not record). A file that cannot be
    written raises ``StoreError`` before the first call; one that fails mid-run stops the
    run, which then raises ``StoreError``.
    ``provider``: a Provider for every agent (e.g. ``FakeProvider``) or a mapping
    from provider name to Provider. ``control`` receives the engine before it
    starts (the CLI uses it to wire Ctrl-C to ``engine.stop``).
    ``executor``: carries out each provider call from its route and request
    (``executor.Executor``); None runs them in this process on the run's providers.
    ``otel``: True traces the run with OpenTelemetry (the ``[otel]`` extra), False
    never; None (the default) traces when an OTLP endpoint variable is set.
    ``tracing``: a session shared by several runs, with the spans each run's root links
    to in ``trace_links``; the caller closes it.
    """
    check_cap(cost_cap)
    reused = _resume.reused if _resume else {}
    prepared = prepare(source, inputs=inputs, provider=provider, env=env, reused=reused)
    for route in {
        prepared.routes[a.name] for a in prepared.workflow.agents if a.name not in reused
    }:
        prepared.registry.get(route)  # configuration errors surface before anything runs
    tools = None
    if (
        prepared.tools is not None
    ):  # MCP servers start now: one that cannot is exit 2, before any call
        from agentops.tools.runtime import ToolRuntime

        tools = ToolRuntime(
            prepared.tools, [a.name for a in prepared.workflow.agents if a.name not in reused]
        )
        try:
            await tools.start()
        except BaseException:
            await prepared.registry.aclose()
            raise
    store = None
    recorder = None
    tracer = None
    all_subscribers = list(subscribers)
    own_tracing = None
    try:
        own_tracing = open_tracing(otel) if tracing is None and otel is not False else None
        tracing = tracing or own_tracing
        if tracing is not None:
            from agentops.tracing.targets import chat_targets

            resumed = [_resume.trace] if _resume is not None and _resume.trace is not None else []
            tracer = tracing.run_tracer(
                chat_targets(prepared.routes.values(), prepared.registry.http_endpoint),
                links=[*resumed, *trace_links],
            )
            all_subscribers.append(tracer)
        if db is not None:
            from agentops.store import RunRecorder, SqliteHistoryWriter, open_store

            store = open_store(db)
            writer = SqliteHistoryWriter(store)
            # A file that cannot take the run's writes stops it here, before its first call.
            writer.check_recordable(prepared.workflow.name)
            recorder = RunRecorder(writer)
            all_subscribers.insert(0, recorder)
    except BaseException:
        if store is not None:
            store.close()
        if tools is not None:
            await tools.aclose()
        await prepared.registry.aclose()
        if own_tracing is not None:
            own_tracing.close()
        raise
    engine = Engine(
        prepared.workflow,
        routes=prepared.routes,
        providers=prepared.registry.get,
        prices=prepared.prices,
        options=RunOptions(
            inputs=prepared.inputs,
            source=prepared.loaded.source,
            source_path=prepared.loaded.path,
            reused=reused,
            resumed_from=_resume.workflow_run_id if _resume else None,
            spent_before=_resume.spent if _resume else 0.0,
            cost_cap=cost_cap,
            trace_id=tracer.ids.trace_id if tracer is not None else None,
            trace_span_id=tracer.ids.span_id if tracer is not None else None,
            secrets=prepared.secrets,
            start_workflow_run=recorder.start_workflow_run if recorder is not None else None,
        ),
        subscribers=all_subscribers,
        executor=executor,
        tools=tools,
    )
    if recorder is not None:
        # A history that fails mid-run stops the run: nothing more is spent unrecorded.
        recorder.stop = lambda _: engine.stop("the history could not be written", RunStatus.FAILED)
    if control is not None:
        control(engine)
    try:
        result = await engine.run()
    finally:
        if tools is not None:  # the engine closed them already, unless it never got that far
            await tools.aclose()
        await prepared.registry.aclose()
        if store is not None:
            store.close()
        if own_tracing is not None:  # in a thread: a second Ctrl-C can still exit at once
            await asyncio.to_thread(own_tracing.close)
    if recorder is not None and recorder.failure is not None:
        # one line, and never "recorded as workflow run N"
        what = "stopped" if recorder.stopped else "not recorded to its end"
        raise StoreError(f"run {what}: {recorder.failure}")
    return result


def run(source: WorkflowSource, **options: Any) -> WorkflowResult:
    """Blocking twin of ``arun``."""
    return asyncio.run(arun(source, **options))


@dataclass
class _ResumeContext:
    workflow_run_id: int
    reused: dict[str, AgentResult]
    spent: float
    trace: SpanRef | None = None  # the resumed run's workflow span, when it was traced


async def aresume(
    workflow_run_id: int,
    *,
    db: str | Path | None = None,
    **options: Any,
) -> WorkflowResult:
    """Continue a failed, interrupted or cost-capped run recorded in ``db``.

    Agents that succeeded are not called again: their recorded outputs feed
    their dependents. The workflow definition recorded with the run is used, and
    a new workflow run linked to the old one is recorded. The cost cap covers
    the whole chain: what the earlier runs spent counts against it.
    """
    from agentops.store import load_resume_state, open_store

    with open_store(db) as store:
        state = load_resume_state(store, workflow_run_id)
    loaded = load_workflow_text(
        state.source, filename=state.source_path or f"<workflow run {workflow_run_id}>"
    )
    loaded = replace(loaded, path=state.source_path)  # the resumed run keeps naming its file
    if options.get("cost_cap") is None:  # a cap given on the command line last time still holds
        options["cost_cap"] = state.cost_cap
    inputs = {**state.inputs, **dict(options.pop("inputs", None) or {})}
    trace = (
        SpanRef(state.trace_id, state.trace_span_id)
        if state.trace_id and state.trace_span_id
        else None
    )
    context = _ResumeContext(workflow_run_id, dict(state.succeeded), state.cost_spent, trace)
    return await arun(loaded, inputs=inputs, db=store.path, _resume=context, **options)


def resume(workflow_run_id: int, **options: Any) -> WorkflowResult:
    """Blocking twin of ``aresume``."""
    return asyncio.run(aresume(workflow_run_id, **options))
