"""The Python API: ``run`` / ``arun`` a workflow, ``resume`` / ``aresume`` a recorded run.

The CLI's ``run`` and ``resume`` are thin layers over these. Everything that can
be checked before spending money is checked here, before the first event:
the workflow, the inputs, where every agent's calls go, whether those
providers can call tools for the agents that have them, the tools themselves
(Python tools imported, ``${VAR}`` set, MCP servers started and listed),
prices under a cap, and that the history can take the run's writes. The run
itself is put together by ``assembly``, as a batch's rows are.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentops.assembly import (
    ProviderOverride,
    RunAssembly,
    WorkflowSource,
    check_cache_placement,
    enter_cluster,
    enter_tracing,
    load,
    open_budget,
    open_cache,
    open_history,
    open_replay,
    prepare,
    start_tools,
)
from agentops.errors import StoreError, UsageError
from agentops.runtime.budget import check_cap
from agentops.runtime.engine import Engine
from agentops.runtime.events import AgentResult, Approval, Decision, Subscriber, WorkflowResult
from agentops.runtime.executor import Executor
from agentops.store.location import locate
from agentops.tracing import SpanRef
from agentops.workflow.changes import answer_changes
from agentops.workflow.graph import WorkflowGraph
from agentops.workflow.loader import LoadedWorkflow, load_workflow_text
from agentops.workflow.spec import CacheMode
from agentops.workflow.suggest import did_you_mean

if TYPE_CHECKING:
    from agentops.store.location import DbLocation
    from agentops.store.resume import ResumeState
    from agentops.tracing.session import TracingSession


async def arun(
    source: WorkflowSource,
    *,
    inputs: Mapping[str, Any] | None = None,
    db: str | Path | DbLocation | None = None,
    subscribers: Iterable[Subscriber] = (),
    provider: ProviderOverride = None,
    env: Mapping[str, str] | None = None,
    cost_cap: float | None = None,
    budget: str | None = None,
    executor: Executor | str | None = None,
    control: Callable[[Engine], None] | None = None,
    otel: bool | None = None,
    tracing: TracingSession | None = None,
    trace_links: Sequence[SpanRef] = (),
    cache: CacheMode | None = None,
    replay: int | None = None,
    ray_address: str | None = None,
    _resume: _ResumeContext | None = None,
) -> WorkflowResult:
    """Run a workflow and return per-agent status, output, tokens, cost and attempts.

    ``db``: record the run in this history: a SQLite file, or a ``postgresql://`` URL (None:
    do not record). A file that cannot be
    written raises ``StoreError`` before the first call; one that fails mid-run stops the
    run, which then raises ``StoreError``.
    ``budget``: a named budget (``agentops budget set``) in ``db`` that every attempt also
    reserves its worst case on (None: ``policies.budget``, if any).
    ``provider``: a Provider for every agent (e.g. ``FakeProvider``) or a mapping
    from provider name to Provider. ``control`` receives the engine before it
    starts (the CLI uses it to wire Ctrl-C to ``engine.stop``).
    ``executor``: carries out each provider call from its route and request
    (``executor.Executor``); None runs them in this process on the run's providers.
    ``executor="ray"`` runs each agent's run as a task on a Ray cluster (the ``[ray]``
    extra): the one at ``ray_address`` (else ``RAY_ADDRESS``, else a local Ray started for
    this run), or the one this process is connected to; ``"local"`` runs them here. None
    (or an ``Executor``) follows the workflow's ``policies.executor``, local by default.
    ``otel``: True traces the run with OpenTelemetry (the ``[otel]`` extra), False
    never; None (the default) traces when an OTLP endpoint variable is set.
    ``tracing``: a session shared by several runs, with the spans each run's root links
    to in ``trace_links``; the caller closes it.
    ``cache``: ``off``, ``read`` or ``read_write``, over the workflow's ``policies.cache``
    (the cache lives in ``db``). ``replay``: answer every model call from the attempts of this
    recorded workflow run in ``db`` (by agent and request key), never from the network.
    """
    check_cap(cost_cap)
    if (cache is not None or replay is not None) and db is None:
        raise UsageError("the response cache and replays live in the history: give db=")
    if replay is not None and cache not in (None, "off"):
        raise UsageError("--replay answers every call from the recording: leave --cache out")
    reused = _resume.reused if _resume else {}
    prepared = prepare(source, inputs=inputs, provider=provider, env=env, reused=reused)
    called = [a.name for a in prepared.workflow.agents if a.name not in reused]
    # Whatever was opened is closed on every way out, in reverse: the history, the tools, the
    # providers, then tracing (its own stack, entered first): its flush may wait on a collector.
    async with contextlib.AsyncExitStack() as opened:
        closed_last = await opened.enter_async_context(contextlib.AsyncExitStack())
        opened.push_async_callback(prepared.registry.aclose)
        for route in {prepared.routes[name] for name in called}:
            prepared.registry.get(route)  # configuration errors surface before anything runs
        # MCP servers start now: one that cannot is exit 2, before any call.
        tools = await start_tools(opened, prepared, called)
        if tracing is None:
            tracing = enter_tracing(closed_last, otel)
        where = executor if isinstance(executor, str) else None if executor is None else "local"
        history = answers = None
        if db is not None:
            reader, history = opened.enter_context(open_history(db))
            # A file that cannot take the run's writes stops it here, before its first call.
            history.check_recordable(prepared.workflow.name)
            if replay is not None:
                answers, executor = open_replay(reader, workflow_run=replay)
            else:
                answers = open_cache(reader, history, prepared.workflow, cache)
                if tools is not None:  # tools that say cache: true share it
                    tools.cache = answers
        check_cache_placement(prepared.workflow, where, answers)
        shared = open_budget(opened, db, budget or prepared.workflow.policies.budget)
        # On Ray: every agent's run a Ray task, every call on one ledger.
        limits, agent_runner = enter_cluster(
            opened,
            prepared,
            where,
            ray_address,
            cap=cost_cap if cost_cap is not None else prepared.workflow.policies.cost_cap,
            spent=_resume.spent if _resume else 0.0,
            exclude=[None if db is None else locate(db).path],
        ) or (None, None)
        if limits is not None and shared is not None:
            raise UsageError(
                "a named budget is not drawn on by agents running on Ray yet; "
                "run with the executor local, or without the budget"
            )
        assembly = RunAssembly(
            prepared,
            cost_cap=cost_cap,
            shared_budget=shared,
            subscribers=list(subscribers),
            history=history,
            tracing=tracing,
            links=trace_links,
            executor=None if isinstance(executor, str) else executor,
            tools=tools,
            cache=answers,
            limits=limits,
            agent_runner=agent_runner,
        )
        run = assembly.workflow_run(
            inputs=prepared.inputs,
            reused=reused,
            decisions=_resume.decisions if _resume else None,
            approvals=_resume.approvals if _resume else None,
            resumed_from=_resume.workflow_run_id if _resume else None,
            rerun_from=_resume.rerun_from if _resume else None,
            spent_before=_resume.spent if _resume else 0.0,
            links=[_resume.trace] if _resume is not None and _resume.trace is not None else [],
        )
        if control is not None:
            control(run.engine)
        result = await run.engine.run()
    recorder = run.recorder
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
    decisions: dict[str, Decision] = field(default_factory=dict)  # its ``when`` decisions
    approvals: dict[str, Approval] = field(default_factory=dict)  # its approvals not yet taken
    rerun_from: str | None = None  # a rerun from this agent (``arerun``), not a resume


async def aresume(
    workflow_run_id: int,
    *,
    db: str | Path | DbLocation | None = None,
    **options: Any,
) -> WorkflowResult:
    """Continue a failed, interrupted or cost-capped run recorded in ``db``.

    Agents that succeeded are not called again: their recorded outputs feed
    their dependents. The workflow definition recorded with the run is used, and
    a new workflow run linked to the old one is recorded. The cost cap covers
    the whole chain: what the earlier runs spent counts against it.
    """
    location = locate(db)  # the file or database itself, where ``db`` named the default
    with open_history(location) as (history, _):
        state = history.resume_state(workflow_run_id)
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
    context = _ResumeContext(
        workflow_run_id,
        dict(state.succeeded),
        state.cost_spent,
        trace,
        dict(state.decisions),
        dict(state.approvals),
    )
    return await arun(loaded, inputs=inputs, db=location, _resume=context, **options)


def resume(workflow_run_id: int, **options: Any) -> WorkflowResult:
    """Blocking twin of ``aresume``."""
    return asyncio.run(aresume(workflow_run_id, **options))


async def arerun(
    workflow_run_id: int,
    from_agent: str,
    source: WorkflowSource | None = None,
    *,
    db: str | Path | DbLocation | None = None,
    force: bool = False,
    **options: Any,
) -> WorkflowResult:
    """A new run of workflow run ``workflow_run_id`` (recorded in ``db``) from agent
    ``from_agent``: every agent that is not it and not downstream of it reuses its recorded
    output (no call, $0, marked reused); it and everything downstream run with ``source``.

    ``source``: the workflow as it is now (None: the recorded file, which must still match the
    recorded sha256). An agent whose output is reused but whose definition changed in a part
    that decides its answer (prompt, model, parameters, tools, schema) is refused, naming it,
    unless ``force``. The new run is linked to the old one; its cost cap starts afresh.
    """
    # The location itself (a URL keeps its password), not the reader's printable name of it.
    location = locate(db)
    with open_history(location) as (history, _):
        state = history.resume_state(workflow_run_id, rerun=True)
    recorded = load_workflow_text(
        state.source, filename=state.source_path or f"<workflow run {workflow_run_id}>"
    )
    loaded = _rerun_source(source, state, workflow_run_id)
    workflow = loaded.workflow
    names = [agent.name for agent in workflow.agents]
    if from_agent not in names:
        raise UsageError(
            f"--from {from_agent}: workflow {workflow.name!r} has no agent {from_agent!r}"
            f"{did_you_mean(from_agent, names)}"
        )
    rerun = WorkflowGraph(workflow).downstream(from_agent)
    reused = {
        key: result
        for key, result in state.succeeded.items()
        if result.agent_name in names and result.agent_name not in rerun
    }
    if not force:
        for name in dict.fromkeys(result.agent_name for result in reused.values()):
            changed = answer_changes(recorded.workflow, workflow, name)
            if changed:
                raise UsageError(
                    f"agent {name!r} changed since workflow run {workflow_run_id} "
                    f"({', '.join(changed)}), so its recorded output may not be what it answers "
                    f"now; rerun from it (--from {name}), or pass --force to reuse it anyway"
                )
    inputs = {**state.inputs, **dict(options.pop("inputs", None) or {})}
    trace = (
        SpanRef(state.trace_id, state.trace_span_id)
        if state.trace_id and state.trace_span_id
        else None
    )
    decisions = {name: d for name, d in state.decisions.items() if name in reused}
    context = _ResumeContext(workflow_run_id, reused, 0.0, trace, decisions, rerun_from=from_agent)
    return await arun(loaded, inputs=inputs, db=location, _resume=context, **options)


def rerun(workflow_run_id: int, from_agent: str, *args: Any, **options: Any) -> WorkflowResult:
    """Blocking twin of ``arerun``."""
    return asyncio.run(arerun(workflow_run_id, from_agent, *args, **options))


def _rerun_source(
    source: WorkflowSource | None, state: ResumeState, workflow_run_id: int
) -> LoadedWorkflow:
    """The workflow a rerun runs: ``source``, else the recorded file if it is unchanged."""
    if source is not None:
        return load(source)
    if state.source_path is None:
        raise UsageError(
            f"workflow run {workflow_run_id} was not run from a file; name the workflow file "
            "to rerun it with"
        )
    path = Path(state.source_path)
    if not path.is_file():
        raise UsageError(
            f"{path}, the workflow file of run {workflow_run_id}, is gone; name the file to "
            "rerun with"
        )
    loaded = load(path)
    sha = hashlib.sha256(loaded.source.encode("utf-8", "surrogatepass")).hexdigest()
    if state.definition_sha256 is not None and sha != state.definition_sha256:
        raise UsageError(
            f"{path} changed since workflow run {workflow_run_id} (its sha256 differs); name it "
            f"to rerun with what it says now: agentops rerun {workflow_run_id} --from AGENT {path}"
        )
    return loaded
