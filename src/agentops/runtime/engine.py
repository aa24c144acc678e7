"""The scheduler: start each agent the moment its dependency condition is decided.

There are no batches or levels. When an agent settles, each dependent's count
of unsettled dependencies drops; at zero its condition is evaluated over the
succeeded set and it either starts or is skipped. One agent's run (its turns,
attempts, cost reservations and tool calls) is ``agent_run.AgentRun``, built
by ``agent_setup.AgentSetup`` (prompt, tools, request, output contract); the
engine owns what they share (``RunContext``): the call limits (the budget, and
the slots that cap model calls in flight, never held while waiting on
dependencies or backing off, so they cannot deadlock) and the executor that
carries out each call.

Two decisions are made at run time (``workflow.expressions``): an agent with
``when`` is routed away (skipped, cause ``routed``) when it is false, and an
agent with ``for_each`` runs once per item of an upstream list, each instance
(``writer[2]``) an agent run of its own, started as a slot frees, its output the
list of theirs. Routing away is not a failure: a run whose only skips were
routed succeeds.

A loop (``loops:``) runs its members as one unit once every dependency they have
outside it has settled: iteration after iteration, each member's run an instance
of it (``draft#2``) settled as it ends, in dependency order, until ``until`` holds
after an iteration or ``max_iterations`` have run. Then each member settles at
once with its last iteration's answer (or fails, with the loop), and only then
do agents outside that depend on a member start.

An agent with ``approval:`` waits for a person: ``before``, instead of calling its
model it settles ``waiting_approval`` with its rendered prompt; ``after``, it runs
and settles ``waiting_approval`` with its answer. Either way its dependents do not
start, other branches go on, and the run ends ``waiting``. A resume passes the
decisions made since (``RunOptions.approvals``): approved runs it (before) or
releases the answer (after, never asked again), rejected fails it, revise asks
again with the feedback and waits again.

The engine imports neither storage nor the terminal UI: it emits ``events``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from agentops.errors import CostCapError, describe_exception
from agentops.runtime.agent_run import (
    COST_CAP_REASON,
    AgentRun,
    AgentRunner,
    InProcessAgentRunner,
    RunContext,
    RunTools,
)
from agentops.runtime.agent_setup import AgentSetup
from agentops.runtime.budget import CURRENT_WORKFLOW_RUN, Budget
from agentops.runtime.cache import CallKeys, ResponseCache
from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStatus,
    Approval,
    ApprovalRequest,
    Decision,
    Event,
    FanOutStarted,
    IterationStarted,
    LoopFinished,
    RunStatus,
    SkipCause,
    Subscriber,
    WorkflowFinished,
    WorkflowResult,
    WorkflowStarted,
    instance_key,
    iteration_key,
    wants_tokens,
)
from agentops.runtime.executor import Executor, InProcessExecutor, ProviderFactory
from agentops.runtime.fan_out import finish_fan_out, items_of
from agentops.runtime.limits import CallLimits, InProcessCallLimits
from agentops.runtime.pricing import PriceBook
from agentops.runtime.prompts import prompt_text
from agentops.runtime.provider import Route
from agentops.runtime.secrets import Secrets
from agentops.workflow.expressions import (
    Expression,
    ExpressionError,
    ItemScope,
    Scope,
    parse_expression,
)
from agentops.workflow.graph import WorkflowGraph, condition_holds, unmet_reason
from agentops.workflow.schemas import as_text
from agentops.workflow.spec import LoopSpec, Workflow
from agentops.workflow.templates import Previous

logger = logging.getLogger("agentops")

PREPARED_AT_ONCE = 64
"""A fan-out's items whose runs are built together (``Engine._fan_out``): few enough that
the built runs waiting cost nothing to hold, enough that their code stays warm in the CPU."""

__all__ = ["COST_CAP_REASON", "Engine", "RunOptions"]


@dataclass
class RunOptions:
    """Everything a run needs beside the workflow; built by ``api``."""

    inputs: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    source_path: str | None = None
    # Results taken from the runs this one resumes (fan-out instances under ``writer[2]``), and
    # the ``when`` decisions they made: resuming never re-evaluates a routing decision.
    reused: Mapping[str, AgentResult] = field(default_factory=dict)
    decisions: Mapping[str, Decision] = field(default_factory=dict)
    # The approvals of the run this one resumes, by agent (decided or still pending).
    approvals: Mapping[str, Approval] = field(default_factory=dict)
    resumed_from: int | None = None
    rerun_from: str | None = None  # a rerun of ``resumed_from`` from this agent, not a resume
    spent_before: float = 0.0  # cost already spent by the runs this one resumes
    cost_cap: float | None = None  # None: the workflow's policy
    batch_id: int | None = None  # this run is row ``batch_row`` of that batch
    batch_row: int | None = None
    trace_id: str | None = None  # the OpenTelemetry trace this run's spans go to (see ``tracing``)
    trace_span_id: str | None = None
    secrets: Secrets = field(default_factory=Secrets)  # masked in every failure reason
    # Records the run's start in a history and answers its workflow run id (None: not
    # recorded); called before WorkflowStarted is emitted, so the id is on the result.
    start_workflow_run: Callable[[WorkflowStarted], int | None] | None = None
    # A budget other runs draw on too (a named budget in the store): every attempt reserves
    # its worst case on it as well as under the cost cap (ignored when ``limits`` are given).
    shared_budget: Budget | None = None
    # How each call's request is named (recorded with its attempts), and the response cache
    # (or a replayed recording) that answers calls before they are made; None: neither.
    keys: CallKeys | None = None
    cache: ResponseCache | None = None


class Engine:
    """Runs one workflow once. Use ``await Engine(...).run()``; ``stop()`` ends it early.

    ``providers`` serves the default ``InProcessExecutor``; an ``executor`` given
    builds its own providers from the routes. ``limits``: the ``CallLimits``
    shared with other workflow runs (a batch); None makes this run's own.
    ``agent_runner`` carries out each agent's run (None: here, ``InProcessAgentRunner``).
    """

    def __init__(
        self,
        workflow: Workflow,
        *,
        routes: Mapping[str, Route],
        providers: ProviderFactory,
        prices: PriceBook,
        options: RunOptions | None = None,
        subscribers: Iterable[Subscriber] = (),
        executor: Executor | None = None,
        tools: RunTools | None = None,
        limits: CallLimits | None = None,
        close_tools: bool = True,
        agent_runner: AgentRunner | None = None,
    ) -> None:
        self.workflow = workflow
        self.graph = WorkflowGraph(workflow)
        self.routes = routes
        self.providers = providers
        self.prices = prices
        self.options = _whole_loops_only(workflow, options or RunOptions())
        self.subscribers = list(subscribers)
        self.executor = executor or InProcessExecutor(providers)
        self.agent_runner = agent_runner or InProcessAgentRunner()  # where each agent run runs
        self.tools = tools  # started by the caller; closed here before the run is reported finished
        self._close_tools = (
            close_tools  # False: a batch shares them across its rows and closes them
        )
        policies = workflow.policies
        cap = self.options.cost_cap if self.options.cost_cap is not None else policies.cost_cap
        # A batch passes the limits every row shares; a run on its own makes its own.
        self.limits: CallLimits = limits or InProcessCallLimits.create(
            policies.max_concurrency, cap, self.options.spent_before, self.options.shared_budget
        )
        self.budget = self.limits.budget
        self.results: dict[str, AgentResult] = {}
        self._agents = {agent.name: agent for agent in workflow.agents}
        self._when = {a.name: _parsed(a.when) for a in workflow.agents if a.when}
        self._approval = {
            a.name: ApprovalRequest(spec.mode, spec.timeout, spec.on_timeout)
            for a in workflow.agents
            if (spec := a.approval_spec) is not None
        }
        self._for_each = {a.name: _parsed(a.for_each) for a in workflow.agents if a.for_each}
        # The agents each fan-out's list comes from, worked out once rather than per item.
        self._fed = {
            name: source.agents()
            for name, source in self._for_each.items()
            if isinstance(source, Expression)
        }
        self._succeeded: set[str] = set()
        self._remaining = {name: len(deps) for name, deps in self.graph.dependencies.items()}
        self._loops = {loop.name: loop for loop in workflow.loops}
        self._loop_of = {member: loop for loop in workflow.loops for member in loop.agents}
        self._until = {loop.name: _parsed(loop.until) for loop in workflow.loops if loop.until}
        self._loop_levels = {loop.name: _levels(loop, self.graph) for loop in workflow.loops}
        # A loop starts once every agent outside it that a member depends on has settled.
        self._loop_waiting = {
            loop.name: {
                dep
                for member in loop.agents
                for dep in self.graph.dependencies[member]
                if dep not in loop.agents
            }
            for loop in workflow.loops
        }
        self._loops_started: set[str] = set()
        self._loops_ready: deque[str] = deque()
        self._task_group: asyncio.TaskGroup | None = None
        self._main_task: asyncio.Task[Any] | None = None
        self._stop_reason: str | None = None
        self._stop_status = RunStatus.INTERRUPTED
        self._context = RunContext(
            limits=self.limits,
            prices=prices,
            executor=self.executor,
            emit=self._emit,
            backoff=policies.backoff,
            stop_reason=lambda: self._stop_reason,
            scrub=self.options.secrets.scrub,
            keys=self.options.keys,
            cache=self.options.cache,
            listening=bool(self.subscribers),
        )
        self._setup = AgentSetup(
            workflow,
            routes,
            self._context,
            inputs=self.options.inputs,
            tools=tools,
            stream=any(wants_tokens(subscriber) for subscriber in self.subscribers),
            reused=self.options.reused,
        )

    # --- public ---------------------------------------------------------------

    def check_prices(self) -> None:
        """Under a cost cap every model must have a price, or the cap could not be kept."""
        if not self.budget.capped:
            return
        unknown = sorted(
            {
                f"{self.routes[a.name].provider}:{self.routes[a.name].model}"
                for a in self.workflow.agents
                if a.name not in self.options.reused
                and not self.prices.is_known(self.routes[a.name])
            }
        )
        if unknown:
            first = unknown[0].split(":", 1)[1]
            cap = self.budget.cap
            what = f"cost_cap ${cap:g}" if cap is not None else self.budget.refusal
            raise CostCapError(
                f"no known price for {', '.join(unknown)}, so {what} cannot be guaranteed; add it "
                f"under prices: (e.g. prices: {{{first}: {{input: 0.5, output: 1.5}}}} in USD per "
                f"million tokens) or remove {'cost_cap' if cap is not None else 'the budget'}"
            )

    def stop(self, reason: str, status: RunStatus = RunStatus.INTERRUPTED) -> None:
        """End the run early: in-flight calls are cancelled and recorded as such."""
        if self._stop_reason is None:
            self._stop_reason = reason
            self._stop_status = status
        if self._main_task is not None and not self._main_task.done():
            self._main_task.cancel()

    async def run(self) -> WorkflowResult:
        self.check_prices()
        self._main_task = asyncio.current_task()
        started_at = time.time()
        started = WorkflowStarted(
            workflow=self.workflow,
            source=self.options.source,
            source_path=self.options.source_path,
            inputs=dict(self.options.inputs),
            started_at=started_at,
            resumed_from=self.options.resumed_from,
            reused=dict(self.options.reused),
            cost_cap=self.budget.cap,
            spent_before=self.options.spent_before,
            batch_id=self.options.batch_id,
            batch_row=self.options.batch_row,
            trace_id=self.options.trace_id,
            trace_span_id=self.options.trace_span_id,
            rerun_from=self.options.rerun_from,
            replaying=None if self.options.cache is None else self.options.cache.replaying,
            approvals=dict(self.options.approvals),
        )
        start = self.options.start_workflow_run
        workflow_run_id = start(started) if start is not None else None
        CURRENT_WORKFLOW_RUN.set(workflow_run_id)  # this run's task and the agents it starts
        self._emit(started)
        timeout = self.workflow.policies.timeout
        timer = (
            asyncio.get_running_loop().call_later(
                timeout, self.stop, f"run timed out after {timeout:g}s", RunStatus.FAILED
            )
            if timeout
            else None
        )
        try:
            async with asyncio.TaskGroup() as group:
                self._task_group = group
                ready: deque[str] = deque()
                reused = [name for name in self.options.reused if name in self._remaining]
                # All reused results first: releasing one must not queue another reused agent.
                for name in reused:
                    self.results[name] = self.options.reused[name]
                    self._succeeded.add(name)
                for loop in self.workflow.loops:  # a loop that ended before: nothing to run
                    if all(member in self.results for member in loop.agents):
                        self._loops_started.add(loop.name)
                for name in reused:
                    self._release_dependents(name, ready)
                # Agents released by reused ones are already queued: queue each only once.
                queued = set(ready)
                ready.extend(
                    n
                    for n, count in self._remaining.items()
                    if count == 0
                    and n not in self.results
                    and n not in queued
                    and n not in self._loop_of
                )
                for loop in self.workflow.loops:
                    if loop.name not in self._loops_started and not self._loop_waiting[loop.name]:
                        self._loops_started.add(loop.name)
                        self._loops_ready.append(loop.name)
                self._decide(ready)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if self._stop_reason is None:
                self._stop_reason = "cancelled"
        except Exception as failure:  # a bug of the scheduler's own: the run still ends, recorded
            logger.debug("the scheduler failed", exc_info=failure)
            if self._stop_reason is None:  # not stop(): that would cancel this very task
                self._stop_reason = f"internal error: {self._reason(failure)}"
                self._stop_status = RunStatus.FAILED
        finally:
            if timer is not None:
                timer.cancel()
        if (
            self.tools is not None and self._close_tools
        ):  # servers stop before the run is reported finished: their stderr is recorded
            for event in await self.tools.aclose():
                self._emit(event)
        waiting = [n for n, r in self.results.items() if r.status is AgentStatus.WAITING_APPROVAL]
        for name in self.graph.names:
            if name not in self.results:
                if waiting and self._stop_reason is None:  # behind an approval: not a failure
                    why = f"waits for the approval of {', '.join(waiting)}"
                    self._settle(self._new_result(name, AgentStatus.WAITING, error=why), None)
                    continue
                self._settle(
                    self._new_result(name, AgentStatus.CANCELLED, error=self._stop_reason), None
                )
        result = WorkflowResult(
            workflow=self.workflow.name,
            status=self._final_status(),
            agents={name: self.results[name] for name in self.graph.names},
            started_at=started_at,
            finished_at=time.time(),
            workflow_run_id=workflow_run_id,
            cost_cap=self.budget.cap,
            spent_before=self.options.spent_before,
        )
        self._emit(WorkflowFinished(result))
        return result

    # --- scheduling ----------------------------------------------------------------

    def _final_status(self) -> RunStatus:
        """Succeeded when every agent (and every fan-out item) succeeded or was routed away."""
        if self._stop_reason is not None:
            return self._stop_status
        if any(r.status is AgentStatus.WAITING_APPROVAL for r in self.results.values()):
            return RunStatus.WAITING
        if all(_clean(r) for r in self.results.values()):
            return RunStatus.SUCCEEDED
        return RunStatus.FAILED

    def _release_dependents(self, name: str, ready: deque[str]) -> None:
        for user in self.graph.dependents[name]:
            self._remaining[user] -= 1
            loop = self._loop_of.get(user)
            if loop is not None:
                waiting = self._loop_waiting[loop.name]
                waiting.discard(name)
                if not waiting and loop.name not in self._loops_started:
                    self._loops_started.add(loop.name)
                    self._loops_ready.append(loop.name)
            elif self._remaining[user] == 0 and user not in self.results:
                ready.append(user)

    def _decide(self, ready: deque[str]) -> None:
        """Start or skip every agent whose dependencies have all settled.

        A loop, not recursion: a long chain of skips must not hit the stack limit.
        """
        while ready:
            name = ready.popleft()
            condition = self.graph.conditions[name]
            if self._stop_reason is not None:
                continue
            if condition_holds(condition, self._succeeded):
                self._start(name, ready)
                continue
            dependencies = [self.results[n] for n in self.graph.dependencies[name]]
            self._settle(self._unmet(name, dependencies), ready)
        while self._loops_ready:
            loop = self._loops[self._loops_ready.popleft()]
            if self._stop_reason is None and self._task_group is not None:
                self._task_group.create_task(self._run_loop(loop), name=f"loop:{loop.name}")

    def _unmet(self, name: str, dependencies: list[AgentResult], **fields: Any) -> AgentResult:
        """The skipped result of an agent run whose dependency condition did not hold."""
        condition = self.graph.conditions[fields.get("agent") or name]
        statuses = {r.agent_name: r.status.value for r in dependencies}
        # Waiting only on branches routed away is being routed away too, not a failure.
        routed = all(
            r.status is AgentStatus.SUCCEEDED or r.skip_cause is SkipCause.ROUTED
            for r in dependencies
        )
        return self._new_result(
            name,
            AgentStatus.SKIPPED,
            error=unmet_reason(condition, statuses),
            skip_cause=SkipCause.ROUTED if routed else SkipCause.DEPENDENCY,
            **fields,
        )

    def _start(self, name: str, ready: deque[str]) -> None:
        """Route the agent (its ``when``), then start it: once, or once per item."""
        upstream = self._upstream(name)
        decision = self._route(name, name, upstream)
        if isinstance(decision, AgentResult):
            self._settle(decision, ready)
            return
        assert self._task_group is not None
        revision: tuple[str, str] | None = None
        if name in self._approval:
            gate = self._gate(name, upstream, decision)
            if isinstance(gate, AgentResult):
                waits = gate.status is AgentStatus.WAITING_APPROVAL
                self._settle(gate, None if waits else ready)  # a wait releases nobody
                return
            revision = gate
        if name in self._for_each:
            self._task_group.create_task(self._run_fan_out(name, decision), name=f"agent:{name}")
        else:
            run = self._run_agent(name, decision, revision)
            self._task_group.create_task(run, name=f"agent:{name}")

    def _gate(
        self, name: str, upstream: Mapping[str, AgentResult], decision: Decision | None
    ) -> AgentResult | tuple[str, str] | None:
        """An agent with ``approval:`` whose dependencies are met, given the decision a resume
        brought (if any): a settled result (waiting, rejected, or an approved answer), a
        revision to run (its answer and the feedback), or None: run it."""
        request = self._approval[name]
        given = self.options.approvals.get(name)
        verdict = given.verdict if given is not None else None
        if given is not None and verdict == "rejected":
            error = f"rejected by {given.by or 'someone'}" + (
                f": {given.text}" if given.text else ""
            )
            return self._new_result(
                name, AgentStatus.FAILED, error=error, approval=given, decision=decision
            )
        answer = given.answer if given is not None else None
        if request.mode == "before":
            if verdict == "approved":
                return None
            waiting = self._new_result(
                name, AgentStatus.WAITING_APPROVAL, awaiting=request, decision=decision
            )
            waiting.prompt = prompt_text(self._setup.messages(name, upstream))
            waiting.started_at = waiting.finished_at = time.time()
            return waiting
        if given is None or answer is None:
            return None  # after: it runs, then its answer waits
        if verdict == "approved":
            return replace(answer, approval=given, decision=decision)
        if verdict == "revise":
            return (answer.output or "", given.text or "")
        # Still pending: the answer waits again, not asked for again.
        return replace(
            answer, status=AgentStatus.WAITING_APPROVAL, awaiting=request, decision=decision
        )

    def _route(
        self, name: str, key: str, upstream: Mapping[str, AgentResult], **fields: Any
    ) -> Decision | AgentResult | None:
        """The ``when`` decision of agent run ``key`` (of agent ``name``); a settled result
        instead when it is routed away or its ``when`` cannot be evaluated."""
        if name not in self._when:
            return None
        try:
            decision = self.options.decisions.get(key) or self._decision(name, upstream)
        except ExpressionError as problem:
            return self._new_result(key, AgentStatus.FAILED, error=f"when: {problem}", **fields)
        if decision.held:
            return decision
        return self._new_result(
            key,
            AgentStatus.SKIPPED,
            error=_routed_reason(decision),
            skip_cause=SkipCause.ROUTED,
            decision=decision,
            **fields,
        )

    def _decision(self, name: str, upstream: Mapping[str, AgentResult]) -> Decision:
        when = self._when[name]
        if isinstance(when, ExpressionError):
            raise when
        scope = self._scope(upstream)
        return Decision(when.text, when.holds(scope), when.observed(scope))

    def _settle(self, result: AgentResult, ready: deque[str] | None) -> None:
        result.finished_at = result.finished_at or time.time()
        self.results[result.name] = result
        if result.status is AgentStatus.SUCCEEDED:
            self._succeeded.add(result.name)
        if self.subscribers:
            self._emit(AgentFinished(result))
        if ready is not None:
            self._release_dependents(result.name, ready)

    def _settle_and_continue(self, result: AgentResult) -> None:
        ready: deque[str] = deque()
        self._settle(result, ready)
        self._decide(ready)

    def _new_result(self, name: str, status: AgentStatus, **fields: Any) -> AgentResult:
        route = self.routes[fields.get("agent") or name]
        return AgentResult(
            name=name, status=status, model=route.model, provider=route.provider, **fields
        )

    # --- one agent ---------------------------------------------------------------------

    def _upstream(self, name: str) -> dict[str, AgentResult]:
        """The results of the agent's dependencies that succeeded: what it is fed."""
        return {
            dep: self.results[dep]
            for dep in sorted(self.graph.dependencies[name])
            if self.results[dep].status is AgentStatus.SUCCEEDED
        }

    def _scope(self, upstream: Mapping[str, AgentResult]) -> Scope:
        return Scope(
            outputs={dep: result.output or "" for dep, result in upstream.items()},
            values={dep: r.value for dep, r in upstream.items() if r.value is not None},
            inputs=self.options.inputs,
        )

    async def _run_agent(
        self, name: str, decision: Decision | None, revision: tuple[str, str] | None = None
    ) -> None:
        approval = self.options.approvals.get(name)
        result = self._new_result(name, AgentStatus.RUNNING, decision=decision, approval=approval)
        upstream = self._upstream(name)
        await self._run_unit(
            result, lambda: self._setup.plan(name, upstream, revision=revision).agent_run(result)
        )
        request = self._approval.get(name)
        after = request is not None and request.mode == "after"
        if after and result.status is AgentStatus.SUCCEEDED:  # its answer waits for a person
            result.status = AgentStatus.WAITING_APPROVAL
            result.awaiting = request
            self._settle(result, None)
            return
        self._settle_and_continue(result)

    async def _run_unit(self, result: AgentResult, run: AgentRun | Callable[[], AgentRun]) -> None:
        """Carry out one agent run (an agent's, one item's of a fan-out, or one iteration's of
        a loop's member) to a settled ``result``: ``run``, or how to build it (which fails this
        run alone if it raises)."""
        try:
            if not isinstance(run, AgentRun):
                run = run()
            await self.agent_runner.run(run)
        except asyncio.CancelledError:
            result.status = AgentStatus.CANCELLED
            result.error = self._stop_reason or "cancelled"
            if result.is_instance:
                self._settle_instance(result)
            else:
                self._settle(result, None)
            raise
        # The boundary of one agent: whatever its run raises (a template, a tool, a provider,
        # SystemExit or KeyboardInterrupt from a tool's code) fails this agent, never the run.
        except BaseException as failure:
            logger.debug("agent %s failed unexpectedly", result.name, exc_info=failure)
            result.status = AgentStatus.FAILED
            result.error = self._reason(failure)

    # --- a fan-out -------------------------------------------------------------------------

    async def _run_fan_out(self, name: str, decision: Decision | None) -> None:
        result = self._new_result(name, AgentStatus.RUNNING, decision=decision)
        try:
            await self._fan_out(name, result, self._upstream(name))
        except asyncio.CancelledError:
            self._settle(result, None)
            raise
        self._settle_and_continue(result)

    async def _fan_out(
        self,
        name: str,
        result: AgentResult,
        upstream: Mapping[str, AgentResult],
        previous: Previous | None = None,
    ) -> None:
        """Run the agent once per item of its ``for_each`` list, each item as slots free, to
        a finished ``result`` (the agent's own, or one iteration's in a loop); not settled.

        The items start in order, at most ``max_concurrency`` of them under way at once (so a
        50,000-item list is not 50,000 waiting tasks); once one does not fit under the cost cap
        the rest are not started. It finishes when every started item has settled.
        """
        try:
            items = self._items(name, upstream)
        except ExpressionError as problem:
            result.status = AgentStatus.FAILED
            result.error = f"for_each: {problem}"
            return
        count = len(items)
        result.started_at = time.time()
        result.item_count = count
        slots: list[AgentResult | None] = [None] * count
        waiting: deque[int] = deque()
        reused = self.options.reused
        for index in range(count):
            earlier = reused.get(instance_key(result.name, index)) if reused else None
            if earlier is not None:
                slots[index] = earlier
            else:
                waiting.append(index)
        self._emit(FanOutStarted(result.name, count, result.started_at))
        try:
            plan = self._setup.plan(name, upstream, fed=self._fed.get(name, ()), previous=previous)
        except Exception as failure:  # as any run's would, it fails this agent, not the run
            result.status = AgentStatus.FAILED
            result.error = self._reason(failure)
            return
        route = self.routes[name]

        ready: deque[tuple[int, AgentResult, AgentRun | Callable[[], AgentRun]]] = deque()

        def prepare() -> None:
            """Build the runs of the next items, PREPARED_AT_ONCE of them back to back. Built
            one at a time between two HTTP calls, each finds the code and data it needs
            evicted from the CPU's caches by the HTTP stack, and costs several times more."""
            for _ in range(min(PREPARED_AT_ONCE, len(waiting))):
                index = waiting.popleft()
                item = items[index]
                instance = AgentResult(
                    instance_key(result.name, index),
                    AgentStatus.RUNNING,
                    route.model,
                    route.provider,
                )
                # Set, not passed by keyword: a class called with keywords builds a dict per item.
                instance.agent, instance.item_index, instance.item = name, index, item
                instance.loop, instance.iteration = result.loop, result.iteration
                scope = ItemScope(item, index, count)
                run: AgentRun | Callable[[], AgentRun]
                try:
                    run = plan.agent_run(instance, scope)
                except Exception:  # built again by _run_unit, which fails this item with it
                    run = partial(plan.agent_run, instance, scope)
                ready.append((index, instance, run))

        async def work() -> None:
            while (ready or waiting) and self._stop_reason is None:
                if not ready:
                    prepare()
                index, instance, run = ready.popleft()
                slots[index] = instance
                await self._run_unit(instance, run)
                self._settle_instance(instance)
                if instance.skip_cause is SkipCause.COST_CAP:
                    # the next item would not fit either: start no more
                    waiting.clear()
                    ready.clear()

        try:
            workers = min(len(waiting), self.workflow.policies.max_concurrency)
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(work())
        except asyncio.CancelledError:
            self._finish_fan_out(name, result, slots)
            result.status = AgentStatus.CANCELLED
            result.error = self._stop_reason or "cancelled"
            raise
        self._finish_fan_out(name, result, slots)

    # --- a loop -----------------------------------------------------------------------------

    async def _run_loop(self, loop: LoopSpec) -> None:
        """Run the loop's members iteration by iteration, then settle each of them."""
        runs: dict[str, list[AgentResult]] = {member: [] for member in loop.agents}
        previous: dict[str, AgentResult] = {}
        iteration = 0
        reason = f"max_iterations {loop.max_iterations} reached"
        ok = loop.on_max_iterations == "continue"
        try:
            for iteration in range(1, loop.max_iterations + 1):
                self._emit(IterationStarted(loop.name, iteration, loop.max_iterations, time.time()))
                current = await self._run_iteration(loop, iteration, previous)
                for member in loop.agents:
                    runs[member].append(current[member])
                broken = next((r for r in current.values() if not _settled_ok(r)), None)
                if broken is not None:
                    reason = f"{broken.name} {broken.status.value} at iteration {iteration}"
                    ok = False
                    break
                if self._until_held(loop, current):
                    reason = f"until held at iteration {iteration}"
                    ok = True
                    break
                previous = current
        except ExpressionError as problem:
            reason, ok = f"until: {problem} (at iteration {iteration})", False
        except asyncio.CancelledError:
            why = self._stop_reason or "cancelled"
            self._finish_loop(loop, runs, f"stopped at iteration {iteration}: {why}", ok=False)
            raise
        self._finish_loop(loop, runs, reason, ok=ok)

    async def _run_iteration(
        self, loop: LoopSpec, iteration: int, previous: Mapping[str, AgentResult]
    ) -> dict[str, AgentResult]:
        """One iteration: the members in dependency order, those of one level at once."""
        current: dict[str, AgentResult] = {}
        answered = {m: r for m, r in previous.items() if r.status is AgentStatus.SUCCEEDED}
        prior = Previous(
            outputs={m: r.output or "" for m, r in answered.items()},
            values={m: r.value for m, r in answered.items() if r.value is not None},
        )
        for level in self._loop_levels[loop.name]:
            async with asyncio.TaskGroup() as group:
                for name in level:
                    group.create_task(self._run_member(loop, name, iteration, current, prior))
        return current

    async def _run_member(
        self,
        loop: LoopSpec,
        name: str,
        iteration: int,
        current: dict[str, AgentResult],
        prior: Previous,
    ) -> None:
        """One iteration of one member (``draft#2``): reused, skipped, routed away or run."""
        key = iteration_key(name, iteration)
        reused = self.options.reused.get(key)
        if reused is not None:
            current[name] = reused
            return
        fields: dict[str, Any] = {"agent": name, "loop": loop.name, "iteration": iteration}
        dependencies = {
            dep: current[dep] if dep in current else self.results[dep]
            for dep in sorted(self.graph.dependencies[name])
        }
        succeeded = self._succeeded | {
            dep for dep, r in dependencies.items() if r.status is AgentStatus.SUCCEEDED
        }
        if not condition_holds(self.graph.conditions[name], succeeded):
            current[name] = self._unmet(key, list(dependencies.values()), **fields)
            self._settle_instance(current[name])
            return
        upstream = {dep: r for dep, r in dependencies.items() if r.status is AgentStatus.SUCCEEDED}
        decision = self._route(name, key, upstream, **fields)
        if isinstance(decision, AgentResult):
            current[name] = decision
            self._settle_instance(decision)
            return
        result = self._new_result(key, AgentStatus.RUNNING, decision=decision, **fields)
        current[name] = result
        if name in self._for_each:
            await self._fan_out(name, result, upstream, prior)
        else:
            await self._run_unit(
                result, lambda: self._setup.plan(name, upstream, previous=prior).agent_run(result)
            )
        self._settle_instance(result)

    def _until_held(self, loop: LoopSpec, current: Mapping[str, AgentResult]) -> bool:
        until = self._until.get(loop.name)
        if until is None:
            return False
        if isinstance(until, ExpressionError):
            raise until
        answered = {m: r for m, r in current.items() if r.status is AgentStatus.SUCCEEDED}
        return until.holds(self._scope(answered))

    def _finish_loop(
        self, loop: LoopSpec, runs: Mapping[str, list[AgentResult]], reason: str, *, ok: bool
    ) -> None:
        """Each member settles with its iterations: its last answer when the loop ended well,
        else failed (cancelled when the run is stopping) with why the loop ended."""
        count = max((len(iterations) for iterations in runs.values()), default=0)
        self._emit(LoopFinished(loop.name, count, reason, ok))
        ready: deque[str] = deque()
        stopping = self._stop_reason is not None
        for name in loop.agents:
            iterations = runs[name]
            result = self._new_result(
                name,
                AgentStatus.FAILED,
                loop=loop.name,
                iteration=len(iterations),
                iterations=iterations,
                loop_end=reason,
                started_at=iterations[0].started_at if iterations else None,
            )
            result.add_spend_of(iterations)
            last = iterations[-1] if iterations else None
            if ok and last is not None:
                result.status = last.status
                result.output, result.value, result.prompt = last.output, last.value, last.prompt
                result.error, result.skip_cause = last.error, last.skip_cause
                result.decision = last.decision
            else:
                result.status = AgentStatus.CANCELLED if stopping else AgentStatus.FAILED
                result.error = f"loop {loop.name}: {reason}"
            self._settle(result, None if stopping else ready)
        if not stopping:
            self._decide(ready)

    def _items(self, name: str, upstream: Mapping[str, AgentResult]) -> list[Any]:
        """The list the agent fans out over; an ExpressionError says why there is none."""
        source = self._for_each[name]
        if isinstance(source, ExpressionError):
            raise source
        limit = self.workflow.effective_max_items(self._agents[name])
        return items_of(source, self._scope(upstream), limit)

    def _settle_instance(self, instance: AgentResult) -> None:
        instance.finished_at = instance.finished_at or time.time()
        if self.subscribers:
            self._emit(AgentFinished(instance))

    def _finish_fan_out(
        self, name: str, result: AgentResult, slots: list[AgentResult | None]
    ) -> None:
        agent = self._agents[name]
        finish_fan_out(
            result,
            slots,
            structured=agent.output is not None,
            on_item_error=agent.on_item_error,
            stop_reason=self._stop_reason,
            refusal=self.budget.refusal,
        )

    def _reason(self, failure: BaseException) -> str:
        """One line for an unexpected exception, secrets masked."""
        return self.options.secrets.scrub(describe_exception(failure))

    # --- events ----------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            try:
                subscriber(event)
            except Exception as failure:  # a broken subscriber must not take the run down with it
                logger.debug("event subscriber %r failed", subscriber, exc_info=failure)
                logger.error(
                    "event subscriber %s failed on %s: %s",
                    type(subscriber).__name__,
                    type(event).__name__,
                    self._reason(failure),
                )


