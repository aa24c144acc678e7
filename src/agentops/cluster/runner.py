"""``RayAgentRunner``: the engine's ``AgentRunner`` that carries each agent's run out as a Ray task.

The engine on the driver decides when an agent runs and builds its ``AgentRun`` (prompt,
request, tools offered, output contract) as in one process; this runner ships what the run
holds as data (``worker.AgentWork``) to a task placed by the agent's ``resources:``, then
replays the events the task streams back into the engine's subscribers (the history, the
terminal view, tracing) and adopts the settled result. The driver's SQLite history stays
the only writer.

Faults. A task whose worker process or node is lost (Ray raises ``NodeDiedError``,
``WorkerCrashedError``, ...) is not retried by Ray (its arguments would call the finished
turns again): the driver forfeits the task's holds in the ledger (charged at their reserved
worst case, since those calls may have been billed), adds them to the result as failed
attempts beside the attempts the task had reported, and runs the agent again on a live node,
numbering on; at most ``MAX_LOST`` times, then the agent fails naming the last loss.

A stop (Ctrl-C, the run's timeout, a failed history) cancels the runner: it asks the task
through the ledger to stop, waits up to ``STOP_GRACE`` for its cancelled attempt to be
recorded and settled, then raises ``CancelledError`` as ``AgentRun`` does. A task Ray has not
started yet is simply cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from agentops.cluster.ledger import LedgerLimits
from agentops.cluster.worker import AgentWork, Shipment, run_agent
from agentops.errors import describe_exception
from agentops.runtime.agent_run import AgentRun
from agentops.runtime.events import (
    AgentResult,
    AgentStarted,
    AgentStatus,
    Attempt,
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    CostWarning,
    ToolCallFinished,
    ToolCallRecord,
)
from agentops.workflow.spec import Resources, Workflow

MAX_LOST = 3  # runs of one agent lost with their worker before the agent fails
STOP_GRACE = 30.0  # seconds a stopped task has to record its cancelled attempt

# Ray's errors for a task whose worker process or node went away: run it again elsewhere.
LOST = (
    "WorkerCrashedError",
    "NodeDiedError",
    "LocalRayletDiedError",
    "ObjectLostError",
    "OwnerDiedError",
    "ObjectReconstructionFailedError",
    "ObjectFetchTimedOutError",
    "OutOfMemoryError",
)


def task_options(resources: Resources | None) -> dict[str, Any]:
    """Ray's task options for an agent's ``resources:`` (none: Ray's default, one CPU)."""
    if resources is None:
        return {}
    options: dict[str, Any] = {}
    if resources.num_cpus is not None:
        options["num_cpus"] = resources.num_cpus
    if resources.num_gpus is not None:
        options["num_gpus"] = resources.num_gpus
    if resources.custom:
        options["resources"] = dict(resources.custom)
    return options


class RayAgentRunner:
    """See the module docstring. ``workspace``: the ``worker.Workspace`` in Ray's object store;
    ``limits``: the driver's view of the ledger; ``options``: every task's (its runtime_env)."""

    def __init__(
        self,
        ray: Any,
        workflow: Workflow,
        workspace: Any,
        limits: LedgerLimits,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.ray = ray
        self.limits = limits
        self.workspace = workspace
        # policies.max_concurrency: agent runs under way on the cluster, one call at a time each.
        self._slots = asyncio.Semaphore(workflow.policies.max_concurrency)
        task = ray.remote(max_retries=0, retry_exceptions=False)(run_agent)
        self._tasks = {
            agent.name: task.options(**task_options(agent.resources), **dict(options or {}))
            for agent in workflow.agents
        }
        self.ledger = uuid.uuid4().hex  # names this runner's ledger to the workers
        self._holders = (f"{self.ledger[:12]}:{n}" for n in itertools.count(1))

    async def run(self, agent_run: AgentRun) -> None:
        async with self._slots:
            self.limits.in_flight += 1
            try:
                await self._run(agent_run)
            finally:
                self.limits.in_flight -= 1

    async def _run(self, agent_run: AgentRun) -> None:
        result = agent_run.result
        output = agent_run.output
        work = AgentWork(
            ledger=self.ledger,
            holder="",
            agent=result.agent_name,
            route=agent_run.route,
            request=agent_run.request,
            result=result,
            retries=agent_run.retries,
            max_turns=agent_run.max_turns,
            output=None if output is None else (output.schema, output.retries),
            tools=agent_run.tools is not None,
            cap=self.limits.cap,
            warned=frozenset(agent_run.context.warned_models),
            keys=agent_run.context.keys,
        )
        losses: list[str] = []
        started = False
        while True:
            holder = next(self._holders)
            # Ray pickles the arguments now: the task gets the result as far as it got.
            stream = self._tasks[work.agent].remote(
                [self.workspace], replace(work, holder=holder, result=result), self.limits.actor
            )
            feed = _Feed(agent_run, self.limits, started)
            pump = asyncio.ensure_future(feed.pump(stream, self.ray.exceptions))
            try:
                failure = await asyncio.shield(pump)
            except asyncio.CancelledError:
                await self._stop(agent_run, holder, stream, pump, feed)
                raise
            started = feed.started
            if failure is None:
                return
            if type(failure).__name__ not in LOST:
                result.status = AgentStatus.FAILED
                result.error = agent_run.context.scrub(f"on Ray: {describe_exception(failure)}")
                return
            charged, snapshot = await self.limits.actor.forfeit.remote(holder)
            self.limits.observe(snapshot)
            feed.lost(charged, failure)
            losses.append(describe_exception(failure, limit=300))
            if len(losses) > MAX_LOST:
                result.status = AgentStatus.FAILED
                result.error = (
                    f"its Ray worker was lost {len(losses)} times; the last: {losses[-1]}"
                )
                return

    async def _stop(
        self, agent_run: AgentRun, holder: str, stream: Any, pump: asyncio.Future[Any], feed: _Feed
    ) -> None:
        """The engine is stopping: let the task record its cancelled attempt, within reason."""
        actor = self.limits.actor
        if not feed.received:  # not started, or not yet heard from: cancel it where it is
            self._cancel(stream, force=False)
            actor.forfeit.remote(holder)
            pump.cancel()
            return
        actor.stop.remote(holder, agent_run.context.stop_reason() or "cancelled")
        with contextlib.suppress(asyncio.CancelledError):  # stopped again: wait no longer
            await asyncio.wait({pump}, timeout=STOP_GRACE)
        settled = (
            pump.done() and not pump.cancelled() and not pump.exception() and not pump.result()
        )
        if not settled:
            self._cancel(stream, force=True)
            actor.forfeit.remote(holder)  # whatever it held is charged in full
            pump.cancel()

    def _cancel(self, stream: Any, *, force: bool) -> None:
        with contextlib.suppress(Exception):  # already finished, or its worker already gone
            self.ray.cancel(stream, force=force)


class _Feed:
    """One task attempt's shipments, replayed on the driver into the engine's subscribers."""

    def __init__(self, agent_run: AgentRun, limits: LedgerLimits, started: bool) -> None:
        self.run = agent_run
        self.limits = limits
        self.started = started  # AgentStarted was replayed (by an earlier task of this run)
        self.received = 0
        self.attempts: list[Attempt] = []  # finished attempts reported: kept if the task is lost
        self.calls: list[ToolCallRecord] = []
        self.turn = 1

    async def pump(self, stream: Any, exceptions: Any) -> BaseException | None:
        """Replay every shipment; the Ray error that ended the stream, or None when it ended with
        the settled result."""
        settled = False
        try:
            async for reference in stream:
                shipment: Shipment = await reference
                self.received += 1
                self._take(shipment)
                settled = settled or shipment.result is not None
        except exceptions.RayError as error:
            failure: BaseException = error
            return failure
        if not settled:
            return RuntimeError("the task ended without the agent's result")
        return None

    def _take(self, shipment: Shipment) -> None:
        self.limits.observe(shipment.snapshot)
        result = self.run.result
        emit = self.run.context.emit
        for event in shipment.events:
            if isinstance(event, AgentStarted):
                if self.started:
                    continue  # a run continued on another node started once
                self.started = True
                result.started_at = event.started_at
            elif isinstance(event, AttemptStarted):
                self.turn = event.turn
            elif isinstance(event, (AttemptSucceeded, AttemptFailed)):
                self.attempts.append(event.attempt)
            elif isinstance(event, ToolCallFinished):
                self.calls.append(event.call)
            elif isinstance(event, CostWarning):  # once per workflow run, as in one process
                warned = self.run.context.warned_models
                if self.run.route.model in warned:
                    continue
                warned.add(self.run.route.model)
            emit(event)
        if shipment.result is not None:
            _adopt(result, shipment.result)

    def lost(self, charged: list[float], failure: BaseException) -> None:
        """The task is gone: what it reported joins the result, and each call it had in flight
        becomes a failed attempt charged at its reserved worst case."""
        result = self.run.result
        for attempt in self.attempts:
            result.add_attempt(attempt)
        result.tool_calls.extend(self.calls)
        reason = (
            f"{type(failure).__name__}: the Ray worker making this call was lost; "
            "charged its reserved worst case"
        )
        for amount in charged:
            attempt = Attempt(
                number=len(result.attempts) + 1,
                status="failed",
                started_at=time.time(),
                duration=0.0,
                cost=amount,
                error=reason,
                error_type=type(failure).__name__,
                turn=self.turn,
            )
            result.add_attempt(attempt)
            self.run.context.emit(AttemptFailed(result.name, attempt, True, 0.0))


def _adopt(target: AgentResult, settled: AgentResult) -> None:
    """The engine's result object takes the worker's settled copy, field by field."""
    for field in fields(AgentResult):
        setattr(target, field.name, getattr(settled, field.name))


__all__ = ["LOST", "MAX_LOST", "STOP_GRACE", "RayAgentRunner", "task_options"]