# --- helpers ---------------------------------------------------------------------------------


def _whole_loops_only(workflow: Workflow, options: RunOptions) -> RunOptions:
    """A loop member's own result is reused only with its whole loop's: a loop that did not
    end is continued from its iterations (``draft#2``) instead."""
    partial = {
        member
        for loop in workflow.loops
        if not all(member in options.reused for member in loop.agents)
        for member in loop.agents
    }
    if not partial & set(options.reused):
        return options
    reused = {name: r for name, r in options.reused.items() if name not in partial}
    return replace(options, reused=reused)


def _parsed(text: str) -> Expression | ExpressionError:
    """A workflow made in Python skips the loader's checks: a bad expression fails its agent."""
    try:
        return parse_expression(text)
    except ExpressionError as problem:
        return problem


def _settled_ok(result: AgentResult) -> bool:
    """Succeeded, or routed away: what lets a loop go on."""
    if result.status is AgentStatus.SKIPPED:
        return result.skip_cause is SkipCause.ROUTED
    return result.status is AgentStatus.SUCCEEDED


def _clean(result: AgentResult) -> bool:
    """Whether this agent leaves the run able to succeed."""
    if not _settled_ok(result):
        return False
    if result.status is AgentStatus.SKIPPED:
        return True
    if not all(i.status is AgentStatus.SUCCEEDED for i in result.instances or ()):
        return False
    return all(_clean(i) for i in result.iterations or ())


def _levels(loop: LoopSpec, graph: WorkflowGraph) -> list[list[str]]:
    """The loop's members in dependency order, grouped into levels that can run at once (a
    cycle among them, which the loader reports, leaves its members in a last level)."""
    members = list(loop.agents)
    placed: set[str] = set()
    levels: list[list[str]] = []
    while len(placed) < len(members):
        level = [
            m
            for m in members
            if m not in placed
            and all(d in placed or d not in members for d in graph.dependencies.get(m, ()))
        ]
        if not level:
            level = [m for m in members if m not in placed]
        levels.append(level)
        placed.update(level)
    return levels


def _routed_reason(decision: Decision) -> str:
    """``when triage.output.label == 'bug' was false (triage.output.label: 'feature')``."""
    seen = ", ".join(f"{path}: {_shown(value)}" for path, value in decision.values.items())
    return f"when {decision.expression} was false" + (f" ({seen})" if seen else "")


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else as_text(value) or "null"
    return text if len(text) <= 80 else text[:77] + "..."
